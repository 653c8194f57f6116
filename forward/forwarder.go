package forward

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/spool"
)

// Defaults of Options.
const (
	DefaultConcurrency  = 4
	DefaultTimeout      = 10 * time.Minute
	DefaultScanInterval = time.Minute
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = 5 * time.Minute
	DefaultUnreadyAfter = 10 * time.Minute
)

// Options configures a Forwarder. Zero durations and counts mean the
// defaults above.
type Options struct {
	// Spool is the spool root whose folders are forwarded.
	Spool string
	// Lists gives each folder's list, and so its next hop and keep
	// setting (lists.Snapshot.Forwarding).
	Lists lists.Source
	// Default is the next hop of a list whose file and domain file set
	// none (default_next_hop); Unset means None.
	Default lists.NextHop
	// Hostname is the name given in LHLO.
	Hostname string
	// Concurrency bounds the forwards in flight to one next hop.
	Concurrency int
	// Timeout bounds one forward: an LMTP transaction or a command's run.
	Timeout time.Duration
	// ScanInterval is the period of the full scan of the spool, which
	// finds what no notification announced (mail left by a crash, by
	// another process, by `listgate spool retry`) and refreshes the
	// backlog figures. A changed lists snapshot also starts a scan.
	ScanInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait before a message that met
	// a temporary failure is tried again: it doubles from MinBackoff
	// after each failure up to MaxBackoff, with ±20% jitter.
	MinBackoff, MaxBackoff time.Duration
	// UnreadyAfter is how long a next hop may fail before NotReady names
	// it; negative: never.
	UnreadyAfter time.Duration
	// Logger gets one line per forward, deferral and quarantine. Nil
	// discards.
	Logger *slog.Logger
	// Registerer, if set, gets the listgate_forward_* metrics.
	Registerer prometheus.Registerer

	listed func(folder string) // tests: called each time a worker lists new/
}

// Forwarder hands the mail of each spool folder to its list's next hop,
// in order, at least once (see the package documentation). Create it with
// New, then Start it; Shutdown stops it.
type Forwarder struct {
	o   Options
	log *slog.Logger
	m   *metrics

	ctx    context.Context // ends only when a shutdown runs out of time
	cancel context.CancelFunc
	stop   chan struct{} // closed when Shutdown begins
	wg     sync.WaitGroup

	wake chan struct{} // under mu: closed (and replaced) by RetryNow

	mu      sync.Mutex
	stopped bool
	workers map[string]*worker      // by folder path
	hops    map[string]*hopState    // by next hop string
	folders map[string]*folderState // by folder path: for metrics and readiness
	gen     uint64                  // lists generation of the last scan
}

// worker forwards one folder's messages, one at a time, in order. It
// lists new/ when it starts and when a scan pokes it; between listings it
// works from that list plus the names Notify hands it, so a deep backlog
// costs one listing, not one per message.
type worker struct {
	folder spool.Folder
	relist bool     // under Forwarder.mu: list new/ again (a scan saw the folder)
	added  []string // under Forwarder.mu: names delivered since, from Notify
}

// hopState is what the Forwarder knows of one next hop.
type hopState struct {
	sem          chan struct{} // Concurrency slots
	failingSince time.Time     // first temporary failure since the last success; zero if none
	last         string        // the last failure's reply
}

// folderState is a folder's backlog as last seen.
type folderState struct {
	list, kind string
	hop        string // "" while the folder's mail is held (none, or no list)
	backlog    int
	oldest     time.Time
	quarantine int
}

// New returns a Forwarder for the spool at o.Spool. It does not start.
func New(o Options) (*Forwarder, error) {
	if o.Spool == "" || o.Lists == nil {
		return nil, errors.New("forward: a spool and a lists source are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.Timeout, DefaultTimeout)
	def(&o.ScanInterval, DefaultScanInterval)
	def(&o.MinBackoff, DefaultMinBackoff)
	def(&o.MaxBackoff, DefaultMaxBackoff)
	def(&o.UnreadyAfter, DefaultUnreadyAfter)
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.Default.Transport == lists.Unset {
		o.Default.Transport = lists.None
	}
	f := &Forwarder{o: o, log: o.Logger, stop: make(chan struct{}), wake: make(chan struct{}),
		workers: map[string]*worker{}, hops: map[string]*hopState{}, folders: map[string]*folderState{}}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.m = newMetrics(f, o.Registerer)
	return f, nil
}

// Start scans the spool once and then every ScanInterval (and after a
// change of the lists), starting a worker for each folder with mail for a
// next hop. It returns at once.
func (f *Forwarder) Start() {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.scan()
		tick := time.NewTicker(min(time.Second, f.o.ScanInterval))
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
			snap := f.o.Lists.Snapshot()
			f.mu.Lock()
			changed := snap != nil && snap.Generation() != f.gen
			f.mu.Unlock()
			if changed || time.Since(last) >= f.o.ScanInterval {
				f.scan()
				last = time.Now()
			}
		}
	}()
}

// Shutdown stops taking messages and waits for the forwards in flight to
// finish until ctx ends; then it interrupts them (an LMTP connection is
// closed, a command killed: the message stays in new/ and goes again at
// the next start, maybe a second time) and returns ctx's error once every
// goroutine has returned.
func (f *Forwarder) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	if !f.stopped {
		f.stopped = true
		close(f.stop)
	}
	f.mu.Unlock()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		f.cancel()
		return nil
	case <-ctx.Done():
		f.cancel()
		<-done
		return ctx.Err()
	}
}

// Notify tells the Forwarder that a message arrived: path is its file,
// SPOOL/<domain>/<local>/<kind>/new/<name>, as spool.Options.Delivered
// gives it. It never blocks, and it does not read the disk.
func (f *Forwarder) Notify(path string) {
	rel, err := filepath.Rel(f.o.Spool, path)
	if err != nil {
		return
	}
	parts := strings.Split(rel, string(filepath.Separator))
	if len(parts) != 5 || parts[0] == ".." || parts[3] != "new" {
		return
	}
	folder := filepath.Join(f.o.Spool, parts[0], parts[1], parts[2])
	f.poke(spool.Folder{Domain: parts[0], Local: parts[1], Kind: parts[2], Path: folder}, parts[4])
}

// poke hands the folder's worker the name of a new message, or with name
// "" (a scan) tells it to list new/ again; it starts the worker if none
// runs. Mail for a list whose mail is held (next hop none) starts no
// worker: it only counts in the backlog.
func (f *Forwarder) poke(fo spool.Folder, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	if w := f.workers[fo.Path]; w != nil {
		if name == "" {
			w.relist = true
		} else {
			w.added = append(w.added, name)
		}
		return
	}
	if name != "" {
		if hop, _, ok := hopFor(f.o.Lists.Snapshot(), f.o.Default, fo.List()); ok && !hop.Forwards() {
			st := f.folders[fo.Path]
			if st == nil {
				st = &folderState{list: fo.List(), kind: fo.Kind}
				f.folders[fo.Path] = st
			}
			if st.backlog++; st.oldest.IsZero() {
				st.oldest, _ = spool.NameTime(name)
			}
			return
		}
	}
	// A new worker lists new/ first: older mail may wait there.
	w := &worker{folder: fo}
	f.workers[fo.Path] = w
	f.wg.Add(1)
	go f.work(w)
}

// hopFor returns the next hop and keep setting of a list: its own, its
// domain's, else def. ok is false when the list is unknown.
func hopFor(snap *lists.Snapshot, def lists.NextHop, list string) (hop lists.NextHop, keep, ok bool) {
	if snap == nil {
		return lists.NextHop{}, false, false
	}
	fw, ok := snap.Forwarding(list)
	if !ok {
		return lists.NextHop{}, false, false
	}
	if fw.Hop.Transport == lists.Unset {
		fw.Hop = def
	}
	return fw.Hop, fw.Keep, true
}

// scan looks at every folder of the spool: it records its backlog and
// starts a worker where there is mail for a next hop.
func (f *Forwarder) scan() {
	snap := f.o.Lists.Snapshot()
	folders, err := spool.Folders(f.o.Spool)
	if err != nil {
		f.log.Error("forward: cannot scan the spool", "door", "forward", "err", err)
		return
	}
	seen := make(map[string]*folderState, len(folders))
	var start []spool.Folder
	for _, fo := range folders {
		names, err := spool.Pending(fo.Path)
		if err != nil {
			f.log.Error("forward: cannot list a folder", "door", "forward", "file", fo.Path, "err", err)
			continue
		}
		q, _ := spool.QuarantinedIn(fo.Path)
		st := &folderState{list: fo.List(), kind: fo.Kind, backlog: len(names), quarantine: len(q)}
		if len(names) > 0 {
			st.oldest, _ = spool.NameTime(names[0])
		}
		if hop, _, ok := hopFor(snap, f.o.Default, fo.List()); ok && hop.Forwards() {
			st.hop = hop.String()
			if len(names) > 0 {
				start = append(start, fo)
			}
		}
		seen[fo.Path] = st
	}
	f.mu.Lock()
	f.folders = seen
	if snap != nil {
		f.gen = snap.Generation()
	}
	// A next hop no folder uses any more is forgotten, so it cannot keep
	// the daemon unready.
	for h := range f.hops {
		used := false
		for _, st := range seen {
			used = used || (st.hop == h && st.backlog > 0)
		}
		if !used && len(f.hops[h].sem) == 0 {
			delete(f.hops, h)
		}
	}
	f.mu.Unlock()
	for _, fo := range start {
		f.poke(fo, "")
	}
}

// hop returns the state of the next hop h, made on first use.
func (f *Forwarder) hop(h string) *hopState {
	f.mu.Lock()
	defer f.mu.Unlock()
	hs := f.hops[h]
	if hs == nil {
		hs = &hopState{sem: make(chan struct{}, f.o.Concurrency)}
		f.hops[h] = hs
	}
	return hs
}

// setFolder records a worker's view of its folder's backlog.
func (f *Forwarder) setFolder(fo spool.Folder, hop string, names []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.folders[fo.Path]
	if st == nil {
		st = &folderState{list: fo.List(), kind: fo.Kind}
		f.folders[fo.Path] = st
	}
	st.hop, st.backlog, st.oldest = hop, len(names), time.Time{}
	if len(names) > 0 {
		st.oldest, _ = spool.NameTime(names[0])
	}
}

// work forwards w's folder until new/ is empty, its mail is held, or
// the Forwarder stops. Messages go one at a time, oldest first; a message
// that meets a temporary failure is tried again, after a backoff, before
// any later one, so the next hop sees the folder's messages in order.
func (f *Forwarder) work(w *worker) {
	defer f.wg.Done()
	fo := w.folder
	failures := 0
	var names []string // new/ in delivery order, as last listed plus added
	list := true
	for {
		f.mu.Lock()
		list = list || w.relist
		added := w.added
		w.relist, w.added = false, nil
		f.mu.Unlock()
		var err error
		if list {
			if f.o.listed != nil {
				f.o.listed(fo.Path)
			}
			names, err = spool.Pending(fo.Path)
			if err != nil {
				f.log.Error("forward: cannot list a folder", "door", "forward", "file", fo.Path, "err", err)
			}
			list = false
		} else {
			names = addNames(names, added)
		}
		hop, keep, ok := hopFor(f.o.Lists.Snapshot(), f.o.Default, fo.List())
		held := !ok || !hop.Forwards()
		hopName := ""
		if !held {
			hopName = hop.String()
		}
		f.setFolder(fo, hopName, names)
		if len(names) == 0 || held || err != nil {
			f.mu.Lock()
			if (w.relist || len(w.added) > 0) && !f.stopped && err == nil {
				f.mu.Unlock()
				continue
			}
			delete(f.workers, fo.Path)
			f.mu.Unlock()
			return
		}
		// Taken before the attempt, so that a RetryNow during it (the
		// next hop came back meanwhile) still cuts the backoff short.
		f.mu.Lock()
		wake := f.wake
		f.mu.Unlock()
		r := f.forwardOne(fo, hop, keep, names[0])
		switch {
		case r.ok:
			failures = 0
			names = names[1:]
		case !r.temporary: // quarantined
			names = names[1:]
		default:
			failures++
			if !f.sleep(backoff(f.o.MinBackoff, f.o.MaxBackoff, failures), wake) {
				f.exit(w)
				return
			}
		}
		select {
		case <-f.stop:
			f.exit(w)
			return
		default:
		}
	}
}

// addNames merges the names of newly delivered messages into names, a
// list in delivery order, skipping any it already holds. New names
// usually sort last, and are appended; a name from a slower concurrent
// delivery is inserted in its place.
func addNames(names, added []string) []string {
	for _, n := range added {
		if len(names) == 0 || spool.CompareNames(n, names[len(names)-1]) > 0 {
			names = append(names, n)
			continue
		}
		if i, found := slices.BinarySearchFunc(names, n, spool.CompareNames); !found {
			names = slices.Insert(names, i, n)
		}
	}
	return names
}

// exit removes a stopping worker.
func (f *Forwarder) exit(w *worker) {
	f.mu.Lock()
	delete(f.workers, w.folder.Path)
	f.mu.Unlock()
}

// sleep waits d, or less if wake is closed (RetryNow); if the Forwarder
// stops, it returns false.
func (f *Forwarder) sleep(d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-wake:
		return true
	case <-f.stop:
		return false
	}
}

// RetryNow ends every backoff wait at once: mail deferred for a next hop
// that is known to be back (Mailman's REST API answers again, an admin
// sent SIGHUP) is tried now, not after a backoff of up to MaxBackoff.
// Order is kept: each folder still sends its oldest message first.
func (f *Forwarder) RetryNow() {
	f.mu.Lock()
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}

// backoff is the wait after the n-th temporary failure in a row:
// min·2^(n-1), at most max, with ±20% jitter so folders waiting on one
// next hop do not all try again at once.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// forwardOne forwards the message name of folder fo to hop, then removes
// it (or keeps it in cur/), or quarantines it, as the result says.
func (f *Forwarder) forwardOne(fo spool.Folder, hop lists.NextHop, keep bool, name string) result {
	hs := f.hop(hop.String())
	select {
	case hs.sem <- struct{}{}:
	case <-f.stop:
		return result{temporary: true, reply: "shutting down"}
	}
	defer func() { <-hs.sem }()
	path := filepath.Join(fo.Path, "new", name)
	start := time.Now()
	r, s := f.attempt(fo, hop, path)
	log := f.log.With("door", "forward", "list", fo.List(), "kind", fo.Kind, "next_hop", hop.String(), "file", path)
	if s != nil {
		log = log.With("rcpt", s.rcpt, "from", s.sender)
	}
	log = log.With("reply", r.reply, "duration_ms", time.Since(start).Milliseconds())
	switch {
	case r.gone:
		// Forwarded already (listed, then announced again by Notify), or
		// taken out by `listgate spool` or an admin: nothing to do.
		log.Debug("not forwarded: gone from new/")
	case r.ok:
		f.hopResult(hs, r)
		var err error
		if keep {
			err = spool.Keep(fo.Path, name)
		} else {
			err = spool.Remove(fo.Path, name)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Taken, but it stays in new/: it goes again (a duplicate).
			log.Error("forwarded, but cannot take it out of new/", "err", err)
		}
		f.m.messages.WithLabelValues(hop.String(), "forwarded").Inc()
		log.Info("forwarded", "result", "forwarded")
	case r.temporary:
		if f.ctx.Err() == nil { // not the shutdown's doing
			f.hopResult(hs, r)
		}
		f.m.messages.WithLabelValues(hop.String(), "deferred").Inc()
		log.Warn("forward deferred", "result", "deferred")
	default:
		f.hopResult(hs, r)
		reason := Reason{NextHop: hop.String(), Reply: r.reply, Date: time.Now()}
		if s != nil {
			reason.Sender, reason.Recipient = "<"+s.sender+">", s.rcpt
		}
		if err := spool.Quarantine(fo.Path, name, reason.Marshal()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// It stays in new/ and is refused again: try later.
			log.Error("refused, and cannot be quarantined", "err", err)
			r.temporary = true
			return r
		}
		f.mu.Lock()
		if st := f.folders[fo.Path]; st != nil {
			st.quarantine++
		}
		f.mu.Unlock()
		f.m.messages.WithLabelValues(hop.String(), "quarantined").Inc()
		log.Error("forward refused: quarantined", "result", "quarantined")
	}
	return r
}

// attempt opens the message and forwards it once.
func (f *Forwarder) attempt(fo spool.Folder, hop lists.NextHop, path string) (result, *stored) {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Gone since the listing (`listgate spool` or an admin moved it).
		return result{ok: true, gone: true, reply: "gone from new/"}, nil
	} else if err != nil {
		return result{temporary: true, reply: "cannot open: " + err.Error()}, nil
	}
	defer file.Close()
	s, err := readStored(bufio.NewReaderSize(file, 64<<10))
	if err != nil {
		if errors.Is(err, errNotListgate) {
			return result{reply: "554 5.6.0 " + err.Error()}, nil
		}
		return result{temporary: true, reply: "cannot read: " + err.Error()}, nil
	}
	switch hop.Transport {
	case lists.LMTP:
		return sendLMTP(f.ctx, hop.Endpoint, f.o.Hostname, f.o.Timeout, s), s
	case lists.Exec:
		d := delivery{list: fo.List(), local: fo.Local, domain: fo.Domain, kind: fo.Kind}
		if snap := f.o.Lists.Snapshot(); snap != nil {
			d.extension = snap.Resolve(s.rcpt).Extension
		}
		return runExec(f.ctx, hop, f.o.Timeout, s, d), s
	}
	return result{temporary: true, reply: "no next hop"}, s
}

// hopResult records how a next hop answered: a temporary failure starts
// (or continues) its failing time; any answer it gave ends it.
func (f *Forwarder) hopResult(hs *hopState, r result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.temporary {
		if hs.failingSince.IsZero() {
			hs.failingSince = time.Now()
		}
		hs.last = r.reply
		return
	}
	hs.failingSince, hs.last = time.Time{}, ""
}

// NotReady names each next hop that has failed for longer than
// UnreadyAfter, with its last reply: a reason for /readyz to say 503.
func (f *Forwarder) NotReady() []string {
	if f.o.UnreadyAfter < 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var why []string
	for h, hs := range f.hops {
		if !hs.failingSince.IsZero() && time.Since(hs.failingSince) >= f.o.UnreadyAfter {
			why = append(why, fmt.Sprintf("next hop %s: failing for %s (%s)", h,
				time.Since(hs.failingSince).Round(time.Second), hs.last))
		}
	}
	slices.Sort(why)
	return why
}
