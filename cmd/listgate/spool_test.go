package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/internal/daemontest"
	"github.com/listgate/listgate/internal/testutil"
)

// nextHop is a real go-smtp LMTP server standing in for Mailman's LMTP
// runner: it answers 550 while refuse says so for a message, else 250,
// and counts, per Subject, the messages it took.
type nextHop struct {
	addr   string
	mu     sync.Mutex
	took   map[string]int
	refuse func(subject string) bool
}

var subjectRE = regexp.MustCompile(`(?m)^Subject: (\S+)\r$`)

func startNextHop(t *testing.T) *nextHop {
	t.Helper()
	h := &nextHop{took: map[string]int{}}
	srv := smtp.NewServer(h)
	srv.LMTP = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return h
}

func (h *nextHop) count(subject string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.took[subject]
}

func (h *nextHop) NewSession(*smtp.Conn) (smtp.Session, error) { return &nextHopSession{h: h}, nil }

type nextHopSession struct{ h *nextHop }

func (s *nextHopSession) Reset()                               {}
func (s *nextHopSession) Logout() error                        { return nil }
func (s *nextHopSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *nextHopSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *nextHopSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	subj := ""
	if m := subjectRE.FindSubmatch(b); m != nil {
		subj = string(m[1])
	}
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if s.h.refuse != nil && s.h.refuse(subj) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such list here"}
	}
	s.h.took[subj]++
	return nil
}

// sendTo delivers one message with the given subject to the LMTP door.
func sendTo(t *testing.T, addr, rcpt, subject string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.SendMail("anne@example.net", []string{rcpt}, strings.NewReader("Subject: "+subject+"\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
}

// TestSpoolQuarantineRetry: the daemon forwards a list's mail to its LMTP
// next hop; a message the next hop refuses (550) is quarantined, shown by
// `listgate spool` with the reply, put back by `listgate spool retry`,
// and forwarded by the running daemon once the next hop takes it.
func TestSpoolQuarantineRetry(t *testing.T) {
	hop := startNextHop(t)
	hop.refuse = func(s string) bool { return s == "bad" }
	listsDir, spoolDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(listsDir, "q@example.org"), []byte("next_hop = \"lmtp:inet:"+hop.addr+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(listsDir, "kept@example.org"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d := daemontest.Start(t, []string{"lmtp"}, "--lists", listsDir, "--spool", spoolDir,
		"--lmtp", "inet:127.0.0.1:0", "--milter", "", "--forward-scan-interval", "100ms")
	addr := strings.TrimPrefix(d.Addr("lmtp"), "inet:")
	sendTo(t, addr, "q@example.org", "bad")
	sendTo(t, addr, "q@example.org", "good")
	sendTo(t, addr, "kept+x@example.org", "stays")
	testutil.WaitFor(t, 10*time.Second, "the good one forwarded", func() bool { return hop.count("good") == 1 })
	d.WaitLog(t, "forward refused: quarantined", "550 5.1.1")
	d.WaitLog(t, "msg=forwarded", "list=q@example.org") // logged once out of new/

	args := []string{"spool", "--config", os.DevNull, "--lists", listsDir, "--spool", spoolDir}
	out, errOut, status := daemontest.Run(t, "", args...)
	if status != 0 {
		t.Fatalf("listgate spool: %d\n%s", status, errOut)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^kept@example\.org +post +none +1 +\d+s +0$`),
		regexp.MustCompile(`(?m)^q@example\.org +post +lmtp:inet:` + regexp.QuoteMeta(hop.addr) + ` +0 +- +1$`),
		regexp.MustCompile(`(?m)^quarantined q@example\.org post \d+\.M\d+P\d+Q\d+R[0-9a-f]+\.lg\.e2e\.invalid,S=\d+$`),
		regexp.MustCompile(`(?m)^  envelope:  <anne@example\.net> -> q@example\.org$`),
		regexp.MustCompile(`(?m)^  reply:     550 5\.1\.1 .*no such list here$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("listgate spool output lacks %s:\n%s", want, out)
		}
	}

	hop.mu.Lock()
	hop.refuse = nil
	hop.mu.Unlock()
	out, errOut, status = daemontest.Run(t, "", append([]string{"spool", "retry"}, append(args[1:], "q@example.org")...)...)
	if status != 0 || out != "1 quarantined message(s) put back into new/\n" {
		t.Fatalf("listgate spool retry: %d %q %s", status, out, errOut)
	}
	testutil.WaitFor(t, 10*time.Second, "the retried one forwarded", func() bool { return hop.count("bad") == 1 })
	if _, errOut, status := daemontest.Run(t, "", append([]string{"spool", "retry"}, append(args[1:], "a", "b")...)...); status != exitUsage {
		t.Errorf("retry with two lists: status %d %s", status, errOut)
	}
}

// TestKillDuringForwards: `listgate serve` is killed with SIGKILL while a
// client delivers a stream of messages that the daemon forwards to an
// LMTP next hop. After a restart, every message the client got a 250 for
// reaches the next hop at least once; a duplicate is only possible for a
// message in flight at the kill (taken by the next hop, not yet removed
// from new/). The counts go in the log.
func TestKillDuringForwards(t *testing.T) {
	hop := startNextHop(t)
	listsDir, spoolDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(listsDir, "k@example.org"), []byte("next_hop = \"lmtp:inet:"+hop.addr+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := daemontest.Start(t, []string{"lmtp"}, "--lists", listsDir, "--spool", spoolDir,
		"--lmtp", "inet:127.0.0.1:0", "--milter", "", "--forward-concurrency", "2")
	addr := strings.TrimPrefix(d.Addr("lmtp"), "inet:")

	const total = 600
	acked := make(chan []string, 1)
	go func() {
		var ok []string
		defer func() { acked <- ok }()
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return
		}
		c := smtp.NewClientLMTP(conn)
		defer c.Close()
		for i := range total {
			subj := fmt.Sprintf("tok-%04d", i)
			if c.SendMail("anne@example.net", []string{"k@example.org"}, strings.NewReader("Subject: "+subj+"\r\n\r\nhi\r\n")) != nil {
				return
			}
			ok = append(ok, subj)
		}
	}()
	testutil.WaitFor(t, 30*time.Second, "50 forwards", func() bool {
		hop.mu.Lock()
		defer hop.mu.Unlock()
		return len(hop.took) >= 50
	})
	d.Signal(t, syscall.SIGKILL)
	got := <-acked
	if len(got) == 0 || len(got) == total {
		t.Fatalf("%d messages acknowledged: the kill did not land mid-stream", len(got))
	}
	hop.mu.Lock()
	before := len(hop.took)
	hop.mu.Unlock()
	d.Restart(t)
	testutil.WaitFor(t, 60*time.Second, "every acknowledged message at the next hop", func() bool {
		for _, s := range got {
			if hop.count(s) == 0 {
				return false
			}
		}
		return true
	})
	newDir := filepath.Join(spoolDir, "example.org", "k", "post", "new")
	testutil.WaitFor(t, 30*time.Second, "new/ emptied", func() bool {
		files, _ := os.ReadDir(newDir)
		return len(files) == 0
	})
	hop.mu.Lock()
	defer hop.mu.Unlock()
	dups := 0
	for s, n := range hop.took {
		if n > 1 {
			dups += n - 1
			t.Logf("%s reached the next hop %d times", s, n)
		}
	}
	if dups > 1 { // one folder: one forward in flight at a time
		t.Errorf("%d duplicates, more than the forwards in flight at the kill", dups)
	}
	t.Logf("killed after %d acknowledged deliveries, %d forwarded before the kill; %d messages at the next hop after the restart, %d duplicates",
		len(got), before, len(hop.took), dups)
}
