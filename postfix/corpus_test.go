package postfix

import (
	"fmt"
	"strings"
	"testing"

	"github.com/listgate/listgate/internal/corpus"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/reply"
)

// TestPolicyCorpus sends every recipient of the verdict corpus through the
// policy door over TCP and a unix socket, as Postfix asks at RCPT, all on
// one connection: the action is the verdict table's for the corpus
// verdict, and the same as for Resolve's verdict on the same snapshot.
func TestPolicyCorpus(t *testing.T) {
	cases := loadCorpus(t)
	snap := corpusSnapshot(t)
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			h := start(t, config{network: network})
			c := h.dial()
			for _, cc := range cases {
				got := c.ask(policyRequest("RCPT", cc.Rcpt, 0))
				want := policyAction(reply.Of(cc.Status))
				if got != want {
					t.Errorf("%s (line %d): action %q, want %q", cc.Rcpt, cc.Line, got, want)
				}
				if r := policyAction(reply.Of(snap.Resolve(cc.Rcpt).Status)); got != r {
					t.Errorf("%s (line %d): action %q, Resolve says %q", cc.Rcpt, cc.Line, got, r)
				}
				if cc.Status == lists.Unknown && !strings.HasPrefix(got, fmt.Sprintf("%d %s ", cc.Code, cc.Enhanced)) {
					t.Errorf("%s (line %d): action %q, want the corpus's %d %s", cc.Rcpt, cc.Line, got, cc.Code, cc.Enhanced)
				}
			}
			if n := len(h.logs.Lines("rcpt")); n != len(cases) {
				t.Errorf("%d rcpt log lines for %d requests", n, len(cases))
			}
		})
	}
}

// form is one key Postfix may send a socketmap for a recipient, and the
// map it sends it to.
type form struct {
	what, name, key string
}

// forms derives from a corpus recipient every key Postfix could send the
// socketmap for it, whatever the parameter: the address in full (as
// received, and in lower and upper case, as a table that folds case
// sends it), without its extension (mail_addr_find's second lookup),
// "@domain" (its last), and the domain alone (relay_domains, and
// transport_maps' domain lookup). Postfix 3.7 only asks a socketmap the
// full address (its partial lookups skip pattern tables, and
// dict_sockmap.c opens socketmaps as such), but every form must be
// answered as Resolve would.
func forms(rcpt string) []form {
	addr := strings.TrimSuffix(strings.TrimPrefix(rcpt, "<"), ">")
	var out []form
	full := []string{rcpt, strings.ToLower(addr), strings.ToUpper(addr)}
	at := strings.LastIndexByte(addr, '@')
	if at > 0 {
		if i := strings.IndexByte(addr[:at], '+'); i >= 0 {
			full = append(full, addr[:i]+addr[at:])
		}
	}
	for _, name := range []string{mapRecipients, mapTransport, mapAliases} {
		for _, k := range full {
			out = append(out, form{"address", name, k})
		}
	}
	if at >= 0 {
		for _, name := range []string{mapRecipients, mapTransport, mapAliases} {
			out = append(out, form{"@domain", name, addr[at:]})
		}
		dom := addr[at+1:]
		for _, name := range []string{mapDomains, mapTransport} {
			out = append(out, form{"domain", name, dom}, form{"domain", name, strings.ToUpper(dom)})
		}
	} else {
		for _, name := range []string{mapRecipients, mapTransport, mapAliases} {
			out = append(out, form{"local part", name, addr})
		}
	}
	return out
}

// wantLookup is what each map must answer for key, from Resolve and
// ServesDomain on snap alone: the maps' contract (docs in doc.go).
func wantLookup(snap *lists.Snapshot, name, key string) string {
	notFound := "NOTFOUND "
	temp := "TEMP " + reply.For(reply.Socketmap, reply.RCPT, reply.Broken).Reply.Text
	address := strings.LastIndexByte(key, '@') > 0
	if name == mapDomains {
		switch snap.ServesDomain(key) {
		case lists.Accept:
			return "OK " + key
		case lists.Broken:
			return temp
		}
		return notFound
	}
	if !address {
		if name == mapTransport && !strings.HasPrefix(key, "@") && snap.ServesDomain(key) == lists.Accept {
			return "OK lmtp:" + testLMTP.String()
		}
		return notFound
	}
	v := snap.Resolve(key)
	switch name {
	case mapRecipients:
		switch v.Status {
		case lists.Accept:
			return "OK " + v.List
		case lists.Alias:
			return "OK " + v.Target
		case lists.Observed:
			return "OK " + v.Domain
		case lists.Broken:
			return temp
		}
	case mapTransport:
		switch v.Status {
		case lists.Accept, lists.Alias, lists.Observed:
			return "OK lmtp:" + testLMTP.String()
		case lists.Broken:
			return temp
		}
	case mapAliases:
		switch {
		case v.Status == lists.Alias:
			return "OK " + v.Target
		case v.Status == lists.Broken && isRole(key, snap.Delimiters()):
			return temp
		}
	}
	return notFound
}

// TestSocketmapCorpus asks the socketmap door, over TCP and a unix socket,
// every form of every corpus recipient in every map: each answer is what
// Resolve (or ServesDomain) says of that key, and for the full address in
// the recipients map, what the corpus says.
func TestSocketmapCorpus(t *testing.T) {
	cases := loadCorpus(t)
	snap := corpusSnapshot(t)
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			h := start(t, config{socketmap: true, network: network})
			c := h.dial()
			asked := 0
			for _, cc := range cases {
				if got, want := c.lookup(mapRecipients, cc.Rcpt), corpusRecipients(cc, snap); got != want {
					t.Errorf("recipients %q (line %d): %q, want the corpus's %q", cc.Rcpt, cc.Line, got, want)
				}
				for _, f := range forms(cc.Rcpt) {
					asked++
					got, want := c.lookup(f.name, f.key), wantLookup(snap, f.name, f.key)
					if got != want {
						t.Errorf("%s %q (%s of %s, line %d): %q, want %q", f.name, f.key, f.what, cc.Rcpt, cc.Line, got, want)
					}
					// What `listgate check --explain` shows is the door's answer.
					if shown := SocketmapAnswer(snap, testLMTP, f.name, f.key); shown != got {
						t.Errorf("%s %q: SocketmapAnswer %q, the door %q", f.name, f.key, shown, got)
					}
				}
			}
			if asked < 10*len(cases) {
				t.Errorf("only %d lookups", asked)
			}
		})
	}
}

// corpusRecipients is the recipients map's answer for a corpus case: found
// with the list for accept, found with the target for alias, found with
// the domain for observed (an unknown address in observe mode), TEMP for
// tempfail, not found for the rest. (The corpus has no target column: an
// alias's target is Resolve's.)
func corpusRecipients(cc corpus.Case, snap *lists.Snapshot) string {
	switch cc.Status {
	case lists.Accept:
		return "OK " + cc.List
	case lists.Broken:
		return "TEMP " + reply.For(reply.Socketmap, reply.RCPT, reply.Broken).Reply.Text
	case lists.Alias:
		return "OK " + snap.Resolve(cc.Rcpt).Target
	case lists.Observed:
		return "OK " + snap.Resolve(cc.Rcpt).Domain
	}
	return "NOTFOUND "
}
