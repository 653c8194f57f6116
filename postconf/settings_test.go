package postconf

import (
	"os"
	"path/filepath"
	"testing"
)

// TestClassAndRoute: the address class of a domain (ADDRESS_CLASS_README:
// the first of mydestination, virtual_alias_domains,
// virtual_mailbox_domains and relay_domains that matches, as match_list(3)
// matches) and its route (transport(5)).
func TestClassAndRoute(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "relay-domains")
	if err := os.WriteFile(file, []byte("# from a file\nfile.example  # comment\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(`myhostname = mx.example.com
mydomain = example.com
mydestination = $myhostname, localhost.$mydomain, localhost
virtual_alias_maps = inline:{ alias.example=x }
virtual_mailbox_domains = mailbox.example
relay_domains = !not.lists.example, .lists.example, example.org, `+file+`, inline:{ table.example=ok }, mailbox.example
parent_domain_matches_subdomains = debug_peer_list
relay_transport = lmtp:inet:127.0.0.1:8024
transport_maps = inline:{ example.org=smtp:[10.0.0.1], .parent.example=:[10.0.0.2], file.example=lmtp: }
`, "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSettings(c, BuiltinDefaults(), Options{})
	for _, tc := range []struct {
		domain string
		class  Class
		route  string
	}{
		{"mx.example.com", ClassLocal, "local:mx.example.com by local_transport"},
		{"LOCALHOST", ClassLocal, "local:mx.example.com by local_transport"},
		{"alias.example", ClassVirtualAlias, ": (the recipient domain's MX) by "},
		{"mailbox.example", ClassVirtualMailbox, "virtual: (the recipient domain's MX) by virtual_transport"},
		{"a.lists.example", ClassRelay, "lmtp:inet:127.0.0.1:8024 by relay_transport"},
		{"lists.example", ClassDefault, "smtp: (the recipient domain's MX) by default_transport"},
		{"not.lists.example", ClassDefault, "smtp: (the recipient domain's MX) by default_transport"},
		{"example.org", ClassRelay, "smtp:[10.0.0.1] by transport_maps (inline:{ example.org=smtp:[10.0.0.1], .parent.example=:[10.0.0.2], file.example=lmtp: })"},
		{"sub.example.org", ClassDefault, "smtp: (the recipient domain's MX) by default_transport"},
		{"file.example", ClassRelay, "lmtp: (the recipient domain's MX) by transport_maps (inline:{ example.org=smtp:[10.0.0.1], .parent.example=:[10.0.0.2], file.example=lmtp: })"},
		{"table.example", ClassRelay, "lmtp:inet:127.0.0.1:8024 by relay_transport"},
	} {
		cls := s.Class(tc.domain)
		r := s.Route(tc.domain, cls)
		if cls != tc.class || r.String()+" by "+r.By != tc.route {
			t.Errorf("%s: class %s, route %s by %s; want %s, %s", tc.domain, cls, r, r.By, tc.class, tc.route)
		}
	}
	if n := s.Notes(); len(n) != 0 {
		t.Errorf("notes: %q", n)
	}

	// relay_domains in parent_domain_matches_subdomains (the default):
	// a name matches its subdomains too.
	c, _ = Parse("relay_domains = example.org\ntransport_maps = inline:{ .example.org=error:sub }, inline:{ *=error:star }\n", "main.cf")
	s = NewSettings(c, BuiltinDefaults(), Options{})
	if cls := s.Class("a.b.example.org"); cls != ClassRelay || !s.parentMatches("relay_domains") || s.inListExact("relay_domains", "a.b.example.org") {
		t.Errorf("subdomain of a relay domain: %s", cls)
	}
	if r := s.Route("a.b.example.org", ClassRelay); r.Transport != "error" {
		t.Errorf("route of a.b.example.org: %v", r)
	}
	if r := s.Route("example.org", ClassRelay); r.Transport != "error" || r.Nexthop != "star" {
		t.Errorf("route of example.org (transport_maps' *): %v", r)
	}
}
