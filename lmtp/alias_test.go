package lmtp

import (
	"testing"
)

// TestAliasTempfails: postmaster@ of a domain whose domain file names
// where it goes is Postfix's to rewrite (virtual_alias_maps, the
// socketmap's aliases map) before delivery. Should it reach the LMTP door
// anyway, the door tempfails it at RCPT (the mail stays queued, nothing
// is lost or bounced), logs why, and the other recipients of the
// transaction are delivered.
func TestAliasTempfails(t *testing.T) {
	h := start(t, config{lists: map[string]string{
		"@example.org":         "postmaster = \"hostmaster@example.net\"\n",
		"announce@example.org": "",
	}})
	c := h.client()
	rr, dr := transact(t, c, "anne@example.net", nil, []string{"Postmaster+x@Example.ORG", "announce@example.org"},
		message("Subject: hi\n\nhi\n"))
	if want := "451 4.3.0 Temporary lookup failure"; rr[0] != want {
		t.Errorf("RCPT postmaster: %q, want %q", rr[0], want)
	}
	if rr[1] != "" || dr["announce@example.org"] != "250 2.1.5 <announce@example.org> Ok" {
		t.Errorf("announce: RCPT %q, DATA %q", rr[1], dr["announce@example.org"])
	}
	warn := h.logLines("postmaster@example.org is an alias for hostmaster@example.net: " +
		"Postfix's virtual_alias_maps (socketmap aliases) should have rewritten it")
	if len(warn) != 1 || warn[0]["level"] != "WARN" || warn[0]["door"] != "lmtp" || warn[0]["rcpt"] != "Postmaster+x@Example.ORG" {
		t.Errorf("warning lines %v; log:\n%s", warn, h.logs)
	}
	var verdicts []any
	for _, l := range h.logLines("rcpt") {
		verdicts = append(verdicts, l["verdict"])
	}
	if len(verdicts) != 2 || verdicts[0] != "alias" || verdicts[1] != "accept" {
		t.Errorf("rcpt verdicts logged: %v", verdicts)
	}
}
