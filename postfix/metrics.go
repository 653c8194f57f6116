package postfix

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/internal/connlimit"
	"github.com/listgate/listgate/internal/promreg"
	"github.com/listgate/listgate/reply"
)

// The door names: the "door" key of the log lines and the second word of
// the metric names.
const (
	doorPolicy    = "policy"
	doorSocketmap = "socketmap"
)

// labelIgnored is the verdict label of a policy request the door does not
// judge: one at another protocol_state than RCPT (answered DUNNO).
const labelIgnored = "ignored"

// The result labels of socketmap lookups: the reply's first word, in
// lower case.
const (
	resultFound    = "found"
	resultNotFound = "notfound"
	resultTemp     = "temp"
	resultPerm     = "perm"
)

// mapOther is the map label of a lookup in a map the door does not serve
// (answered PERM).
const mapOther = "other"

// metrics are a door's Prometheus collectors, named listgate_<door>_<what>
// as in every door: listgate_policy_requests_total{verdict} (the verdict
// labels of the other doors, plus "ignored"), or
// listgate_socketmap_lookups_total{map,result}; and for both the gauge
// listgate_<door>_connections, listgate_<door>_panics_total and
// listgate_<door>_protocol_errors_total.
type metrics struct {
	requests       *prometheus.CounterVec
	connections    prometheus.Gauge
	panics         prometheus.Counter
	protocolErrors prometheus.Counter
	refused        *prometheus.CounterVec
	// wouldRefuse is listgate_would_refuse_total, shared by the doors.
	wouldRefuse *prometheus.CounterVec
}

// policyOutcomes are the outcomes a policy request can be counted under.
func policyOutcomes() []reply.Outcome {
	return []reply.Outcome{reply.Accept, reply.Unknown, reply.NotServed, reply.Broken, reply.TooLarge, reply.Alias, reply.Observed, reply.LocalError}
}

// newMetrics makes door's collectors and registers them with reg, if any;
// a collector already registered there (a second server of the same door
// on the same registry) is shared. Every label value is set up front, so
// each series exists from 0.
func newMetrics(door string, reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "listgate_" + door + "_connections",
			Help: "Connections from Postfix to the " + door + " door currently open.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "listgate_" + door + "_panics_total",
			Help: "Panics recovered in the " + door + " door (each answered with a tempfail).",
		}),
		protocolErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "listgate_" + door + "_protocol_errors_total",
			Help: "Malformed requests to the " + door + " door (answered with a tempfail, or the connection closed).",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listgate_" + door + "_connections_refused_total",
			Help: "Connections to the " + door + " door closed at once for a connection limit, by reason (max_connections, max_connections_per_client).",
		}, []string{"reason"}),
	}
	for _, r := range connlimit.Reasons() {
		m.refused.WithLabelValues(r)
	}
	if door == doorPolicy {
		m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listgate_policy_requests_total",
			Help: "Policy requests answered, by verdict (accept, unknown, not-served, tempfail, too-large, alias, observed, error; ignored: not at RCPT).",
		}, []string{"verdict"})
		for _, o := range policyOutcomes() {
			m.requests.WithLabelValues(o.String())
		}
		m.requests.WithLabelValues(labelIgnored)
	} else {
		m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listgate_socketmap_lookups_total",
			Help: "Socketmap lookups answered, by map (domains, recipients, transport, aliases, other) and result (found, notfound, temp, perm).",
		}, []string{"map", "result"})
		for _, name := range mapNames {
			for _, r := range []string{resultFound, resultNotFound, resultTemp} {
				m.requests.WithLabelValues(name, r)
			}
		}
		m.requests.WithLabelValues(mapOther, resultPerm)
	}
	m.wouldRefuse = promreg.WouldRefuse(reg)
	if reg == nil {
		return m
	}
	m.requests = promreg.Register(reg, m.requests)
	m.connections = promreg.Register(reg, m.connections)
	m.panics = promreg.Register(reg, m.panics)
	m.protocolErrors = promreg.Register(reg, m.protocolErrors)
	m.refused = promreg.Register(reg, m.refused)
	return m
}
