package lists

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
)

// WatchOptions configure a Watcher.
type WatchOptions struct {
	Options
	// Logger receives one line per reload (debug for a periodic rescan
	// that found nothing changed, info otherwise) and one per new problem.
	// Nil discards.
	Logger *slog.Logger
	// Registerer, if set, gets the watcher's metrics.
	Registerer prometheus.Registerer
	// Debounce is how long the watcher waits after a change for more
	// changes before it reloads (default 50ms). A steady stream of events
	// still reloads at least every 10 debounce periods.
	Debounce time.Duration
	// Rescan is the period of the safety-net full rescan (default 5
	// minutes; NFS gives no events). Negative turns it off.
	Rescan time.Duration
	// LiveDomains says that Postfix may learn the served domains from
	// listgate itself (the socketmap door's domains map, as relay_domains):
	// a domain that becomes or stops being served is then logged at info
	// level, not as a warning to edit relay_domains.
	LiveDomains bool

	retryMin, retryMax time.Duration // zero: RetryMin, RetryMax
}

// Retrying a read that failed: a list file that could not be read (EMFILE
// when descriptors run out, EIO, EACCES) or a lists directory that could
// not be listed is tried again after RetryMin, then after twice as long
// each time, up to RetryMax, until it reads. No event announces that a
// passing fault is over, and an unchanged file is otherwise not read again.
const (
	RetryMin = time.Second
	RetryMax = 30 * time.Second
)

// Watcher keeps a snapshot of a lists directory current. It reloads only
// the files that changed (fsnotify events, debounced) and rescans the whole
// directory on Rescan (SIGHUP), on a watcher overflow or error, when the
// directory or a ConfigMap's ..data is replaced, when the directory's mode
// or owner changes, and periodically. What could not be read is retried
// (RetryMin to RetryMax). Readers never wait for a reload: Snapshot is
// one atomic load. Reloads tells what the last reloads did.
type Watcher struct {
	dir    string
	opts   WatchOptions
	delims string
	rd     reader
	log    *slog.Logger
	m      *watchMetrics

	snap      atomic.Pointer[Snapshot]
	rescan    chan bool // true: force re-reading every file
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
	fsw       *fsnotify.Watcher

	retryMin, retryMax time.Duration // RetryMin, RetryMax but in tests

	mu        sync.Mutex // serialises reloads (run loop and Rescan callers)
	problems  map[string]bool
	failed    map[string]bool // names whose last read failed (entry.transient); under mu
	dirFailed error           // why the last full rescan could not list the directory; under mu

	reloads reloadLog // the last reloads, for Reloads
}

// Watch loads dir and starts watching it. It fails when dir cannot be
// read or watched; problems with single files are in the snapshot. Call
// Close to stop.
func Watch(dir string, opts WatchOptions) (*Watcher, error) {
	if opts.Debounce <= 0 {
		opts.Debounce = 50 * time.Millisecond
	}
	if opts.Rescan == 0 {
		opts.Rescan = 5 * time.Minute
	}
	w := &Watcher{
		dir:      dir,
		opts:     opts,
		delims:   opts.delims(),
		rd:       opts.reader(dir),
		log:      opts.Logger,
		rescan:   make(chan bool, 1),
		done:     make(chan struct{}),
		problems: make(map[string]bool),
		failed:   make(map[string]bool),
		retryMin: cmp.Or(opts.retryMin, RetryMin),
		retryMax: cmp.Or(opts.retryMax, RetryMax),
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.m = newWatchMetrics(opts.Registerer)
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("lists: watch %s: %w", dir, err)
	}
	if err := fsw.Add(dir); err != nil {
		fsw.Close()
		return nil, fmt.Errorf("lists: watch %s: %w", dir, err)
	}
	w.fsw = fsw
	start := time.Now()
	entries, err := w.rd.scan(nil, true)
	if err != nil {
		fsw.Close()
		return nil, err
	}
	w.noteFailed(entries, true)
	entries = withExternal(entries, opts.External, w.delims, nil)
	w.publish(build(entries, w.delims, w.opts.Observe, 1), "start", start, slog.LevelInfo, diffEntries(nil, entries))
	returnMemory(len(entries))
	w.wg.Add(1)
	go w.run()
	return w, nil
}

// Snapshot returns the current snapshot. It never blocks.
func (w *Watcher) Snapshot() *Snapshot { return w.snap.Load() }

// Generation returns the current snapshot's generation; it grows by one
// with each reload.
func (w *Watcher) Generation() uint64 { return w.snap.Load().gen }

// Rescan asks for a full re-read of every file, as on SIGHUP. It returns
// at once; the reload follows in the background.
func (w *Watcher) Rescan() {
	select {
	case w.rescan <- true:
	default:
	}
}

// Close stops watching and waits for the watcher's goroutine to end. The
// last snapshot stays readable.
// It is safe to call more than once, from any goroutine.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		close(w.done)
		w.closeErr = w.fsw.Close()
		w.wg.Wait()
	})
	return w.closeErr
}

func (w *Watcher) run() {
	defer w.wg.Done()
	var (
		pending    = make(map[string]bool) // names changed since the last reload
		full       bool                    // a full rescan is due
		force      bool                    // ...re-reading unchanged files too
		periodic   bool                    // the rescan is due to the safety timer alone
		first      time.Time               // first pending change
		debounce   = time.NewTimer(time.Hour)
		safety     <-chan time.Time
		dirMissing bool
		retry      *time.Ticker
		retryC     <-chan time.Time
		failRetry  = time.NewTimer(time.Hour) // re-reads what could not be read
		backoff    time.Duration              // its current delay; 0 when nothing failed
	)
	debounce.Stop()
	defer debounce.Stop()
	failRetry.Stop()
	defer failRetry.Stop()
	// schedule arms failRetry after a reload that left something unread:
	// RetryMin after the first failure, twice the last delay after a retry
	// that failed again, up to RetryMax. A reload that read everything
	// ends the retries.
	schedule := func(afterRetry bool) {
		if !w.failing() {
			backoff = 0
			failRetry.Stop()
			return
		}
		switch {
		case backoff == 0:
			backoff = w.retryMin
		case afterRetry:
			backoff = min(2*backoff, w.retryMax)
		default:
			return // a retry is already due
		}
		failRetry.Reset(backoff)
	}
	schedule(false)
	if w.opts.Rescan > 0 {
		t := time.NewTicker(w.opts.Rescan)
		defer t.Stop()
		safety = t.C
	}
	arm := func() {
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		d := w.opts.Debounce
		if left := first.Add(10 * w.opts.Debounce).Sub(now); left < d {
			d = max(left, 0)
		}
		debounce.Reset(d)
	}
	rewatch := func() {
		// The directory was removed or renamed away: watch the new one
		// at the same path once it exists, and rescan it.
		_ = w.fsw.Remove(w.dir)
		if err := w.fsw.Add(w.dir); err != nil {
			if !dirMissing {
				w.log.Error("lists directory gone; waiting for it", "file", w.dir, "err", err)
				dirMissing = true
				retry = time.NewTicker(w.opts.Debounce * 4)
				retryC = retry.C
			}
			return
		}
		if dirMissing {
			dirMissing = false
			retry.Stop()
			retryC = nil
		}
		full, periodic = true, false
		arm()
	}
	for {
		select {
		case <-w.done:
			if retry != nil {
				retry.Stop()
			}
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			name := filepath.Base(ev.Name)
			switch {
			case filepath.Clean(ev.Name) == filepath.Clean(w.dir):
				switch {
				case ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
					rewatch()
				case ev.Has(fsnotify.Chmod):
					// The directory's mode or owner changed (chmod 000,
					// then back): what it lets us read may have too.
					full, periodic = true, false
					arm()
				}
				continue
			case strings.HasPrefix(name, "..data"):
				full = true // a ConfigMap swapped its data directory
			case ignoredName(name):
				continue
			default:
				pending[name] = true
			}
			periodic = false
			arm()
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.log.Warn("lists watcher overflowed; rescanning", "file", w.dir)
			} else {
				w.log.Error("lists watcher error; rescanning", "file", w.dir, "err", err)
			}
			full, periodic = true, false
			arm()
		case f := <-w.rescan:
			full, force, periodic = true, force || f, false
			first = time.Time{}
			debounce.Reset(0)
		case <-safety:
			if !full && len(pending) == 0 {
				periodic = true
			}
			full = true
			arm()
		case <-retryC:
			rewatch()
		case <-failRetry.C:
			w.retryFailed()
			schedule(true)
		case <-debounce.C:
			switch {
			case full && periodic:
				w.reloadAll(force, "periodic")
			case full:
				w.reloadAll(force, "rescan")
			default:
				w.reloadNames(pending, "change")
			}
			clear(pending)
			full, force, periodic, first = false, false, false, time.Time{}
			schedule(false)
		}
	}
}

// failing reports whether something could not be read: a list file, or
// the directory itself.
func (w *Watcher) failing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dirFailed != nil || len(w.failed) > 0
}

// noteFailed records which entries could not be read: all of them after
// a full scan, else only the names in entries.
func (w *Watcher) noteFailed(entries map[string]*entry, all bool) {
	if all {
		clear(w.failed)
	}
	for name, e := range entries {
		if e != nil && e.transient {
			w.failed[name] = true
		} else {
			delete(w.failed, name)
		}
	}
}

// retryFailed reads again what could not be read: the whole directory if
// it could not be listed, else the files whose read failed.
func (w *Watcher) retryFailed() {
	w.mu.Lock()
	dirFailed, names := w.dirFailed != nil, maps.Clone(w.failed)
	w.mu.Unlock()
	switch {
	case dirFailed:
		w.reloadAll(false, "retry")
	case len(names) > 0:
		w.reloadNames(names, "retry")
	}
}

// reloadNames re-reads only the named directory entries; why is the
// reason logged and counted ("change", "retry"). A retry that changed
// nothing is logged at debug level.
func (w *Watcher) reloadNames(names map[string]bool, why string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	start := time.Now()
	old := w.snap.Load()
	entries := maps.Clone(old.entries)
	changes := make([]change, 0, len(names))
	read := make(map[string]*entry, len(names))
	same := true
	for name := range names {
		prev := old.entries[name]
		e := w.rd.readEntry(name, prev, true)
		read[name] = e
		if e != nil {
			entries[name] = e
		} else {
			delete(entries, name)
		}
		if e != prev {
			changes = append(changes, change{old: prev, new: e})
			same = same && e != nil && prev != nil && sameEntry(prev, e)
		}
	}
	w.noteFailed(read, false)
	// Most changes touch one list: patch the old snapshot. Otherwise
	// build afresh, as a full rescan does.
	s := old.update(entries, changes, old.gen+1)
	if s == nil {
		s = build(entries, w.delims, w.opts.Observe, old.gen+1)
	}
	level := slog.LevelInfo
	if why == "retry" && same {
		level = slog.LevelDebug
	}
	w.publish(s, why, start, level, changes)
}

// reloadAll rescans the whole directory; why is the reason logged and
// counted ("rescan", "periodic", "retry"). With force false, files whose
// identity (inode, size, mtime) is unchanged are not read again, unless
// their last read failed. A periodic rescan (the safety net, every
// WatchOptions.Rescan) or a retry is logged at debug level when it found
// nothing changed, so that it does not fill the log. A directory that
// cannot be listed keeps the last snapshot; the first failure is logged
// as an error, a retry that fails the same way at debug level.
func (w *Watcher) reloadAll(force bool, why string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	start := time.Now()
	old := w.snap.Load()
	entries, err := w.rd.scan(old.entries, force)
	if err != nil {
		level := slog.LevelError
		if w.dirFailed != nil && w.dirFailed.Error() == err.Error() {
			level = slog.LevelDebug
		}
		w.dirFailed = err
		w.m.reloadSuccess.Set(0)
		w.log.Log(context.Background(), level, "lists reload failed; keeping the last snapshot", "file", w.dir, "err", err)
		w.reloads.add(Reload{Time: time.Now(), Duration: time.Since(start), Reason: why, Err: err.Error()})
		return
	}
	w.dirFailed = nil
	w.noteFailed(entries, true)
	keepExternal(entries, old.entries)
	changes := diffEntries(old.entries, entries)
	level := slog.LevelInfo
	if why != "rescan" && len(changes) == 0 {
		level = slog.LevelDebug
	}
	w.publish(build(entries, w.delims, w.opts.Observe, old.gen+1), why, start, level, changes)
	returnMemory(len(entries))
}

// manyEntries is the number of entries from which a full load returns
// its garbage to the operating system at once.
const manyEntries = 10_000

// returnMemory returns the memory freed after a full load of n entries to
// the operating system, when n is at least manyEntries. Reading 100,000
// list files allocates about four times what the snapshot keeps (see
// docs/performance.md); without this the process would keep that much
// more resident until the Go runtime's scavenger gives it back, minutes
// later. It costs one garbage collection (tens of milliseconds for
// 100,000 lists), at start and after each full rescan only.
func returnMemory(n int) {
	if n >= manyEntries {
		debug.FreeOSMemory()
	}
}

// sameEntry reports whether a and b say the same: the same settings and
// the same problem. An unchanged list file gives the very same entry; an
// entry that is only a problem (a README, a dangling link) is made afresh
// by every scan.
func sameEntry(a, b *entry) bool {
	if a == b {
		return true
	}
	if a.kind != b.kind || a.addr != b.addr || a.list != b.list || a.dom != b.dom || (a.err == nil) != (b.err == nil) {
		return false
	}
	return a.err == nil || a.err.Error() == b.err.Error()
}

// publish logs the reload and each new problem once, sets the metrics, and
// then makes s current. In that order, whoever sees s (a door, a test)
// finds the lines about it already written, and a door's verdict from s is
// logged after the reload that brought s, never before it. Callers hold
// w.mu (or, in Watch, run before the watcher's goroutine), so the current
// snapshot cannot change in between.
// changes are the entries the reload added, changed or removed, which
// Reloads reports.
func (w *Watcher) publish(s *Snapshot, why string, start time.Time, level slog.Level, changes []change) {
	old := w.snap.Load()
	now := time.Now()
	if old != nil {
		w.logDomainChanges(old, s)
	}
	seen := make(map[string]bool, len(s.problems))
	for _, p := range s.problems {
		msg := p.Error()
		seen[msg] = true
		if !w.problems[msg] {
			w.log.Error("list file problem", "file", p.File, "err", msg)
			w.m.problemsTotal.Inc()
		}
	}
	w.problems = seen
	w.m.lists.Set(float64(len(s.lists)))
	w.m.problems.Set(float64(len(s.problems)))
	w.m.reloadSuccess.Set(1)
	w.m.reloadTime.Set(float64(now.UnixNano()) / 1e9)
	w.m.reloads.WithLabelValues(why).Inc()
	w.log.Log(context.Background(), level, "lists loaded", "reason", why, "generation", s.gen,
		"lists", len(s.lists), "problems", len(s.problems), "duration_ms", milliseconds(now.Sub(start)))
	r := Reload{Time: now, Duration: now.Sub(start), Reason: why, Generation: s.gen, Lists: len(s.lists), Problems: len(s.problems)}
	summarize(&r, changes)
	w.reloads.add(r)
	w.snap.Store(s)
}

// milliseconds is d in milliseconds, to the microsecond: the value of a
// log line's "duration_ms". Log keys for durations carry their unit, the
// same in every package, since a JSON log shows a bare time.Duration as an
// integer of nanoseconds.
func milliseconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type watchMetrics struct {
	lists, problems, reloadSuccess, reloadTime prometheus.Gauge
	problemsTotal                              prometheus.Counter
	reloads                                    *prometheus.CounterVec
}

func newWatchMetrics(reg prometheus.Registerer) *watchMetrics {
	m := &watchMetrics{
		lists: prometheus.NewGauge(prometheus.GaugeOpts{Name: "listgate_lists",
			Help: "Lists in the current snapshot."}),
		problems: prometheus.NewGauge(prometheus.GaugeOpts{Name: "listgate_lists_problems",
			Help: "Current problems in the lists directory."}),
		reloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "listgate_lists_last_reload_successful",
			Help: "1 if the last reload of the lists directory read it, 0 if it failed."}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "listgate_lists_last_reload_timestamp_seconds",
			Help: "Unix time of the last successful reload."}),
		problemsTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: "listgate_lists_problems_total",
			Help: "Problems found in list files, counted once per change."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "listgate_lists_reloads_total",
			Help: "Reloads of the lists directory, by reason (start, change, rescan, periodic, retry)."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.lists, m.problems, m.reloadSuccess, m.reloadTime, m.problemsTotal, m.reloads)
	}
	return m
}

// logDomainChanges warns when the set of served domains changes: Postfix's
// relay_domains must follow, or Postfix refuses a new domain's mail (554
// relay access denied) or, for a domain no longer served, accepts its mail
// and bounces it when the LMTP sink refuses it.
//
// With WatchOptions.LiveDomains (the socketmap door is on) Postfix may ask
// listgate, and then nothing needs editing: the lines are informational
// and say what holds only for a static relay_domains.
func (w *Watcher) logDomainChanges(old, s *Snapshot) {
	level, gone, added := slog.LevelWarn,
		"domain no longer served: remove it from Postfix's relay_domains, or keep a domain file "+
			"(@domain) so its addresses get 550 at RCPT; until then Postfix accepts its mail and bounces it",
		"domain newly served: add it to Postfix's relay_domains (listgate postfix prints the line); "+
			"until then Postfix refuses its mail"
	if w.opts.LiveDomains {
		level = slog.LevelInfo
		gone = "domain no longer served: a relay_domains that asks listgate's socketmap refuses it at RCPT from now on; " +
			"a static relay_domains must lose it (or keep a domain file @domain), or Postfix accepts its mail and bounces it"
		added = "domain newly served: a relay_domains that asks listgate's socketmap relays it from now on; " +
			"a static relay_domains must gain it (listgate postfix prints the line)"
	}
	ctx := context.Background()
	for d := range old.domains {
		if _, ok := s.domains[d]; !ok {
			w.log.Log(ctx, level, gone, "domain", d, "file", old.domainOrigin(d, w.dir))
		}
	}
	for d := range s.domains {
		if _, ok := old.domains[d]; !ok {
			w.log.Log(ctx, level, added, "domain", d, "file", s.domainOrigin(d, w.dir))
		}
	}
}

// domainOrigin names what makes s serve domain d, for a log line: a list
// or domain file of the directory (the first by name), else the
// External's origin (Mailman's REST URL of the domain or a list), else
// dir.
func (s *Snapshot) domainOrigin(d, dir string) string {
	var file, ext string
	for _, e := range s.entries {
		var aliases []string
		switch {
		case e.list != nil:
			aliases = e.list.Aliases
		case e.dom != nil:
			aliases = e.dom.Aliases
		}
		_, dom, _ := strings.Cut(e.addr, "@")
		if dom != d && !slices.ContainsFunc(aliases, func(a string) bool { return a == d || strings.HasSuffix(a, "@"+d) }) {
			continue
		}
		if e.ext == nil && (file == "" || e.path < file) {
			file = e.path
		} else if e.ext != nil && (ext == "" || e.path < ext) {
			ext = e.path
		}
	}
	return cmp.Or(file, ext, dir)
}
