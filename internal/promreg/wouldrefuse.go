package promreg

import "github.com/prometheus/client_golang/prometheus"

// WouldRefuse returns the counter listgate_would_refuse_total{door,domain}:
// recipients a door let through only because their domain is in observe
// mode (lists.Observed), which it would have refused in enforce mode.
// domain is the served domain as the lists directory names it (an alias
// domain counts under its domain), never the address as received, so
// the series are bounded by the lists directory. Every door registered
// on reg shares the one counter; with reg nil it is unregistered.
func WouldRefuse(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "listgate_would_refuse_total",
		Help: "Recipients let through in observe mode that enforce mode would refuse (550 5.1.1), by door (milter, policy, socketmap) and served domain.",
	}, []string{"door", "domain"})
	if reg == nil {
		return c
	}
	return Register(reg, c)
}
