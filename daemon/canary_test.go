package daemon

import (
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/internal/postfixtest"
	"github.com/listgate/listgate/internal/proctest"
	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/postconf"
)

// metric returns the value of the sample named name (with its labels, as
// /metrics writes them) from the daemon's /metrics, or -1 if absent.
func metric(t *testing.T, r *running, name string) float64 {
	t.Helper()
	_, body := get(t, "http://"+r.hostPort("metrics")+"/metrics")
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("/metrics: %q: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// TestCanaryPostfix (issue 12, must show 3): the canary against a private
// Postfix whose smtpd asks this daemon's milter. Healthy first: the
// metric says ok and /readyz answers 200. Then the milter is removed from
// main.cf (postconf -X smtpd_milters) and Postfix reloaded: within two
// probe periods the metric and /readyz say the gate is open. Putting the
// milter back and reloading makes it healthy again.
func TestCanaryPostfix(t *testing.T) {
	postfixtest.Require(t)
	// Postfix needs the milter's address before the daemon can know
	// Postfix's: the daemon's doors get ports that were free a moment
	// ago, and Postfix connects to them only when a client talks.
	port := func() string {
		p, err := proctest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return "127.0.0.1:" + strconv.Itoa(p)
	}
	milterAddr, lmtpAddr := port(), port()
	pf := postfixtest.Start(t, postfixtest.Options{
		Milter: "inet:" + milterAddr, LMTP: "inet:" + lmtpAddr, Domains: []string{"example.org"},
	})

	// Short, but well above the time a new smtpd(8) takes to start on a busy
	// machine (up to ~0.7s seen here): after a reload, each probe meets
	// a new smtpd. A probe that starts just after the reload may still
	// meet an old one (Postfix lets its idle processes finish), so the
	// probe after it is the first that must see the change: within two
	// periods.
	const interval = 3 * time.Second // CI runs other tests alongside
	s := settings(t)                 // the list tour@example.org
	s.Milter = postconf.Endpoint{Network: "tcp", Address: milterAddr}
	s.LMTP = postconf.Endpoint{Network: "tcp", Address: lmtpAddr}
	s.CanarySMTP = postconf.Endpoint{Network: "tcp", Address: pf.SMTPAddr}
	s.CanaryInterval, s.CanaryTimeout = interval, 10*time.Second
	r := start(t, s)
	readyz := func() (int, string) { return get(t, "http://"+r.hostPort("metrics")+"/readyz") }

	testutil.WaitFor(t, 10*time.Second, "the canary's first probe to find the gate shut", func() bool {
		return metric(t, r, "listgate_canary_ok") == 1
	})
	if st, body := readyz(); st != 200 || body != "ok\n" {
		t.Fatalf("/readyz with the milter on: %d %q", st, body)
	}
	st := r.canary.Status()
	t.Logf("healthy: %s %s, bogus %s refused: %s (probe took %v)", st.Result, st.List, st.Bogus, st.Reply, st.Duration)
	if st.List != "tour@example.org" || !strings.HasPrefix(st.Reply, "550 5.1.1 ") {
		t.Errorf("probe %+v: want tour@example.org accepted and 550 5.1.1 for the bogus address", st)
	}
	if !strings.Contains(pf.Log(), "listgate-canary-") || strings.Contains(pf.Log(), "queued as") {
		t.Errorf("Postfix's log shows no canary RCPT, or a message queued:\n%s", pf.Log())
	}

	// An admin's edit that silently disables the check.
	pf.Postconf(t, "-X", "smtpd_milters")
	pf.Reload(t)
	var body string
	took := testutil.WaitFor(t, 2*interval, "the metric and /readyz to say the gate is open", func() bool {
		var code int
		code, body = readyz()
		return metric(t, r, "listgate_canary_gate_open") == 1 && code == 503
	})
	t.Logf("gate open seen %v after the reload (interval %v): %q", took, interval, body)
	want := "not ready: canary: smtp inet:" + pf.SMTPAddr + " accepted bogus recipient listgate-canary-"
	if !strings.HasPrefix(body, want) || !strings.Contains(body, "@example.org: the RCPT check is not active (milter/policy missing from main.cf?)") {
		t.Errorf("/readyz body %q, want it to start %q and name the missing check", body, want)
	}
	if metric(t, r, "listgate_canary_ok") != 0 || metric(t, r, `listgate_canary_probes_total{result="gate-open"}`) < 1 {
		t.Errorf("listgate_canary_ok is not 0, or no gate-open probe counted")
	}
	// What the canary saw is what any sender now sees.
	c, err := smtp.Dial(pf.SMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("nosuchlist@example.org", nil); err != nil {
		t.Errorf("with no milter, Postfix still refuses a bogus list address: %v", err)
	}
	c.Quit()

	// The fix: put the milter back.
	pf.Postconf(t, "-e", "smtpd_milters = inet:"+milterAddr)
	pf.Reload(t)
	took = testutil.WaitFor(t, 2*interval, "the canary to find the gate shut again", func() bool {
		code, _ := readyz()
		return metric(t, r, "listgate_canary_ok") == 1 && code == 200
	})
	t.Logf("gate shut again seen %v after the reload", took)
}

// acceptAll is an SMTP server that accepts every recipient: a Postfix
// with no recipient check.
type acceptAll struct{}

func (acceptAll) NewSession(*smtp.Conn) (smtp.Session, error) { return acceptAll{}, nil }
func (acceptAll) Reset()                                      {}
func (acceptAll) Logout() error                               { return nil }
func (acceptAll) Mail(string, *smtp.MailOptions) error        { return nil }
func (acceptAll) Rcpt(string, *smtp.RcptOptions) error        { return nil }
func (acceptAll) Data(io.Reader) error                        { return errors.New("no DATA expected") }

// TestCanaryWiring: without Postfix, the daemon's canary probes an SMTP
// server that accepts everything, and /readyz and /metrics say the gate is
// open; Run's shutdown stops it (TestMain's goleak).
func TestCanaryWiring(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(acceptAll{})
	srv.Domain = "mx.test"
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	defer func() {
		srv.Close()
		<-done
	}()

	s := settings(t)
	s.CanarySMTP = postconf.Endpoint{Network: "tcp", Address: ln.Addr().String()}
	s.CanaryInterval = 50 * time.Millisecond
	r := start(t, s)
	var body string
	testutil.WaitFor(t, 5*time.Second, "/readyz 503 for the open gate", func() bool {
		var code int
		code, body = get(t, "http://"+r.hostPort("metrics")+"/readyz")
		return code == 503 && strings.Contains(body, "accepted bogus recipient")
	})
	want := "not ready: canary: smtp inet:" + ln.Addr().String() + " accepted bogus recipient listgate-canary-"
	if !strings.HasPrefix(body, want) || !strings.Contains(body, "(no success since the start)") {
		t.Errorf("/readyz %q, want it to start %q", body, want)
	}
	// The status page heads with the same reason.
	if _, page := get(t, "http://"+r.hostPort("metrics")+"/"); !strings.Contains(page, "<b>Not ready</b>") ||
		!strings.Contains(page, "<li>not ready: canary: smtp inet:"+ln.Addr().String()+" accepted bogus recipient listgate-canary-") {
		t.Errorf("the status page does not say why listgate is not ready:\n%s", page)
	}
	if metric(t, r, "listgate_canary_gate_open") != 1 || metric(t, r, "listgate_canary_ok") != 0 ||
		metric(t, r, `listgate_canary_probes_total{result="gate-open"}`) < 1 || metric(t, r, "listgate_canary_last_success_timestamp_seconds") != 0 {
		t.Errorf("/metrics does not say the gate is open")
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
