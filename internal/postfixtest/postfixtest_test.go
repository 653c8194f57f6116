package postfixtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/d--j/go-milter"
	"github.com/emersion/go-smtp"
	"go.uber.org/goleak"

	"github.com/listgate/listgate/internal/postfixtest"
)

// These tests drive a real Postfix built from contrib/postfix, with two
// peers standing in for listgate's doors: an LMTP sink (go-smtp) that
// accepts and records everything, and a milter (go-milter) that refuses
// recipients whose local part starts with "bogus". They prove the snippets
// and the harness, not listgate.

const wait = 20 * time.Second

// TestMain checks that the peers' servers and the harness stop every
// goroutine they start.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// received is one message as the LMTP peer got it.
type received struct {
	from string
	rcpt []string
	data string
}

// lmtpPeer is an LMTP server that records every message; it answers 250
// for each recipient (RFC 2033 §4.2: one reply per recipient after DATA).
type lmtpPeer struct {
	got  chan received
	done chan struct{} // closed at cleanup
	srv  *smtp.Server
	log  testLogger
}

func startLMTP(t *testing.T, ln net.Listener) *lmtpPeer {
	t.Helper()
	p := &lmtpPeer{got: make(chan received, 16), done: make(chan struct{})}
	p.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &lmtpSession{peer: p}, nil
	}))
	p.srv.LMTP = true
	p.srv.Domain = "lmtp.postfixtest.invalid"
	p.log.t = t
	p.srv.ErrorLog = &p.log
	served := make(chan error, 1)
	go func() { served <- p.srv.Serve(ln) }()
	t.Cleanup(func() {
		close(p.done)
		p.log.stop()
		p.srv.Close()
		// Close does not stop a Serve that had not yet registered ln (the
		// test ended at once, say by a skip): closing ln ends its Accept.
		ln.Close()
		if err := <-served; err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("lmtp peer: %v", err)
		}
	})
	return p
}

// next waits for the next delivered message.
func (p *lmtpPeer) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-p.got:
		return r
	case <-time.After(wait):
		t.Fatalf("lmtp peer: nothing delivered within %v", wait)
		return received{}
	}
}

type lmtpSession struct {
	peer *lmtpPeer
	msg  received
}

var _ smtp.LMTPSession = (*lmtpSession)(nil)

func (s *lmtpSession) Reset()        { s.msg = received{} }
func (s *lmtpSession) Logout() error { return nil }
func (s *lmtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.msg.from = from
	return nil
}
func (s *lmtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.rcpt = append(s.msg.rcpt, to)
	return nil
}
func (s *lmtpSession) Data(r io.Reader) error {
	return s.LMTPData(r, nil)
}
func (s *lmtpSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "read failed"}
	}
	s.msg.data = string(b)
	select {
	case s.peer.got <- s.msg:
	case <-s.peer.done:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "test over"}
	}
	for _, rcpt := range s.msg.rcpt {
		if status != nil {
			status.SetStatus(rcpt, nil)
		}
	}
	return nil
}

// testLogger logs the LMTP server's errors into the test, until cleanup:
// connection goroutines may outlive Close, and logging after the test is
// over panics.
type testLogger struct {
	mu      sync.Mutex
	t       *testing.T
	stopped bool
}

func (l *testLogger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}

func (l *testLogger) Printf(format string, v ...any) { l.Println(fmt.Sprintf(format, v...)) }
func (l *testLogger) Println(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Log(append([]any{"lmtp peer:"}, v...)...)
	}
}

// refuseBogus is a milter that refuses, at RCPT TO, every recipient whose
// local part starts with "bogus", with the 550 5.1.1 listgate answers for
// an unknown list address.
type refuseBogus struct{ milter.NoOpMilter }

func (refuseBogus) RcptTo(rcpt, _ string, _ milter.Modifier) (*milter.Response, error) {
	if strings.HasPrefix(strings.Trim(rcpt, "<>"), "bogus") {
		return milter.RejectWithCodeAndReason(550, "5.1.1 Requested action not taken: mailbox unavailable")
	}
	return milter.RespContinue, nil
}

func startMilter(t *testing.T, ln net.Listener) {
	t.Helper()
	srv := milter.NewServer(
		milter.WithMilter(func() milter.Milter { return refuseBogus{} }),
		milter.WithProtocol(milter.OptNoConnect|milter.OptNoHelo|milter.OptNoMailFrom|milter.OptNoData|
			milter.OptNoHeaders|milter.OptNoEOH|milter.OptNoBody|milter.OptNoUnknown),
	)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("milter peer: shutdown: %v", err)
		}
		<-done
	})
}

func listenTCP(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// send sends one message through Postfix's smtpd and returns the refusal
// MAIL FROM or RCPT TO got (nil: accepted); an accepted message is sent in
// full.
func send(t *testing.T, addr, from, to string) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatalf("dial smtpd %s: %v", addr, err)
	}
	defer c.Close()
	if err := c.Hello("client.postfixtest.invalid"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	if err := c.Mail(from, nil); err != nil {
		c.Quit()
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		c.Quit()
		return err
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	fmt.Fprintf(w, "From: <%s>\r\nTo: <%s>\r\nSubject: postfixtest\r\nMessage-ID: <%d@postfixtest.invalid>\r\n\r\nhello %s\r\n",
		from, to, time.Now().UnixNano(), to)
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
	return nil
}

// wantSMTPError checks that err is an SMTP reply with that code and
// enhanced code.
func wantSMTPError(t *testing.T, err error, code int, enhanced smtp.EnhancedCode) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a %d %v reply", err, code, enhanced)
	}
	if se.Code != code || se.EnhancedCode != enhanced {
		t.Fatalf("got %d %v %q, want %d %v", se.Code, se.EnhancedCode, se.Message, code, enhanced)
	}
}

func TestContribMainCFOverTCP(t *testing.T) {
	t.Parallel()
	postfixtest.Require(t) // before the peers start: a skip is prompt
	lmtpLn, milterLn := listenTCP(t), listenTCP(t)
	sink := startLMTP(t, lmtpLn)
	startMilter(t, milterLn)
	pf := postfixtest.Start(t, postfixtest.Options{
		LMTP:    "inet:" + lmtpLn.Addr().String(),
		Milter:  "inet:" + milterLn.Addr().String(),
		Domains: []string{"lists.example.org", "example.net"},
	})
	t.Logf("postfix started in %v", pf.Started)

	t.Run("list address is delivered over LMTP", func(t *testing.T) {
		if err := send(t, pf.SMTPAddr, "alice@sender.example", "announce@lists.example.org"); err != nil {
			t.Fatalf("RCPT TO: %v", err)
		}
		got := sink.next(t)
		if got.from != "alice@sender.example" || len(got.rcpt) != 1 || got.rcpt[0] != "announce@lists.example.org" {
			t.Fatalf("LMTP got MAIL FROM:<%s> RCPT TO:%q, want alice@sender.example and announce@lists.example.org", got.from, got.rcpt)
		}
		if !strings.Contains(got.data, "hello announce@lists.example.org") || !strings.Contains(got.data, "Received: from client.postfixtest.invalid") {
			t.Fatalf("LMTP got data without the body or Postfix's Received header:\n%s", got.data)
		}
		_, port, _ := net.SplitHostPort(lmtpLn.Addr().String())
		line := pf.WaitLog(t, "to=<announce@lists.example.org>, relay=127.0.0.1[127.0.0.1]:"+port, wait)
		if !strings.Contains(line, "status=sent") {
			t.Fatalf("log: %s", line)
		}
		pf.WaitQueueEmpty(t, wait)
	})

	t.Run("VERP sub-address keeps its extension", func(t *testing.T) {
		if err := send(t, pf.SMTPAddr, "", "announce-bounces+alice=sender.example@example.net"); err != nil {
			t.Fatalf("RCPT TO: %v", err)
		}
		if got := sink.next(t); len(got.rcpt) != 1 || got.rcpt[0] != "announce-bounces+alice=sender.example@example.net" || got.from != "" {
			t.Fatalf("LMTP got MAIL FROM:<%s> RCPT TO:%q", got.from, got.rcpt)
		}
		pf.WaitQueueEmpty(t, wait)
	})

	t.Run("milter refuses at RCPT, nothing queued", func(t *testing.T) {
		err := send(t, pf.SMTPAddr, "alice@sender.example", "bogus@lists.example.org")
		wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 1, 1})
		pf.WaitLog(t, "milter-reject: RCPT from", wait)
		if q := pf.Queue(t); len(q) != 0 {
			t.Fatalf("queue after a refused RCPT: %v", q)
		}
	})

	t.Run("not an open relay", func(t *testing.T) {
		err := send(t, pf.SMTPAddr, "alice@sender.example", "victim@foreign.example")
		wantSMTPError(t, err, 554, smtp.EnhancedCode{5, 7, 1})
		pf.WaitLog(t, "Relay access denied", wait)
		if q := pf.Queue(t); len(q) != 0 {
			t.Fatalf("queue after a refused relay: %v", q)
		}
	})

	t.Run("the snippet's settings are in force", func(t *testing.T) {
		want := map[string]string{
			"milter_default_action":            "tempfail",
			"milter_protocol":                  "6",
			"recipient_delimiter":              "+",
			"message_size_limit":               "67108864",
			"lmtp_destination_recipient_limit": "50",
			"non_smtpd_milters":                "",
			"relay_domains":                    "lists.example.org, example.net",
		}
		for key, v := range want {
			if got := strings.TrimSpace(pf.Postconf(t, "-h", key)); got != v {
				t.Errorf("postconf -h %s = %q, want %q", key, got, v)
			}
		}
	})
}

// With listgate's milter down, Postfix must tempfail (milter_default_action
// = tempfail): the sender retries, and nothing unchecked is accepted. smtpd
// fails to reach the milter when the client connects, and answers the first
// command that can be refused: MAIL FROM, not RCPT TO.
func TestMilterDownTempfails(t *testing.T) {
	t.Parallel()
	postfixtest.Require(t) // before the peers start: a skip is prompt
	lmtpLn := listenTCP(t)
	startLMTP(t, lmtpLn)
	down := listenTCP(t)
	downAddr := down.Addr().String()
	down.Close() // nothing listens there now
	pf := postfixtest.Start(t, postfixtest.Options{
		LMTP:   "inet:" + lmtpLn.Addr().String(),
		Milter: "inet:" + downAddr,
	})
	err := send(t, pf.SMTPAddr, "alice@sender.example", "announce@example.org")
	wantSMTPError(t, err, 451, smtp.EnhancedCode{4, 7, 1})
	pf.WaitLog(t, "connect to Milter service inet:"+downAddr, wait)
	if q := pf.Queue(t); len(q) != 0 {
		t.Fatalf("queue with the milter down: %v", q)
	}
}

// LMTP peer down: the message waits in the queue, deferred, and goes
// through once the peer is back and the queue is flushed.
func TestLMTPDownDefersThenFlushes(t *testing.T) {
	t.Parallel()
	postfixtest.Require(t) // before the peers start: a skip is prompt
	lmtpLn := listenTCP(t)
	addr := lmtpLn.Addr().String()
	lmtpLn.Close()
	pf := postfixtest.Start(t, postfixtest.Options{
		LMTP:   "inet:" + addr,
		MainCF: []string{"smtpd_milters ="},
	})
	if err := send(t, pf.SMTPAddr, "alice@sender.example", "announce@example.org"); err != nil {
		t.Fatalf("RCPT TO: %v", err)
	}
	pf.WaitLog(t, "status=deferred", wait)
	pf.WaitQueue(t, "one deferred message to announce@example.org", wait, func(q []postfixtest.QueueMessage) bool {
		return len(q) == 1 && q[0].Queue == "deferred" && len(q[0].Recipients) == 1 &&
			q[0].Recipients[0].Address == "announce@example.org" && strings.Contains(q[0].Recipients[0].DelayReason, "Connection refused")
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	sink := startLMTP(t, ln)
	pf.Flush(t)
	if got := sink.next(t); len(got.rcpt) != 1 || got.rcpt[0] != "announce@example.org" {
		t.Fatalf("LMTP got RCPT TO:%q after the flush", got.rcpt)
	}
	pf.WaitQueueEmpty(t, wait)
}

// contrib/postfix/main.cf.unix: LMTP and milter over unix-domain sockets in
// the queue directory, with the daemons chrooted there as on Debian, and
// without the chroot.
func TestContribMainCFUnix(t *testing.T) {
	t.Parallel()
	postfixtest.Require(t) // before the peers start: a skip is prompt
	for _, chroot := range []bool{true, false} {
		t.Run(fmt.Sprintf("chroot=%v", chroot), func(t *testing.T) {
			t.Parallel()
			pf := postfixtest.Start(t, postfixtest.Options{Snippet: "main.cf.unix", Chroot: chroot})
			// The snippet's own addresses, untouched: unix:listgate/lmtp
			// and unix:listgate/milter, relative to the queue directory.
			sink := startLMTP(t, pf.ListenUnix(t, "listgate/lmtp"))
			startMilter(t, pf.ListenUnix(t, "listgate/milter"))

			if err := send(t, pf.SMTPAddr, "alice@sender.example", "announce-request@example.org"); err != nil {
				t.Fatalf("RCPT TO: %v", err)
			}
			if got := sink.next(t); len(got.rcpt) != 1 || got.rcpt[0] != "announce-request@example.org" {
				t.Fatalf("LMTP got RCPT TO:%q", got.rcpt)
			}
			pf.WaitLog(t, "[listgate/lmtp], delay=", wait)
			pf.WaitQueueEmpty(t, wait)

			err := send(t, pf.SMTPAddr, "alice@sender.example", "bogus-request@example.org")
			wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 1, 1})

			err = send(t, pf.SMTPAddr, "alice@sender.example", "victim@foreign.example")
			wantSMTPError(t, err, 554, smtp.EnhancedCode{5, 7, 1})
			if q := pf.Queue(t); len(q) != 0 {
				t.Fatalf("queue: %v", q)
			}
		})
	}
}

// Two instances side by side do not collide, and each has its own log.
func TestParallelInstances(t *testing.T) {
	t.Parallel()
	postfixtest.Require(t) // before the peers start: a skip is prompt
	var wg sync.WaitGroup
	pfs := make([]*postfixtest.Postfix, 2)
	for i := range pfs {
		pfs[i] = postfixtest.Start(t, postfixtest.Options{LMTP: "unix:listgate/lmtp", Milter: "unix:listgate/milter"})
	}
	if pfs[0].SMTPAddr == pfs[1].SMTPAddr || pfs[0].QueueDir == pfs[1].QueueDir {
		t.Fatalf("instances share %s / %s", pfs[0].SMTPAddr, pfs[0].QueueDir)
	}
	for i, pf := range pfs {
		wg.Add(1)
		sink := startLMTP(t, pf.ListenUnix(t, "listgate/lmtp"))
		startMilter(t, pf.ListenUnix(t, "listgate/milter"))
		go func() {
			defer wg.Done()
			to := fmt.Sprintf("list%d@example.org", i)
			if err := send(t, pf.SMTPAddr, "alice@sender.example", to); err != nil {
				t.Errorf("instance %d: RCPT TO: %v", i, err)
				return
			}
			select {
			case got := <-sink.got:
				if len(got.rcpt) != 1 || got.rcpt[0] != to {
					t.Errorf("instance %d delivered RCPT TO:%q, want %s", i, got.rcpt, to)
				}
			case <-time.After(wait):
				t.Errorf("instance %d: nothing delivered within %v", i, wait)
			}
		}()
	}
	wg.Wait()
	for i, pf := range pfs {
		other := fmt.Sprintf("list%d@example.org", 1-i)
		if strings.Contains(pf.Log(), other) {
			t.Errorf("instance %d logged the other instance's %s", i, other)
		}
	}
}

// Start's failures say what Postfix said: a test that forgets
// Options.LMTP must not reach a listgate the host runs on its default
// ports; a typo in a parameter name, and a value Postfix refuses, name the
// parameter.
func TestStartFailures(t *testing.T) {
	t.Parallel()
	postfixtest.Require(t)
	for _, tc := range []struct {
		name string
		opts postfixtest.Options
		want string
	}{
		{"contrib as is reaches the host's listgate", postfixtest.Options{}, "default port 8024"},
		{"typo", postfixtest.Options{LMTP: "unix:listgate/lmtp", Milter: "unix:listgate/milter",
			MainCF: []string{"smtpd_milterz = unix:listgate/milter"}}, "unused parameter: smtpd_milterz"},
		{"bad value", postfixtest.Options{LMTP: "unix:listgate/lmtp", Milter: "unix:listgate/milter",
			MainCF: []string{"myhostname ="}}, "myhostname"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ft := &fatalRecorder{TB: t}
			func() {
				defer func() {
					if r := recover(); r != nil && r != ft {
						panic(r)
					}
				}()
				postfixtest.Start(ft, tc.opts)
			}()
			if !strings.Contains(ft.msg, tc.want) {
				t.Fatalf("Start: got failure %q, want one containing %q", ft.msg, tc.want)
			}
		})
	}
}

// fatalRecorder records the first Fatal instead of ending the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	panic(f)
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

// swaks, a client other than go-smtp, sees the same: delivered, refused by
// the milter, refused as relay.
func TestSwaks(t *testing.T) {
	t.Parallel()
	postfixtest.Require(t) // before the peers start: a skip is prompt
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		if os.Getenv(postfixtest.EnvRequire) == "1" {
			t.Fatalf("swaks is not installed (%v); %s=1 requires it", err, postfixtest.EnvRequire)
		}
		t.Skipf("swaks is not installed (%v): apt-get install swaks", err)
	}
	lmtpLn, milterLn := listenTCP(t), listenTCP(t)
	sink := startLMTP(t, lmtpLn)
	startMilter(t, milterLn)
	pf := postfixtest.Start(t, postfixtest.Options{
		LMTP:   "inet:" + lmtpLn.Addr().String(),
		Milter: "inet:" + milterLn.Addr().String(),
	})
	for _, tc := range []struct {
		to    string
		exit  int    // swaks: 0 delivered, 24 no RCPT accepted
		reply string // in swaks's transcript
	}{
		{"announce-owner@example.org", 0, "<-  250 2.0.0 Ok: queued as "},
		{"bogus-owner@example.org", 24, "<** 550 5.1.1 Requested action not taken: mailbox unavailable"},
		{"victim@foreign.example", 24, "<** 554 5.7.1 <victim@foreign.example>: Relay access denied"},
	} {
		cmd := exec.Command(swaks, "--server", pf.SMTPAddr, "--from", "alice@sender.example", "--to", tc.to,
			"--helo", "client.postfixtest.invalid", "--timeout", "20")
		out, err := cmd.CombinedOutput()
		exit := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			exit = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("swaks --to %s: %v", tc.to, err)
		}
		if exit != tc.exit || !strings.Contains(string(out), tc.reply) {
			t.Fatalf("swaks --to %s: exit %d, want %d and %q in:\n%s", tc.to, exit, tc.exit, tc.reply, out)
		}
		if tc.exit == 0 {
			if got := sink.next(t); len(got.rcpt) != 1 || got.rcpt[0] != tc.to {
				t.Fatalf("LMTP got RCPT TO:%q, want %s", got.rcpt, tc.to)
			}
		}
	}
	pf.WaitQueueEmpty(t, wait)
}
