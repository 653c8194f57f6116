// Package testutil holds the small helpers the tests of several packages
// share: a log buffer safe for concurrent writers and a deadline-bounded
// wait on a condition (the tests never sleep for a fixed time).
package testutil

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer safe for a server's goroutines to log to
// while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tick is how often WaitFor calls its condition.
const Tick = 2 * time.Millisecond

// WaitFor calls cond every Tick until it holds, and fails the test if it
// does not within d; what says what was awaited. It returns how long it
// waited, for tests that report a latency.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	took, ok := Poll(d, Tick, cond)
	if !ok {
		t.Fatalf("not within %v: %s", d, what)
	}
	return took
}

// Poll calls cond every tick until it holds or d has passed, and returns
// how long it waited and whether cond held. It is WaitFor for callers that
// fail with their own message (showing a log or a queue) or do not fail
// at all. cond is called at least once, and last at or after the deadline
// unless it held; a cond slower than tick is called back to back.
func Poll(d, tick time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	deadline := start.Add(d)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		expired := !time.Now().Before(deadline)
		if cond() {
			return time.Since(start), true
		}
		if expired {
			return time.Since(start), false
		}
		<-ticker.C
	}
}
