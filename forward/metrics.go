package forward

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/internal/promreg"
)

// metrics are the forwarder's: a counter of attempts by next hop and
// result, and gauges computed from the folders' last known state when
// scraped.
type metrics struct {
	f        *Forwarder
	messages *prometheus.CounterVec

	backlog, oldest, quarantined, failing *prometheus.Desc
}

func newMetrics(f *Forwarder, reg prometheus.Registerer) *metrics {
	m := &metrics{
		f: f,
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listgate_forward_messages_total",
			Help: "Attempts to forward a message, by next hop and result: forwarded (the next hop took it), deferred (a temporary failure: tried again later), quarantined (refused for good).",
		}, []string{"next_hop", "result"}),
		backlog: prometheus.NewDesc("listgate_forward_backlog",
			"Messages waiting in new/ for a next hop, as last seen.", []string{"next_hop"}, nil),
		oldest: prometheus.NewDesc("listgate_forward_oldest_seconds",
			"Age of the oldest message waiting for a next hop, in seconds.", []string{"next_hop"}, nil),
		quarantined: prometheus.NewDesc("listgate_forward_quarantined",
			"Messages in the quarantine folders of the lists forwarding to a next hop, as of the last scan.", []string{"next_hop"}, nil),
		failing: prometheus.NewDesc("listgate_forward_failing_seconds",
			"How long a next hop has been failing (temporary failures since its last answer); 0 when it is not.", []string{"next_hop"}, nil),
	}
	if reg != nil {
		m.messages = promreg.Register(reg, m.messages)
		reg.Register(m)
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.backlog
	ch <- m.oldest
	ch <- m.quarantined
	ch <- m.failing
}

// Collect implements prometheus.Collector: the gauges, per next hop.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	f := m.f
	now := time.Now()
	type agg struct {
		backlog, quarantined int
		oldest               time.Time
	}
	hops := map[string]*agg{}
	f.mu.Lock()
	for _, st := range f.folders {
		if st.hop == "" {
			continue
		}
		a := hops[st.hop]
		if a == nil {
			a = &agg{}
			hops[st.hop] = a
		}
		a.backlog += st.backlog
		a.quarantined += st.quarantine
		if !st.oldest.IsZero() && (a.oldest.IsZero() || st.oldest.Before(a.oldest)) {
			a.oldest = st.oldest
		}
	}
	failing := map[string]float64{}
	for h, hs := range f.hops {
		if !hs.failingSince.IsZero() {
			failing[h] = now.Sub(hs.failingSince).Seconds()
		}
		if hops[h] == nil {
			hops[h] = &agg{}
		}
	}
	f.mu.Unlock()
	for h, a := range hops {
		age := 0.0
		if !a.oldest.IsZero() && a.backlog > 0 {
			age = max(0, now.Sub(a.oldest).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(m.backlog, prometheus.GaugeValue, float64(a.backlog), h)
		ch <- prometheus.MustNewConstMetric(m.oldest, prometheus.GaugeValue, age, h)
		ch <- prometheus.MustNewConstMetric(m.quarantined, prometheus.GaugeValue, float64(a.quarantined), h)
		ch <- prometheus.MustNewConstMetric(m.failing, prometheus.GaugeValue, failing[h], h)
	}
}
