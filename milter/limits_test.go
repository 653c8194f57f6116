package milter

import (
	"io"
	"net"
	"testing"
	"time"

	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/listgate/listgate/internal/testutil"
)

// TestConnectionLimit: a connection past MaxConnections is closed before
// any packet, logged and counted, while the connections already open keep
// answering; a slot freed is taken again.
func TestConnectionLimit(t *testing.T) {
	ts := startServer(t, "tcp", Options{MaxConnections: 2})
	a := ts.client(t, nil)
	b := ts.client(t, nil)

	c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("past the limit: read %d bytes, %v; want the connection closed", n, err)
	}
	for _, s := range [](func() string){
		func() string { mail(t, a, ""); return rcpt(t, a, "mylist@example.com") },
		func() string { mail(t, b, ""); return rcpt(t, b, "mylist@example.com") },
	} {
		if got := s(); got != "continue" {
			t.Errorf("an open connection after the refusal: %q", got)
		}
	}
	if n := promtestutil.ToFloat64(ts.metrics.refused.WithLabelValues("max_connections")); n != 1 {
		t.Errorf("refused = %v, want 1", n)
	}
	if l := ts.logs.Lines("refusing a connection"); len(l) != 1 {
		t.Errorf("%d refusal log lines, want 1", len(l))
	}
	a.Close()
	testutil.WaitFor(t, 5*time.Second, "the closed connection to be given back", func() bool { return ts.limit.Open() < 2 })
	d := ts.client(t, nil)
	mail(t, d, "")
	if got := rcpt(t, d, "mylist@example.com"); got != "continue" {
		t.Errorf("in the freed slot: %q", got)
	}
}

// TestIdleTimeout: a connection that sends nothing, or only part of a
// packet, for IdleTimeout is closed, logged and counted; an active one is
// not.
func TestIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	ts := startServer(t, "tcp", Options{IdleTimeout: idle})
	for _, partial := range [][]byte{nil, {0, 0, 0, 9, 'C'}} {
		c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(partial); err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		if err != io.EOF {
			t.Errorf("partial %q: %v, want the connection closed", partial, err)
		}
		if d := time.Since(at); d < idle-50*time.Millisecond || d > idle+2*time.Second {
			t.Errorf("partial %q: closed after %v, want about %v", partial, d, idle)
		}
		c.Close()
	}
	// Steady traffic, each packet within the timeout, is served.
	s := ts.client(t, nil)
	tick := time.NewTicker(idle / 3)
	defer tick.Stop()
	for range 6 {
		<-tick.C
		mail(t, s, "")
		if got := rcpt(t, s, "mylist@example.com"); got != "continue" {
			t.Fatalf("steady client: %q", got)
		}
		if err := s.Abort(nil); err != nil {
			t.Fatalf("Abort: %v", err)
		}
	}
	if n := promtestutil.ToFloat64(ts.metrics.idleClosed); n != 2 {
		t.Errorf("idle closed = %v, want 2", n)
	}
	testutil.WaitFor(t, 5*time.Second, "two log lines", func() bool { return len(ts.logs.Lines("closing an idle milter connection")) == 2 })
}
