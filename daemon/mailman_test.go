package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/config"
	"github.com/listgate/listgate/internal/mailmanfake"
	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/postconf"
)

// mailmanSettings are settings for a test daemon that reads the fake
// Mailman's lists every 20 ms, beside the lists directory's
// tour@example.org.
func mailmanSettings(t *testing.T, mm *mailmanfake.Server) config.Settings {
	s := settings(t)
	s.Mailman = mm.URL()
	s.MailmanPollInterval = 20 * time.Millisecond
	s.MailmanUnreadyAfter = 10 * time.Minute
	return s
}

// rcpt returns the LMTP door's reply code to RCPT TO:<to>.
func (r *running) rcpt(t *testing.T, to string) int {
	t.Helper()
	c := lmtpClient(t, "tcp", r.hostPort("lmtp"))
	defer c.Close()
	if err := c.Mail("anne@example.net", nil); err != nil {
		t.Fatal(err)
	}
	err := c.Rcpt(to, nil)
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return 250
	case errors.As(err, &se):
		return se.Code
	}
	t.Fatalf("RCPT TO:<%s>: %v", to, err)
	return 0
}

// TestMailmanLists: with --mailman, Mailman's lists are served beside the
// list files, a list created in Mailman is accepted within the poll
// interval and a removed one refused; Mailman down keeps its lists, and
// /readyz and the metrics say so; the password is never logged.
func TestMailmanLists(t *testing.T) {
	mm := mailmanfake.New(t)
	mm.CreateList("announce@example.com")
	mm.CreateDomain("example.com", "lists.example.com")
	mm.SetMTA("lmtp_port", "8026")
	r := start(t, mailmanSettings(t, mm))
	for to, want := range map[string]int{
		"tour@example.org":                              250,
		"announce@example.com":                          250,
		"announce-bounces+anne=example.net@example.com": 250,
		"announce-request@lists.example.com":            250,
		"bogus@example.com":                             550,
	} {
		if got := r.rcpt(t, to); got != want {
			t.Errorf("RCPT %s: %d, want %d", to, got, want)
		}
	}
	if x := r.watcher.Snapshot().External("announce@example.com"); x == nil || x.NextHop != "lmtp:inet:127.0.0.1:8026" {
		t.Errorf("Mailman's list: %+v, want its next hop", x)
	}
	mm.CreateList("new@example.com")
	took := testutil.WaitFor(t, 5*time.Second, "a list created in Mailman to be accepted", func() bool { return r.rcpt(t, "new-join@example.com") == 250 })
	t.Logf("accepted %v after its creation", took)
	mm.RemoveList("announce@example.com")
	testutil.WaitFor(t, 5*time.Second, "a list removed in Mailman to be refused", func() bool { return r.rcpt(t, "announce@example.com") == 550 })

	ready := "http://" + r.hostPort("metrics") + "/readyz"
	if st, body := get(t, ready); st != 200 || body != "ok\n" {
		t.Errorf("/readyz: %d %q", st, body)
	}
	mm.SetDown(true)
	testutil.WaitFor(t, 5*time.Second, "the failed poll in /readyz", func() bool {
		st, body := get(t, ready)
		return st == 200 && strings.HasPrefix(body, "ok\nnote: mailman "+mm.Base()+": not reached since ")
	})
	if got := r.rcpt(t, "new@example.com"); got != 250 {
		t.Errorf("Mailman down: its list gets %d, want its last good set served", got)
	}
	if _, body := get(t, "http://"+r.hostPort("metrics")+"/metrics"); !strings.Contains(body, "listgate_mailman_last_poll_successful 0\n") ||
		!strings.Contains(body, "listgate_mailman_lists 1\n") {
		t.Errorf("/metrics lacks Mailman's state")
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.log.String(), mm.Password()) {
		t.Errorf("the password is in the log:\n%s", r.log)
	}
	if !strings.Contains(r.log.String(), "mailman not reachable") {
		t.Errorf("the log does not say Mailman is down:\n%s", r.log)
	}
}

// TestMailmanNeverReached: Mailman down from the start. Without a cache
// the daemon is not ready and Mailman's domains are unknown (but those
// named by mailman_domains tempfail); with the cache a daemon before it
// wrote, Mailman's lists are served, an unknown address of its domains
// tempfails (never 550), and the daemon is ready until
// mailman_unready_after has passed.
func TestMailmanNeverReached(t *testing.T) {
	mm := mailmanfake.New(t)
	mm.CreateList("announce@example.com")
	mm.SetDown(true)
	s := mailmanSettings(t, mm)
	s.MailmanDomains = []string{"example.com"}
	r := start(t, s)
	ready := "http://" + r.hostPort("metrics") + "/readyz"
	if st, body := get(t, ready); st != 503 || !strings.Contains(body, "not ready: mailman "+mm.Base()+": not reached since the start (") ||
		!strings.Contains(body, "and no cached lists") {
		t.Errorf("/readyz: %d %q", st, body)
	}
	for to, want := range map[string]int{"announce@example.com": 451, "tour@example.org": 250, "x@example.net": 550} {
		if got := r.rcpt(t, to); got != want {
			t.Errorf("no cache: RCPT %s: %d, want %d", to, got, want)
		}
	}
	mm.SetDown(false)
	testutil.WaitFor(t, 5*time.Second, "Mailman's lists", func() bool { return r.rcpt(t, "announce@example.com") == 250 })
	if st, body := get(t, ready); st != 200 || body != "ok\n" {
		t.Errorf("/readyz once Mailman answered: %d %q", st, body)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Spool, ".listgate", "mailman.json")); err != nil {
		t.Fatalf("no cache: %v", err)
	}

	// A restart with Mailman down: the cache.
	mm.SetDown(true)
	s.MailmanDomains = nil
	r = start(t, s)
	for to, want := range map[string]int{"announce-owner@example.com": 250, "created-since@example.com": 451, "tour@example.org": 250} {
		if got := r.rcpt(t, to); got != want {
			t.Errorf("cache: RCPT %s: %d, want %d", to, got, want)
		}
	}
	ready = "http://" + r.hostPort("metrics") + "/readyz"
	if st, body := get(t, ready); st != 200 || !strings.Contains(body, "note: mailman "+mm.Base()+": not reached since ") ||
		!strings.Contains(body, "(the start; cached lists from ") {
		t.Errorf("/readyz with the cache: %d %q", st, body)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	// Down for longer than mailman_unready_after: not ready.
	s.MailmanUnreadyAfter = time.Millisecond
	r = start(t, s)
	ready = "http://" + r.hostPort("metrics") + "/readyz"
	testutil.WaitFor(t, 5*time.Second, "/readyz 503", func() bool {
		st, body := get(t, ready)
		return st == 503 && strings.Contains(body, "its last good lists are served")
	})
}

// TestMailmanLoop: Mailman's LMTP runner at listgate's own LMTP door (here
// named by mailman_lmtp; Mailman's default port 8024 is listgate's) would
// loop: Mailman's lists get no next hop, their mail stays in the spool,
// and /readyz says 503 with the fix, while the lists are still served.
func TestMailmanLoop(t *testing.T) {
	mm := mailmanfake.New(t)
	mm.CreateList("announce@example.com")
	s := mailmanSettings(t, mm)
	sock := filepath.Join(t.TempDir(), "lmtp")
	s.LMTP = postconf.Endpoint{Network: "unix", Address: sock}
	s.MailmanLMTP = s.LMTP
	r := start(t, s)
	st, body := get(t, "http://"+r.hostPort("metrics")+"/readyz")
	if want := "not ready: mailman " + mm.Base() + ": its LMTP runner lmtp:unix:" + sock + " is listgate's own LMTP door"; st != 503 ||
		!strings.Contains(body, want) || !strings.Contains(body, "set mailman_lmtp") {
		t.Errorf("/readyz: %d %q, want 503 and %q", st, body, want)
	}
	if x := r.watcher.Snapshot().External("announce@example.com"); x == nil || x.NextHop != "" {
		t.Errorf("Mailman's list: %+v, want it served without a next hop", x)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}
