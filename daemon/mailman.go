package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/mailman"
)

// firstPollTimeout bounds the read of Mailman that New makes before the
// lists are loaded, so that the first snapshot already holds Mailman's
// lists; a Mailman that does not answer in time delays the start by no
// more.
const firstPollTimeout = 5 * time.Second

// newMailman makes the Mailman source when the mailman setting names one
// (docs/mailman.md) and reads Mailman once. A Mailman that does not answer
// is no error: the source then holds its cached set, and readiness says
// so. The sets it reads later go to the lists watcher while Run runs.
func (d *Daemon) newMailman(reg prometheus.Registerer) error {
	s := &d.cfg.Settings
	if s.Mailman == "" {
		return nil
	}
	opts, err := s.MailmanOptions()
	if err != nil {
		return err
	}
	opts.Logger, opts.Registerer = d.log, reg
	opts.OnChange = func(x *lists.External) { d.watcher.SetExternal(x) } // Run calls it, after New set d.watcher
	opts.OnReachable = func() {
		if d.fwd != nil { // nil during New's first read: nothing waits yet
			d.fwd.RetryNow()
		}
	}
	src, err := mailman.New(opts)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Origin("mailman"), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), firstPollTimeout)
	defer cancel()
	src.Refresh(ctx) // logged by the source; readiness reports it
	d.mailman = src
	return nil
}

// listsOptions are the options the lists directory is read with: the
// settings', with Mailman's current set when there is one.
func (d *Daemon) listsOptions() lists.Options {
	o := d.cfg.ListsOptions()
	if d.mailman != nil {
		o.External = d.mailman.External()
	}
	return o
}

// runMailman polls Mailman until the returned stop is called; stop waits
// for the poller to end. Without Mailman both do nothing.
func (d *Daemon) runMailman() (stop func()) {
	if d.mailman == nil {
		return func() {}
	}
	st := d.mailman.Status()
	d.log.Info("reading lists from Mailman", "url", st.URL, "poll_interval", d.cfg.MailmanPollInterval.String(),
		"lists", st.Lists, "next_hop", st.NextHop)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.mailman.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// mailmanNotReady says why Mailman keeps the daemon from being ready:
// Mailman has not answered since the start and there is no cached set
// (its lists are unknown: they tempfail where its domains are known, and
// are not served elsewhere), or it has not answered for longer than
// mailman_unready_after, or its LMTP runner is listgate's own LMTP door
// (its lists' mail could never be forwarded). Empty when none holds.
func (d *Daemon) mailmanNotReady() []string {
	if d.mailman == nil {
		return nil
	}
	st := d.mailman.Status()
	var why []string
	if !st.Reached && st.Cached.IsZero() {
		why = append(why, fmt.Sprintf("mailman %s: not reached since the start (%v), and no cached lists", st.URL, st.Err))
	} else if after := d.cfg.MailmanUnreadyAfter; after > 0 && st.Err != nil && time.Since(lastReached(st)) > after {
		why = append(why, fmt.Sprintf("mailman %s: %s; its last good lists are served", st.URL, notReachedSince(st)))
	}
	if st.Loop != "" {
		why = append(why, fmt.Sprintf("mailman %s: its LMTP runner %s is listgate's own LMTP door (%s), so Mailman's lists' mail "+
			"stays in the spool; move the runner ([mta] lmtp_port in mailman.cfg) or set mailman_lmtp",
			st.URL, st.Loop, d.cfg.LMTP.String()))
	}
	return why
}

// mailmanNote says, for a daemon that is ready, that Mailman's last poll
// failed; empty when it did not.
func (d *Daemon) mailmanNote() string {
	if d.mailman == nil {
		return ""
	}
	st := d.mailman.Status()
	if st.Err == nil {
		return ""
	}
	return fmt.Sprintf("mailman %s: %s; its last good lists are served", st.URL, notReachedSince(st))
}

// lastReached is when Mailman last answered, or when the source started
// if it has not since.
func lastReached(st mailman.Status) time.Time {
	if st.Reached {
		return st.LastSuccess
	}
	return st.Started
}

func notReachedSince(st mailman.Status) string {
	since := lastReached(st).UTC().Format(time.RFC3339)
	if !st.Reached {
		since += " (the start; cached lists from " + st.Cached.UTC().Format(time.RFC3339) + ")"
	}
	return fmt.Sprintf("not reached since %s (%v)", since, st.Err)
}
