package main

import (
	"bytes"
	"github.com/listgate/listgate/config"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// A checkAxis is one parameter of a known-good main.cf and the values the
// fuzzer may give it instead. Each value's effect on the verdict is known
// from Postfix's documentation, not from the checker: expectFindings says
// which findings the chosen values must produce, interactions included.
type checkAxis struct {
	name   string
	values []string // main.cf lines; "" leaves the parameter unset
}

// The list domains of testdata/postconf/lists, every spelling.
const fuzzDomains = "example.org, lists.example.net, xn--bcher-kva.example, bücher.example"

var checkAxes = []checkAxis{
	{"smtpd_milters", []string{
		"smtpd_milters = inet:127.0.0.1:8025",
		"smtpd_milters = inet:127.0.0.1:8891, inet:localhost:8025",
		"smtpd_milters = { inet:127.0.0.1:8025, default_action = tempfail }",
		"smtpd_milters =",
		"smtpd_milters = inet:127.0.0.1:9999",
		"smtpd_milters = { inet:127.0.0.1:8025, default_action = accept }",
		"",
	}},
	{"milter_default_action", []string{"", "milter_default_action = tempfail", "milter_default_action = accept",
		"milter_default_action = reject", "milter_default_action = quarantine"}},
	{"receive_override_options", []string{"", "receive_override_options = no_address_mappings", "receive_override_options = no_milters"}},
	{"non_smtpd_milters", []string{"", "non_smtpd_milters = inet:127.0.0.1:8891", "non_smtpd_milters = inet:127.0.0.1:8025"}},
	{"relay_recipient_maps", []string{"",
		"relay_recipient_maps = inline:{ @example.org=ok, @lists.example.net=ok, @xn--bcher-kva.example=ok, @bücher.example=ok }",
		"relay_recipient_maps = inline:{ announce@example.org=ok }"}},
	{"relay_domains", []string{
		"relay_domains = " + fuzzDomains,
		"relay_domains = $listgate_domains\nlistgate_domains = " + fuzzDomains,
		"relay_domains = example.org, lists.example.net, xn--bcher-kva.example",
		"relay_domains = " + fuzzDomains + ", other.example",
		"relay_domains = " + fuzzDomains + ", .example.org",
	}},
	{"parent_domain_matches_subdomains", []string{
		"parent_domain_matches_subdomains = debug_peer_list, fast_flush_domains, mynetworks, permit_mx_backup_networks, qmqpd_authorized_clients, smtpd_access_maps",
		"",
	}},
	{"routing", []string{
		"relay_transport = lmtp:inet:127.0.0.1:8024",
		"relay_transport = lmtp:inet:localhost:8024",
		"relay_transport = smtp\ntransport_maps = inline:{ example.org=lmtp:inet:127.0.0.1:8024, lists.example.net=lmtp:[127.0.0.1]:8024, xn--bcher-kva.example=lmtp:inet:127.0.0.1:8024, bücher.example=lmtp:127.0.0.1:8024 }",
		"",
		"relay_transport = smtp:[127.0.0.1]:8024",
		"relay_transport = lmtp:inet:127.0.0.1:8024\ntransport_maps = inline:{ example.org=smtp:[192.0.2.1] }",
	}},
	{"recipient_delimiter", []string{"recipient_delimiter = +", "recipient_delimiter =", "recipient_delimiter = -", "", "recipient_delimiter = ++"}},
	{"message_size_limit", []string{"message_size_limit = 67108864", "", "message_size_limit = 0", "message_size_limit = 100000000"}},
	{"mailbox_size_limit", []string{"mailbox_size_limit = 0", "", "mailbox_size_limit = 200000000"}},
	{"smtpd_relay_restrictions", []string{
		"smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
		"",
		"smtpd_relay_restrictions = permit_mynetworks, permit",
		"smtpd_relay_restrictions = permit, reject_unauth_destination",
	}},
	{"mydestination", []string{"mydestination = $myhostname, localhost", "mydestination = $myhostname, localhost, example.org"}},
	{"set twice", []string{"", "biff = no", "milter_protocol = 2"}},
	{"layout", []string{"plain", "folded", "reversed", "commented"}},
}

// choose reads one choice per axis from data (0 where data ends).
func choose(data []byte) []int {
	c := make([]int, len(checkAxes))
	for i := range c {
		if i < len(data) {
			c[i] = int(data[i]) % len(checkAxes[i].values)
		}
	}
	return c
}

// mainCF writes the configuration the choices describe, on a fixed base.
func mainCF(c []int) string {
	lines := []string{"compatibility_level = 3.6", "myhostname = mx.example.com", "biff = no",
		"lmtp_destination_recipient_limit = 50", "milter_protocol = 6"}
	for i, ax := range checkAxes[:len(checkAxes)-1] {
		if v := ax.values[c[i]]; v != "" {
			lines = append(lines, strings.Split(v, "\n")...)
		}
	}
	switch checkAxes[len(checkAxes)-1].values[c[len(c)-1]] {
	case "folded": // continuation lines (postconf(5))
		for i, l := range lines {
			lines[i] = strings.ReplaceAll(l, ", ", ",\n    ")
		}
	case "reversed": // the order of parameters does not matter
		slices.Reverse(lines)
	case "commented":
		for i, l := range lines {
			lines[i] = "# a comment\n\n" + l + "\n  # an indented comment"
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// expectFindings is what --check must report for the choices: the
// parameter each finding names (its first word), sorted.
func expectFindings(c []int) []string {
	v := func(name string) int {
		for i, ax := range checkAxes {
			if ax.name == name {
				return c[i]
			}
		}
		panic(name)
	}
	milter, action, override := v("smtpd_milters"), v("milter_default_action"), v("receive_override_options")
	route, relay, pdms := v("routing"), v("relay_domains"), v("parent_domain_matches_subdomains")
	var want []string
	add := func(cond bool, param string) {
		if cond {
			want = append(want, param)
		}
	}
	// MILTER_README: smtpd asks the milters of smtpd_milters unless
	// receive_override_options has no_milters; milter_default_action, or
	// listgate's entry's own default_action, says what happens when it
	// cannot.
	add(milter >= 3, "smtpd_milters")
	asked := (milter <= 2 || milter == 5) && override != 2
	add(action >= 2 && milter != 2 && milter != 5, "milter_default_action")
	add(override == 2, "receive_override_options")
	add(v("non_smtpd_milters") == 2, "non_smtpd_milters")
	// ADDRESS_CLASS_README: mydestination comes first; a list domain
	// missing from relay_domains is refused.
	exampleLocal := v("mydestination") == 1
	add(exampleLocal, "mydestination")
	add(relay == 2, "relay_domains")
	// transport(5): relay_transport, overridden by transport_maps.
	add(route == 3 || route == 4, "relay_transport")
	add(route == 5 && !exampleLocal, "transport_maps")
	add(!asked && v("relay_recipient_maps") == 0, "relay_recipient_maps")
	add(v("relay_recipient_maps") == 2, "relay_recipient_maps")
	// Another domain relayed to listgate: a subdomain of a list domain
	// (through parent_domain_matches_subdomains or a .domain pattern)
	// or an unserved domain, when relay_transport reaches listgate.
	othersToListgate := route == 0 || route == 1 || route == 5
	add(pdms == 1 && othersToListgate, "parent_domain_matches_subdomains")
	add(pdms == 0 && relay == 4 && othersToListgate, "relay_domains")
	add(relay == 3 && othersToListgate, "relay_domains")
	add(v("recipient_delimiter") >= 1 && v("recipient_delimiter") <= 3, "recipient_delimiter")
	msl := []int64{67108864, 10240000, 0, 100000000}[v("message_size_limit")]
	add(msl == 0 || msl > config.DefaultMaxMessageSize, "message_size_limit")
	add(v("mailbox_size_limit") == 1 && msl != 0 && msl > 51200000, "mailbox_size_limit") // local(8)'s default limit
	add(v("smtpd_relay_restrictions") >= 2, "smtpd_relay_restrictions")
	add(v("set twice") == 1, "biff")
	add(v("set twice") == 2, "milter_protocol")
	slices.Sort(want)
	return want
}

// FuzzPostfixCheck judges configurations made from a known-good main.cf
// by changing parameters to values whose effect is known (checkAxes), and
// requires exactly the findings the changes call for: a finding missed, or
// one too many, is a wrong verdict. Also: exit 1 with findings, exit 0
// with an "ok:" line, every finding names its fix. The seeds
// (testdata/fuzz/FuzzPostfixCheck) change one parameter each, and some
// several.
func FuzzPostfixCheck(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) { checkChoices(t, choose(data)) })
}

// checkChoices runs --check on the configuration the choices describe and
// compares its findings with expectFindings.
func checkChoices(t *testing.T, c []int) {
	t.Helper()
	text := mainCF(c)
	var out, errb bytes.Buffer
	st, err := postfixCmd([]string{"--lists", postconfLists, "--postconf-command", noPostconf, "--check", "-"},
		strings.NewReader(text), &out, &errb)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	var got []string
	for _, fd := range findings(out.String()) {
		param, _, _ := strings.Cut(fd, ":")
		param, _, _ = strings.Cut(param, " ")
		got = append(got, param)
		if !strings.Contains(fd, "; fix: ") {
			t.Errorf("finding names no fix: %s", fd)
		}
	}
	slices.Sort(got)
	want := expectFindings(c)
	if !slices.Equal(got, want) {
		t.Errorf("choices %v: findings %q, want %q\n--- main.cf\n%s--- output\n%s", c, got, want, text, out.String())
	}
	switch {
	case len(want) == 0 && (st != 0 || !strings.Contains(out.String(), "ok: stdin")):
		t.Errorf("exit %d without findings:\n%s", st, out.String())
	case len(want) > 0 && st != exitRefused:
		t.Errorf("exit %d with findings", st)
	}
}

// TestPostfixCheckPairs makes every pair of changes to the known-good
// configuration, which is where one change can hide or cause another's
// finding.
func TestPostfixCheckPairs(t *testing.T) {
	n := 0
	for i := range checkAxes {
		for j := i + 1; j < len(checkAxes); j++ {
			for vi := range checkAxes[i].values {
				for vj := range checkAxes[j].values {
					c := make([]int, len(checkAxes))
					c[i], c[j] = vi, vj
					checkChoices(t, c)
					n++
				}
			}
		}
	}
	t.Logf("%d configurations", n)
}

// TestFuzzPostfixCheckSeeds: the seed corpus changes every parameter to
// every value at least once.
func TestFuzzPostfixCheckSeeds(t *testing.T) {
	seen := map[[2]int]bool{}
	for _, data := range fuzzSeeds(t) {
		for i, v := range choose(data) {
			seen[[2]int{i, v}] = true
		}
	}
	for i, ax := range checkAxes {
		for v := range ax.values {
			if !seen[[2]int{i, v}] {
				t.Errorf("no seed gives %s value %d (%q)", ax.name, v, ax.values[v])
			}
		}
	}
}

// fuzzSeeds reads testdata/fuzz/FuzzPostfixCheck.
func fuzzSeeds(t *testing.T) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzPostfixCheck", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seeds: %v", err)
	}
	var out [][]byte
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		q, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "go test fuzz v1\n[]byte(")
		data, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
		if !ok || err != nil {
			t.Fatalf("%s: not a []byte seed (%v)", file, err)
		}
		out = append(out, []byte(data))
	}
	return out
}
