package milter

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/internal/connlimit"
	"github.com/listgate/listgate/internal/promreg"
	"github.com/listgate/listgate/reply"
)

// labelError is the verdict label of a recipient, or the result label of
// a message, answered with the local-error tempfail (a panic, no
// snapshot): reply.LocalError's name.
const labelError = "error"

// labelUnchecked is the result label of a message whose size did not
// matter: no recipient of listgate's.
const labelUnchecked = "unchecked"

// metrics are the door's Prometheus collectors, named
// listgate_milter_<what>, with the labels every door uses: "verdict" for
// recipients, "result" for messages.
type metrics struct {
	rcpt           *prometheus.CounterVec
	messages       *prometheus.CounterVec
	connections    prometheus.Gauge
	panics         prometheus.Counter
	protocolErrors prometheus.Counter
	refused        *prometheus.CounterVec
	idleClosed     prometheus.Counter
	// wouldRefuse is listgate_would_refuse_total, shared by the doors.
	wouldRefuse *prometheus.CounterVec
}

// newMetrics creates the collectors and registers them with reg, if any.
// A collector already registered (a second Server on the same registry)
// is shared.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rcpt: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listgate_milter_recipients_total",
			Help: "Recipients the milter door answered, by verdict (accept, unknown, not-served, tempfail, too-large, alias, observed, error).",
		}, []string{"verdict"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listgate_milter_messages_total",
			Help: "Messages the milter door answered at their end, by result (accept, too-large, unchecked: no recipient of listgate's, error).",
		}, []string{"result"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "listgate_milter_connections",
			Help: "Milter connections from the MTA currently open.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "listgate_milter_panics_total",
			Help: "Panics recovered while answering the MTA; each was answered with a tempfail.",
		}),
		protocolErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "listgate_milter_protocol_errors_total",
			Help: "Milter connections closed because the MTA sent a malformed packet.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listgate_milter_connections_refused_total",
			Help: "Milter connections closed at once for a connection limit, by reason (max_connections, max_connections_per_client).",
		}, []string{"reason"}),
		idleClosed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "listgate_milter_idle_closed_total",
			Help: "Milter connections closed because the MTA sent nothing for the idle timeout.",
		}),
	}
	for _, r := range connlimit.Reasons() {
		m.refused.WithLabelValues(r)
	}
	for _, o := range []reply.Outcome{reply.Accept, reply.Unknown, reply.NotServed, reply.Broken, reply.TooLarge, reply.Alias, reply.Observed, reply.LocalError} {
		m.rcpt.WithLabelValues(o.String())
	}
	for _, r := range []string{reply.Accept.String(), reply.TooLarge.String(), labelUnchecked, labelError} {
		m.messages.WithLabelValues(r)
	}
	m.wouldRefuse = promreg.WouldRefuse(reg)
	if reg == nil {
		return m
	}
	m.rcpt = promreg.Register(reg, m.rcpt)
	m.messages = promreg.Register(reg, m.messages)
	m.connections = promreg.Register(reg, m.connections)
	m.panics = promreg.Register(reg, m.panics)
	m.protocolErrors = promreg.Register(reg, m.protocolErrors)
	m.refused = promreg.Register(reg, m.refused)
	m.idleClosed = promreg.Register(reg, m.idleClosed)
	return m
}
