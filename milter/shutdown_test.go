package milter

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
	"go.uber.org/goleak"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/reply"
)

// openConns is the number of connections the server holds.
func (ts *testServer) openConns() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.conns)
}

// shutdown calls Shutdown with a generous deadline and checks that it
// returns nil, that Serve returned ErrServerClosed and that no goroutine
// is left.
func (ts *testServer) shutdown(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (it waited for an idle connection?)", err)
	}
	if err := ts.serveResult(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
	goleak.VerifyNone(t)
}

// TestShutdownIdle checks that Shutdown returns at once, without waiting
// for its context, when the MTA holds connections open between commands,
// as Postfix does for the length of an SMTP session.
func TestShutdownIdle(t *testing.T) {
	tests := []struct {
		name string
		open func(t *testing.T, ts *testServer) // opens one idle connection
	}{
		{"connected, not negotiated", func(t *testing.T, ts *testServer) {
			c, err := net.Dial(ts.network, ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
		}},
		{"negotiated", func(t *testing.T, ts *testServer) { ts.client(t, nil) }},
		{"between transactions", func(t *testing.T, ts *testServer) {
			s := ts.client(t, nil)
			mail(t, s, "")
			rcpt(t, s, "mylist@example.com")
			if err := s.Abort(nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"after a message", func(t *testing.T, ts *testServer) {
			s := ts.client(t, nil)
			mail(t, s, "")
			rcpt(t, s, "mylist@example.com")
			endMessage(t, s)
		}},
	}
	for _, network := range networks {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				ts := startServer(t, network, Options{})
				tt.open(t, ts)
				testutil.WaitFor(t, 5*time.Second, "the server to see the connection", func() bool { return ts.openConns() == 1 })
				ts.shutdown(t)
				if n := ts.openConns(); n != 0 {
					t.Errorf("%d connections left open", n)
				}
			})
		}
	}
}

// TestShutdownInFlight checks that Shutdown lets a transaction in flight
// finish (its recipients are still answered and its message accepted)
// while it closes the idle connections at once, and returns when the
// transaction ends.
func TestShutdownInFlight(t *testing.T) {
	ts := startServer(t, "tcp", Options{})
	busy := ts.client(t, nil)
	idle := ts.client(t, nil)
	mail(t, busy, "")
	if got := rcpt(t, busy, "mylist@example.com"); got != "continue" {
		t.Fatalf("RCPT: %q", got)
	}

	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(context.Background()) }()
	testutil.WaitFor(t, 5*time.Second, "the idle connection to close", func() bool { return ts.openConns() == 1 })
	if _, err := net.Dial(ts.network, ts.addr); err == nil {
		t.Error("new connection accepted during Shutdown")
	}

	// The transaction goes on.
	if got, want := rcpt(t, busy, "nosuchlist@example.com"), refusal(reply.Unknown); got != want {
		t.Errorf("RCPT during Shutdown: got %q, want %q", got, want)
	}
	if got := rcpt(t, busy, "mylist-request@example.com"); got != "continue" {
		t.Errorf("RCPT during Shutdown: got %q, want continue", got)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a transaction in flight", err)
	default:
	}
	endMessage(t, busy)

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the transaction ended")
	}
	if err := ts.serveResult(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	// Both connections are closed now.
	for _, s := range []*gomilter.ClientSession{idle, busy} {
		if _, err := s.Mail("sender@example.net", ""); err == nil {
			if _, err := s.Rcpt("mylist@example.com", ""); err == nil {
				t.Error("connection still answered after Shutdown")
			}
		}
	}
	goleak.VerifyNone(t)
}

// TestShutdownDeadline checks that Shutdown returns the context's error
// and closes a transaction that does not end in time, leaving no
// goroutine behind.
func TestShutdownDeadline(t *testing.T) {
	ts := startServer(t, "unix", Options{})
	s := ts.client(t, nil)
	mail(t, s, "")
	rcpt(t, s, "mylist@example.com") // its reply shows MAIL was read: a transaction is open
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v, want context.Canceled", err)
	}
	if err := ts.serveResult(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	if _, err := s.Rcpt("mylist@example.com", ""); err == nil {
		t.Error("connection still answered after Shutdown's deadline")
	}
	testutil.WaitFor(t, 5*time.Second, "connections to close", func() bool { return ts.openConns() == 0 })
	goleak.VerifyNone(t)
}

// TestServeAfterShutdown checks that Serve refuses to start, and closes
// its listener, once the server is shut down.
func TestServeAfterShutdown(t *testing.T) {
	srv := New(Options{Lists: corpusSource(t)})
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v, want ErrServerClosed", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener not closed: Accept: %v", err)
	}
}
