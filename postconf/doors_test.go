package postconf

import (
	"slices"
	"strings"
	"testing"
)

// doorListgate is testListgate with every door on.
func doorListgate() Listgate {
	lg := testListgate
	lg.Policy = Endpoint{"tcp", "127.0.0.1:8026"}
	lg.Socketmap = Endpoint{"tcp", "127.0.0.1:8027"}
	lg.Roles = []Role{
		{Addr: "postmaster@example.org", Target: "hostmaster@example.net", File: "lists/@example.org"},
		{Addr: "abuse@example.org", List: true, File: "lists/@example.org"},
		{Addr: "postmaster@xn--bcher-kva.example", Target: "hostmaster@example.net", File: "lists/@xn--bcher-kva.example"},
		{Addr: "abuse@xn--bcher-kva.example", Target: "abuse@example.net", File: "lists/@xn--bcher-kva.example"},
	}
	return lg
}

// Each door's settings: what they set, and, written into main.cf, a
// configuration Lint finds clean with that door asked.
func TestRecommendDoors(t *testing.T) {
	for _, tc := range []struct {
		door   Door
		policy bool // the policy door on
		sm     bool // the socketmap door on
		want   map[string]string
		absent []string
	}{
		{DoorMilter, false, false, map[string]string{
			"relay_domains": "example.org, xn--bcher-kva.example, bücher.example", "smtpd_milters": "inet:127.0.0.1:8025",
		}, []string{"virtual_alias_maps", "smtpd_recipient_restrictions", "relay_recipient_maps", "transport_maps"}},
		{DoorMilter, false, true, map[string]string{
			"smtpd_milters": "inet:127.0.0.1:8025", "virtual_alias_maps": "socketmap:inet:127.0.0.1:8027:aliases",
		}, []string{"relay_recipient_maps"}},
		{DoorPolicy, true, false, map[string]string{
			"relay_domains":                       "example.org, xn--bcher-kva.example, bücher.example",
			"relay_transport":                     "lmtp:inet:127.0.0.1:8024",
			"smtpd_recipient_restrictions":        "check_policy_service inet:127.0.0.1:8026",
			"smtpd_policy_service_default_action": "451 4.3.5 Server configuration problem",
		}, []string{"smtpd_milters", "milter_default_action", "virtual_alias_maps"}},
		{DoorSocketmap, false, true, map[string]string{
			"relay_domains":                   "socketmap:inet:127.0.0.1:8027:domains",
			"relay_recipient_maps":            "socketmap:inet:127.0.0.1:8027:recipients",
			"transport_maps":                  "socketmap:inet:127.0.0.1:8027:transport",
			"virtual_alias_maps":              "socketmap:inet:127.0.0.1:8027:aliases",
			"smtpd_reject_unlisted_recipient": "yes",
		}, []string{"smtpd_milters", "relay_transport", "parent_domain_matches_subdomains", "smtpd_recipient_restrictions"}},
	} {
		name := string(tc.door)
		if tc.sm {
			name += "+socketmap"
		}
		t.Run(name, func(t *testing.T) {
			lg := doorListgate()
			if !tc.policy {
				lg.Policy = Endpoint{}
			}
			if !tc.sm {
				lg.Socketmap = Endpoint{}
				lg.Roles = nil // nothing could rewrite them: not this test's point
			}
			if tc.door != DoorMilter {
				lg.Milter = Endpoint{}
			}
			got := map[string]string{}
			var text strings.Builder
			text.WriteString("mailbox_size_limit = 0\n")
			for _, s := range Recommend(lg, tc.door, "/var/spool/postfix", BuiltinDefaults()) {
				if _, dup := got[s.Name]; dup {
					t.Errorf("%s recommended twice", s.Name)
				}
				got[s.Name] = s.Value
				if s.Why == "" {
					t.Errorf("%s: no reason", s.Name)
				}
				text.WriteString(s.Line() + "\n")
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s = %q recommended, want none", k, got[k])
				}
			}
			c, err := Parse(text.String(), "main.cf")
			if err != nil {
				t.Fatal(err)
			}
			r := Lint(NewSettings(c, BuiltinDefaults(), Options{}), lg)
			if len(r.Findings) != 0 || len(r.Notes) != 0 {
				t.Errorf("Lint of the recommended settings: findings %v, notes %q", r.Findings, r.Notes)
			}
			if !slices.Equal(r.Asked, []Door{tc.door}) {
				t.Errorf("Asked = %v, want [%s]", r.Asked, tc.door)
			}
		})
	}
}

// Lint answers listgate's own socketmap as the door would.
func TestSocketmapLookup(t *testing.T) {
	lg := doorListgate()
	s := NewSettings(&Config{}, BuiltinDefaults(), Options{})
	s.own = &lg
	for _, tc := range []struct {
		table, key, value string
		found             bool
		err               string
	}{
		{"socketmap:inet:127.0.0.1:8027:domains", "example.org", "OK", true, ""},
		{"socketmap:inet:localhost:8027:domains", "Example.ORG.", "OK", true, ""},
		{"socketmap:inet:127.0.0.1:8027:domains", "bücher.example", "OK", true, ""},
		{"socketmap:inet:127.0.0.1:8027:domains", ".example.org", "", false, ""},
		{"socketmap:inet:127.0.0.1:8027:domains", "sub.example.org", "", false, ""},
		{"socketmap:inet:127.0.0.1:8027:domains", "x@example.org", "", false, ""},
		{"socketmap:inet:127.0.0.1:8027:recipients", "announce@example.org", "OK", true, ""},
		{"socketmap:inet:127.0.0.1:8027:recipients", "@example.org", "", false, ""},
		{"socketmap:inet:127.0.0.1:8027:recipients", "x@example.com", "", false, ""},
		{"socketmap:inet:127.0.0.1:8027:transport", "example.org", "lmtp:inet:127.0.0.1:8024", true, ""},
		{"socketmap:inet:127.0.0.1:8027:transport", "Announce+x@Example.ORG", "lmtp:inet:127.0.0.1:8024", true, ""},
		{"socketmap:inet:127.0.0.1:8027:transport", "*", "", false, ""},
		{"socketmap:inet:127.0.0.1:8027:aliases", "Postmaster@example.org", "hostmaster@example.net", true, ""},
		{"socketmap:inet:127.0.0.1:8027:aliases", "abuse@example.org", "", false, ""}, // a list takes it
		{"socketmap:inet:127.0.0.1:8027:aliases", "example.org", "", false, ""},
		{"proxy:socketmap:inet:127.0.0.1:8027:domains", "example.org", "OK", true, ""},
		{"socketmap:inet:127.0.0.1:8027:senders", "x", "", false, `has no map "senders"`},
		{"socketmap:inet:127.0.0.1:9999:domains", "example.org", "", false, "are not looked up by --check"},
	} {
		v, found, err := s.lookup(tc.table, tc.key)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %s: error %v, want %q", tc.table, tc.key, err, tc.err)
			}
			continue
		}
		if err != nil || found != tc.found || v != tc.value && tc.found {
			t.Errorf("%s %s = %q, %v, %v; want %q, %v", tc.table, tc.key, v, found, err, tc.value, tc.found)
		}
	}
}

func TestParseDoor(t *testing.T) {
	for _, d := range Doors {
		if got, err := ParseDoor(string(d)); got != d || err != nil {
			t.Errorf("ParseDoor(%q) = %q, %v", d, got, err)
		}
	}
	if _, err := ParseDoor("lmtp"); err == nil || !strings.Contains(err.Error(), "want milter, policy or socketmap") {
		t.Errorf("ParseDoor(lmtp): %v", err)
	}
}

// A socketmap is asked no parent domain: with it in relay_domains, even
// Postfix's default parent_domain_matches_subdomains relays no
// subdomain, and Lint says nothing about it.
func TestSocketmapNoParentLookup(t *testing.T) {
	lg := doorListgate()
	c, err := Parse("relay_domains = socketmap:inet:127.0.0.1:8027:domains\n", "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSettings(c, BuiltinDefaults(), Options{})
	s.own = &lg
	if got := s.Class("sub.example.org"); got != ClassDefault {
		t.Errorf("Class(sub.example.org) = %s, want default", got)
	}
	if got := s.Class("example.org"); got != ClassRelay {
		t.Errorf("Class(example.org) = %s, want relay", got)
	}
}

// A socketmap server on this host is one a listgate would have: loopback,
// or a unix socket named for listgate; --check takes listgate-named maps
// there, with the socketmap door off, for a forgotten --socketmap.
func TestLocalSocketmap(t *testing.T) {
	for _, tc := range []struct {
		server string
		want   bool
	}{
		{"inet:127.0.0.1:18027", true},
		{"inet:127.0.1.1:8027", true},
		{"inet:localhost:8027", true},
		{"inet:[::1]:8027", true},
		{"unix:listgate/socketmap", true},
		{"unix:/run/listgate/socketmap", true},
		{"inet:192.0.2.7:8027", false},
		{"inet:maps.example.net:8027", false},
		{"unix:/run/other/socketmap", false},
	} {
		ep, ok := ParseClientAddr(tc.server, "/var/spool/postfix", false)
		if !ok {
			t.Fatalf("ParseClientAddr(%q) failed", tc.server)
		}
		if got := localSocketmap(ep); got != tc.want {
			t.Errorf("localSocketmap(%s) = %v, want %v", tc.server, got, tc.want)
		}
	}
}

// Each door's switch removes what only the other doors' setups set, and
// never a parameter its own settings set.
func TestLeftovers(t *testing.T) {
	for _, tc := range []struct {
		door Door
		sm   bool // the socketmap door on
		want []string
	}{
		{DoorMilter, false, []string{"smtpd_recipient_restrictions", "relay_recipient_maps", "transport_maps", "virtual_alias_maps"}},
		{DoorMilter, true, []string{"smtpd_recipient_restrictions", "relay_recipient_maps", "transport_maps"}},
		{DoorPolicy, false, []string{"smtpd_milters", "relay_recipient_maps", "transport_maps", "virtual_alias_maps"}},
		{DoorSocketmap, true, []string{"smtpd_milters", "smtpd_recipient_restrictions"}},
	} {
		lg := doorListgate()
		if !tc.sm {
			lg.Socketmap = Endpoint{}
		}
		var got []string
		for _, l := range Leftovers(lg, tc.door, "/var/spool/postfix") {
			got = append(got, l.Name)
			if len(l.Entries) == 0 || l.What == "" {
				t.Errorf("%s: %s: no entries or no words: %+v", tc.door, l.Name, l)
			}
			if !strings.HasPrefix(l.Command(), "listgate_unset "+l.Name+" \\\n\t'") {
				t.Errorf("%s: command %q", tc.door, l.Command())
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s (socketmap %v): %q, want %q", tc.door, tc.sm, got, tc.want)
		}
		for _, s := range Recommend(lg, tc.door, "/var/spool/postfix", BuiltinDefaults()) {
			if slices.Contains(got, s.Name) {
				t.Errorf("%s: %s both set and removed", tc.door, s.Name)
			}
		}
	}
	if got, want := shLiteral("inet:[::1]:8025*?"), "inet:[[]::1]:8025[*][?]"; got != want {
		t.Errorf("shLiteral = %q, want %q", got, want)
	}
}
