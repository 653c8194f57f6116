package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/internal/daemontest"
	"github.com/listgate/listgate/internal/testutil"
)

// Issue 8, Must show 4: an exec next hop with real list managers from
// Debian, run by the real listgate binary. Mail goes in over LMTP (what
// Postfix would do adds nothing to the hand-off), out of the Maildir spool
// to the command the list file names, as docs/forwarding.md gives it.

// TestExecMlmmj: mlmmj behind listgate. A post reaches a real mlmmj list
// (its archive, and its subscriber through mlmmj's own SMTP client), with
// -F and without; a subscription goes round through listgate both ways
// (+subscribe, then the +confsub- reply); +owner mail reaches the owner
// from the original sender; a bounce from <> to mlmmj's +bounces- return
// path is recorded against the subscriber; exit 75 is tried again until the command
// takes the message, which it then has once; a real failure of
// mlmmj-receive (no such list directory: exit 1) is quarantined with its
// reason, shown by `listgate spool`, and `listgate spool retry` sends it
// again once the list file is fixed.
func TestExecMlmmj(t *testing.T) {
	t.Parallel()
	receive := tool(t, "mlmmj-receive", "mlmmj")
	makeML := tool(t, "mlmmj-make-ml", "mlmmj")
	sub := tool(t, "mlmmj-sub", "mlmmj")
	listSubs := tool(t, "mlmmj-list", "mlmmj")
	tempfail, err := filepath.Abs(filepath.Join("testdata", "tempfail.sh"))
	if err != nil {
		t.Fatal(err)
	}

	// mlmmj sends the list's mail over SMTP to its relayhost: the test's
	// server on loopback, never port 25.
	mta := startRelay(t)
	mlSpool := t.TempDir()
	announce := mlmmjList(t, makeML, mlSpool, "announce@example.org", mta.port)
	slow := mlmmjList(t, makeML, mlSpool, "slow@example.org", mta.port)
	typo := mlmmjList(t, makeML, mlSpool, "typo@example.org", mta.port)
	nofork := mlmmjList(t, makeML, mlSpool, "nofork@example.org", mta.port)
	for _, dir := range []string{announce, slow, typo, nofork} {
		run(t, "", sub, "-L", dir, "-a", "bob@subscriber.example", "-f", "-q", "-s")
	}

	// The line of docs/forwarding.md, with the test's spool directory.
	hop := "exec:" + receive + " -F -L " + mlSpool + "/{domain}/{local}"
	gate, runs := filepath.Join(t.TempDir(), "gate"), filepath.Join(t.TempDir(), "runs")
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	slowHop := "exec:/bin/sh " + tempfail + " " + gate + " " + runs + " " + receive + " -F -L " + slow
	// {list} where {local} was meant: no such directory.
	typoHop := "exec:" + receive + " -F -L " + mlSpool + "/{domain}/{list}"
	listsDir := t.TempDir()
	writeList(t, listsDir, "announce@example.org", "next_hop = \""+hop+"\"\n")
	writeList(t, listsDir, "slow@example.org", "next_hop = \""+slowHop+"\"\n")
	writeList(t, listsDir, "typo@example.org", "next_hop = \""+typoHop+"\"\n")
	// Without -F, mlmmj-receive exits once the message is in incoming/
	// and leaves the rest to a child of its own.
	writeList(t, listsDir, "nofork@example.org", "next_hop = \"exec:"+receive+" -L "+mlSpool+"/{domain}/{local}\"\n")
	lg := startForwarding(t, listsDir)

	t.Run("post", func(t *testing.T) {
		deliver(t, lg, "anne@example.net", "announce@example.org", "announce@example.org", "hello mlmmj", "")
		lg.WaitLog(t, "msg=forwarded", "list=announce@example.org", `reply="exit status 0"`)
		archived := waitArchived(t, announce, 1)
		if !strings.Contains(archived, "Subject: hello mlmmj\n") || !strings.Contains(archived, "\nhello mlmmj\n") {
			t.Errorf("mlmmj archived:\n%s", archived)
		}
		// mlmmj's own trace: it read the Delivered-To listgate put on top.
		if !strings.Contains(archived, "Delivered-To: announce@example.org\n") {
			t.Errorf("no Delivered-To in what mlmmj archived:\n%s", archived)
		}
		m := mta.wait(t, "the post sent by mlmmj to bob", func(m relayed) bool {
			return m.to == "bob@subscriber.example" && strings.Contains(m.data, "Subject: hello mlmmj")
		})
		if !strings.HasPrefix(m.from, "announce+bounces-") || !strings.HasSuffix(m.from, "@example.org") {
			t.Errorf("mlmmj's envelope sender for bob: %q, want its announce+bounces-... address", m.from)
		}
		waitGone(t, lg.spool, "announce@example.org", "post")
	})

	t.Run("no-F", func(t *testing.T) {
		deliver(t, lg, "anne@example.net", "nofork@example.org", "nofork@example.org", "hello nofork", "")
		lg.WaitLog(t, "msg=forwarded", "list=nofork@example.org", `reply="exit status 0"`)
		mta.wait(t, "the nofork post sent by mlmmj to bob", func(m relayed) bool {
			return m.to == "bob@subscriber.example" && strings.Contains(m.data, "Subject: hello nofork")
		})
		if archived := waitArchived(t, nofork, 1); !strings.Contains(archived, "Subject: hello nofork\n") {
			t.Errorf("mlmmj archived:\n%s", archived)
		}
		waitGone(t, lg.spool, "nofork@example.org", "post")
	})

	t.Run("subscribe", func(t *testing.T) {
		const carol = "carol@subscriber.example"
		deliver(t, lg, carol, "announce+subscribe@example.org", "announce+subscribe@example.org", "subscribe", "")
		confirm := mta.wait(t, "mlmmj's confirmation request to carol", func(m relayed) bool {
			return m.to == carol && confsubRE.MatchString(m.data)
		})
		addr := confsubRE.FindString(confirm.data)
		deliver(t, lg, carol, addr, addr, "Re: confirm", "")
		testutil.WaitFor(t, wait, carol+" subscribed to announce", func() bool {
			return strings.Contains(run(t, "", listSubs, "-L", announce), carol)
		})
		waitGone(t, lg.spool, "announce@example.org", "post")
	})

	t.Run("owner", func(t *testing.T) {
		deliver(t, lg, "dave@example.net", "announce+owner@example.org", "announce+owner@example.org", "for the owner", "")
		m := mta.wait(t, "the mail for announce's owner sent on by mlmmj", func(m relayed) bool {
			return m.to == "owner@example.org" && strings.Contains(m.data, "Subject: for the owner")
		})
		if m.from != "dave@example.net" {
			t.Errorf("mlmmj's envelope sender for the owner: %q, want the original dave@example.net", m.from)
		}
		waitGone(t, lg.spool, "announce@example.org", "post")
	})

	t.Run("bounce", func(t *testing.T) {
		// bob's MTA bounces the post: a DSN from the null sender to the
		// return path mlmmj gave bob's copy.
		m := mta.wait(t, "the post sent by mlmmj to bob", func(m relayed) bool {
			return m.to == "bob@subscriber.example" && strings.Contains(m.data, "Subject: hello mlmmj")
		})
		dsn := message("MAILER-DAEMON@subscriber.example", m.from, "Undelivered Mail Returned to Sender", "", "",
			"<bob@subscriber.example>: mailbox full")
		deliverMsg(t, lg, "", m.from, dsn)
		lg.WaitLog(t, "msg=forwarded", "list=announce@example.org", `rcpt="`+m.from+`"`, `from=""`)
		// mlmmj-bounce records it under bob's address, per message number.
		bounce := filepath.Join(announce, "bounce", "bob=subscriber.example")
		testutil.WaitFor(t, wait, bounce, func() bool {
			_, err := os.Stat(bounce)
			return err == nil
		})
		waitGone(t, lg.spool, "announce@example.org", "post")
	})

	t.Run("exit-75", func(t *testing.T) {
		deliver(t, lg, "anne@example.net", "slow@example.org", "slow@example.org", "slow post", "")
		// Tried, deferred, tried again after the backoff, deferred.
		testutil.WaitFor(t, wait, "two runs of the next hop", func() bool { return lines(t, runs) >= 2 })
		lg.WaitLog(t, "forward deferred", "list=slow@example.org", "exit status 75: tempfail.sh:")
		status := spoolStatus(t, lg)
		if !regexp.MustCompile(`(?m)^slow@example\.org +post +exec:/bin/sh \S+ .* +1 +\S+ +0$`).MatchString(status) {
			t.Errorf("listgate spool while deferred: want slow@example.org with a backlog of 1:\n%s", status)
		}
		if n := lg.metric(t, "listgate_forward_messages_total", slowHop, "deferred"); n < 1 {
			t.Errorf("deferred forwards counted: %v", n)
		}
		if _, err := os.Stat(filepath.Join(slow, "archive", "1")); err == nil {
			t.Fatal("mlmmj archived the post while the next hop said 75")
		}

		if err := os.Remove(gate); err != nil {
			t.Fatal(err)
		}
		lg.WaitLog(t, "msg=forwarded", "list=slow@example.org")
		waitArchived(t, slow, 1)
		mta.wait(t, "the slow post sent by mlmmj to bob", func(m relayed) bool {
			return m.to == "bob@subscriber.example" && strings.Contains(m.data, "Subject: slow post")
		})
		waitGone(t, lg.spool, "slow@example.org", "post")
		// Delivered exactly once: one successful run, after the deferred ones.
		n := lines(t, runs)
		deferred := lg.metric(t, "listgate_forward_messages_total", slowHop, "deferred")
		if forwarded := lg.metric(t, "listgate_forward_messages_total", slowHop, "forwarded"); forwarded != 1 || deferred != float64(n-1) {
			t.Errorf("%d runs of the next hop; metrics: %v deferred, %v forwarded; want %d and 1", n, deferred, forwarded, n-1)
		}
		if got := archivedCount(t, slow); got != 1 {
			t.Errorf("mlmmj archived %d messages, want 1", got)
		}
		if got := mta.count(func(m relayed) bool { return strings.Contains(m.data, "Subject: slow post") }); got != 1 {
			t.Errorf("mlmmj sent the slow post %d times, want 1", got)
		}
	})

	t.Run("exit-1", func(t *testing.T) {
		deliver(t, lg, "anne@example.net", "typo@example.org", "typo@example.org", "typo post", "")
		lg.WaitLog(t, "forward refused: quarantined", "list=typo@example.org", `reply="exit status 1"`)
		reason := waitQuarantined(t, lg.spool, "typo@example.org", "post")
		for _, want := range []string{"Next-Hop: " + typoHop + "\n", "Reply: exit status 1\n",
			"Sender: <anne@example.net>\n", "Recipient: typo@example.org\n"} {
			if !strings.Contains(reason, want) {
				t.Errorf("reason file lacks %q:\n%s", want, reason)
			}
		}
		status := spoolStatus(t, lg)
		if !regexp.MustCompile(`(?m)^typo@example\.org +post +exec:\S+ .* +0 +- +1$`).MatchString(status) ||
			!strings.Contains(status, "\nquarantined typo@example.org post ") ||
			!strings.Contains(status, "\n  reply:     exit status 1\n") ||
			!strings.Contains(status, "\n  envelope:  <anne@example.net> -> typo@example.org\n") {
			t.Errorf("listgate spool:\n%s", status)
		}
		if n := lg.metric(t, "listgate_forward_messages_total", typoHop, "quarantined"); n != 1 {
			t.Errorf("quarantined forwards counted: %v, want 1", n)
		}

		// Fixed, then put back: the daemon sends it at its next scan.
		gen := lg.generation(t)
		writeList(t, listsDir, "typo@example.org", "next_hop = \""+hop+"\"\n")
		testutil.WaitFor(t, wait, "the lists reloaded", func() bool { return lg.generation(t) > gen })
		out, stderr, exit := runListgate(t, "", "spool", "retry", "--config", os.DevNull,
			"--lists", listsDir, "--spool", lg.spool, "typo@example.org")
		if exit != 0 || out != "1 quarantined message(s) put back into new/\n" {
			t.Fatalf("listgate spool retry: exit %d\n%s%s", exit, out, stderr)
		}
		archived := waitArchived(t, typo, 1)
		if !strings.Contains(archived, "Subject: typo post\n") {
			t.Errorf("mlmmj archived:\n%s", archived)
		}
		waitGone(t, lg.spool, "typo@example.org", "post")
		if q := quarantined(t, lg.spool, "typo@example.org", "post"); len(q) != 0 {
			t.Errorf("quarantine after the retry: %v", q)
		}
		if got := archivedCount(t, typo); got != 1 {
			t.Errorf("mlmmj archived %d messages, want 1", got)
		}
	})
}

// TestExecPublicInbox: public-inbox behind listgate. public-inbox-mda, run
// as docs/forwarding.md says, puts a post into a v2 inbox; the same
// message forwarded again (at least once: after a crash it may be) is
// recognised and not stored twice; mail for the list's -request address
// is refused (exit 67: no inbox has that address) and an HTML post too
// (exit 65, and public-inbox-mda's words on standard error): both are
// quarantined with that reason.
func TestExecPublicInbox(t *testing.T) {
	t.Parallel()
	initPI := tool(t, "public-inbox-init", "public-inbox")
	mda := tool(t, "public-inbox-mda", "public-inbox")
	git := tool(t, "git", "git")
	envCmd := tool(t, "env", "coreutils")

	dir := t.TempDir()
	config, inbox, emergency := filepath.Join(dir, "config"), filepath.Join(dir, "meta"), filepath.Join(dir, "emergency")
	cmd := exec.Command(initPI, "-V2", "meta", inbox, "http://lists.example.org/meta", "meta@example.org")
	cmd.Env = append(os.Environ(), "PI_CONFIG="+config)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("public-inbox-init: %v\n%s", err, out)
	}
	// No SpamAssassin here: public-inbox-mda would exit 2 without spamc.
	run(t, "", git, "config", "--file", config, "publicinboxmda.spamcheck", "none")

	hop := "exec:" + envCmd + " PI_CONFIG=" + config + " PI_EMERGENCY=" + emergency + " " + mda + " --no-precheck"
	listsDir := t.TempDir()
	writeList(t, listsDir, "meta@example.org", "next_hop = \""+hop+"\"\nkeep = true\n")
	lg := startForwarding(t, listsDir)

	msgID := fmt.Sprintf("<%d.pi@example.net>", time.Now().UnixNano())
	inboxLog := func() string {
		return run(t, "", git, "--git-dir", filepath.Join(inbox, "git", "0.git"), "log", "--format=%s")
	}
	deliver(t, lg, "anne@example.net", "meta@example.org", "meta@example.org", "hello public-inbox", msgID)
	lg.WaitLog(t, "msg=forwarded", "list=meta@example.org", `reply="exit status 0"`)
	if got := inboxLog(); got != "hello public-inbox\n" {
		t.Fatalf("inbox commits: %q", got)
	}
	stored := run(t, "", git, "--git-dir", filepath.Join(inbox, "git", "0.git"), "show", "HEAD:m")
	for _, want := range []string{"Message-ID: " + msgID + "\n", "Subject: hello public-inbox\n", "\nhello public-inbox\n",
		"Received: from "} {
		if !strings.Contains(stored, want) {
			t.Errorf("the inbox's message lacks %q:\n%s", want, stored)
		}
	}
	waitGone(t, lg.spool, "meta@example.org", "post")

	// A forward repeated after a crash: the message is still in new/ and
	// goes again. (keep = true left it in cur/; put it back as a crash
	// would have left it.) public-inbox-mda takes it (exit 0) and does
	// not store it twice: it knows the Message-ID and the content.
	kept, err := filepath.Glob(filepath.Join(lg.spool, "example.org", "meta", "post", "cur", "*:2,"))
	if err != nil || len(kept) != 1 {
		t.Fatalf("cur/ after the forward: %v %v", kept, err)
	}
	name := strings.TrimSuffix(filepath.Base(kept[0]), ":2,")
	b, err := os.ReadFile(kept[0])
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(lg.spool, "example.org", "meta", "post", "tmp", name)
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(lg.spool, "example.org", "meta", "post", "new", name)); err != nil {
		t.Fatal(err)
	}
	lg.WaitLog(t, "msg=forwarded", "list=meta@example.org", "exit status 0: CONFLICT: Message-ID: "+msgID+" exists")
	if got := inboxLog(); got != "hello public-inbox\n" {
		t.Errorf("inbox commits after a second forward: %q", got)
	}
	// public-inbox-mda leaves the copy it did not store in its emergency
	// Maildir (docs/forwarding.md says so).
	if kept, _ := os.ReadDir(filepath.Join(emergency, "new")); len(kept) != 1 {
		t.Errorf("emergency Maildir after the second forward: %d message(s), want 1", len(kept))
	}

	// No inbox for meta-request@: public-inbox-mda exits 67 (EX_NOUSER).
	deliver(t, lg, "anne@example.net", "meta-request@example.org", "meta-request@example.org", "help", "")
	lg.WaitLog(t, "forward refused: quarantined", "list=meta@example.org", "kind=request", `reply="exit status 67"`)
	reason := waitQuarantined(t, lg.spool, "meta@example.org", "request")
	if !strings.Contains(reason, "Reply: exit status 67\n") || !strings.Contains(reason, "Recipient: meta-request@example.org\n") {
		t.Errorf("reason file:\n%s", reason)
	}
	status := spoolStatus(t, lg)
	if !strings.Contains(status, "\nquarantined meta@example.org request ") || !strings.Contains(status, "\n  reply:     exit status 67\n") {
		t.Errorf("listgate spool:\n%s", status)
	}
	if got := inboxLog(); got != "hello public-inbox\n" {
		t.Errorf("inbox commits after the -request mail: %q", got)
	}

	// HTML: public-inbox-mda's filter refuses it, exit 65 (EX_DATAERR),
	// and says why on standard error: the reason keeps its words.
	deliverMsg(t, lg, "anne@example.net", "meta@example.org", message("anne@example.net", "meta@example.org", "html", "",
		"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n", "<p>hello</p>"))
	const refusal = "exit status 65: *** We only accept plain-text mail, No HTML ***"
	lg.WaitLog(t, "forward refused: quarantined", "list=meta@example.org", "kind=post", refusal)
	reason = waitQuarantined(t, lg.spool, "meta@example.org", "post")
	if !strings.Contains(reason, "Reply: "+refusal+"\n") {
		t.Errorf("reason file:\n%s", reason)
	}
	if status := spoolStatus(t, lg); !strings.Contains(status, "\n  reply:     "+refusal+"\n") {
		t.Errorf("listgate spool:\n%s", status)
	}
	if got := inboxLog(); got != "hello public-inbox\n" {
		t.Errorf("inbox commits after the HTML mail: %q", got)
	}
}

// forwarding is a running listgate whose forwarder works on its spool.
type forwarding struct {
	*daemon
	lists, spool string
}

// startForwarding runs `listgate serve` on the lists directory with a new
// spool, its LMTP and metrics doors on loopback, no milter, and a scan of
// the spool every 200 ms, so mail put back by `listgate spool retry` goes
// out at once.
func startForwarding(t *testing.T, lists string) *forwarding {
	t.Helper()
	spool := t.TempDir()
	d := daemontest.Start(t, []string{"lmtp", "metrics"}, "--lists", lists, "--spool", spool,
		"--lmtp", "inet:127.0.0.1:0", "--milter", "", "--metrics", "inet:127.0.0.1:0",
		"--forward-scan-interval", "200ms")
	return &forwarding{daemon: d, lists: lists, spool: spool}
}

// deliver sends a plain-text message to listgate over LMTP (RFC 2033)
// and fails the test unless it is taken (250 after DATA). msgID "" makes
// one.
func deliver(t *testing.T, lg *forwarding, from, rcpt, to, subject, msgID string) {
	t.Helper()
	deliverMsg(t, lg, from, rcpt, message(from, to, subject, msgID, "", subject))
}

// message is a message with those fields and body; msgID "" makes one,
// extra (CRLF-terminated lines) goes at the end of the header.
func message(from, to, subject, msgID, extra, body string) string {
	if msgID == "" {
		msgID = fmt.Sprintf("<%d.e2e@example.net>", time.Now().UnixNano())
	}
	return fmt.Sprintf("From: <%s>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\nDate: %s\r\n%s\r\n%s\r\n",
		from, to, subject, msgID, time.Now().Format(time.RFC1123Z), extra, body)
}

// deliverMsg sends msg to listgate over LMTP for one recipient and fails
// the test unless it is taken.
func deliverMsg(t *testing.T, lg *forwarding, from, rcpt, msg string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(lg.Addr("lmtp"), "inet:"), wait)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(wait))
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mx.example.net"); err != nil {
		t.Fatalf("LHLO: %v", err)
	}
	if err := c.SendMail(from, []string{rcpt}, strings.NewReader(msg)); err != nil {
		t.Fatalf("LMTP delivery to <%s>: %v", rcpt, err)
	}
	c.Quit()
}

// spoolStatus is the output of `listgate spool` for lg's lists and spool.
func spoolStatus(t *testing.T, lg *forwarding) string {
	t.Helper()
	out, stderr, exit := runListgate(t, "", "spool", "--config", os.DevNull, "--lists", lg.lists, "--spool", lg.spool)
	if exit != 0 {
		t.Fatalf("listgate spool: exit %d\n%s", exit, stderr)
	}
	return out
}

// metric scrapes /metrics and returns the value of name for the next hop
// and result labels (0 when absent).
func (lg *forwarding) metric(t *testing.T, name, hop, result string) float64 {
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
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, `next_hop="`+hop+`"`) &&
			strings.Contains(line, `result="`+result+`"`) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

var generationRE = regexp.MustCompile(`msg="lists loaded" .*generation=(\d+)`)

// generation is the generation of the last lists snapshot listgate logged.
func (lg *forwarding) generation(t *testing.T) int {
	t.Helper()
	m := generationRE.FindAllStringSubmatch(lg.Log(), -1)
	if m == nil {
		t.Fatalf("listgate logged no lists loaded line:\n%s", lg.Log())
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// waitGone waits until the list's kind folder has nothing left in new/.
// (It lists new/ without reading the files, which the forwarder removes
// meanwhile.)
func waitGone(t *testing.T, spool, list, kind string) {
	t.Helper()
	local, domain, _ := strings.Cut(list, "@")
	dir := filepath.Join(spool, domain, local, kind, "new")
	testutil.WaitFor(t, wait, list+" "+kind+": new/ empty", func() bool {
		files, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		return len(files) == 0
	})
}

// quarantined lists the messages in the list's kind quarantine folder.
func quarantined(t *testing.T, spool, list, kind string) []string {
	t.Helper()
	local, domain, _ := strings.Cut(list, "@")
	files, err := filepath.Glob(filepath.Join(spool, domain, local, kind, "quarantine", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// waitQuarantined waits for one message and its reason file in the list's
// kind quarantine folder, and returns the reason.
func waitQuarantined(t *testing.T, spool, list, kind string) string {
	t.Helper()
	var reason string
	testutil.WaitFor(t, wait, list+" "+kind+": a message quarantined", func() bool {
		for _, f := range quarantined(t, spool, list, kind) {
			if strings.HasSuffix(f, ".reason") {
				if _, err := os.Stat(strings.TrimSuffix(f, ".reason")); err == nil {
					b, err := os.ReadFile(f)
					reason = string(b)
					return err == nil
				}
			}
		}
		return false
	})
	return reason
}

// run runs a command with stdin as its input and returns its standard
// output, failing the test unless it exits 0.
func run(t *testing.T, stdin, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// lines counts the lines of a file; a missing file has none.
func lines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// mlmmjList creates a real mlmmj list with mlmmj-make-ml, answering its
// questions (domain, owner, texts) on its standard input, in
// SPOOL/<domain>/<local> as docs/forwarding.md lays the lists out, and
// points its outgoing mail at port on loopback.
func mlmmjList(t *testing.T, makeML, spool, list string, port int) string {
	t.Helper()
	local, domain, _ := strings.Cut(list, "@")
	run(t, domain+"\nowner@"+domain+"\nen\n", makeML, "-L", local, "-s", filepath.Join(spool, domain))
	dir := filepath.Join(spool, domain, local)
	for name, value := range map[string]string{"relayhost": "127.0.0.1", "smtpport": strconv.Itoa(port)} {
		if err := os.WriteFile(filepath.Join(dir, "control", name), []byte(value+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(dir, "control", "listaddress")); err != nil || string(got) != list+"\n" {
		t.Fatalf("mlmmj-make-ml made the list %q (%v), want %s", got, err, list)
	}
	return dir
}

// archivedCount is the number of messages in an mlmmj list's archive.
func archivedCount(t *testing.T, dir string) int {
	t.Helper()
	files, err := os.ReadDir(filepath.Join(dir, "archive"))
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

// waitArchived waits for message n in an mlmmj list's archive and returns
// it.
func waitArchived(t *testing.T, dir string, n int) string {
	t.Helper()
	path := filepath.Join(dir, "archive", strconv.Itoa(n))
	var b []byte
	testutil.WaitFor(t, wait, path, func() bool {
		var err error
		b, err = os.ReadFile(path)
		return err == nil
	})
	return string(b)
}

// confsubRE is the address mlmmj asks a subscriber to reply to.
var confsubRE = regexp.MustCompile(`announce\+confsub-[^@\s<>]+@example\.org`)

// relayed is one message mlmmj sent, for one recipient.
type relayed struct {
	from, to, data string
}

// relay is an SMTP server standing in for the MTA mlmmj sends through
// (its control/relayhost and control/smtpport): it takes every message
// and records it once per recipient.
type relay struct {
	port int
	mu   sync.Mutex
	got  []relayed
}

func startRelay(t *testing.T) *relay {
	t.Helper()
	r := &relay{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &relaySession{r: r}, nil
	}))
	srv.Domain = "relay.e2e.invalid"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.port = ln.Addr().(*net.TCPAddr).Port
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

// wait waits for a message that matches and returns it.
func (r *relay) wait(t *testing.T, what string, match func(relayed) bool) relayed {
	t.Helper()
	var found relayed
	if _, ok := testutil.Poll(wait, 10*time.Millisecond, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, m := range r.got {
			if match(m) {
				found = m
				return true
			}
		}
		return false
	}); !ok {
		r.mu.Lock()
		defer r.mu.Unlock()
		t.Fatalf("not within %v: %s; the relay has %d message(s): %+v", wait, what, len(r.got), r.got)
	}
	return found
}

// count is the number of messages that match.
func (r *relay) count(match func(relayed) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.got {
		if match(m) {
			n++
		}
	}
	return n
}

type relaySession struct {
	r    *relay
	from string
	to   []string
}

func (s *relaySession) Reset()        { s.from, s.to = "", nil }
func (s *relaySession) Logout() error { return nil }
func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *relaySession) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	data := strings.ReplaceAll(string(b), "\r\n", "\n")
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for _, to := range s.to {
		s.r.got = append(s.r.got, relayed{s.from, to, data})
	}
	return nil
}
