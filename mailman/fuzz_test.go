package mailman

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/listgate/listgate/lists"
)

// FuzzDecode feeds one answer of Mailman's REST API (or a cache file) to
// every decoder listgate has for them. Whatever decodes must make a set
// the lists package serves: each list whose address is a valid list name
// is accepted at its posting address and its -request address (or
// tempfails when Mailman names it twice), its domain is served, and a
// cache that decodes survives a round trip unchanged. Seeds, from the
// JSON Mailman 3.3 writes, are in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	dir := f.TempDir()
	src, err := New(Options{URL: "http://127.0.0.1:8001/3.1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var page collection[restList]
		if json.Unmarshal(b, &page) == nil {
			d := &Data{}
			for _, r := range page.Entries {
				d.Lists = append(d.Lists, r.list())
			}
			checkServed(t, dir, src, d)
		}
		var doms collection[restDomain]
		if json.Unmarshal(b, &doms) == nil {
			d := &Data{}
			for _, r := range doms.Entries {
				d.Domains = append(d.Domains, Domain{Name: string(r.MailHost), AliasDomain: string(r.AliasDomain)})
			}
			checkServed(t, dir, src, d)
		}
		var m restMTA
		if json.Unmarshal(b, &m) == nil {
			src.mu.Lock()
			hop := src.nextHop(MTA{LMTPHost: string(m.LMTPHost), LMTPPort: string(m.LMTPPort)})
			src.mu.Unlock()
			if hop != "" {
				ep, ok := strings.CutPrefix(hop, "lmtp:inet:")
				if !ok || !strings.Contains(ep, ":") {
					t.Errorf("next hop %q is not lmtp:inet:host:port", hop)
				}
			}
		}
		if c, err := decodeCache(b, "http://127.0.0.1:8001/3.1"); err == nil {
			again, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			c2, err := decodeCache(again, "http://127.0.0.1:8001/3.1")
			if err != nil || !c2.Data.Equal(&c.Data) || !c2.Fetched.Equal(c.Fetched) {
				t.Errorf("cache round trip: %v\n%s\n%s", err, b, again)
			}
		}
	})
}

// checkServed makes d the only set of a lists directory and checks that
// its lists and domains are served.
func checkServed(t *testing.T, dir string, src *Source, d *Data) {
	t.Helper()
	src.mu.Lock()
	x := src.external(d, true)
	src.mu.Unlock()
	snap, err := lists.Load(dir, lists.Options{External: x})
	if err != nil {
		t.Fatal(err)
	}
	served := make(map[string]bool)
	for _, dom := range snap.ServedDomains() {
		served[dom] = true
	}
	for _, l := range snap.Lists() {
		for _, rcpt := range []string{l.Address, l.Local + "-request@" + l.Domain} {
			if v := snap.Resolve(rcpt); v.Status != lists.Accept && v.Status != lists.Broken {
				t.Errorf("Mailman's list %s: Resolve(%q) = %+v", l.Address, rcpt, v)
			}
		}
		if !served[l.Domain] {
			t.Errorf("the domain of %s is not served", l.Address)
		}
	}
	for _, xd := range x.Domains {
		if c, err := lists.CanonicalDomain(xd.Name); err == nil && !served[c] {
			t.Errorf("Mailman's domain %q is not served", xd.Name)
		}
	}
	for _, p := range snap.Problems() {
		if !strings.HasPrefix(p.File, "http://127.0.0.1:8001/3.1/") {
			t.Errorf("problem %q does not name Mailman's resource", p)
		}
	}
}
