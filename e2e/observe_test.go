package e2e

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/daemontest"
	"github.com/listgate/listgate/internal/postfixtest"
	"github.com/listgate/listgate/internal/testutil"
)

// Issue 12, must-show 1: observe mode through a private Postfix, with
// contrib/postfix's milter snippet. A bogus address of a domain whose
// domain file says mode = "observe" is accepted by Postfix (250 at RCPT
// TO), logged as observed and counted in listgate_would_refuse_total;
// a message to it is then refused by the LMTP door, and Postfix bounces
// it to the sender, as the domain did before listgate (docs/lists.md,
// "Observe mode"). Rewriting the domain file to mode = "enforce" makes
// the next RCPT TO get 550 5.1.1 within a second, with no restart.
func TestObserveMode(t *testing.T) {
	t.Parallel()
	postfixtest.Require(t)
	dir := t.TempDir()
	writeList(t, dir, "@example.org", "mode = \"observe\"\n")
	writeList(t, dir, "announce@example.org", "")
	lg := daemontest.Start(t, []string{"lmtp", "milter", "metrics"}, "--lists", dir, "--spool", t.TempDir(),
		"--lmtp", "inet:127.0.0.1:0", "--milter", "inet:127.0.0.1:0", "--metrics", "inet:127.0.0.1:0")
	pf := postfixtest.Start(t, postfixtest.Options{LMTP: lg.Addr("lmtp"), Milter: lg.Addr("milter"), Domains: []string{"example.org"}})
	addr := pf.SMTPAddr
	const bogus = "nosuchlist@example.org"
	would := func() float64 { return wouldRefuse(t, lg, "milter", "example.org") }

	if n := would(); n != 0 {
		t.Fatalf("would_refuse before any mail: %v", n)
	}
	if r := rcpt(t, addr, bogus); !r.is("RCPT", 250, "") {
		t.Fatalf("<%s> in observe mode: %v, want 250 at RCPT", bogus, r)
	}
	lg.WaitLog(t, "door=milter", "rcpt="+bogus, "verdict=observed")
	if n := would(); n != 1 {
		t.Errorf("listgate_would_refuse_total{door=milter,domain=example.org} = %v, want 1", n)
	}
	// The list is served as ever.
	if r := rcpt(t, addr, "announce-request@example.org"); !r.is("RCPT", 250, "") {
		t.Errorf("a list's sub-address: %v", r)
	}

	// The whole message: Postfix takes it, the LMTP door refuses the
	// recipient (it stores only what resolves), Postfix bounces.
	send(t, addr, bogus)
	line := pf.WaitLog(t, "to=<"+bogus+">, relay=127.0.0.1", wait)
	if !strings.Contains(line, "status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 Requested action not taken: mailbox unavailable") {
		t.Errorf("Postfix log: %s", line)
	}
	lg.WaitLog(t, "door=lmtp", "rcpt="+bogus, "verdict=observed")
	if n := would(); n != 2 {
		t.Errorf("would_refuse after the message = %v, want 2 (its RCPT; the LMTP door refuses, it does not count)", n)
	}

	writeList(t, dir, "@example.org", "mode = \"enforce\"\n")
	took := testutil.WaitFor(t, time.Second, "550 for <"+bogus+"> after mode = \"enforce\"", func() bool {
		return rcpt(t, addr, bogus).is("RCPT", 550, "5.1.1")
	})
	t.Logf("domain file switched to enforce: refused through Postfix after %v", took.Round(time.Millisecond))
	line = pf.WaitLog(t, "milter-reject: RCPT from", wait)
	if !strings.Contains(line, ": 550 5.1.1 Requested action not taken: mailbox unavailable;") || !strings.Contains(line, "to=<"+bogus+">") {
		t.Errorf("Postfix log: %s", line)
	}
	// The RCPTs tried before the reload were let through and counted;
	// from the first 550 on, nothing more is.
	n := would()
	if r := rcpt(t, addr, bogus); !r.is("RCPT", 550, "5.1.1") {
		t.Errorf("<%s> again: %v", bogus, r)
	}
	if m := would(); m != n || n < 2 {
		t.Errorf("would_refuse: %v at the first 550, %v after another; want it unchanged, at least 2", n, m)
	}
}

// wouldRefuse scrapes listgate's /metrics for
// listgate_would_refuse_total{door,domain} (0 when absent).
func wouldRefuse(t *testing.T, lg *daemon, door, domain string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + strings.TrimPrefix(lg.Addr("metrics"), "inet:") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	prefix := `listgate_would_refuse_total{domain="` + domain + `",door="` + door + `"} `
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return n
		}
	}
	return 0
}
