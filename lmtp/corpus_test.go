package lmtp

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/internal/corpus"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/reply"
)

// goSMTPRefuses lists the corpus recipients that go-smtp's RCPT parser
// refuses before the session sees them, with the reply it gives. RFC 5321
// §4.1.1.3 wants "RCPT TO:<Postmaster>" (no domain) accepted; go-smtp
// v0.25.1 requires a domain. Postfix's LMTP client always sends a full
// address, so this never happens in practice. Nothing else may be here.
var goSMTPRefuses = map[string]string{
	"postmaster": "501 5.5.2 Was expecting RCPT arg syntax of TO:<address>",
}

// TestCorpus sends every recipient of the verdict corpus through the LMTP
// door with go-smtp's client, over TCP and a unix socket: the RCPT reply
// code and enhanced code are the corpus's, and the text is the verdict
// table's. An accepted recipient gets its 250 after DATA (docs/design.md: the
// LMTP door's answer is "250 after DATA") and its message lands in the
// corpus's list and kind, with Delivered-To as received.
func TestCorpus(t *testing.T) {
	cases, err := corpus.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 40 {
		t.Fatalf("only %d corpus cases", len(cases))
	}
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			h := start(t, config{network: network, dir: corpus.ListsDir()})
			c := h.client()
			for _, cc := range cases {
				t.Run(fmt.Sprintf("line%d", cc.Line), func(t *testing.T) { corpusCase(t, h, c, cc) })
			}
		})
	}
}

func corpusCase(t *testing.T, h *harness, c *smtp.Client, cc corpus.Case) {
	// The corpus gives the recipient as a client writes it; the client
	// puts the path in angle brackets itself.
	rcpt := strings.TrimSuffix(strings.TrimPrefix(cc.Rcpt, "<"), ">")
	var opts *smtp.MailOptions
	if !isASCII(rcpt) {
		opts = &smtp.MailOptions{UTF8: true} // RFC 6531
	}
	var before int
	if cc.Status == lists.Accept {
		before = len(h.newFiles(cc.List, cc.Kind))
	}
	rr, dr := transact(t, c, "anne@example.org", opts, []string{rcpt}, message("Subject: corpus\n\nhi\n"))
	if want, ok := goSMTPRefuses[cc.Rcpt]; ok {
		if rr[0] != want {
			t.Errorf("%s: RCPT %q, want go-smtp's %q", cc.Rcpt, rr[0], want)
		}
		return
	}
	if cc.Status != lists.Accept {
		want := fmt.Sprintf("%d %s %s", cc.Code, cc.Enhanced, reply.For(reply.LMTP, reply.RCPT, reply.Of(cc.Status)).Reply.Text)
		if rr[0] != want {
			t.Errorf("%s (line %d): RCPT %q, want %q", cc.Rcpt, cc.Line, rr[0], want)
		}
		return
	}
	if rr[0] != "" {
		t.Fatalf("%s (line %d): RCPT %q, want accepted", cc.Rcpt, cc.Line, rr[0])
	}
	want := fmt.Sprintf("%d %s <%s> %s", cc.Code, cc.Enhanced, rcpt, reply.For(reply.LMTP, reply.Data, reply.Accept).Reply.Text)
	if dr[rcpt] != want {
		t.Errorf("%s (line %d): after DATA %q, want %q", cc.Rcpt, cc.Line, dr[rcpt], want)
	}
	fs := h.newFiles(cc.List, cc.Kind)
	if len(fs) != before+1 {
		t.Fatalf("%s (line %d): %s/%s holds %d files, want %d", cc.Rcpt, cc.Line, cc.List, cc.Kind, len(fs), before+1)
	}
	var found bool
	for _, f := range fs {
		found = found || header(readFile(t, f), "Delivered-To") == rcpt
	}
	if !found {
		t.Errorf("%s (line %d): no file in %s/%s with Delivered-To: %s", cc.Rcpt, cc.Line, cc.List, cc.Kind, rcpt)
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
