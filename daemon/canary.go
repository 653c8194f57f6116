package daemon

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/canary"
	"github.com/listgate/listgate/config"
)

// newCanary makes the canary when canary_smtp names Postfix's smtpd
// (package canary, docs/reliability.md "The canary"); nil without it. It
// reads its lists from the watcher, so New calls it once that exists.
func (d *Daemon) newCanary(reg prometheus.Registerer) (*canary.Canary, error) {
	s := &d.cfg.Settings
	if !config.On(s.CanarySMTP) {
		return nil, nil
	}
	c, err := canary.New(canary.Options{
		SMTP: s.CanarySMTP, Lists: d.watcher, List: s.CanaryList, Sender: s.CanarySender,
		Hostname: s.Hostname, Interval: s.CanaryInterval, Timeout: s.CanaryTimeout,
		Logger: d.log, Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Origin("canary_smtp"), err)
	}
	return c, nil
}

// runCanary probes Postfix until the returned stop is called; stop ends
// a probe in flight and waits for the canary to return. Without a canary
// both do nothing.
func (d *Daemon) runCanary() (stop func()) {
	if d.canary == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.canary.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// canaryNotReady says why the canary's latest probe keeps the daemon from
// being ready (canary.Canary.NotReady); empty when the gate was found
// shut, or without a canary.
func (d *Daemon) canaryNotReady() []string {
	if d.canary == nil {
		return nil
	}
	if why := d.canary.NotReady(); why != "" {
		return []string{why}
	}
	return nil
}
