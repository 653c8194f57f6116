package lmtp

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/listgate/listgate/lists"
)

const tooMany = "452 4.5.3 Error: too many recipients"

// TestMaxRecipients: past MaxRecipients accepted recipients, each RCPT
// gets 452 4.5.3 (RFC 5321 §4.5.3.1.10) and no file; the accepted ones
// are delivered after DATA, and the client's next transaction, with the
// recipients it was told to send again, delivers them: every recipient
// gets exactly one file.
func TestMaxRecipients(t *testing.T) {
	h := start(t, config{options: func(o *Options) { o.MaxRecipients = 3 }})
	c := h.client()
	rcpts := []string{"mylist@example.com", "mylist-request@example.com", "mylist-owner@example.com",
		"mylist-join@example.com", "mylist+x@example.com"}
	msg := message("Subject: many\n\nhi\n")

	// The first transaction: three accepted, then the cap. An unknown
	// address past the cap is not resolved: 452 too.
	rr, dr := transact(t, c, "anne@example.net", nil, append(rcpts, "nobody@example.com"), msg)
	if want := []string{"", "", "", tooMany, tooMany, tooMany}; !slices.Equal(rr, want) {
		t.Fatalf("RCPT replies %q, want %q", rr, want)
	}
	if len(dr) != 3 {
		t.Fatalf("replies after DATA: %q", dr)
	}
	for _, r := range rcpts[:3] {
		if dr[r] != ok(r) {
			t.Errorf("%s after DATA: %q", r, dr[r])
		}
	}
	// The retry, as Postfix's LMTP client makes it: the recipients that
	// got a 4xx, in a new transaction on the same connection.
	var retry []string
	for i, r := range rr[:len(rcpts)] {
		if r == tooMany {
			retry = append(retry, rcpts[i])
		}
	}
	rr, dr = transact(t, c, "anne@example.net", nil, retry, msg)
	if want := []string{"", ""}; !slices.Equal(rr, want) {
		t.Fatalf("retry: RCPT replies %q, want %q", rr, want)
	}
	for _, r := range retry {
		if dr[r] != ok(r) {
			t.Errorf("retry: %s after DATA: %q", r, dr[r])
		}
	}
	for kind, n := range map[lists.Kind]int{lists.Post: 2, lists.Request: 1, lists.Owner: 1, lists.Join: 1} {
		if got := h.newFiles("mylist@example.com", kind); len(got) != n {
			t.Errorf("%s: %d files, want %d", kind, len(got), n)
		}
	}
	if n := len(h.logLines("rcpt")); n != 8 {
		t.Errorf("%d rcpt log lines, want 8", n)
	}
	var capped int
	for _, l := range h.logLines("rcpt") {
		if l["verdict"] == "too-many-recipients" {
			capped++
		}
	}
	if capped != 3 {
		t.Errorf("%d rcpt lines with verdict too-many-recipients, want 3", capped)
	}
}

// TestMaxRecipientsDefault: the default cap is DefaultMaxRecipients,
// 1000, above Postfix's lmtp_destination_recipient_limit (50).
func TestMaxRecipientsDefault(t *testing.T) {
	h := start(t, config{})
	r := h.lhlo()
	if got := r.cmd("MAIL FROM:<anne@example.net>"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("MAIL: %q", got)
	}
	// Pipelined, as an LMTP client may (RFC 2033 §4.1, RFC 2920).
	var b strings.Builder
	for i := range DefaultMaxRecipients + 1 {
		fmt.Fprintf(&b, "RCPT TO:<mylist+%d@example.com>\r\n", i)
	}
	r.write(b.String())
	for i := range DefaultMaxRecipients {
		if got := r.reply(); !strings.HasPrefix(got, "250 ") {
			t.Fatalf("RCPT %d: %q", i+1, got)
		}
	}
	if got := r.reply(); got != tooMany {
		t.Fatalf("RCPT %d: %q, want %q", DefaultMaxRecipients+1, got, tooMany)
	}
	if got := r.cmd("RSET"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("RSET: %q", got)
	}
	// A new transaction starts from zero.
	r.cmd("MAIL FROM:<anne@example.net>")
	if got := r.cmd("RCPT TO:<mylist@example.com>"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("after RSET: %q", got)
	}
}
