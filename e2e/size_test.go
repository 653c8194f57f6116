package e2e

import (
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// 6. A client that declares SIZE= larger than a list's max_message_size
// gets 552 5.3.4 at RCPT TO for the posting address, before anything is
// queued; the list's sub-addresses in the same transaction are still
// accepted (they are bounded only by --max-message-size). A SIZE= above
// Postfix's message_size_limit (listgate's --max-message-size, as
// `listgate postfix` sets it) is refused by Postfix itself at MAIL FROM.
func TestSize(t *testing.T) {
	t.Parallel()
	e := start(t, setup{"generated-tcp", true, false}, map[string]string{
		"small@example.org": "max_message_size = \"10KB\"\n",
	})
	addr := e.pf.SMTPAddr
	const text = "Message size exceeds fixed limit"

	rs := transact(t, addr, envelope{From: "alice@sender.example", Opts: &smtp.MailOptions{Size: 20000},
		To: []string{"small@example.org", "small-request@example.org"}}, true)
	if len(rs) != 3 || !rs[0].is("RCPT", 552, "5.3.4") || rs[0].Text != text || rs[1].Code != 250 || !rs[2].is("DATA", 250, "") {
		t.Fatalf("SIZE=20000 to a list of 10KB and its -request: %v", rs)
	}
	waitSpooled(t, e.spool, "small@example.org", "request", "small-request@example.org")
	line := e.pf.WaitLog(t, ": 552 5.3.4 "+text+"; from=<alice@sender.example> to=<small@example.org>", wait)
	if !strings.Contains(line, "milter-reject: RCPT from ") {
		t.Errorf("Postfix log: %s", line)
	}
	e.lg.WaitLog(t, "door=milter", "rcpt=small@example.org", "verdict=too-large")

	rs = transact(t, addr, envelope{From: "alice@sender.example", Opts: &smtp.MailOptions{Size: 5000},
		To: []string{"small@example.org"}}, true)
	if len(rs) != 2 || rs[0].Code != 250 || rs[1].Code != 250 {
		t.Fatalf("SIZE=5000 to a list of 10KB: %v", rs)
	}
	waitSpooled(t, e.spool, "small@example.org", "post", "small@example.org")

	rs = transact(t, addr, envelope{From: "alice@sender.example", Opts: &smtp.MailOptions{Size: 64<<20 + 1},
		To: []string{"small-owner@example.org"}}, false)
	if len(rs) != 1 || !rs[0].is("MAIL", 552, "5.3.4") || rs[0].Text != text {
		t.Fatalf("SIZE above message_size_limit: %v", rs)
	}
	e.pf.WaitLog(t, "NOQUEUE: reject: MAIL from localhost[127.0.0.1]: 552 5.3.4 "+text, wait)
	e.pf.WaitQueueEmpty(t, wait)
}
