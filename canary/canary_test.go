package canary

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/postconf"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// server is an in-process SMTP server (go-smtp) whose replies a test
// scripts: it answers the known list and the bogus address as told, and
// records the commands it got.
type server struct {
	list, bogus error // Rcpt's answer for the list and for any BogusPrefix address
	mail        error // Mail's answer
	addr        string

	mu   sync.Mutex
	cmds []string
}

func (s *server) record(cmd string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds = append(s.cmds, cmd)
}

func (s *server) commands() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.cmds, "; ")
}

func (s *server) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s}, nil }

type session struct{ s *server }

func (ss *session) Reset()        { ss.s.record("RSET") }
func (ss *session) Logout() error { return nil }
func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.s.record("MAIL <" + from + ">")
	return ss.s.mail
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, BogusPrefix) {
		ss.s.record("RCPT bogus")
		ss.s.mu.Lock()
		defer ss.s.mu.Unlock()
		return ss.s.bogus
	}
	ss.s.record("RCPT <" + to + ">")
	return ss.s.list
}

func (ss *session) Data(io.Reader) error {
	ss.s.record("DATA")
	return errors.New("the canary must never send DATA")
}

// start runs s on 127.0.0.1:0 until the test ends.
func (s *server) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(s)
	srv.Domain = "mx.test"
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	s.addr = ln.Addr().String()
}

// snapshot loads a lists directory holding files (name -> content).
func snapshot(t *testing.T, files map[string]string) lists.Source {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := lists.Load(dir, lists.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return lists.Static{S: snap}
}

var (
	refused  = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Requested action not taken: mailbox unavailable"}
	deferred = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Service unavailable - try again later"}
	relay    = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relay access denied"}
)

// TestResults: each combination of replies gets its result, its reply and
// its /readyz sentence, with the dialogue the package doc promises and
// never DATA.
func TestResults(t *testing.T) {
	src := snapshot(t, map[string]string{"announce@example.org": "", "zeta@example.net": ""})
	// The server's session resets at EHLO as at RSET.
	const dialogue = "MAIL <>; RCPT <announce@example.org>; RSET; RSET; MAIL <>; RCPT bogus"
	for _, tc := range []struct {
		name              string
		list, bogus, mail error
		want              Result
		reply             string
		cmds              string // "" for the whole dialogue
		ready             string // in NotReady; "" means ready
	}{
		{name: "shut", bogus: refused, want: OK, reply: "550 5.1.1 Requested action not taken: mailbox unavailable"},
		{name: "shut by another 5xx", bogus: relay, want: OK, reply: "554 5.7.1 Relay access denied"},
		{name: "gate open", want: GateOpen, reply: "250",
			ready: "accepted bogus recipient listgate-canary-"},
		{name: "gate open, list refused too", list: relay, want: GateOpen, reply: "250",
			ready: "the RCPT check is not active (milter/policy missing from main.cf?)"},
		{name: "list refused", list: relay, bogus: refused, want: ListRefused, reply: "554 5.7.1 Relay access denied",
			ready: "refused list announce@example.org: 554 5.7.1 Relay access denied"},
		{name: "milter down: both deferred", list: deferred, bogus: deferred, want: ListRefused, reply: "451 4.7.1 Service unavailable - try again later",
			ready: "refused list announce@example.org: 451 4.7.1"},
		{name: "bogus deferred", bogus: deferred, want: BogusDeferred, reply: "451 4.7.1 Service unavailable - try again later",
			ready: "deferred bogus recipient listgate-canary-"},
		{name: "mail refused", mail: &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Sender address rejected"},
			want: Error, reply: "553 5.7.1 Sender address rejected", cmds: "MAIL <>",
			ready: ": MAIL FROM: 553 5.7.1 Sender address rejected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &server{list: tc.list, bogus: tc.bogus, mail: tc.mail}
			s.start(t)
			reg := prometheus.NewRegistry()
			c, err := New(Options{SMTP: postconf.Endpoint{Network: "tcp", Address: s.addr}, Lists: src,
				Hostname: "mx.example.org", Timeout: 5 * time.Second, Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			st := c.Probe(context.Background())
			if st.Result != tc.want || st.Reply != tc.reply {
				t.Errorf("result %s, reply %q (err %v); want %s, %q", st.Result, st.Reply, st.Err, tc.want, tc.reply)
			}
			if st.List != "announce@example.org" || !strings.HasPrefix(st.Bogus, BogusPrefix) || !strings.HasSuffix(st.Bogus, "@example.org") {
				t.Errorf("probed %q and %q", st.List, st.Bogus)
			}
			want := tc.cmds
			if want == "" {
				want = dialogue
			}
			// DATA never comes.
			if got := s.commands(); !strings.HasPrefix(got, want) || strings.Contains(got, "DATA") {
				t.Errorf("commands %q, want %q", got, want)
			}
			why := c.NotReady()
			if tc.ready == "" && why != "" || tc.ready != "" && !strings.Contains(why, tc.ready) {
				t.Errorf("NotReady %q, want it to contain %q", why, tc.ready)
			}
			if why != "" && !strings.HasPrefix(why, "canary: smtp inet:"+s.addr+" ") && !strings.HasPrefix(why, "canary: smtp inet:"+s.addr+":") {
				t.Errorf("NotReady %q does not start with the probed address", why)
			}
			if got := promtest.ToFloat64(c.metrics.probes.WithLabelValues(string(tc.want))); got != 1 {
				t.Errorf("listgate_canary_probes_total{result=%q} = %v", tc.want, got)
			}
			if got := promtest.ToFloat64(c.metrics.ok); got != b2f(tc.want == OK) {
				t.Errorf("listgate_canary_ok = %v", got)
			}
			if got := promtest.ToFloat64(c.metrics.gateOpen); got != b2f(tc.want == GateOpen) {
				t.Errorf("listgate_canary_gate_open = %v", got)
			}
			if got := promtest.ToFloat64(c.metrics.lastSuccess); (got != 0) != (tc.want == OK) {
				t.Errorf("listgate_canary_last_success_timestamp_seconds = %v", got)
			}
			mfs, err := reg.Gather()
			var names []string
			for _, mf := range mfs {
				names = append(names, mf.GetName())
			}
			if got := strings.Join(names, " "); err != nil || got != "listgate_canary_gate_open listgate_canary_last_probe_timestamp_seconds "+
				"listgate_canary_last_success_timestamp_seconds listgate_canary_observe listgate_canary_ok listgate_canary_probes_total" {
				t.Errorf("registered: %s (%v)", got, err)
			}
		})
	}
}

// TestBogusIsRandom: each probe sends a bogus address of its own, so no
// cache can answer for it.
func TestBogusIsRandom(t *testing.T) {
	s := &server{bogus: refused}
	s.start(t)
	c, err := New(Options{SMTP: postconf.Endpoint{Network: "tcp", Address: s.addr},
		Lists: snapshot(t, map[string]string{"announce@example.org": ""}), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Probe(context.Background()), c.Probe(context.Background())
	if a.Bogus == b.Bogus || a.Result != OK || b.Result != OK {
		t.Errorf("two probes: %s %s, %s %s", a.Result, a.Bogus, b.Result, b.Bogus)
	}
}

// TestUnreachableAndTimeout: no listener is Unreachable; a server that
// accepts and never greets is an Error within Timeout that says so.
func TestUnreachableAndTimeout(t *testing.T) {
	src := snapshot(t, map[string]string{"announce@example.org": ""})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	c, err := New(Options{SMTP: postconf.Endpoint{Network: "tcp", Address: closed}, Lists: src, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if st := c.Probe(context.Background()); st.Result != Unreachable || !strings.Contains(c.NotReady(), "unreachable: dial tcp "+closed) {
		t.Errorf("closed port: %s, %q", st.Result, c.NotReady())
	}

	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		if conn, err := mute.Accept(); err == nil {
			conns = append(conns, conn) // held open, never greeted
		}
	}()
	const timeout = 300 * time.Millisecond
	c, err = New(Options{SMTP: postconf.Endpoint{Network: "tcp", Address: mute.Addr().String()}, Lists: src, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	st := c.Probe(context.Background())
	<-accepted
	for _, conn := range conns {
		conn.Close()
	}
	if st.Result != Error || st.Step != "greeting and EHLO" || st.Duration > 10*timeout ||
		!strings.Contains(c.NotReady(), "no answer within 300ms (canary_timeout)") {
		t.Errorf("mute server: %s after %v, %q", st.Result, st.Duration, c.NotReady())
	}
}

// TestTargets: the addresses a probe picks, or why it has none.
func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    map[string]string
		list     string // Options.List
		want     string // the list probed, or the error's text
		bogus    string // the bogus address's domain
		observed bool
	}{
		{name: "first list by address", files: map[string]string{"zeta@example.org": "", "beta@example.net": ""},
			want: "beta@example.net", bogus: "example.net"},
		{name: "a domain with a broken file is skipped (its unknown addresses tempfail)",
			files: map[string]string{"alpha@broken.test": "", "new@broken.test": "nokey = 1\n", "zeta@example.org": ""},
			want:  "zeta@example.org", bogus: "example.org"},
		{name: "canary_list", files: map[string]string{"zeta@example.org": "", "beta@example.net": ""},
			list: "zeta+x@Example.ORG", want: "zeta+x@Example.ORG", bogus: "Example.ORG"},
		{name: "canary_list a sub-address", files: map[string]string{"zeta@example.org": ""},
			list: "zeta-request@example.org", want: "zeta-request@example.org", bogus: "example.org"},
		{name: "canary_list unknown", files: map[string]string{"zeta@example.org": ""},
			list: "nosuch@example.org", want: "canary_list nosuch@example.org resolves to unknown, not to a list"},
		{name: "no list", files: map[string]string{"@example.org": ""},
			want: "no list in the lists directory has an accepted posting address"},
		{name: "only lists in broken domains", files: map[string]string{"alpha@broken.test": "", "new@broken.test": "nokey = 1\n"},
			want: "refused or observed (1 lists; a domain with a file that does not parse tempfails them): fix the files listgate lists names, or set canary_list"},
		{name: "an enforced domain is preferred to an observed one",
			files: map[string]string{"@alpha.test": "mode = \"observe\"\n", "a@alpha.test": "", "z@zeta.test": ""},
			want:  "z@zeta.test", bogus: "zeta.test"},
		{name: "every domain observed", files: map[string]string{"@alpha.test": "mode = \"observe\"\n", "a@alpha.test": "", "b@alpha.test": ""},
			want: "a@alpha.test", bogus: "alpha.test", observed: true},
		{name: "canary_list in an observed domain",
			files: map[string]string{"@alpha.test": "mode = \"observe\"\n", "a@alpha.test": "", "z@zeta.test": ""},
			list:  "a@alpha.test", want: "a@alpha.test", bogus: "alpha.test", observed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Options{SMTP: postconf.Endpoint{Network: "tcp", Address: "127.0.0.1:1"},
				Lists: snapshot(t, tc.files), List: tc.list})
			if err != nil {
				t.Fatal(err)
			}
			list, bogus, observed, err := c.targets()
			if tc.bogus == "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("targets: %q %q %v, want error %q", list, bogus, err, tc.want)
				}
				return
			}
			if err != nil || list != tc.want || !strings.HasPrefix(bogus, BogusPrefix) || !strings.HasSuffix(bogus, "@"+tc.bogus) || observed != tc.observed {
				t.Errorf("targets: %q %q observed %v %v, want %q and a bogus address @%s, observed %v", list, bogus, observed, err, tc.want, tc.bogus, tc.observed)
			}
		})
	}
}

// TestNoListNotReady: with nothing to probe, the canary says so and does
// not connect.
func TestNoListNotReady(t *testing.T) {
	s := &server{}
	s.start(t)
	c, err := New(Options{SMTP: postconf.Endpoint{Network: "tcp", Address: s.addr}, Lists: snapshot(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if why := c.NotReady(); !strings.Contains(why, "no probe has finished yet") {
		t.Errorf("before a probe: %q", why)
	}
	if st := c.Probe(context.Background()); st.Result != NoList || s.commands() != "" {
		t.Errorf("%s, server saw %q", st.Result, s.commands())
	}
	if why := c.NotReady(); !strings.Contains(why, "not probed: no list") {
		t.Errorf("NotReady %q", why)
	}
}

// TestRun: Run probes at once and then every Interval, keeps the last
// success across failures, and returns when its context ends, leaving no
// goroutine behind (TestMain's goleak).
func TestRun(t *testing.T) {
	s := &server{bogus: refused}
	s.start(t)
	c, err := New(Options{SMTP: postconf.Endpoint{Network: "tcp", Address: s.addr},
		Lists: snapshot(t, map[string]string{"announce@example.org": ""}), Interval: 20 * time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	testutil.WaitFor(t, 5*time.Second, "three probes", func() bool {
		return promtest.ToFloat64(c.metrics.probes.WithLabelValues(string(OK))) >= 3
	})
	ok := c.Status()
	s.mu.Lock()
	s.bogus = nil // the gate opens
	s.mu.Unlock()
	testutil.WaitFor(t, 5*time.Second, "gate-open", func() bool { return c.Status().Result == GateOpen })
	if st := c.Status(); st.LastSuccess.Before(ok.Time) {
		t.Errorf("last success %v, before the last ok probe %v", st.LastSuccess, ok.Time)
	}
	if why := c.NotReady(); !strings.Contains(why, "(last success ") {
		t.Errorf("NotReady %q names no last success", why)
	}
}

// TestObserve: where every domain with a list is in observe mode (or
// canary_list is in one), Postfix accepting the bogus address is what
// observe mode does: result observe, ready, listgate_canary_observe 1 and
// listgate_canary_ok 0. A refused list is still not ready, and with an
// enforced domain to probe, an accepted bogus address is still gate-open.
func TestObserve(t *testing.T) {
	observed := map[string]string{"@example.org": "mode = \"observe\"\n", "announce@example.org": ""}
	mixed := map[string]string{"@example.org": "mode = \"observe\"\n", "announce@example.org": "", "zeta@example.net": ""}
	for _, tc := range []struct {
		name        string
		files       map[string]string
		canaryList  string
		list, bogus error
		want        Result
		probed      string
		ready       string // in NotReady; "" means ready
		observe     float64
	}{
		{name: "every domain observed, bogus accepted", files: observed, want: Observe, probed: "announce@example.org", observe: 1},
		{name: "every domain observed, bogus refused anyway", files: observed, bogus: refused, want: OK, probed: "announce@example.org", observe: 1},
		{name: "every domain observed, list refused", files: observed, list: relay, want: ListRefused, probed: "announce@example.org",
			ready: "refused list announce@example.org: 554 5.7.1 Relay access denied", observe: 1},
		{name: "every domain observed, bogus deferred", files: observed, bogus: deferred, want: BogusDeferred, probed: "announce@example.org",
			ready: "deferred bogus recipient", observe: 1},
		{name: "canary_list observed", files: mixed, canaryList: "announce@example.org", want: Observe, probed: "announce@example.org", observe: 1},
		{name: "an enforced domain to probe: gate open", files: mixed, want: GateOpen, probed: "zeta@example.net",
			ready: "accepted bogus recipient listgate-canary-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &server{list: tc.list, bogus: tc.bogus}
			s.start(t)
			c, err := New(Options{SMTP: postconf.Endpoint{Network: "tcp", Address: s.addr}, Lists: snapshot(t, tc.files),
				List: tc.canaryList, Timeout: 5 * time.Second, Registerer: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			st := c.Probe(context.Background())
			if st.Result != tc.want || st.List != tc.probed {
				t.Errorf("result %s probing %s (err %v); want %s probing %s", st.Result, st.List, st.Err, tc.want, tc.probed)
			}
			why := c.NotReady()
			if tc.ready == "" && why != "" || tc.ready != "" && !strings.Contains(why, tc.ready) {
				t.Errorf("NotReady %q, want it to contain %q", why, tc.ready)
			}
			if st.Result.Ready() != (tc.ready == "") {
				t.Errorf("%s.Ready() = %v", st.Result, st.Result.Ready())
			}
			if got := promtest.ToFloat64(c.metrics.probes.WithLabelValues(string(tc.want))); got != 1 {
				t.Errorf("listgate_canary_probes_total{result=%q} = %v", tc.want, got)
			}
			for _, g := range []struct {
				name      string
				got, want float64
			}{
				{"listgate_canary_ok", promtest.ToFloat64(c.metrics.ok), b2f(tc.want == OK)},
				{"listgate_canary_gate_open", promtest.ToFloat64(c.metrics.gateOpen), b2f(tc.want == GateOpen)},
				{"listgate_canary_observe", promtest.ToFloat64(c.metrics.observe), tc.observe},
			} {
				if g.got != g.want {
					t.Errorf("%s = %v, want %v", g.name, g.got, g.want)
				}
			}
		})
	}
}
