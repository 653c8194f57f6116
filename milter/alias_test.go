package milter

import (
	"testing"

	gomilter "github.com/d--j/go-milter"

	"github.com/listgate/listgate/reply"
)

// TestAliasPasses: postmaster@ of a domain whose domain file names where
// it goes (the corpus's example.com) passes at RCPT, as the verdict table
// says: Postfix rewrites it through virtual_alias_maps. Its size is not
// listgate's to judge (no list limit, and no recipient of listgate's in
// the message), so a message too large for a list still passes for it.
func TestAliasPasses(t *testing.T) {
	ts := startServer(t, "tcp", Options{MaxMessageSize: 1000})
	s := ts.client(t, nil)
	mail(t, s, "SIZE=5000")
	if got := rcpt(t, s, "<Postmaster@example.com>"); got != "continue" {
		t.Errorf("RCPT postmaster: %s, want continue", got)
	}
	if got := rcpt(t, s, "<abuse@example.com>"); got != refusal(reply.Unknown) {
		t.Errorf("RCPT abuse (no setting): %s, want %s", got, refusal(reply.Unknown))
	}
	act, _ := message(t, s, 5000)
	if act.Type != gomilter.ActionAccept {
		t.Errorf("end of message: %v, want accept", act)
	}
	lines := ts.logs.Lines("rcpt")
	if len(lines) != 2 || lines[0].Attrs["verdict"] != "alias" || lines[1].Attrs["verdict"] != "unknown" {
		t.Errorf("rcpt lines:\n%s", ts.logs)
	}
}
