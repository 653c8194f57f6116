package postfix

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/listgate/listgate/internal/testutil"
)

// TestIdleTimeout checks that a client that stalls, between requests or
// in the middle of one, is dropped after IdleTimeout, and that the server
// keeps serving others meanwhile.
func TestIdleTimeout(t *testing.T) {
	for _, sm := range []bool{false, true} {
		name := map[bool]string{false: "policy", true: "socketmap"}[sm]
		t.Run(name, func(t *testing.T) {
			h := start(t, config{socketmap: sm, options: func(o *Options) { o.IdleTimeout = 200 * time.Millisecond }})
			idle := h.dial()
			stalled := h.dial()
			if sm {
				stalled.send("30:recipients mylist@exa")
			} else {
				stalled.send("request=smtpd_access_policy\nprotocol_state=RCPT\nrecip")
			}
			// Meanwhile, a busy client is served.
			busy := h.dial()
			for range 3 {
				if sm {
					if got := busy.lookup(mapDomains, "example.com"); got != "OK example.com" {
						t.Errorf("busy client: %q", got)
					}
				} else if got := busy.ask(policyRequest("RCPT", "nosuchlist@example.com", 0)); got != actUnknown {
					t.Errorf("busy client: %q", got)
				}
			}
			start := time.Now()
			if !idle.closed() || !stalled.closed() {
				t.Fatal("connections not closed")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("closed after %v", d)
			}
			testutil.WaitFor(t, 5*time.Second, "the connections gone", func() bool {
				return promtestutil.ToFloat64(h.core.m.connections) == 0 // the busy one too, once idle
			})
		})
	}
}

// TestShutdownIdle checks that Shutdown closes connections that wait for
// a request at once, and that Serve then returns ErrServerClosed.
func TestShutdownIdle(t *testing.T) {
	for _, sm := range []bool{false, true} {
		h := start(t, config{socketmap: sm})
		c := h.dial()
		if sm {
			c.lookup(mapDomains, "example.com")
		} else {
			c.ask(policyRequest("RCPT", "mylist@example.com", 0))
		}
		h.stop() // fails if Shutdown or Serve misbehave
		if !c.closed() {
			t.Error("idle connection not closed")
		}
		if _, err := net.DialTimeout(h.network, h.addr, time.Second); err == nil {
			t.Error("still accepting after Shutdown")
		}
		ctx := context.Background()
		if err := h.srv.Shutdown(ctx); !errors.Is(err, ErrServerClosed) {
			t.Errorf("second Shutdown: %v, want ErrServerClosed", err)
		}
		if err := h.srv.Serve(listen(t, "tcp")); !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve after Shutdown: %v, want ErrServerClosed", err)
		}
	}
}

// TestShutdownInFlight checks that a request begun before Shutdown gets
// its reply, and that its connection is closed right after.
func TestShutdownInFlight(t *testing.T) {
	for _, sm := range []bool{false, true} {
		h := start(t, config{socketmap: sm})
		c := h.dial()
		req := policyRequest("RCPT", "nosuchlist@example.com", 0)
		if sm {
			req = string(appendNetstring(nil, "recipients nosuchlist@example.com"))
		}
		c.send(req[:5])
		testutil.WaitFor(t, 5*time.Second, "the request begun", func() bool { return inFlight(h) })
		done := make(chan error, 1)
		go func() { done <- h.srv.Shutdown(context.Background()) }()
		testutil.WaitFor(t, 5*time.Second, "shutdown begun", func() bool {
			h.core.mu.Lock()
			defer h.core.mu.Unlock()
			return h.core.closing
		})
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned %v with a request in flight", err)
		default:
		}
		c.send(req[5:])
		if sm {
			if got, err := c.reply(); err != nil || got != "NOTFOUND " {
				t.Errorf("reply in flight: %q, %v", got, err)
			}
		} else if got, err := c.action(); err != nil || got != actUnknown {
			t.Errorf("reply in flight: %q, %v", got, err)
		}
		if !c.closed() {
			t.Error("connection not closed after its reply")
		}
		if err := <-done; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		h.stopped = true
		if err := <-h.served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}
}

// inFlight reports whether a connection of h has a request begun: not
// waiting for the first byte of one.
func inFlight(h *harness) bool {
	h.core.mu.Lock()
	defer h.core.mu.Unlock()
	for c := range h.core.conns {
		c.mu.Lock()
		busy := c.busy
		c.mu.Unlock()
		if busy {
			return true
		}
	}
	return false
}

// TestShutdownDeadline checks that Shutdown gives up on a request that
// never ends when its context does: the connection is closed and ctx's
// error returned.
func TestShutdownDeadline(t *testing.T) {
	h := start(t, config{})
	c := h.dial()
	c.send("request=smtpd_access_policy\n")
	testutil.WaitFor(t, 5*time.Second, "the request begun", func() bool { return inFlight(h) })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want context.DeadlineExceeded", err)
	}
	if !c.closed() {
		t.Error("connection not closed")
	}
	h.stopped = true
	if err := <-h.served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}
