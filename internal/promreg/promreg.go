// Package promreg registers a door's Prometheus collectors so that a
// second server on the same registry (a restart in a test, two doors
// sharing a name) shares the first one's series instead of failing.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg and returns the collector in use: c, or
// the one registered before under the same name and labels. Any other
// registration error leaves c unregistered, and c is returned.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if prev, ok := are.ExistingCollector.(C); ok {
			return prev
		}
	}
	return c
}
