package lmtp

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/lists"
)

// Results of one recipient's delivery after DATA, the values of the
// "result" label.
const (
	resultDelivered = "delivered" // 250: on stable storage
	resultTooLarge  = "too-large" // 552 5.3.4
	resultTempfail  = "tempfail"  // 451 4.3.0: storage error, or the data never arrived
	resultNoSpace   = "no-space"  // 452 4.3.1
)

type metrics struct {
	rcpts      *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	panics     prometheus.Counter
}

// newMetrics makes the door's counters and registers them with reg, if
// any. Every label value is set up front, so each series exists from 0.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rcpts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "listgate", Subsystem: "lmtp", Name: "recipients_total",
			Help: "Recipients answered by the LMTP door, by verdict (accept, unknown, not-served, tempfail, too-large).",
		}, []string{"verdict"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "listgate", Subsystem: "lmtp", Name: "deliveries_total",
			Help: "Per-recipient results after DATA (delivered, too-large, tempfail, no-space).",
		}, []string{"result"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "listgate", Subsystem: "lmtp", Name: "panics_total",
			Help: "Panics recovered in LMTP sessions (each answered 451 4.3.0).",
		}),
	}
	for _, st := range []lists.Status{lists.Accept, lists.Unknown, lists.NotServed, lists.Broken, lists.TooLarge} {
		m.rcpts.WithLabelValues(st.String())
	}
	for _, r := range []string{resultDelivered, resultTooLarge, resultTempfail, resultNoSpace} {
		m.deliveries.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.rcpts, m.deliveries, m.panics)
	}
	return m
}
