package daemon

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/internal/testutil"
)

// sink is an LMTP next hop for the daemon's forwarder: a real go-smtp
// LMTP server that takes everything and remembers the envelopes.
type sink struct {
	mu   sync.Mutex
	got  []string // "from -> rcpt"
	addr string
}

func startSink(t *testing.T) *sink {
	t.Helper()
	s := &sink{}
	srv := smtp.NewServer(s)
	srv.LMTP = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *sink) envelopes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

type sinkSession struct {
	s          *sink
	from, rcpt string
}

func (x *sinkSession) Reset()        {}
func (x *sinkSession) Logout() error { return nil }
func (x *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.rcpt = to
	return nil
}
func (x *sinkSession) Data(r io.Reader) error {
	io.Copy(io.Discard, r)
	x.s.mu.Lock()
	x.s.got = append(x.s.got, x.from+" -> "+x.rcpt)
	x.s.mu.Unlock()
	return nil
}

// TestDaemonForwards: mail the LMTP door stores for a list with a next
// hop reaches it at once (the door's delivery notifies the forwarder;
// the periodic scan is an hour away), with its envelope, and is counted
// in /metrics.
func TestDaemonForwards(t *testing.T) {
	hop := startSink(t)
	s := settings(t)
	if err := os.WriteFile(filepath.Join(s.Lists, "tour@example.org"), []byte("next_hop = \"lmtp:inet:"+hop.addr+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.ForwardScanInterval = time.Hour
	r := start(t, s)
	c := lmtpClient(t, "tcp", r.hostPort("lmtp"))
	if err := c.SendMail("", []string{"tour+x@example.org"}, strings.NewReader("Subject: hi\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	took := testutil.WaitFor(t, 5*time.Second, "the message at the next hop", func() bool { return len(hop.envelopes()) == 1 })
	t.Logf("forwarded %v after the 250", took)
	if got := hop.envelopes()[0]; got != " -> tour+x@example.org" {
		t.Errorf("envelope %q", got)
	}
	want := fmt.Sprintf("listgate_forward_messages_total{next_hop=\"lmtp:inet:%s\",result=\"forwarded\"} 1", hop.addr)
	testutil.WaitFor(t, 5*time.Second, "/metrics: "+want, func() bool {
		_, body := get(t, "http://"+r.hostPort("metrics")+"/metrics")
		return strings.Contains(body, want)
	})
}

// TestReadyzNextHopDown: a next hop that refuses connections for longer
// than forward_unready_after makes /readyz answer 503 naming it, while the
// LMTP door still takes mail.
func TestReadyzNextHopDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	s := settings(t)
	if err := os.WriteFile(filepath.Join(s.Lists, "tour@example.org"), []byte("next_hop = \"lmtp:inet:"+down+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.ForwardUnreadyAfter = 100 * time.Millisecond
	r := start(t, s)
	c := lmtpClient(t, "tcp", r.hostPort("lmtp"))
	if err := c.SendMail("anne@example.net", []string{"tour@example.org"}, strings.NewReader("Subject: hi\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	var st int
	var body string
	testutil.WaitFor(t, 10*time.Second, "/readyz 503", func() bool {
		st, body = get(t, "http://"+r.hostPort("metrics")+"/readyz")
		return st == 503
	})
	if !strings.Contains(body, "not ready: next hop lmtp:inet:"+down+": failing for ") || !strings.Contains(body, "connection refused") {
		t.Errorf("/readyz: %q", body)
	}
	if err := c.SendMail("anne@example.net", []string{"tour@example.org"}, strings.NewReader("Subject: 2\r\n\r\n")); err != nil {
		t.Errorf("the LMTP door refused mail while a next hop is down: %v", err)
	}
}
