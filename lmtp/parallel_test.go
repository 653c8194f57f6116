package lmtp

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/listgate/listgate/spool"
)

// TestCopiesWrittenTogether: the copies of a message with several
// recipients are written at the same time, not one after another: every
// copy reaches its file's flush before any of those flushes ends, and
// still each recipient gets its 250, in RCPT order, with its file in new/.
func TestCopiesWrittenTogether(t *testing.T) {
	rcpts := []string{"mylist@example.com", "mylist-owner@example.com", "join@example.com", "test-join@example.com"}
	var (
		mu       sync.Mutex
		cond     = sync.NewCond(&mu)
		inFsync  int
		most     int
		armed    atomic.Bool
		deadline time.Time
	)
	h := start(t, config{spool: func(o *spool.Options) {
		o.Fault = func(op spool.Op, path string) error {
			if op != spool.OpFsync || !armed.Load() {
				return nil
			}
			// Hold each copy's file flush until every copy has reached
			// its own, or until the deadline: written one after
			// another, only one copy is ever here.
			mu.Lock()
			defer mu.Unlock()
			inFsync++
			most = max(most, inFsync)
			cond.Broadcast()
			for most < len(rcpts) && time.Now().Before(deadline) {
				waitCond(cond, deadline)
			}
			inFsync--
			return nil
		}
	}})
	deadline = time.Now().Add(3 * time.Second)
	armed.Store(true)
	rr, dr := transact(t, h.client(), "anne@example.org", nil, rcpts, message("Subject: four copies\n\nhi\n"))
	if strings.Join(rr, "") != "" {
		t.Fatalf("RCPT replies %q", rr)
	}
	for _, r := range rcpts {
		if dr[r] != ok(r) {
			t.Errorf("%s after DATA: %q, want %q", r, dr[r], ok(r))
		}
	}
	if got := h.spoolFiles("new"); len(got) != len(rcpts) {
		t.Errorf("spool holds %d files in new/, want %d: %v", len(got), len(rcpts), got)
	}
	mu.Lock()
	defer mu.Unlock()
	if most != len(rcpts) {
		t.Errorf("at most %d copies were being flushed at once, want all %d", most, len(rcpts))
	}
}

// waitCond waits on c (whose lock is held) until it is signalled or the
// deadline passes.
func waitCond(c *sync.Cond, deadline time.Time) {
	t := time.AfterFunc(time.Until(deadline), func() {
		c.L.Lock()
		c.Broadcast()
		c.L.Unlock()
	})
	c.Wait()
	t.Stop()
}
