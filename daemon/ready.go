package daemon

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// probeTTL is how long a spool probe's result is reused: /readyz may be
// polled often, and each probe costs an fsync.
const probeTTL = time.Second

// probe checks that the spool takes new files, as a delivery needs: it
// creates a file in the spool root, fsyncs and removes it. A read-only
// remount, a full or vanished file system, or lost permissions fail it.
type probe struct {
	dir string // the spool root; "" when there is no spool

	mu   sync.Mutex
	when time.Time
	err  error
}

// check returns the result of a probe at most probeTTL old.
func (p *probe) check() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.when) >= probeTTL || now.Before(p.when) {
		p.err = p.run()
		p.when = time.Now()
	}
	return p.err
}

func (p *probe) run() error {
	// A leading dot: never a domain's folder, and spool.New probes alike.
	f, err := os.CreateTemp(p.dir, ".listgate-ready-*")
	if err != nil {
		return err
	}
	_, err = f.Write([]byte{'\n'})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(f.Name()); err == nil {
		err = rerr
	}
	return err
}

// notReady lists what keeps the daemon from being ready: a shutdown under
// way, a door that is not serving, lists that are not loaded, a spool
// that takes no files, a next hop or Mailman failing too long, a canary
// probe that did not find the gate shut. Empty means ready.
func (d *Daemon) notReady() []string {
	var why []string
	if d.stopping.Load() {
		why = append(why, "shutting down")
	}
	// New returns only after the lists' first load; this guards a
	// future asynchronous first load.
	if d.watcher.Snapshot() == nil {
		why = append(why, "lists: not loaded yet")
	}
	for _, dr := range d.doors {
		if !dr.serving.Load() {
			why = append(why, fmt.Sprintf("%s door (%s): not serving", dr.name, d.Addr(dr.name)))
		}
	}
	if d.probe.dir != "" {
		if err := d.probe.check(); err != nil {
			why = append(why, fmt.Sprintf("spool %s: not writable: %v", d.probe.dir, err))
		}
	}
	if d.fwd != nil {
		why = append(why, d.fwd.NotReady()...)
	}
	why = append(why, d.mailmanNotReady()...)
	return append(why, d.canaryNotReady()...)
}

// spoolNote says, for a daemon that is ready, that the spool is below its
// reserve (spool_reserve); empty when it is not. That does not make the
// daemon unready: the LMTP door tempfails by design (452 4.3.1, Postfix
// keeps the mail), and taking listgate out of service frees nothing.
func (d *Daemon) spoolNote() string {
	if d.spool == nil {
		return ""
	}
	sp, err := d.spool.Space()
	if err != nil || !sp.Below(0, 0) || (sp.ReserveBytes == 0 && sp.ReserveInodes == 0) {
		return ""
	}
	return fmt.Sprintf("spool %s: %d bytes and %d inodes free, below its reserve of %d bytes and %d inodes: recipients get 452 4.3.1",
		d.spool.Dir(), sp.Free, sp.FreeInodes, sp.ReserveBytes, sp.ReserveInodes)
}

// readyz answers 200 "ok" when the daemon is ready (every door serving,
// lists loaded, spool writable, no next hop failing for longer than
// forward_unready_after, the canary's latest probe found the gate shut),
// else 503 with one line per reason.
// Problems in list files do not make it unready (the doors tempfail those
// lists alone); the body counts them. Nor does a spool below its reserve
// (see spoolNote): the body has a "note:" line for it.
func (d *Daemon) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if why := d.notReady(); len(why) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "not ready: "+strings.Join(why, "\nnot ready: ")+"\n")
		return
	}
	if note := d.mailmanNote(); note != "" {
		defer fmt.Fprintf(w, "note: %s\n", note) // after the ok line
	}
	if note := d.spoolNote(); note != "" {
		defer fmt.Fprintf(w, "note: %s\n", note)
	}
	if ps := d.watcher.Snapshot().Problems(); len(ps) > 0 {
		noun := "problems"
		if len(ps) == 1 {
			noun = "problem"
		}
		fmt.Fprintf(w, "ok (%d list file %s: see listgate lists)\n", len(ps), noun)
		return
	}
	io.WriteString(w, "ok\n")
}
