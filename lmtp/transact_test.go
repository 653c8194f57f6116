package lmtp

import (
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// transact runs one transaction with go-smtp's LMTP client: MAIL, one
// RCPT per recipient, DATA if any was accepted, then RSET. It returns the
// RCPT replies in order ("" for an accepted recipient, else the reply as
// on the wire) and the reply after DATA of each accepted recipient, e.g.
// "250 2.1.5 <mylist@example.com> Ok".
func transact(t testing.TB, c *smtp.Client, from string, opts *smtp.MailOptions, rcpts []string, msg string) (rcptReplies []string, dataReplies map[string]string) {
	t.Helper()
	if err := c.Mail(from, opts); err != nil {
		t.Fatalf("MAIL FROM:<%s>: %v", from, err)
	}
	accepted := 0
	for _, r := range rcpts {
		err := c.Rcpt(r, nil)
		var se *smtp.SMTPError
		switch {
		case err == nil:
			accepted++
			rcptReplies = append(rcptReplies, "")
		case errors.As(err, &se):
			rcptReplies = append(rcptReplies, wire(se))
		default:
			t.Fatalf("RCPT TO:<%s>: %v", r, err)
		}
	}
	dataReplies = map[string]string{}
	if accepted > 0 {
		w, err := c.Data()
		if err != nil {
			t.Fatalf("DATA: %v", err)
		}
		if _, err := w.Write([]byte(msg)); err != nil {
			t.Fatalf("DATA: write: %v", err)
		}
		resp, err := w.CloseWithLMTPResponse()
		var lerr smtp.LMTPDataError
		if err != nil && !errors.As(err, &lerr) {
			t.Fatalf("end of DATA: %v", err)
		}
		for r, d := range resp {
			dataReplies[r] = "250 " + d.StatusText
		}
		for r, se := range lerr {
			dataReplies[r] = wire(se)
		}
	}
	if err := c.Reset(); err != nil {
		t.Fatalf("RSET: %v", err)
	}
	return rcptReplies, dataReplies
}

// ok is the reply after DATA for a recipient whose message is on disk.
func ok(rcpt string) string { return "250 2.1.5 <" + rcpt + "> Ok" }

const unavailable = "550 5.1.1 Requested action not taken: mailbox unavailable"

// header returns the value of the first header field name in a stored
// message (LF line ends), unfolded.
func header(msg, name string) string {
	head, _, _ := strings.Cut(msg, "\n\n")
	lines := strings.Split(head, "\n")
	for i, l := range lines {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			for _, cont := range lines[i+1:] {
				if cont == "" || (cont[0] != ' ' && cont[0] != '\t') {
					break
				}
				v += cont
			}
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// sizeOpt is MAIL FROM's SIZE= parameter.
func sizeOpt(n int64) *smtp.MailOptions { return &smtp.MailOptions{Size: n} }
