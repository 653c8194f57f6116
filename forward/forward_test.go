package forward

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/lmtp"
	"github.com/listgate/listgate/spool"
)

const post = "Message-ID: <m1@example.net>\r\nFrom: anne@example.net\r\nSubject: hello\r\n\r\nbody line\r\n.starts with a dot\r\n"

// TestForwardLMTP: mail for a list with an LMTP next hop reaches a real
// LMTP server, one recipient per transaction, with the original envelope
// (the null sender stays <>, the recipient keeps its extension and its
// case), in the order stored; the next hop gets the message as received
// plus listgate's Received and nothing else listgate added; new/ is
// emptied and the messages are counted.
func TestForwardLMTP(t *testing.T) {
	hop := startHop(t, nil)
	e := newEnv(t, map[string]string{"a@example.org": fmt.Sprintf("next_hop = %q\n", hop.hop())}, nil)
	e.deliver("anne@example.net", "a@example.org", post)
	e.deliver("", "A-Bounces+bob=example.net@example.org", "Subject: DSN\r\n\r\nbounced\r\n")
	for i := range 5 {
		e.deliver("carl@example.net", "a+x@example.org", fmt.Sprintf("Subject: %d\r\n\r\n%d\r\n", i, i))
	}
	waitFor(t, "7 messages at the next hop", func() bool { return len(hop.taken()) == 7 })
	g := hop.taken()
	var first *got
	for i := range g {
		if g[i].rcpt == "a@example.org" {
			first = &g[i]
		}
	}
	if first == nil || first.from != "anne@example.net" {
		t.Fatalf("the first post: %+v", first)
	}
	// The bounce is in its own folder, so its place among the posts is
	// free; its envelope is not.
	var dsn *got
	var order []string
	for i := range g {
		if g[i].rcpt == "A-Bounces+bob=example.net@example.org" {
			dsn = &g[i]
		} else if g[i].rcpt == "a+x@example.org" {
			order = append(order, strings.TrimPrefix(strings.SplitN(g[i].data, "\r\n", 6)[4], "Subject: "))
		}
	}
	if dsn == nil || dsn.from != "" {
		t.Errorf("the DSN: %+v, want MAIL FROM:<>", dsn)
	}
	if want := []string{"0", "1", "2", "3", "4"}; !slices.Equal(order, want) {
		t.Errorf("order at the next hop %q, want %q", order, want)
	}
	// What the next hop stores is the message as sent, after listgate's
	// Received field.
	d := first.data
	rec, rest, _ := strings.Cut(d, "\r\n\tfor <a@example.org>; ")
	if !strings.HasPrefix(rec, "Received: from mx.test (127.0.0.1:1)\r\n\tby lg.test (listgate) with LMTP id TESTID") {
		t.Errorf("the data does not start with listgate's Received:\n%s", d)
	}
	_, msg, _ := strings.Cut(rest, "\r\n")
	if msg != post {
		t.Errorf("after the Received field:\n%q\nwant the message as sent:\n%q", msg, post)
	}
	for _, h := range []string{"Return-Path:", "Delivered-To:", "X-MailFrom:", "Message-ID-Hash:", "X-Message-ID-Hash:"} {
		if strings.Contains(d, h) {
			t.Errorf("the next hop got listgate's %s", h)
		}
	}
	// The next hop has a message before the forwarder has its reply.
	waitFor(t, "7 forwards counted", func() bool {
		return testutil.ToFloat64(e.f.m.messages.WithLabelValues(hop.hop(), "forwarded")) == 7
	})
	if e.count("a@example.org", "post", "new") != 0 || e.count("a@example.org", "bounces", "new") != 0 {
		t.Errorf("new/ not emptied")
	}
}

// TestForwardRetryKeepsOrder: a 451 for the first message holds the
// folder: it is tried again and taken before the second goes, so the next
// hop stores them in order; each 451 is counted as deferred.
func TestForwardRetryKeepsOrder(t *testing.T) {
	hop := startHop(t, func(n int, g got) *smtp.SMTPError {
		if n < 3 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
		}
		return nil
	})
	e := newEnv(t, map[string]string{"a@example.org": fmt.Sprintf("next_hop = %q\n", hop.hop())}, nil)
	e.deliver("anne@example.net", "a@example.org", "Subject: first\r\n\r\n1\r\n")
	e.deliver("anne@example.net", "a@example.org", "Subject: second\r\n\r\n2\r\n")
	waitFor(t, "both taken", func() bool { return len(hop.taken()) == 2 })
	all := hop.received()
	if len(all) != 5 {
		t.Fatalf("%d transactions, want 3 refused and 2 taken", len(all))
	}
	for i, g := range all {
		want := "Subject: first"
		if i == 4 {
			want = "Subject: second"
		}
		if !strings.Contains(g.data, want) {
			t.Errorf("transaction %d was not %q:\n%s", i, want, g.data)
		}
	}
	if n := testutil.ToFloat64(e.f.m.messages.WithLabelValues(hop.hop(), "deferred")); n != 3 {
		t.Errorf("deferred counter %v, want 3", n)
	}
}

// TestQuarantineAndRetry: a 550 moves the message to quarantine/ with a
// reason file naming the next hop and its reply, and the next message
// goes on; Retry puts it back in new/, and once the next hop takes it, it
// is forwarded.
func TestQuarantineAndRetry(t *testing.T) {
	refuse := true
	hop := startHop(t, func(n int, g got) *smtp.SMTPError {
		if refuse && strings.Contains(g.data, "Subject: bad") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such list"}
		}
		return nil
	})
	e := newEnv(t, map[string]string{"a@example.org": fmt.Sprintf("next_hop = %q\n", hop.hop())}, nil)
	bad := e.deliver("anne@example.net", "a@example.org", "Subject: bad\r\n\r\n1\r\n")
	e.deliver("anne@example.net", "a@example.org", "Subject: good\r\n\r\n2\r\n")
	waitFor(t, "the good one forwarded", func() bool {
		return testutil.ToFloat64(e.f.m.messages.WithLabelValues(hop.hop(), "forwarded")) == 1
	})
	waitFor(t, "the bad one quarantined", func() bool {
		return testutil.ToFloat64(e.f.m.messages.WithLabelValues(hop.hop(), "quarantined")) == 1
	})
	st, err := Status(e.root, e.w.Snapshot(), lists.NextHop{})
	if err != nil || len(st) != 1 || len(st[0].Quarantine) != 1 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	q := st[0].Quarantine[0]
	if q.Name != bad || q.Reason.NextHop != hop.hop() || !strings.HasPrefix(q.Reason.Reply, "550 5.1.1 ") || !strings.HasSuffix(q.Reason.Reply, "no such list") ||
		q.Reason.Sender != "<anne@example.net>" || q.Reason.Recipient != "a@example.org" || time.Since(q.Reason.Date) > time.Minute {
		t.Errorf("quarantined %+v", q)
	}
	if st[0].NextHop != hop.hop() || st[0].Backlog != 0 {
		t.Errorf("status %+v", st[0])
	}
	if n := strings.Count(e.log.String(), "forward refused: quarantined"); n != 1 {
		t.Errorf("%d quarantine log lines, want 1", n)
	}
	hop.mu.Lock()
	refuse = false
	hop.mu.Unlock()
	if n, err := Retry(e.root, "a@example.org"); n != 1 || err != nil {
		t.Fatalf("Retry = %d, %v", n, err)
	}
	if _, err := Retry(e.root, "nosuch@example.org"); err == nil {
		t.Errorf("Retry of a list without a folder: no error")
	}
	e.f.scan() // as the periodic scan does
	waitFor(t, "the retried one forwarded", func() bool {
		return testutil.ToFloat64(e.f.m.messages.WithLabelValues(hop.hop(), "forwarded")) == 2
	})
	if e.count("a@example.org", "post", spool.QuarantineDir) != 0 || e.count("a@example.org", "post", "new") != 0 {
		t.Errorf("quarantine/ or new/ not empty")
	}
}

// TestForwardIntoListgate: the next hop is listgate's own LMTP door with
// a spool of its own: what it stores has the envelope of the original
// delivery (Return-Path, Delivered-To with the extension, X-MailFrom),
// and one Message-ID-Hash pair, not two.
func TestForwardIntoListgate(t *testing.T) {
	dir2, spool2 := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, "a@example.org"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	snap2, err := lists.Load(dir2, lists.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sp2, err := spool.New(spool.Options{Dir: spool2, Hostname: "second.test"})
	if err != nil {
		t.Fatal(err)
	}
	door := lmtp.New(lmtp.Options{Lists: lists.Static{S: snap2}, Spool: sp2, Hostname: "second.test"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go door.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		door.Shutdown(ctx)
	})
	e := newEnv(t, map[string]string{"a@example.org": "next_hop = \"lmtp:inet:" + ln.Addr().String() + "\"\n"}, nil)
	e.deliver("", "a+tok@example.org", post)
	var files []string
	waitFor(t, "the message in the second spool", func() bool {
		files, _ = filepath.Glob(filepath.Join(spool2, "example.org", "a", "post", "new", "*"))
		return len(files) == 1
	})
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"Return-Path: <>\n", "Delivered-To: a+tok@example.org\n", "X-MailFrom: <>\n",
		"by second.test (listgate)", "by lg.test (listgate)", "\nFrom: anne@example.net\nSubject: hello\n\nbody line\n.starts with a dot\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("the second spool's file lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "\nMessage-ID-Hash:"); n != 1 {
		t.Errorf("%d Message-ID-Hash fields, want 1:\n%s", n, s)
	}
	if n := strings.Count(s, "Return-Path:"); n != 1 {
		t.Errorf("%d Return-Path fields, want 1:\n%s", n, s)
	}
}

// TestLongLines: a line of 2500 octets reaches the next hop broken into
// lines of at most 998 octets, as Postfix's lmtp(8) breaks it: CRLF and a
// space after 998 octets, then after each 997; a line of exactly 998
// octets is left alone.
func TestLongLines(t *testing.T) {
	hop := startHop(t, nil)
	e := newEnv(t, map[string]string{"a@example.org": fmt.Sprintf("next_hop = %q\n", hop.hop())}, nil)
	long, exact := strings.Repeat("x", 2500), strings.Repeat("y", 998)
	e.deliver("anne@example.net", "a@example.org", "Subject: long\r\n\r\n"+long+"\r\n"+exact+"\r\n")
	waitFor(t, "taken", func() bool { return len(hop.taken()) == 1 })
	d := hop.taken()[0].data
	for _, l := range strings.Split(d, "\r\n") {
		if len(l) > MaxLineLength {
			t.Errorf("a line of %d octets reached the next hop", len(l))
		}
	}
	want := strings.Repeat("x", 998) + "\r\n " + strings.Repeat("x", 997) + "\r\n " + strings.Repeat("x", 505) + "\r\n" + exact + "\r\n"
	if !strings.HasSuffix(d, want) {
		t.Errorf("the body is not broken as Postfix breaks it")
	}
}

// TestOtherListsGoOn: a next hop that is down (connection refused) holds
// only its own lists: another list's mail drains, and the number of
// forwards per second is logged for the note. The down hop's backlog and
// failing time show in the metrics and in NotReady.
func TestOtherListsGoOn(t *testing.T) {
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := down.Addr().String()
	down.Close() // nothing listens: connection refused
	hop := startHop(t, nil)
	e := newEnv(t, map[string]string{
		"stuck@example.org": "next_hop = \"lmtp:inet:" + downAddr + "\"\n",
		"live@example.org":  fmt.Sprintf("next_hop = %q\n", hop.hop()),
	}, func(o *Options) { o.UnreadyAfter = 50 * time.Millisecond; o.Concurrency = 1 })
	for i := range 20 {
		e.deliver("anne@example.net", "stuck@example.org", fmt.Sprintf("Subject: %d\r\n\r\n", i))
	}
	start := time.Now()
	const n = 100
	for i := range n {
		e.deliver("anne@example.net", "live@example.org", fmt.Sprintf("Subject: %d\r\n\r\n", i))
	}
	waitFor(t, "the live list drained", func() bool { return len(hop.taken()) == n })
	took := time.Since(start)
	t.Logf("%d messages forwarded in %v (%.0f/s) while another next hop was down", n, took, n/took.Seconds())
	if e.count("stuck@example.org", "post", "new") != 20 {
		t.Errorf("the stuck list lost messages")
	}
	waitFor(t, "the down hop unready", func() bool { return len(e.f.NotReady()) == 1 })
	why := e.f.NotReady()[0]
	if !strings.Contains(why, "lmtp:inet:"+downAddr) || !strings.Contains(why, "connection refused") {
		t.Errorf("NotReady: %q", why)
	}
	waitFor(t, "the live list's new/ empty", func() bool { return e.count("live@example.org", "post", "new") == 0 })
	e.f.scan()
	if got := gauge(t, e, "listgate_forward_backlog", "lmtp:inet:"+downAddr); got != 20 {
		t.Errorf("backlog gauge %v, want 20", got)
	}
	if got := gauge(t, e, "listgate_forward_backlog", hop.hop()); got != 0 {
		t.Errorf("live backlog gauge %v, want 0", got)
	}
}

// TestShutdownWaitsForInFlight: Shutdown lets a forward in flight finish
// (the message is taken and leaves new/); with a deadline that passes
// first, it interrupts it, the message stays in new/ and Shutdown says
// so.
func TestShutdownWaitsForInFlight(t *testing.T) {
	for _, patient := range []bool{true, false} {
		t.Run(fmt.Sprint("patient=", patient), func(t *testing.T) {
			hop := startHop(t, nil)
			hold := make(chan struct{})
			hop.hold = hold
			e := newEnv(t, map[string]string{"a@example.org": fmt.Sprintf("next_hop = %q\n", hop.hop())}, nil)
			e.deliver("anne@example.net", "a@example.org", post)
			waitFor(t, "the forward in flight", func() bool { return inFlight(e) })
			timeout := 10 * time.Second
			if !patient {
				timeout = 50 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- e.f.Shutdown(ctx) }()
			if patient {
				select {
				case err := <-done:
					t.Fatalf("Shutdown returned %v with a forward in flight", err)
				case <-time.After(100 * time.Millisecond):
				}
			}
			var err error
			if patient {
				close(hold)
				err = <-done
			} else {
				err = <-done // the deadline passes while the next hop holds its reply
				close(hold)
			}
			if patient {
				if err != nil || e.count("a@example.org", "post", "new") != 0 || len(hop.taken()) != 1 {
					t.Errorf("Shutdown = %v; new/ holds %d; taken %d", err, e.count("a@example.org", "post", "new"), len(hop.taken()))
				}
			} else if err == nil || e.count("a@example.org", "post", "new") != 1 {
				t.Errorf("Shutdown = %v; new/ holds %d, want the message kept", err, e.count("a@example.org", "post", "new"))
			}
		})
	}
}

// inFlight reports whether a forward holds a slot of its next hop.
func inFlight(e *env) bool {
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	for _, h := range e.f.hops {
		if len(h.sem) > 0 {
			return true
		}
	}
	return false
}

// TestKeepAndNone: keep = true moves a forwarded message into cur/; a
// list whose next hop is none (the default) keeps its mail in new/; a
// domain file's next hop reaches its lists.
func TestKeepAndNone(t *testing.T) {
	hop := startHop(t, nil)
	e := newEnv(t, map[string]string{
		"@example.org":      fmt.Sprintf("next_hop = %q\nkeep = true\n", hop.hop()),
		"a@example.org":     "",
		"plain@example.com": "",
	}, nil)
	e.deliver("anne@example.net", "a@example.org", post)
	e.deliver("anne@example.net", "plain@example.com", post)
	waitFor(t, "taken", func() bool { return len(hop.taken()) == 1 })
	waitFor(t, "in cur/", func() bool { return e.count("a@example.org", "post", "cur") == 1 })
	e.f.scan()
	if e.count("plain@example.com", "post", "new") != 1 || len(hop.received()) != 1 {
		t.Errorf("a list without a next hop lost its mail or forwarded it")
	}
	st, err := Status(e.root, e.w.Snapshot(), lists.NextHop{})
	if err != nil || len(st) != 2 || st[0].List() != "a@example.org" || st[1].NextHop != "none" || st[1].Backlog != 1 {
		t.Errorf("Status = %+v, %v", st, err)
	}
}

// TestNotListgateFile: a file in new/ that listgate did not store is
// quarantined with the reason, not sent and not lost.
func TestNotListgateFile(t *testing.T) {
	hop := startHop(t, nil)
	e := newEnv(t, map[string]string{"a@example.org": fmt.Sprintf("next_hop = %q\n", hop.hop())}, nil)
	e.deliver("anne@example.net", "a@example.org", post)
	waitFor(t, "taken", func() bool { return len(hop.taken()) == 1 })
	if err := os.WriteFile(filepath.Join(e.folder("a@example.org", "post"), "new", "1.M1P1Q1R1.x,S=5"), []byte("From: x\n\nhi\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	e.f.scan()
	waitFor(t, "quarantined", func() bool { return e.count("a@example.org", "post", spool.QuarantineDir) == 1 })
	st, _ := Status(e.root, e.w.Snapshot(), lists.NextHop{})
	if r := st[0].Quarantine[0].Reason.Reply; !strings.Contains(r, "not a message listgate stored") {
		t.Errorf("reason %q", r)
	}
}

// gauge returns the gauge name{next_hop=hop} from the env's registry.
func gauge(t *testing.T, e *env, name, hop string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "next_hop" && l.GetValue() == hop {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{next_hop=%q}", name, hop)
	return 0
}

// TestRetryNowEndsTheBackoff: a message deferred with an hour's backoff
// goes as soon as RetryNow says its next hop is back (Mailman reachable
// again, SIGHUP), not an hour later.
func TestRetryNowEndsTheBackoff(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	hop := startHop(t, func(n int, g got) *smtp.SMTPError {
		if down.Load() {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "down"}
		}
		return nil
	})
	e := newEnv(t, map[string]string{"a@example.org": fmt.Sprintf("next_hop = %q\n", hop.hop())}, func(o *Options) {
		o.MinBackoff, o.MaxBackoff = time.Hour, time.Hour
	})
	e.deliver("anne@example.net", "a@example.org", "Subject: kept\r\n\r\n1\r\n")
	waitFor(t, "the first try deferred", func() bool {
		return testutil.ToFloat64(e.f.m.messages.WithLabelValues(hop.hop(), "deferred")) == 1
	})
	down.Store(false)
	e.f.RetryNow()
	waitFor(t, "the message forwarded after RetryNow", func() bool { return len(hop.taken()) == 1 })
}

// TestBacklogListedOnce: a folder with a backlog is listed when its
// worker starts, not once per message (that made draining n messages
// cost n listings of up to n names); mail delivered while it drains
// joins in order, each message goes exactly once, and mail for a list
// whose next hop is none starts no worker and lists nothing.
func TestBacklogListedOnce(t *testing.T) {
	hop := startHop(t, nil)
	var mu sync.Mutex
	listings := map[string]int{}
	e := newEnv(t, map[string]string{
		"busy@example.org": fmt.Sprintf("next_hop = %q\n", hop.hop()),
		"held@example.org": "next_hop = \"none\"\n",
	}, func(o *Options) {
		o.listed = func(folder string) { mu.Lock(); listings[folder]++; mu.Unlock() }
	})
	hold := make(chan struct{})
	hop.mu.Lock()
	hop.hold = hold
	hop.mu.Unlock()
	const first, more = 300, 100
	var want []string
	for i := range first {
		want = append(want, e.deliver("anne@example.net", "busy@example.org", fmt.Sprintf("Subject: %d\r\n\r\n", i)))
	}
	for i := range 50 {
		e.deliver("anne@example.net", "held@example.org", fmt.Sprintf("Subject: %d\r\n\r\n", i))
	}
	close(hold) // the next hop answers: the backlog drains while more arrives
	for i := range more {
		want = append(want, e.deliver("anne@example.net", "busy@example.org", fmt.Sprintf("Subject: %d\r\n\r\n", first+i)))
	}
	waitFor(t, "every message taken", func() bool { return len(hop.taken()) >= first+more })
	waitFor(t, "busy's new/ empty", func() bool { return e.count("busy@example.org", "post", "new") == 0 })
	for i, g := range hop.taken() {
		if wantSubj := fmt.Sprintf("Subject: %d\r\n", i); !strings.Contains(g.data, wantSubj) {
			t.Fatalf("transaction %d is not message %d (out of order or twice):\n%s", i, i, g.data)
		}
	}
	// A late announcement of a message already forwarded sends nothing.
	e.f.Notify(filepath.Join(e.folder("busy@example.org", "post"), "new", want[0]))
	waitFor(t, "the worker idle", func() bool {
		e.f.mu.Lock()
		defer e.f.mu.Unlock()
		return len(e.f.workers) == 0
	})
	if n := len(hop.received()); n != first+more {
		t.Errorf("the next hop got %d transactions, want %d", n, first+more)
	}
	if n := testutil.ToFloat64(e.f.m.messages.WithLabelValues(hop.hop(), "forwarded")); n != first+more {
		t.Errorf("forwarded counter %v, want %d", n, first+more)
	}
	mu.Lock()
	defer mu.Unlock()
	// The worker lists when it starts; one that finishes while mail is
	// still being delivered is replaced, so allow a few — not one per
	// message.
	if n := listings[e.folder("busy@example.org", "post")]; n < 1 || n > 10 {
		t.Errorf("busy's new/ listed %d times for %d messages, want 1–10", n, first+more)
	}
	if n := listings[e.folder("held@example.org", "post")]; n != 0 {
		t.Errorf("held's new/ listed %d times, want 0 (its next hop is none)", n)
	}
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	if st := e.f.folders[e.folder("held@example.org", "post")]; st == nil || st.backlog != 50 || st.hop != "" {
		t.Errorf("held's folder state %+v, want a backlog of 50 and no next hop", st)
	}
}

func TestAddNames(t *testing.T) {
	n := func(secs, q int) string { return fmt.Sprintf("%d.M1P1Q%d.host,S=10", secs, q) }
	tests := []struct {
		names, added, want []string
	}{
		{nil, nil, nil},
		{nil, []string{n(2, 1), n(1, 1)}, []string{n(1, 1), n(2, 1)}},
		{[]string{n(1, 1), n(3, 1)}, []string{n(4, 1)}, []string{n(1, 1), n(3, 1), n(4, 1)}},
		{[]string{n(1, 1), n(3, 1)}, []string{n(2, 1)}, []string{n(1, 1), n(2, 1), n(3, 1)}},
		{[]string{n(1, 1), n(3, 1)}, []string{n(3, 1), n(1, 1)}, []string{n(1, 1), n(3, 1)}},
		{[]string{n(5, 1)}, []string{n(5, 2), n(5, 10), n(5, 3)}, []string{n(5, 1), n(5, 2), n(5, 3), n(5, 10)}},
	}
	for _, tt := range tests {
		got := addNames(slices.Clone(tt.names), tt.added)
		if !slices.Equal(got, tt.want) {
			t.Errorf("addNames(%q, %q) = %q, want %q", tt.names, tt.added, got, tt.want)
		}
	}
}
