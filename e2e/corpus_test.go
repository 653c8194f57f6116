package e2e

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/internal/corpus"
	"github.com/listgate/listgate/lists"
	replies "github.com/listgate/listgate/reply"
)

// 7. The verdict corpus (lists/testdata) through Postfix's smtpd, with
// `listgate postfix` output as main.cf: every recipient gets, at RCPT TO
// as the sending client sees it, the reply Resolve gives it, and then
// every accepted one, sent in one message, lands in the folder the corpus
// names — the milter and the LMTP sink agree end to end, and Postfix
// bounces nothing.
//
// Recipients of domains listgate does not serve are refused by Postfix
// itself (554 5.7.1 Relay access denied: not a list domain), subdomains
// of list domains included; the one exception is an address with no
// domain at all ("postmaster"), which Postfix accepts and qualifies with
// $myorigin, never a list domain: listgate's milter lets it pass. And
// Postfix refuses "-join@example.com" itself, 501 5.1.3, before listgate
// sees it (allow_min_user = no), where listgate's verdict is 550.
func TestCorpus(t *testing.T) {
	t.Parallel()
	cases, err := corpus.Load()
	if err != nil {
		t.Fatal(err)
	}
	e := startDir(t, setup{"generated-tcp", true, false}, corpus.ListsDir())
	addr := e.pf.SMTPAddr

	// wire is the address inside RCPT TO:<...>: a corpus recipient
	// written with its brackets is what a client sends for it.
	wire := func(rcpt string) string {
		return strings.TrimSuffix(strings.TrimPrefix(rcpt, "<"), ">")
	}
	opts := func(rcpt string) *smtp.MailOptions {
		if !isASCII(rcpt) {
			return &smtp.MailOptions{UTF8: true} // RFC 6531 SMTPUTF8
		}
		return nil
	}
	var accepted []corpus.Case
	for _, c := range cases {
		r := transact(t, addr, envelope{From: "alice@sender.example", Opts: opts(c.Rcpt), To: []string{wire(c.Rcpt)}}, false)[0]
		var want string
		switch {
		case strings.HasPrefix(wire(c.Rcpt), "-"):
			// allow_min_user = no: Postfix refuses an address that
			// starts with "-" (it could pass for a command option).
			want = "RCPT 501 5.1.3 Bad recipient address syntax"
		case c.Status == lists.Accept:
			want = "RCPT 250"
			accepted = append(accepted, c)
		case c.Status == lists.Alias:
			// postmaster@ with a domain-file setting: the milter lets
			// it pass (virtual_alias_maps rewrites it; not sent here).
			want = "RCPT 250"
		case c.Status == lists.Observed:
			// An unknown address of a domain in observe mode: the
			// milter lets it pass (no message is sent to it here).
			want = "RCPT 250"
		case c.Status == lists.NotServed && !strings.Contains(c.Rcpt, "@"):
			want = "RCPT 250"
		case c.Status == lists.NotServed:
			want = "RCPT 554 5.7.1 <" + wire(c.Rcpt) + ">: Relay access denied"
		default: // unknown, tempfail: the milter's reply, as the LMTP door's
			want = fmt.Sprintf("RCPT %d %s %s", c.Code, c.Enhanced, replies.For(replies.Milter, replies.RCPT, replies.Of(c.Status)).Reply.Text)
		}
		got := fmt.Sprintf("%s %d", r.Stage, r.Code)
		if r.Code != 250 {
			got += fmt.Sprintf(" %d.%d.%d %s", r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text)
		}
		if got != want {
			t.Errorf("verdicts.txt:%d: <%s> (%s): got %q, want %q", c.Line, c.Rcpt, c.Status, got, want)
		}
	}

	// Every accepted recipient in one message: each lands in its list's
	// folder for its kind, with Delivered-To as Postfix passed it (Postfix
	// drops a trailing dot in the domain).
	var to []string
	seen := map[string]bool{}
	for _, c := range accepted {
		if w := wire(c.Rcpt); !seen[w] {
			seen[w] = true
			to = append(to, w)
		}
	}
	rs := transact(t, addr, envelope{From: "alice@sender.example", Opts: &smtp.MailOptions{UTF8: true}, To: to}, true)
	for i, r := range rs {
		if r.Code != 250 {
			t.Errorf("one message to every accepted recipient: reply %d: %v", i, r)
		}
	}
	e.pf.WaitQueueEmpty(t, wait)
	for _, c := range accepted {
		want := strings.ToLower(strings.TrimSuffix(wire(c.Rcpt), "."))
		found := false
		for _, m := range spooled(t, e.spool, c.List, string(c.Kind)) {
			for _, line := range strings.Split(m, "\n") {
				if strings.ToLower(line) == "delivered-to: "+want {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("verdicts.txt:%d: <%s>: no message with Delivered-To: %s in %s/%s; spool:\n%s", c.Line, c.Rcpt, want, c.List, c.Kind, tree(e.spool))
		}
	}
	for _, bounce := range []string{"status=bounced", "sender non-delivery notification"} {
		if strings.Contains(e.pf.Log(), bounce) {
			t.Errorf("Postfix log has %q", bounce)
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
