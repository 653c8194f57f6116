package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/daemontest"
	"github.com/listgate/listgate/internal/postfixtest"
	"github.com/listgate/listgate/internal/testutil"
)

// Issue 9: Postfix's other doors. Each setup is one listgate and one
// private Postfix, shared by the subtests, which run in order (the last
// one stops listgate).

// doorSetup is one way of having Postfix ask listgate at RCPT TO without
// (or besides) the milter.
type doorSetup struct {
	name string
	// door is the door Postfix asks about each recipient: "milter",
	// "policy" (check_policy_service) or "socketmap" (relay_domains,
	// relay_recipient_maps, transport_maps and virtual_alias_maps).
	door string
	// aliases: listgate's socketmap door is on too, for
	// virtual_alias_maps only (postmaster@ and abuse@); with the
	// socketmap door it always is.
	aliases bool
	// contrib: contrib/postfix's snippet for the door, with the test's
	// addresses put in by postfixtest; otherwise `listgate postfix --door`
	// output, pasted unchanged.
	contrib bool
}

// startDoor brings up listgate with the LMTP door and the doors s needs
// (and no other: no milter unless s.door is "milter"), and a Postfix in
// front of it configured as s says, with the list files (name -> content)
// in a new lists directory.
func startDoor(t *testing.T, s doorSetup, files map[string]string) *env {
	t.Helper()
	postfixtest.Require(t)
	dir := t.TempDir()
	for name, content := range files {
		writeList(t, dir, name, content)
	}
	e := &env{setup: setup{name: s.name, generated: !s.contrib}, lists: dir, spool: t.TempDir()}
	doors := []string{"lmtp", s.door}
	args := []string{"--lists", e.lists, "--spool", e.spool, "--lmtp", "inet:127.0.0.1:0"}
	for _, d := range []string{"milter", "policy", "socketmap"} {
		switch {
		case d == s.door:
			args = append(args, "--"+d, "inet:127.0.0.1:0")
		case d == "socketmap" && s.aliases:
			args = append(args, "--"+d, "inet:127.0.0.1:0")
			doors = append(doors, d)
		default:
			args = append(args, "--"+d+"=") // off: no default port
		}
	}
	e.lg = daemontest.Start(t, doors, args...)
	e.lgFlags = []string{"--lists", e.lists}
	for _, d := range []string{"lmtp", "milter", "policy", "socketmap"} {
		e.lgFlags = append(e.lgFlags, "--"+d+"="+e.lg.Addr(d))
	}
	e.addrLMTP, e.addrMilt = e.lg.Addr("lmtp"), e.lg.Addr("milter")

	var opts postfixtest.Options
	switch {
	case !s.contrib:
		e.snippet = e.generate(t, append([]string{"--door", s.door}, e.lgFlags...)...)
		opts.Snippet = e.snippet
	case s.door == "policy":
		opts = postfixtest.Options{Snippet: "main.cf.policy", LMTP: e.addrLMTP, Policy: e.lg.Addr("policy"), Domains: servedDomains(t, e.lists)}
	case s.door == "socketmap":
		opts = postfixtest.Options{Snippet: "main.cf.socketmap", Socketmap: e.lg.Addr("socketmap")}
	default:
		t.Fatalf("no contrib snippet for door %s", s.door)
	}
	if s.contrib {
		e.snippet = opts.Snippet
	}
	e.pf = postfixtest.Start(t, opts)
	t.Logf("Postfix %s with snippet %s; listgate %s", e.pf.SMTPAddr, e.snippet, strings.Join(e.lgFlags, " "))
	return e
}

// senders makes every sender address unique. smtpd(8) caches what
// trivial-rewrite(8) resolved per sender and recipient for the life of the
// process, a failed lookup included (docs/postfix-lookups.md, "Caching"):
// where a domain's answer changes, a test asks again with another sender,
// as a different sending MX would.
var senders atomic.Int64

func freshSender() string {
	return fmt.Sprintf("s%d@sender.example", senders.Add(1))
}

// rcptFrom is rcpt with the sender from.
func rcptFrom(t testing.TB, addr, from, to string) reply {
	t.Helper()
	return transact(t, addr, envelope{From: from, To: []string{to}}, false)[0]
}

// waitSpooledWith waits until a message in the list's kind folder holds
// every one of substrs and returns it.
func waitSpooledWith(t testing.TB, spool, list, kind string, substrs ...string) string {
	t.Helper()
	var found string
	if _, ok := testutil.Poll(wait, 10*time.Millisecond, func() bool {
		for _, m := range spooled(t, spool, list, kind) {
			all := true
			for _, s := range substrs {
				all = all && strings.Contains(m, s)
			}
			if all {
				found = m
				return true
			}
		}
		return false
	}); !ok {
		t.Fatalf("no message with %q in %s/%s/%s/new within %v; spool holds:\n%s", substrs, spool, list, kind, wait, tree(spool))
	}
	return found
}

// noBounce: the queue ends empty (a bounce would sit in it, deferred,
// since the instance delivers nowhere but listgate) and the log has no
// bounce.
func (e *env) noBounce(t *testing.T) {
	t.Helper()
	e.pf.WaitQueueEmpty(t, wait)
	for _, bounce := range []string{"sender non-delivery notification", "status=bounced", "from=<>"} {
		if strings.Contains(e.pf.Log(), bounce) {
			t.Errorf("Postfix log has %q: a bounce was generated", bounce)
		}
	}
}

// doorLists are the list files of the policy and socketmap setups:
// example.org's postmaster@ and abuse@ go to a list of example.net where
// listgate serves the aliases map (the socketmap setup), example.com sets
// nothing.
var doorLists = map[string]string{
	"announce@example.org":   "description = \"Announcements\"\n",
	"hostmaster@example.net": "description = \"where example.org's postmaster@ goes\"\n",
	"dev@example.com":        "",
}

// rolesFile is the domain file that sends example.org's postmaster@ and
// abuse@ to hostmaster@example.net.
const rolesFile = "postmaster = \"hostmaster@example.net\"\nabuse = \"hostmaster@example.net\"\n"

// TestPolicyDoor is issue 9's must-show 2 with the policy door alone
// (contrib/postfix/main.cf.policy: check_policy_service, static
// relay_domains, no milter, no socketmap), and 4 without a postmaster
// setting.
func TestPolicyDoor(t *testing.T) {
	t.Parallel()
	e := startDoor(t, doorSetup{name: "policy", door: "policy", contrib: true}, doorLists)
	e.door = "policy"
	e.bogusText = "Recipient address rejected: Requested action not taken: mailbox unavailable"
	t.Run("delivered to the spool", e.doorDelivered)
	t.Run("bogus refused at RCPT, no bounce", e.doorBogus)
	t.Run("not an open relay", e.doorNotOpenRelay)
	t.Run("lists live, no reload", e.doorLive)
	t.Run("postmaster without a setting refused, --check says so", e.postmasterUnset)
	t.Run("listgate down: 4xx", e.doorDown)
}

// TestSocketmapDoor is issue 9's must-show 2, 3 and 4 with the socketmap
// alone (contrib/postfix/main.cf.socketmap: relay_domains,
// relay_recipient_maps, transport_maps and virtual_alias_maps ask
// listgate; no milter, no policy service, no domain anywhere in main.cf).
func TestSocketmapDoor(t *testing.T) {
	t.Parallel()
	files := map[string]string{"@example.org": rolesFile}
	for k, v := range doorLists {
		files[k] = v
	}
	e := startDoor(t, doorSetup{name: "socketmap", door: "socketmap", contrib: true}, files)
	e.door = "socketmap"
	e.bogusText = "Recipient address rejected: User unknown in relay recipient table"
	t.Run("delivered to the spool", e.doorDelivered)
	t.Run("bogus refused at RCPT, no bounce", e.doorBogus)
	t.Run("not an open relay", e.doorNotOpenRelay)
	t.Run("lists live, no reload", e.doorLive)
	t.Run("removed domain refused at RCPT, no bounce", e.removedDomain)
	t.Run("postmaster reaches its target", e.postmaster)
	t.Run("postmaster without a setting refused, --check says so", e.postmasterUnset)
	t.Run("listgate down: 4xx", e.doorDown)
}

// TestPostmaster is issue 9's must-show 4 with the milter and with the
// policy door, each with listgate's socketmap aliases map as
// virtual_alias_maps (`listgate postfix --door milter|policy` output with
// --socketmap on); TestSocketmapDoor covers the socketmap alone.
func TestPostmaster(t *testing.T) {
	t.Parallel()
	files := map[string]string{"@example.org": rolesFile}
	for k, v := range doorLists {
		files[k] = v
	}
	for _, s := range []doorSetup{
		{name: "milter+aliases", door: "milter", aliases: true},
		{name: "policy+aliases", door: "policy", aliases: true},
	} {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			e := startDoor(t, s, files)
			e.door = s.door
			t.Run("postmaster reaches its target", e.postmaster)
			t.Run("postmaster without a setting refused, --check says so", e.postmasterUnset)
			if s.door == "policy" {
				t.Run("listgate down: 4xx", e.doorDown)
			}
		})
	}
}

// rcptLogged waits for the line listgate's RCPT-time door logs about to
// with verdict; the socketmap's recipients map gets the address as smtpd
// lower-cased it.
func (e *env) rcptLogged(t *testing.T, to, verdict string) {
	t.Helper()
	if e.door == "socketmap" {
		e.lg.WaitLog(t, "door=socketmap", rcptAttr(strings.ToLower(to)), "verdict="+verdict, "map=recipients")
		return
	}
	e.lg.WaitLog(t, "door="+e.door, rcptAttr(to), "verdict="+verdict)
}

// 2. Mail to a list, to a sub-address of it in another case, and to a VERP
// -bounces+... address is accepted at RCPT, delivered over LMTP and in the
// right Maildir, as the client wrote the address.
func (e *env) doorDelivered(t *testing.T) {
	addr := e.pf.SMTPAddr
	const verp = "announce-bounces+alice=sender.example@example.org"
	for _, c := range []struct{ kind, rcpt string }{
		{"post", "announce@example.org"},
		{"post", "Announce+ext@Example.ORG"},
		{"bounces", verp},
	} {
		send(t, addr, c.rcpt)
		m := waitSpooled(t, e.spool, "announce@example.org", c.kind, c.rcpt)
		if !strings.Contains(m, "\nX-MailFrom: alice@sender.example\n") {
			t.Errorf("%s/%s: listgate's headers missing:\n%s", c.kind, c.rcpt, m)
		}
		line := e.pf.WaitLog(t, "to=<"+c.rcpt+">, relay=", wait)
		if !strings.Contains(line, "status=sent (250 2.1.5 <"+c.rcpt+"> Ok)") {
			t.Errorf("Postfix log: %s", line)
		}
		e.rcptLogged(t, c.rcpt, "accept")
		e.lg.WaitLog(t, "door=lmtp", rcptAttr(c.rcpt), "verdict=accept")
	}
	if exit, out := swaks(t, addr, "announce-request@example.org"); exit != 0 || !strings.Contains(out, "<-  250 2.0.0 Ok: queued as ") {
		t.Fatalf("swaks: exit %d\n%s", exit, out)
	}
	waitSpooled(t, e.spool, "announce@example.org", "request", "announce-request@example.org")
	e.noBounce(t)
}

// 2. Bogus list addresses and sub-addresses get 550 5.1.1 at RCPT TO from
// Postfix, each client sees it, and nothing is queued or bounced; in a
// transaction with a good recipient too, the good one gets the message.
func (e *env) doorBogus(t *testing.T) {
	addr := e.pf.SMTPAddr
	for _, to := range []string{"nosuchlist@example.org", "nosuchlist-request@example.org", "announce-nosuch@example.org", "Bogus+x@Example.ORG"} {
		want := "<" + to + ">: " + e.bogusText
		if r := rcpt(t, addr, to); !r.is("RCPT", 550, "5.1.1") || r.Text != want {
			t.Errorf("<%s>: %v, want RCPT: 550 5.1.1 %s", to, r, want)
		}
		line := e.pf.WaitLog(t, "to=<"+to+">", wait)
		if !strings.Contains(line, "NOQUEUE: reject: RCPT from ") || !strings.Contains(line, ": 550 5.1.1 "+want+"; from=<alice@sender.example>") {
			t.Errorf("Postfix log: %s", line)
		}
		e.rcptLogged(t, to, "unknown")
	}
	if exit, out := swaks(t, addr, "bogus@example.org"); exit != 24 || !strings.Contains(out, "<** 550 5.1.1 ") {
		t.Errorf("swaks to a bogus list: exit %d, want 24 (no recipient accepted)\n%s", exit, out)
	}
	if got := python(t, addr, "bogus-owner@example.org"); got != "RCPT 550 5.1.1 <bogus-owner@example.org>: "+e.bogusText {
		t.Errorf("smtplib to a bogus sub-address: %s", got)
	}
	rs := transact(t, addr, envelope{From: "alice@sender.example", To: []string{"nosuchlist@example.org", "announce-owner@example.org"}}, true)
	if len(rs) != 3 || !rs[0].is("RCPT", 550, "5.1.1") || rs[1].Code != 250 || !rs[2].is("DATA", 250, "") {
		t.Fatalf("mixed transaction: %v", rs)
	}
	waitSpooled(t, e.spool, "announce@example.org", "owner", "announce-owner@example.org")
	e.noBounce(t)
}

// 2. Not an open relay: a client outside mynetworks (the instance's is
// empty) gets 554 5.7.1 for a foreign domain, a subdomain of a list domain
// and source-routed forms through a list domain. The policy service is not
// even asked (smtpd_relay_restrictions come first); the socketmap is asked
// which domains it serves, and says not these.
func (e *env) doorNotOpenRelay(t *testing.T) {
	addr := e.pf.SMTPAddr
	for _, to := range []string{"victim@foreign.example", "x@sub.example.org", "victim%foreign.example@example.org", "foreign.example!victim@example.org"} {
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
	switch e.door {
	case "policy":
		if strings.Contains(e.lg.Log(), "foreign.example") {
			t.Errorf("listgate was asked about a foreign domain:\n%s", e.lg.Log())
		}
	case "socketmap":
		for _, d := range []string{"foreign.example", "sub.example.org"} {
			e.lg.WaitLog(t, "door=socketmap", "map=domains", "key="+d+" ", "answer=\"NOTFOUND \"")
		}
	}
	e.noBounce(t)
}

// 2. A list file added while everything runs makes its address accepted
// through Postfix, in a domain already served and (socketmap) in a new
// one; removing it makes it refused again. Postfix is not reloaded, no
// table is rebuilt: its master(8) and main.cf stay as they were.
func (e *env) doorLive(t *testing.T) {
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
	type step struct {
		to      string
		refused string // the refusal before the file and after its removal
	}
	steps := []step{{"live@example.org", "550 5.1.1"}}
	if e.door == "socketmap" {
		steps = append(steps, step{"news@new.example", "554 5.7.1"})
	}
	for _, s := range steps {
		code, enh, _ := strings.Cut(s.refused, " ")
		refused := func(r reply) bool { return r.is("RCPT", atoi(code), enh) }
		if r := rcptFrom(t, addr, freshSender(), s.to); !refused(r) {
			t.Fatalf("<%s> before its file exists: %v, want %s", s.to, r, s.refused)
		}
		writeList(t, e.lists, s.to, "")
		took := testutil.WaitFor(t, 3*time.Second, "250 for <"+s.to+"> after adding its file", func() bool {
			return rcptFrom(t, addr, freshSender(), s.to).Code == 250
		})
		t.Logf("<%s>: file added, accepted through Postfix after %v", s.to, took.Round(time.Millisecond))
		local, domain, _ := strings.Cut(s.to, "@")
		send(t, addr, local+"-request@"+domain)
		waitSpooled(t, e.spool, s.to, "request", local+"-request@"+domain)

		if err := os.Remove(filepath.Join(e.lists, s.to)); err != nil {
			t.Fatal(err)
		}
		took = testutil.WaitFor(t, 3*time.Second, s.refused+" for <"+s.to+"> after removing its file", func() bool {
			return refused(rcptFrom(t, addr, freshSender(), s.to))
		})
		t.Logf("<%s>: file removed, refused (%s) through Postfix after %v", s.to, s.refused, took.Round(time.Millisecond))
	}
	if now, err := os.ReadFile(pidFile); err != nil || string(now) != string(pid) {
		t.Errorf("Postfix's master(8) changed: pid %q, then %q (%v)", pid, now, err)
	}
	if after, err := os.Stat(mainCF); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("main.cf was touched")
	}
	if log := e.pf.Log(); strings.Contains(log, "reload") || strings.Contains(log, "postmap") {
		t.Errorf("Postfix was reloaded or a table rebuilt:\n%s", log)
	}
	e.noBounce(t)
}

// rcptAttr is the rcpt attribute of listgate's log lines for address a,
// as log/slog's text handler writes it: quoted if it holds '=', a space or
// a quote.
func rcptAttr(a string) string {
	if strings.ContainsAny(a, "= \"") {
		return "rcpt=" + strconv.Quote(a)
	}
	return "rcpt=" + a + " "
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// lgLogged reports whether a line of listgate's log so far has every one
// of substrs.
func lgLogged(d *daemon, substrs ...string) bool {
	for _, line := range strings.Split(d.Log(), "\n") {
		all := true
		for _, s := range substrs {
			all = all && strings.Contains(line, s)
		}
		if all {
			return true
		}
	}
	return false
}

// 3. The removed domain: with relay_domains asked of listgate's socketmap,
// removing a domain's last list file makes Postfix refuse the domain at
// RCPT TO. A sender that smtpd resolved the address for before gets 550
// 5.1.1 from relay_recipient_maps (smtpd's resolve cache still counts it a
// relay domain), any other 554 5.7.1 from relay_domains; nothing is
// accepted, so nothing reaches listgate's LMTP door to be refused there,
// and nothing is bounced.
func (e *env) removedDomain(t *testing.T) {
	addr := e.pf.SMTPAddr
	const to = "news@old.example"
	writeList(t, e.lists, to, "")
	testutil.WaitFor(t, 3*time.Second, "250 for <"+to+">", func() bool {
		return rcptFrom(t, addr, freshSender(), to).Code == 250
	})
	const before = "before@sender.example" // resolved while the domain was served
	rs := transact(t, addr, envelope{From: before, To: []string{to}}, true)
	if len(rs) != 2 || rs[0].Code != 250 || !rs[1].is("DATA", 250, "") {
		t.Fatalf("to <%s> while served: %v", to, rs)
	}
	waitSpooled(t, e.spool, to, "post", to)

	if err := os.Remove(filepath.Join(e.lists, to)); err != nil {
		t.Fatal(err)
	}
	took := testutil.WaitFor(t, 3*time.Second, "554 5.7.1 for <"+to+"> once old.example has no list", func() bool {
		return rcptFrom(t, addr, freshSender(), to).is("RCPT", 554, "5.7.1")
	})
	t.Logf("last list file of old.example removed: refused through Postfix after %v", took.Round(time.Millisecond))
	if r := rcptFrom(t, addr, freshSender(), "postmaster@old.example"); !r.is("RCPT", 554, "5.7.1") || r.Text != "<postmaster@old.example>: Relay access denied" {
		t.Errorf("<postmaster@old.example>: %v, want 554 5.7.1 Relay access denied", r)
	}
	e.lg.WaitLog(t, "door=socketmap", "map=domains", "key=old.example ", "answer=\"NOTFOUND \"")
	for i := 0; i < 2; i++ { // whichever smtpd process answers
		rs := transact(t, addr, envelope{From: before, To: []string{to}}, true)
		if len(rs) != 1 || !(rs[0].is("RCPT", 550, "5.1.1") || rs[0].is("RCPT", 554, "5.7.1")) {
			t.Errorf("<%s> from <%s>, resolved before: %v, want 550 5.1.1 or 554 5.7.1 at RCPT", to, before, rs)
		}
	}
	if lgLogged(e.lg, "door=lmtp", rcptAttr(to), "verdict=not-served") || lgLogged(e.lg, "door=lmtp", rcptAttr(to), "verdict=unknown") {
		t.Errorf("Postfix accepted mail for the removed domain and listgate's LMTP refused it:\n%s", e.lg.Log())
	}
	e.noBounce(t)
}

// 4. postmaster@ and abuse@ of example.org, whose domain file names
// hostmaster@example.net, reach that address through Postfix: accepted at
// RCPT, rewritten by virtual_alias_maps (listgate's socketmap aliases
// map), delivered over LMTP into hostmaster@example.net's spool folder.
func (e *env) postmaster(t *testing.T) {
	addr := e.pf.SMTPAddr
	const target = "hostmaster@example.net"
	for _, to := range []string{"postmaster@example.org", "Abuse+x@Example.ORG"} {
		send(t, addr, to)
		waitSpooledWith(t, e.spool, target, "post", "Delivered-To: "+target+"\n", "\nTo: "+to+"\n")
		line := e.pf.WaitLog(t, "orig_to=<"+to+">", wait)
		if !strings.Contains(line, "to=<"+target+">, orig_to=<"+to+">, relay=") || !strings.Contains(line, "status=sent (250 2.1.5 <"+target+"> Ok)") {
			t.Errorf("Postfix log: %s", line)
		}
		e.lg.WaitLog(t, "door=socketmap", "map=aliases", rcptAttr(strings.ToLower(to)), "verdict=alias", "target="+target)
		if e.door != "socketmap" {
			e.lg.WaitLog(t, "door="+e.door, rcptAttr(to), "verdict=alias")
		}
	}
	e.lg.WaitLog(t, "door=lmtp", rcptAttr(target), "verdict=accept")
	if exit, out := swaks(t, addr, "Postmaster@Example.ORG"); exit != 0 {
		t.Errorf("swaks: exit %d\n%s", exit, out)
	}
	waitSpooledWith(t, e.spool, target, "post", "Delivered-To: "+target+"\n", "Subject: e2e via swaks")
	if strings.Contains(e.lg.Log(), "should have rewritten it") {
		t.Errorf("listgate's LMTP door got an address virtual_alias_maps should have rewritten:\n%s", e.lg.Log())
	}
	e.noBounce(t)
}

// 4. Without a setting in its domain file, postmaster@ of a list domain is
// refused as any unknown address is (550 5.1.1 at RCPT), and `listgate
// postfix --check` on the instance says so.
func (e *env) postmasterUnset(t *testing.T) {
	addr := e.pf.SMTPAddr
	unset := []string{"example.com", "example.net"}
	if _, err := os.Stat(filepath.Join(e.lists, "@example.org")); err != nil {
		unset = append(unset, "example.org") // no domain file at all
	}
	for _, d := range unset {
		to := "postmaster@" + d
		if r := rcpt(t, addr, to); !r.is("RCPT", 550, "5.1.1") {
			t.Errorf("<%s>: %v, want RCPT: 550 5.1.1", to, r)
		}
	}
	out, exit := e.check(t)
	t.Logf("listgate postfix --check: exit %d\n%s", exit, out)
	want := "postmaster@ of " + strings.Join(unset, ", ") + "; abuse@ of " + strings.Join(unset, ", ") + ": refused (550 5.1.1)"
	if exit != 0 || !strings.HasPrefix(out, "ok: ") || !strings.Contains(out, "\nnote: "+want+", as no list has the name and the domain file sets no address for it") {
		t.Errorf("--check: exit %d, want 0, an ok line and a note %q:\n%s", exit, want, out)
	}
	e.noBounce(t)
}

// 2. listgate down: every recipient of a list domain gets a 4xx at RCPT,
// never a 250 and never a 5xx, and nothing is queued; started again, a
// sender's next attempt is delivered. The policy door: smtpd cannot reach
// the policy service and applies smtpd_policy_service_default_action
// (451 4.3.5). The socketmap: the lookups fail, 451 4.3.0 Temporary
// lookup failure, also for addresses smtpd resolved before (the
// relay_recipient_maps lookup fails then).
func (e *env) doorDown(t *testing.T) {
	addr := e.pf.SMTPAddr
	const (
		policyDown = "451 4.3.5 <%s>: Recipient address rejected: Server configuration problem"
		lookupDown = "451 4.3.0 <%s>: Temporary lookup failure"
	)
	// wants are the replies listgate's absence may get for a recipient
	// from a sender smtpd resolved it for before (cached) or not.
	wants := func(cached bool) []string {
		switch {
		case e.door == "socketmap":
			return []string{lookupDown}
		case e.lg.Addr("socketmap") == "":
			return []string{policyDown}
		case cached:
			// Whether this smtpd process resolved it before decides
			// which lookup fails first.
			return []string{lookupDown, policyDown}
		}
		// virtual_alias_domains (by default $virtual_alias_maps) asks the
		// aliases map about the recipient's domain before anything else.
		return []string{lookupDown}
	}
	check := func(what, to string, cached bool, r reply, err error) {
		t.Helper()
		got := fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text)
		for _, w := range wants(cached) {
			if err == nil && r.Stage == "RCPT" && got == fmt.Sprintf(w, to) {
				return
			}
		}
		t.Errorf("%s while listgate is down: %v %v; want RCPT: one of %q", what, r, err, wants(cached))
	}
	if r := rcpt(t, addr, "announce@example.org"); r.Code != 250 {
		t.Fatalf("listgate up: %v", r)
	}
	open := dial(t, addr) // a session open when listgate stops
	defer open.Close()
	e.lg.Stop(t)

	r, err := toReply("MAIL", open.Mail("alice@sender.example", nil))
	if err != nil || r.Code != 250 {
		t.Fatalf("open session, MAIL FROM: %v %v", r, err)
	}
	r, err = toReply("RCPT", open.Rcpt("announce@example.org", nil))
	check("open session, RCPT TO:<announce@example.org>", "announce@example.org", true, r, err)
	open.Quit()

	// Each policy refusal takes smtpd about a second (it tries the
	// service twice, smtpd_policy_service_retry_delay apart): a few
	// addresses, from a sender smtpd resolved them for before (smtpd's
	// resolve cache) and, with a socketmap, from a new one.
	tos := []string{"Announce+ext@Example.ORG", "nosuchlist@example.org", "postmaster@example.org"}
	froms := []string{"alice@sender.example"}
	if e.lg.Addr("socketmap") != "" {
		froms = append(froms, freshSender())
	}
	for i, from := range froms {
		for _, to := range tos {
			r := rcptFrom(t, addr, from, to)
			check("<"+to+"> from <"+from+">", to, i == 0, r, nil)
		}
	}
	// A foreign domain: with a socketmap in relay_domains or
	// virtual_alias_domains, Postfix cannot tell whether it is listgate's
	// and tempfails it too; with the policy door alone, relay_domains is
	// static and smtpd refuses it as always.
	const foreign = "victim@foreign.example"
	wantForeign := fmt.Sprintf("451 4.3.0 <%s>: Temporary lookup failure", foreign)
	if e.lg.Addr("socketmap") == "" {
		wantForeign = fmt.Sprintf("554 5.7.1 <%s>: Relay access denied", foreign)
	}
	if r := rcptFrom(t, addr, freshSender(), foreign); fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text) != wantForeign {
		t.Errorf("<%s> while listgate is down: %v, want RCPT: %s", foreign, r, wantForeign)
	}
	if q := e.pf.Queue(t); len(q) != 0 {
		t.Fatalf("queue while listgate is down: %v", q)
	}

	e.lg.Restart(t)
	from := freshSender()
	testutil.WaitFor(t, wait, "250 after listgate's restart", func() bool {
		return rcptFrom(t, addr, from, "announce@example.org").Code == 250
	})
	rs := transact(t, addr, envelope{From: from, To: []string{"announce@example.org"}}, true)
	if len(rs) != 2 || rs[0].Code != 250 || !rs[1].is("DATA", 250, "") {
		t.Fatalf("after the restart: %v", rs)
	}
	waitSpooled(t, e.spool, "announce@example.org", "post", "announce@example.org")
	e.noBounce(t)
}
