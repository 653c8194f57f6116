package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRegisterTwice: a second collector of the same name gets the first
// one back, so both servers count into the same series.
func TestRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "listgate_test_total", Help: "test"}
	a := Register(reg, prometheus.NewCounter(opts))
	b := Register(reg, prometheus.NewCounter(opts))
	if a != b {
		t.Fatal("the second registration did not return the first collector")
	}
	b.Inc()
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetMetric()[0].GetCounter().GetValue() != 1 {
		t.Fatalf("gathered %v, %v; want one counter at 1", mfs, err)
	}
}
