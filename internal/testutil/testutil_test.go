package testutil

import (
	"fmt"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	calls := 0
	took, ok := Poll(time.Second, time.Millisecond, func() bool { calls++; return calls == 3 })
	if !ok || calls != 3 || took >= time.Second {
		t.Errorf("Poll: ok %v after %d calls in %v, want true after 3", ok, calls, took)
	}

	// A condition that never holds is called once more at the deadline.
	var last time.Time
	start := time.Now()
	took, ok = Poll(20*time.Millisecond, 5*time.Millisecond, func() bool { last = time.Now(); return false })
	if ok || took < 20*time.Millisecond || last.Sub(start) < 20*time.Millisecond {
		t.Errorf("Poll: ok %v, took %v, last call after %v; want false, and a call at the deadline", ok, took, last.Sub(start))
	}
}

// fatalTB records Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestWaitForFails(t *testing.T) {
	f := &fatalTB{TB: t}
	WaitFor(f, 10*time.Millisecond, "the impossible", func() bool { return false })
	if f.msg != "not within 10ms: the impossible" {
		t.Errorf("WaitFor failed with %q", f.msg)
	}
}
