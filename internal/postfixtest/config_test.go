package postfixtest

import (
	"maps"
	"os"
	"strings"
	"testing"
)

// These run without Postfix: they pin what the contrib snippets say and
// how the harness reads and rewrites them.

func readContrib(t *testing.T, name string) []param {
	t.Helper()
	path, err := repoFile("contrib/postfix/" + name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := parseMainCF(string(b), "contrib/postfix/"+name)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func values(ps []param) map[string]string {
	m := map[string]string{}
	for _, p := range ps {
		if _, dup := m[p.key]; dup {
			panic("duplicate " + p.key)
		}
		m[p.key] = p.value
	}
	return m
}

func TestContribSnippets(t *testing.T) {
	common := map[string]string{
		"lmtp_destination_recipient_limit": "50",
		"recipient_delimiter":              "+",
		"message_size_limit":               "67108864", // listgate's default --max-message-size, 64 MiB
		"smtpd_relay_restrictions":         "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
	}
	pdms := map[string]string{"parent_domain_matches_subdomains": "debug_peer_list, fast_flush_domains, mynetworks, permit_mx_backup_networks, qmqpd_authorized_clients, smtpd_access_maps"}
	milter := map[string]string{"relay_domains": "example.org", "milter_default_action": "tempfail", "milter_protocol": "6"}
	for name, own := range map[string][]map[string]string{
		"main.cf": {pdms, milter, {
			"relay_transport": "lmtp:inet:127.0.0.1:8024",
			"smtpd_milters":   "inet:127.0.0.1:8025",
		}},
		"main.cf.unix": {pdms, milter, {
			"relay_transport": "lmtp:unix:listgate/lmtp",
			"smtpd_milters":   "unix:listgate/milter",
		}},
		"main.cf.policy": {pdms, {
			"relay_domains":                       "example.org",
			"relay_transport":                     "lmtp:inet:127.0.0.1:8024",
			"smtpd_recipient_restrictions":        "check_policy_service inet:127.0.0.1:8026",
			"smtpd_policy_service_default_action": "451 4.3.5 Server configuration problem",
		}},
		"main.cf.socketmap": {{
			"relay_domains":                   "socketmap:inet:127.0.0.1:8027:domains",
			"relay_recipient_maps":            "socketmap:inet:127.0.0.1:8027:recipients",
			"smtpd_reject_unlisted_recipient": "yes",
			"transport_maps":                  "socketmap:inet:127.0.0.1:8027:transport",
			"virtual_alias_maps":              "socketmap:inet:127.0.0.1:8027:aliases",
		}},
	} {
		t.Run(name, func(t *testing.T) {
			got := values(readContrib(t, name))
			want := maps.Clone(common)
			for _, m := range own {
				maps.Copy(want, m)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("%s sets %s, which this test does not know: pin it here and explain it in README.md", name, k)
				}
			}
			if _, ok := got["non_smtpd_milters"]; ok {
				t.Errorf("%s sets non_smtpd_milters: a non-SMTP milter must never reject a recipient (README.md)", name)
			}
		})
	}
}

func TestContribReadmeExplainsEveryKey(t *testing.T) {
	path, err := repoFile("contrib/postfix/README.md")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range Snippets {
		if !strings.Contains(string(b), "| `"+name+"` |") {
			t.Errorf("README.md's table has no row for %s", name)
		}
		for _, p := range readContrib(t, name) {
			if !strings.Contains(string(b), "### `"+p.key+"`") {
				t.Errorf("README.md has no section \"### `%s`\" for the line of %s", p.key, name)
			}
		}
	}
	if !strings.Contains(string(b), "### `non_smtpd_milters`") {
		t.Errorf("README.md does not say why non_smtpd_milters is left alone")
	}
}

func TestParseMainCF(t *testing.T) {
	ps, err := parseMainCF("# comment\n\na = 1\nb =\nc = x,\n    y\n  # indented comment\nd=e=f\n", "t")
	if err != nil {
		t.Fatal(err)
	}
	got := values(ps)
	want := map[string]string{"a": "1", "b": "", "c": "x, y", "d": "e=f"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for _, bad := range []string{"  leading = continuation\n", "no equals sign\n", "two words = x\n", "= x\n", "smtp/inet/smtpd_milters = x\n"} {
		if _, err := parseMainCF(bad, "t"); err == nil {
			t.Errorf("parseMainCF(%q): no error", bad)
		}
	}
}

func TestMainCFLastWins(t *testing.T) {
	var m mainCF
	m.add("one", []param{{"a", "1", "one:1"}, {"b", "1", "one:2"}})
	m.add("two", []param{{"a", "2", "two:1"}})
	if v, _ := m.lookup("a"); v != "2" {
		t.Fatalf("a = %q, want 2", v)
	}
	m.set("a", "3", "override")
	text := m.String()
	if strings.Count(text, "\na = ") != 1 || !strings.Contains(text, "\na = 3\n") || !strings.Contains(text, "\nb = 1\n") {
		t.Fatalf("main.cf names a key twice or lost a value:\n%s", text)
	}
}

func TestCheckNotHostListgate(t *testing.T) {
	for _, tc := range []struct {
		value string
		bad   bool
	}{
		{"lmtp:inet:127.0.0.1:8024", true},
		{"inet:127.0.0.1:8025", true},
		{"inet:localhost:8025, inet:127.0.0.1:41000", true},
		{"{ inet:[127.0.0.1]:8025, default_action=accept }", true},
		{"lmtp:inet:127.0.0.1:41234", false},
		{"unix:listgate/milter", false},
		{"check_policy_service inet:127.0.0.1:8026", true},
		{"socketmap:inet:127.0.0.1:8027:domains", true},
		{"socketmap:inet:127.0.0.1:41000:domains", false},
		{"socketmap:unix:listgate/socketmap:domains", false},
		{"", false},
	} {
		if err := checkNotHostListgate("k", tc.value); (err != nil) != tc.bad {
			t.Errorf("checkNotHostListgate(%q) = %v, want error: %v", tc.value, err, tc.bad)
		}
	}
}

func TestCompatibilityLevel(t *testing.T) {
	for v, want := range map[string]string{"3.7.11\n": "3.6", "3.6.0": "3.6", "3.5.18": "2", "4.0": "3.6", "junk": "2"} {
		if got := compatibilityLevel(v); got != want {
			t.Errorf("compatibilityLevel(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestReplacePolicyAndSocketmap(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		n        int
		f        func(string, string) (string, int)
	}{
		{"check_policy_service inet:127.0.0.1:8026", "check_policy_service inet:127.0.0.1:41000", 1, replacePolicy},
		{"permit_mynetworks, check_policy_service unix:listgate/policy, reject", "permit_mynetworks, check_policy_service inet:127.0.0.1:41000, reject", 1, replacePolicy},
		{"check_policy_service { inet:127.0.0.1:8026, timeout=10s }, check_policy_service x", "check_policy_service { inet:127.0.0.1:41000, timeout=10s }, check_policy_service inet:127.0.0.1:41000", 2, replacePolicy},
		{"reject_unauth_destination", "reject_unauth_destination", 0, replacePolicy},
		{"socketmap:inet:127.0.0.1:8027:domains", "socketmap:inet:127.0.0.1:41000:domains", 1, replaceSocketmap},
		{"hash:/etc/postfix/relay, proxy:socketmap:unix:listgate/socketmap:recipients", "hash:/etc/postfix/relay, proxy:socketmap:inet:127.0.0.1:41000:recipients", 1, replaceSocketmap},
		{"example.org, lists.example.net", "example.org, lists.example.net", 0, replaceSocketmap},
	} {
		if got, n := tc.f(tc.in, "inet:127.0.0.1:41000"); got != tc.want || n != tc.n {
			t.Errorf("%q: got %q (%d), want %q (%d)", tc.in, got, n, tc.want, tc.n)
		}
	}
}
