package lmtp

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/internal/connlimit"
	"github.com/listgate/listgate/internal/promreg"
	"github.com/listgate/listgate/reply"
)

// resultDelivered is the "result" label of a recipient whose message is
// on stable storage (250). Every other result is the outcome's name:
// too-large, error (storage error, or the data never arrived whole),
// no-space.
const resultDelivered = "delivered"

// deliveryResult is the "result" label of a delivery with outcome o.
func deliveryResult(o reply.Outcome) string {
	if o == reply.Accept {
		return resultDelivered
	}
	return o.String()
}

// metrics are the door's Prometheus collectors, named
// listgate_lmtp_<what>, with the labels every door uses: "verdict" for
// recipients, "result" for deliveries.
type metrics struct {
	rcpts       *prometheus.CounterVec
	deliveries  *prometheus.CounterVec
	connections prometheus.Gauge
	refused     *prometheus.CounterVec
	timeouts    *prometheus.CounterVec
	panics      prometheus.Counter
}

// newMetrics makes the door's collectors and registers them with reg, if
// any; a collector already registered there (a second Server on the same
// registry) is shared. Every label value is set up front, so each series
// exists from 0.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rcpts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listgate_lmtp_recipients_total",
			Help: "Recipients answered by the LMTP door, by verdict (accept, unknown, not-served, tempfail, too-large, alias, observed, error, no-space, too-many-recipients).",
		}, []string{"verdict"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listgate_lmtp_deliveries_total",
			Help: "Per-recipient results after DATA (delivered, too-large, error, no-space).",
		}, []string{"result"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "listgate_lmtp_connections",
			Help: "LMTP connections currently open.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listgate_lmtp_connections_refused_total",
			Help: "LMTP connections refused with 421 4.7.0, by reason (max_connections, max_connections_per_client).",
		}, []string{"reason"}),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listgate_lmtp_timeouts_total",
			Help: "LMTP connections closed for slowness, by phase: command (a command line not whole within the read timeout) or data (a message slower than the minimum data rate).",
		}, []string{"phase"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "listgate_lmtp_panics_total",
			Help: "Panics recovered in LMTP sessions (each answered 451 4.3.0).",
		}),
	}
	for _, o := range []reply.Outcome{reply.Accept, reply.Unknown, reply.NotServed, reply.Broken, reply.TooLarge, reply.Alias, reply.Observed, reply.LocalError,
		reply.NoSpace, reply.TooManyRecipients} {
		m.rcpts.WithLabelValues(o.String())
	}
	for _, o := range []reply.Outcome{reply.Accept, reply.TooLarge, reply.LocalError, reply.NoSpace} {
		m.deliveries.WithLabelValues(deliveryResult(o))
	}
	for _, r := range connlimit.Reasons() {
		m.refused.WithLabelValues(r)
	}
	for _, p := range []string{"command", "data"} {
		m.timeouts.WithLabelValues(p)
	}
	if reg == nil {
		return m
	}
	m.rcpts = promreg.Register(reg, m.rcpts)
	m.deliveries = promreg.Register(reg, m.deliveries)
	m.connections = promreg.Register(reg, m.connections)
	m.refused = promreg.Register(reg, m.refused)
	m.timeouts = promreg.Register(reg, m.timeouts)
	m.panics = promreg.Register(reg, m.panics)
	return m
}
