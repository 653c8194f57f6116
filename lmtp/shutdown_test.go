package lmtp

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
)

// shutdown shuts h's server down with a timeout of d, checks that Serve
// returned ErrServerClosed, and returns Shutdown's error.
func (h *harness) shutdown(d time.Duration) error {
	h.t.Helper()
	h.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	err := h.srv.Shutdown(ctx)
	select {
	case serr := <-h.served:
		if !errors.Is(serr, ErrServerClosed) {
			h.t.Errorf("Serve returned %v, want ErrServerClosed", serr)
		}
	case <-time.After(10 * time.Second):
		h.t.Errorf("Serve did not return after Shutdown")
	}
	return err
}

func (h *harness) closing() bool {
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	return h.srv.closing
}

// TestShutdownIdle: connections without a transaction in flight (before
// LHLO, after LHLO, after a finished transaction; Postfix keeps such
// connections open for reuse) do not hold Shutdown up; it returns at
// once, closes them, and leaves no goroutine behind.
func TestShutdownIdle(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			h := start(t, config{network: network})
			beforeLHLO, _ := h.raw()
			afterLHLO := h.lhlo()
			done := h.lhlo()
			done.cmd("MAIL FROM:<anne@example.org>")
			done.cmd("RCPT TO:<mylist@example.com>")
			done.cmd("DATA")
			done.write("Subject: x\r\n\r\nx\r\n.\r\n")
			if got := done.reply(); got != ok("mylist@example.com") {
				t.Fatalf("after DATA: %q", got)
			}
			c := h.client()

			start := time.Now()
			if err := h.shutdown(30 * time.Second); err != nil {
				t.Fatalf("Shutdown with idle connections: %v", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Shutdown took %v with only idle connections", d)
			}
			for i, r := range []*raw{beforeLHLO, afterLHLO, done} {
				if !r.eof() {
					t.Errorf("idle connection %d still open after Shutdown", i)
				}
			}
			if err := c.Noop(); err == nil {
				t.Errorf("client NOOP after Shutdown succeeded")
			}
			if _, err := net.DialTimeout(h.network, h.addr, time.Second); err == nil {
				t.Errorf("dial after Shutdown succeeded")
			}
			goleak.VerifyNone(t)
		})
	}
}

// TestShutdownLetsTransactionFinish: a transaction in flight when
// Shutdown begins finishes (250, file on disk) before Shutdown returns;
// idle connections are closed meanwhile, and the busy one right after its
// replies.
func TestShutdownLetsTransactionFinish(t *testing.T) {
	h := start(t, config{})
	idle := h.lhlo()
	r := h.lhlo()
	r.cmd("MAIL FROM:<anne@example.org>")
	r.cmd("RCPT TO:<mylist@example.com>")
	r.cmd("RCPT TO:<mylist-owner@example.com>")
	if got := r.cmd("DATA"); !strings.HasPrefix(got, "354") {
		t.Fatalf("DATA: %q", got)
	}
	r.write("Subject: in flight\r\n\r\nfirst half\r\n")

	result := make(chan error, 1)
	go func() { result <- h.shutdown(30 * time.Second) }()
	testutil.WaitFor(t, 5*time.Second, "Shutdown to begin", h.closing)
	if !idle.eof() {
		t.Errorf("idle connection not closed during Shutdown")
	}
	select {
	case err := <-result:
		t.Fatalf("Shutdown returned (%v) with a transaction in flight", err)
	default:
	}

	r.write("second half\r\n.\r\n")
	for _, rc := range []string{"mylist@example.com", "mylist-owner@example.com"} {
		if got := r.reply(); got != ok(rc) {
			t.Errorf("after DATA: %q, want %q", got, ok(rc))
		}
	}
	if !r.eof() {
		t.Errorf("connection left open after its transaction during Shutdown")
	}
	select {
	case err := <-result:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the transaction finished")
	}
	for _, k := range []lists.Kind{lists.Post, lists.Owner} {
		if got := h.readOnly("mylist@example.com", k); !strings.HasSuffix(got, "\nfirst half\nsecond half\n") {
			t.Errorf("%s: stored %q", k, got)
		}
	}
	goleak.VerifyNone(t)
}

// TestShutdownDeadline: a transaction that does not finish before ctx
// ends is cut: Shutdown returns ctx's error, the connection is closed,
// nothing is stored (no 250 was given, so the sender retries), and no
// goroutine is left.
func TestShutdownDeadline(t *testing.T) {
	h := start(t, config{})
	r := h.lhlo()
	r.cmd("MAIL FROM:<anne@example.org>")
	r.cmd("RCPT TO:<mylist@example.com>")
	r.cmd("DATA")
	r.write("Subject: never finished\r\n\r\n")

	err := h.shutdown(100 * time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want context.DeadlineExceeded", err)
	}
	if !r.eof() {
		t.Errorf("busy connection still open after Shutdown's deadline")
	}
	if fs := h.spoolFiles("new"); len(fs) != 0 {
		t.Errorf("stored %v", fs)
	}
	goleak.VerifyNone(t)
}

// TestServeAfterShutdown: Serve on a new listener after Shutdown closes it
// and returns ErrServerClosed; a second Shutdown says the same.
func TestServeAfterShutdown(t *testing.T) {
	h := start(t, config{})
	if err := h.shutdown(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		t.Errorf("listener still open")
	}
	if err := h.srv.Shutdown(context.Background()); !errors.Is(err, ErrServerClosed) {
		t.Errorf("second Shutdown: %v", err)
	}
}
