package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/testutil"
)

// TestDirFlushesCover: whatever the interleaving, every call of flush
// returns only after a run of fn that started after the call began has
// ended, and gets that run's result; concurrent calls share runs.
func TestDirFlushesCover(t *testing.T) {
	const callers, rounds = 16, 50
	var g dirFlushes
	var clock atomic.Int64 // orders events across goroutines
	type run struct{ start, end int64 }
	var mu sync.Mutex
	var runs []run
	var runCount atomic.Int64
	fail := errors.New("flush failed")
	fn := func() error {
		start := clock.Add(1)
		n := runCount.Add(1)
		end := clock.Add(1)
		mu.Lock()
		runs = append(runs, run{start, end})
		mu.Unlock()
		if n%7 == 0 {
			return fmt.Errorf("run %d: %w", n, fail)
		}
		return nil
	}
	type call struct {
		begin, ret int64
		err        error
	}
	calls := make([]call, callers*rounds)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for r := range rounds {
				i := c*rounds + r
				begin := clock.Add(1)
				err := g.flush("dir", fn)
				calls[i] = call{begin, clock.Add(1), err}
			}
		})
	}
	wg.Wait()
	if int(runCount.Load()) >= len(calls) {
		t.Logf("no run was shared: %d runs for %d calls (no contention this time)", runCount.Load(), len(calls))
	}
	for i, c := range calls {
		covered := false
		for _, r := range runs {
			if r.start > c.begin && r.end < c.ret {
				covered = true
				break
			}
		}
		if !covered {
			t.Errorf("call %d (began %d, returned %d): no flush started after it began and ended before it returned", i, c.begin, c.ret)
		}
	}
	if len(g.dirs) != 0 {
		t.Errorf("%d directories still tracked after every call returned", len(g.dirs))
	}
}

// TestDirFlushesShare: calls that arrive while a flush runs are all
// served by one further flush, and each gets its error.
func TestDirFlushesShare(t *testing.T) {
	var g dirFlushes
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	var runs atomic.Int64
	fail := errors.New("second flush failed")
	fn := func() error {
		n := runs.Add(1)
		if n == 1 {
			started <- struct{}{}
			<-release
			return nil
		}
		return fail
	}
	first := make(chan error, 1)
	go func() { first <- g.flush("d", fn) }()
	<-started
	const waiting = 8
	errs := make(chan error, waiting)
	for range waiting {
		go func() { errs <- g.flush("d", fn) }()
	}
	// All eight must have joined the next flush before the first ends.
	testutil.WaitFor(t, 10*time.Second, "8 calls waiting on d", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.dirs["d"] != nil && g.dirs["d"].users == waiting+1
	})
	// Another directory is not held up by the running flush.
	if err := g.flush("other", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first flush: %v", err)
	}
	for range waiting {
		if err := <-errs; !errors.Is(err, fail) {
			t.Errorf("waiting call: %v, want the second flush's error", err)
		}
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("%d flushes of d, want 2 (the first, and one shared by the 8 that arrived during it)", n)
	}
}

// TestDeliverSharesFlushes: deliveries into one folder that arrive while
// a flush of its new/ runs share the next flush; each file is in new/.
func TestDeliverSharesFlushes(t *testing.T) {
	release := make(chan struct{})
	var renames, dirFlushesN atomic.Int64
	hold := make(chan struct{}, 1)
	var holding, armed atomic.Bool
	s := newTestSpool(t, func(op Op, path string) error {
		switch {
		case op == OpRename:
			renames.Add(1)
		case op == OpDirFsync && filepath.Base(path) == "new":
			dirFlushesN.Add(1)
			if armed.Load() && holding.CompareAndSwap(false, true) {
				hold <- struct{}{}
				<-release
			}
		}
		return nil
	})
	m := testMessage(t, "Message-ID: <share>\r\n\r\nbody\r\n")
	if _, err := s.Deliver(m, testEnv); err != nil { // makes the folder
		t.Fatal(err)
	}
	armed.Store(true)
	renames.Store(0)
	dirFlushesN.Store(0)
	const n = 10
	paths := make(chan string, n)
	errs := make(chan error, n)
	deliver := func() {
		p, err := s.Deliver(m, testEnv)
		errs <- err
		paths <- p
	}
	go deliver()
	<-hold // the first delivery's flush is running
	for range n - 1 {
		go deliver()
	}
	testutil.WaitFor(t, 10*time.Second, "every file renamed into new/", func() bool { return renames.Load() == n })
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(<-paths); err != nil {
			t.Error(err)
		}
	}
	if got := dirFlushesN.Load(); got != 2 {
		t.Errorf("%d flushes of new/ for %d deliveries, want 2: the held one and one for the 9 renamed during it", got, n)
	}
}
