package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/testutil"
)

// flowLists is the lists directory of TestFlow: one list.
var flowLists = map[string]string{
	"announce@example.org": "description = \"Announcements\"\n",
}

// TestFlow runs issue 4's must-show items 1 to 4 through a real Postfix in
// every setup: contrib/postfix's snippets (TCP; unix sockets with smtpd
// and lmtp chrooted) and `listgate postfix` output pasted unchanged (TCP;
// --unix, chrooted), which is must-show 8: the same steps pass on the
// generated configuration.
func TestFlow(t *testing.T) {
	t.Parallel()
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, s, flowLists)
			t.Logf("Postfix %s with snippet %s; listgate LMTP %s, milter %s", e.pf.SMTPAddr, e.snippet, e.addrLMTP, e.addrMilt)
			t.Run("1 delivered to the spool", e.delivered)
			t.Run("2 bogus refused at RCPT, no bounce", e.bogusRefused)
			t.Run("3 not an open relay", e.notOpenRelay)
			t.Run("4 lists live, no reload", e.live)
			t.Run("check", e.checkClean)
			t.Run("subdomain", e.subdomain)
		})
	}
}

// 1. Mail to a list, its -request and a VERP -bounces+... address, each
// sent by another SMTP client, is delivered over LMTP into the right
// Maildir.
func (e *env) delivered(t *testing.T) {
	addr := e.pf.SMTPAddr
	send(t, addr, "announce@example.org")
	if exit, out := swaks(t, addr, "announce-request@example.org"); exit != 0 || !strings.Contains(out, "<-  250 2.0.0 Ok: queued as ") {
		t.Fatalf("swaks: exit %d\n%s", exit, out)
	}
	const verp = "announce-bounces+alice=sender.example@example.org"
	if got := python(t, addr, verp); got != "250" {
		t.Fatalf("smtplib to <%s>: %s", verp, got)
	}
	for _, c := range []struct{ kind, rcpt string }{
		{"post", "announce@example.org"},
		{"request", "announce-request@example.org"},
		{"bounces", verp},
	} {
		m := waitSpooled(t, e.spool, "announce@example.org", c.kind, c.rcpt)
		if !strings.Contains(m, "\nX-MailFrom: alice@sender.example\n") || !strings.Contains(m, "\nReceived: from ") {
			t.Errorf("%s/%s: listgate's headers missing:\n%s", c.kind, c.rcpt, m)
		}
		// Both sides say so: Postfix's lmtp(8) got listgate's 250 for
		// the recipient, and listgate logged the verdict at each door.
		line := e.pf.WaitLog(t, "to=<"+c.rcpt+">, relay=", wait)
		if !strings.Contains(line, "status=sent (250 2.1.5 <"+c.rcpt+"> Ok)") {
			t.Errorf("Postfix log: %s", line)
		}
		e.lg.WaitLog(t, "door=milter", c.rcpt, "verdict=accept")
		e.lg.WaitLog(t, "door=lmtp", c.rcpt, "verdict=accept")
	}
	if m := waitSpooled(t, e.spool, "announce@example.org", "bounces", verp); !strings.Contains(m, "Subject: e2e via smtplib") {
		t.Errorf("the VERP message is not smtplib's:\n%s", m)
	}
	e.pf.WaitQueueEmpty(t, wait)
}

// 2. A bogus list address and bogus sub-addresses get 550 5.1.1 at RCPT
// TO, as each client sees it. Nothing is queued for them, and Postfix
// never generates a bounce: the queue ends empty (a bounce would sit in it,
// deferred, since the instance delivers nowhere but listgate) and the log
// has no bounce.
func (e *env) bogusRefused(t *testing.T) {
	addr := e.pf.SMTPAddr
	const text = "Requested action not taken: mailbox unavailable"
	for _, to := range []string{"nosuchlist@example.org", "nosuchlist-request@example.org", "announce-nosuch@example.org"} {
		if r := rcpt(t, addr, to); !r.is("RCPT", 550, "5.1.1") || r.Text != text {
			t.Errorf("<%s>: %v, want RCPT: 550 5.1.1 %s", to, r, text)
		}
		line := e.pf.WaitLog(t, "to=<"+to+">", wait)
		if !strings.Contains(line, "NOQUEUE: milter-reject: RCPT from ") || !strings.Contains(line, ": 550 5.1.1 "+text+"; from=<alice@sender.example>") {
			t.Errorf("Postfix log: %s", line)
		}
		e.lg.WaitLog(t, "door=milter", "rcpt="+to, "verdict=unknown")
	}
	if exit, out := swaks(t, addr, "bogus@example.org"); exit != 24 || !strings.Contains(out, "<** 550 5.1.1 "+text) {
		t.Errorf("swaks to a bogus list: exit %d, want 24 (no recipient accepted)\n%s", exit, out)
	}
	if got := python(t, addr, "bogus-owner@example.org"); got != "RCPT 550 5.1.1 "+text {
		t.Errorf("smtplib to a bogus sub-address: %s", got)
	}

	// One message to a list and a bogus address: the list gets it, the
	// bogus address was refused in the dialogue; no bounce either.
	rs := transact(t, addr, envelope{From: "alice@sender.example", To: []string{"nosuchlist@example.org", "announce-owner@example.org"}}, true)
	if len(rs) != 3 || !rs[0].is("RCPT", 550, "5.1.1") || rs[1].Code != 250 || !rs[2].is("DATA", 250, "") {
		t.Fatalf("mixed transaction: %v", rs)
	}
	waitSpooled(t, e.spool, "announce@example.org", "owner", "announce-owner@example.org")

	e.pf.WaitQueueEmpty(t, wait)
	for _, bounce := range []string{"sender non-delivery notification", "status=bounced", "from=<>"} {
		if strings.Contains(e.pf.Log(), bounce) {
			t.Errorf("Postfix log has %q: a bounce was generated", bounce)
		}
	}
}

// 3. Postfix with these snippets relays nothing but the list domains: a
// foreign domain, and source-routed forms through a list domain, are
// refused at RCPT before listgate is even asked.
func (e *env) notOpenRelay(t *testing.T) {
	addr := e.pf.SMTPAddr
	for _, to := range []string{"victim@foreign.example", "victim%foreign.example@example.org", "foreign.example!victim@example.org"} {
		r := rcpt(t, addr, to)
		if !r.is("RCPT", 554, "5.7.1") || r.Text != "<"+to+">: Relay access denied" {
			t.Errorf("<%s>: %v, want RCPT: 554 5.7.1 <%s>: Relay access denied", to, r, to)
		}
		line := e.pf.WaitLog(t, "to=<"+to+">", wait)
		if !strings.Contains(line, "NOQUEUE: reject: RCPT from ") || !strings.Contains(line, "Relay access denied") {
			t.Errorf("Postfix log: %s", line)
		}
	}
	if got := python(t, addr, "victim@foreign.example"); got != "RCPT 554 5.7.1 <victim@foreign.example>: Relay access denied" {
		t.Errorf("smtplib: %s", got)
	}
	if strings.Contains(e.lg.Log(), "foreign.example") {
		t.Errorf("listgate was asked about a foreign domain:\n%s", e.lg.Log())
	}
	if q := e.pf.Queue(t); len(q) != 0 {
		t.Errorf("queue: %v", q)
	}
}

// 4. A list file added while everything runs makes its address accepted
// through Postfix within a second; removing it makes it refused again.
// Postfix is not reloaded and no table is rebuilt: its master(8) process
// and main.cf stay as they were.
func (e *env) live(t *testing.T) {
	addr := e.pf.SMTPAddr
	pidFile := filepath.Join(e.pf.QueueDir, "pid", "master.pid")
	pid, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	mainCF := filepath.Join(e.pf.ConfigDir, "main.cf")
	before, err := os.Stat(mainCF)
	if err != nil {
		t.Fatal(err)
	}
	const to = "live@example.org"
	if r := rcpt(t, addr, to); !r.is("RCPT", 550, "5.1.1") {
		t.Fatalf("<%s> before its file exists: %v", to, r)
	}

	writeList(t, e.lists, to, "")
	took := testutil.WaitFor(t, time.Second, "250 for <"+to+"> after adding its file", func() bool {
		return rcpt(t, addr, to).Code == 250
	})
	t.Logf("list file added: accepted through Postfix after %v", took.Round(time.Millisecond))
	send(t, addr, "live-request@example.org")
	waitSpooled(t, e.spool, to, "request", "live-request@example.org")

	if err := os.Remove(filepath.Join(e.lists, to)); err != nil {
		t.Fatal(err)
	}
	took = testutil.WaitFor(t, time.Second, "550 for <"+to+"> after removing its file", func() bool {
		return rcpt(t, addr, to).is("RCPT", 550, "5.1.1")
	})
	t.Logf("list file removed: refused through Postfix after %v", took.Round(time.Millisecond))

	if now, err := os.ReadFile(pidFile); err != nil || string(now) != string(pid) {
		t.Errorf("Postfix's master(8) changed: pid %q, then %q (%v)", pid, now, err)
	}
	if after, err := os.Stat(mainCF); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("main.cf was touched")
	}
	if log := e.pf.Log(); strings.Contains(log, "reload") || strings.Contains(log, "postmap") {
		t.Errorf("Postfix was reloaded or a table rebuilt:\n%s", log)
	}
	e.pf.WaitQueueEmpty(t, wait)
}

// `listgate postfix --check` on the instance's real "postconf -n" output:
// contrib's snippets and the generated configuration are both clean.
func (e *env) checkClean(t *testing.T) {
	out, exit := e.check(t)
	if exit != 0 || !strings.HasPrefix(out, "ok: stdin refuses bogus addresses of example.org") {
		t.Errorf("--check of %s: exit %d\n%s", e.snippet, exit, out)
	}
}

// A subdomain of a list domain, which listgate does not serve. Postfix's
// default parent_domain_matches_subdomains includes relay_domains, so
// without the snippets' parent_domain_matches_subdomains line Postfix would
// accept it, listgate's milter would let it pass as not its own, its LMTP
// sink would refuse it, and Postfix would bounce the message to the
// sender: backscatter. With the line, Postfix refuses the address itself.
func (e *env) subdomain(t *testing.T) {
	const to = "x@sub.example.org"
	if r := rcpt(t, e.pf.SMTPAddr, to); !r.is("RCPT", 554, "5.7.1") {
		t.Errorf("<%s>: %v, want 554 5.7.1 Relay access denied", to, r)
	}
}
