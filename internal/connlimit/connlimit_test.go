package connlimit

import (
	"net"
	"testing"
)

func TestLimiter(t *testing.T) {
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000} }
	unix := &net.UnixAddr{Name: "@", Net: "unix"}
	l := New(3, 2)
	var rel []func()
	for i, tt := range []struct {
		addr   net.Addr
		reason string
	}{
		{tcp("192.0.2.1"), ""},
		{tcp("192.0.2.1"), ""},
		{tcp("192.0.2.1"), ReasonPerClient},
		{unix, ""},
		{tcp("192.0.2.2"), ReasonMax},
		{unix, ReasonMax},
	} {
		r, reason := l.Acquire(tt.addr)
		if reason != tt.reason || (r == nil) != (reason != "") {
			t.Fatalf("%d: reason %q, want %q", i, reason, tt.reason)
		}
		if r != nil {
			rel = append(rel, r)
		}
	}
	rel[0]()
	rel[0]() // twice gives back once
	if got := l.Open(); got != 2 {
		t.Fatalf("open %d, want 2", got)
	}
	if _, reason := l.Acquire(tcp("192.0.2.1")); reason != "" {
		t.Errorf("after a release: %q", reason)
	}
	if _, reason := New(0, 0).Acquire(tcp("192.0.2.1")); reason != "" {
		t.Errorf("no limits: %q", reason)
	}
}
