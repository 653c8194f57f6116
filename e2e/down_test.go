package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/testutil"
)

// 5. listgate stopped: the client gets a 4xx, never a 5xx, and nothing is
// queued; started again: the client's retry goes through. What Postfix
// really does (milter_default_action = tempfail):
//
//   - an SMTP session that was open when listgate stopped loses its milter
//     connection: its next RCPT TO gets 451 4.7.1;
//   - a new session cannot reach the milter when it connects: smtpd still
//     greets (220) and answers EHLO, and refuses MAIL FROM with 451 4.7.1
//     (smtpd_delay_reject), for every sender and every domain.
//
// And a list file that has never parsed: 451 4.3.0 at RCPT until it is
// fixed.
func TestListgateDown(t *testing.T) {
	t.Parallel()
	e := start(t, setup{"generated-tcp", true, false}, flowLists)
	addr := e.pf.SMTPAddr
	const tempfail = "Service unavailable - try again later"
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
	if err != nil || !r.is("RCPT", 451, "4.7.1") || r.Text != tempfail {
		t.Errorf("open session, RCPT TO: %v %v; want RCPT: 451 4.7.1 %s", r, err, tempfail)
	}
	e.pf.WaitLog(t, "NOQUEUE: milter-reject: RCPT from localhost[127.0.0.1]: 451 4.7.1 "+tempfail, wait)

	for _, to := range []string{"announce@example.org", "bogus@example.org", "someone@foreign.example"} {
		if r := rcpt(t, addr, to); !r.is("MAIL", 451, "4.7.1") || r.Text != tempfail {
			t.Errorf("new session to <%s>: %v; want MAIL: 451 4.7.1 %s", to, r, tempfail)
		}
	}
	if exit, out := swaks(t, addr, "announce@example.org"); exit != 23 || !strings.Contains(out, "<** 451 4.7.1 "+tempfail) {
		t.Errorf("swaks: exit %d, want 23 (MAIL FROM refused)\n%s", exit, out)
	}
	if got := python(t, addr, "announce@example.org"); got != "MAIL 451 4.7.1 "+tempfail {
		t.Errorf("smtplib: %s", got)
	}
	e.pf.WaitLog(t, "warning: connect to Milter service "+e.addrMilt+": Connection refused", wait)
	e.pf.WaitLog(t, "NOQUEUE: milter-reject: MAIL from localhost[127.0.0.1]: 451 4.7.1 "+tempfail, wait)
	if q := e.pf.Queue(t); len(q) != 0 {
		t.Fatalf("queue while listgate is down: %v", q)
	}

	// A sending MTA retries the same message; listgate comes back after
	// the second attempt. Every attempt before is a 4xx (a 5xx would make
	// the sender give up and bounce).
	var attempts []reply
	for len(attempts) < 10 {
		rs := transact(t, addr, envelope{From: "alice@sender.example", To: []string{"announce@example.org"}}, true)
		attempts = append(attempts, rs[0])
		if rs[0].Code == 250 {
			if !rs[len(rs)-1].is("DATA", 250, "") {
				t.Fatalf("retry after the restart: %v", rs)
			}
			break
		}
		if rs[0].Code/100 != 4 {
			t.Fatalf("attempt while listgate is down: %v, want a 4xx", rs[0])
		}
		if len(attempts) == 2 {
			e.lg.Restart(t)
		}
	}
	if len(attempts) != 3 || attempts[2].Code != 250 {
		t.Fatalf("attempts: %v; want two 451 4.7.1 while listgate is down, then 250", attempts)
	}
	waitSpooled(t, e.spool, "announce@example.org", "post", "announce@example.org")
	e.pf.WaitQueueEmpty(t, wait)

	// A list file broken before it ever parsed: 451 4.3.0, so senders
	// retry; fixed, it is accepted.
	const broken = "broken@example.org"
	writeList(t, e.lists, broken, "descripton = \"a typo: never parsed\"\n")
	testutil.WaitFor(t, time.Second, "451 4.3.0 for <"+broken+">", func() bool {
		return rcpt(t, addr, broken).is("RCPT", 451, "4.3.0")
	})
	if r := rcpt(t, addr, "broken-request@example.org"); !r.is("RCPT", 451, "4.3.0") || r.Text != "Temporary lookup failure" {
		t.Errorf("sub-address of the broken list: %v", r)
	}
	line := e.pf.WaitLog(t, ": 451 4.3.0 Temporary lookup failure; from=<alice@sender.example> to=<"+broken+">", wait)
	if !strings.Contains(line, "NOQUEUE: milter-reject: RCPT from ") {
		t.Errorf("Postfix log: %s", line)
	}
	e.lg.WaitLog(t, "door=milter", "rcpt="+broken, "verdict=tempfail")
	writeList(t, e.lists, broken, "description = \"fixed\"\n")
	testutil.WaitFor(t, time.Second, "250 for <"+broken+"> once fixed", func() bool {
		return rcpt(t, addr, broken).Code == 250
	})
	if q := e.pf.Queue(t); len(q) != 0 {
		t.Errorf("queue: %v", q)
	}
}
