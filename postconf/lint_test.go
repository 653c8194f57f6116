package postconf

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

var testListgate = Listgate{
	ListsDir:       "lists",
	Domains:        []string{"example.org", "xn--bcher-kva.example"},
	Lists:          []string{"announce@example.org", "liste@xn--bcher-kva.example"},
	LMTP:           Endpoint{"tcp", "127.0.0.1:8024"},
	Milter:         Endpoint{"tcp", "127.0.0.1:8025"},
	Delimiter:      "+",
	MaxMessageSize: 64 << 20,
}

func TestForms(t *testing.T) {
	if got, want := testListgate.Forms(), []string{"example.org", "xn--bcher-kva.example", "bücher.example"}; !slices.Equal(got, want) {
		t.Errorf("Forms = %q, want %q", got, want)
	}
}

// The recommended settings, written into main.cf, are clean; a parameter
// set twice is a finding naming both lines, whatever their values.
func TestLintRecommended(t *testing.T) {
	var text strings.Builder
	text.WriteString("recipient_delimiter = -\nmailbox_size_limit = 0\n")
	for _, s := range Recommend(testListgate, DoorMilter, "/var/spool/postfix", BuiltinDefaults()) {
		text.WriteString(s.Line() + "\n")
	}
	c, err := Parse(text.String(), "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	r := Lint(NewSettings(c, BuiltinDefaults(), Options{}), testListgate)
	if len(r.Findings) != 1 || len(r.Notes) != 0 {
		t.Fatalf("findings %v, notes %q; want one, recipient_delimiter set twice", r.Findings, r.Notes)
	}
	want := Finding{"recipient_delimiter",
		`is set 2 times, at main.cf:1 ("-"), main.cf:12 ("+"): Postfix uses the last (main.cf:12) and warns "overriding earlier entry", and an edit of an earlier line has no effect (appending to main.cf with cat >> repeats what it already sets)`,
		"delete main.cf:1: keep one line, and edit that one"}
	if r.Findings[0] != want {
		t.Errorf("finding\n  %s\nwant\n  %s", r.Findings[0], want)
	}
}

func TestRecommend(t *testing.T) {
	lg := testListgate
	lg.LMTP, lg.Milter = Endpoint{"unix", "/var/spool/postfix/listgate/lmtp"}, Endpoint{"unix", "/run/listgate/milter"}
	got := map[string]string{}
	for _, s := range Recommend(lg, DoorMilter, "/var/spool/postfix", BuiltinDefaults()) {
		got[s.Name] = s.Value
		if s.Why == "" {
			t.Errorf("%s: no reason", s.Name)
		}
	}
	for name, want := range map[string]string{
		"relay_domains":                    "example.org, xn--bcher-kva.example, bücher.example",
		"parent_domain_matches_subdomains": "debug_peer_list, fast_flush_domains, mynetworks, permit_mx_backup_networks, qmqpd_authorized_clients, smtpd_access_maps",
		"relay_transport":                  "lmtp:unix:listgate/lmtp",
		"smtpd_milters":                    "unix:/run/listgate/milter",
		"message_size_limit":               "67108864",
	} {
		if got[name] != want {
			t.Errorf("%s = %q, want %q", name, got[name], want)
		}
	}
	note := SocketNote(lg, "/var/spool/postfix")
	for _, want := range []string{"install -d -o listgate -g postfix -m 2750 /var/spool/postfix/listgate /run/listgate",
		"master.cf: /run/listgate/milter is outside Postfix's queue directory", "a chrooted smtpd cannot reach it", "postconf -F smtp/inet/chroot=n),"} {
		if !strings.Contains(note, want) {
			t.Errorf("SocketNote lacks %q:\n%s", want, note)
		}
	}
	if note := SocketNote(testListgate, "/var/spool/postfix"); note != "master.cf needs no change." {
		t.Errorf("SocketNote over TCP: %q", note)
	}
}

func TestSettingLine(t *testing.T) {
	s := Setting{Name: "relay_domains", Value: strings.Repeat("list.example.org, ", 6) + "last.example"}
	want := "relay_domains = list.example.org, list.example.org, list.example.org,\n" +
		"    list.example.org, list.example.org, list.example.org, last.example"
	if got := s.Line(); got != want {
		t.Errorf("Line:\n%s\nwant\n%s", got, want)
	}
	c, err := Parse(s.Line(), "t")
	if v, _ := c.Get("relay_domains"); err != nil || v != s.Value {
		t.Errorf("Line does not parse back: %q, %v", v, err)
	}
}

// A command's argument reaches postconf as one word, whatever the value.
func TestSettingCommand(t *testing.T) {
	for _, v := range []string{"+", "+'", `a"b $x \n`, "it's; rm -rf / #", ""} {
		s := Setting{Name: "recipient_delimiter", Value: v}
		cmd := s.Command()
		out, err := exec.Command("sh", "-c", strings.Replace(cmd, "postconf -e ", "printf %s ", 1)).Output()
		if err != nil || string(out) != "recipient_delimiter = "+v {
			t.Errorf("%s: sh passes %q (%v)", cmd, out, err)
		}
	}
}

// FuzzLint judges arbitrary configurations: no panic, every finding names
// a parameter, a problem and a fix, and the same configuration gets the
// same report twice (no state leaks between runs, no map order).
func FuzzLint(f *testing.F) {
	f.Add("relay_domains = $relay_domains\nsmtpd_milters = { inet:127.0.0.1:8025, default_action=accept }\n")
	f.Add("relay_domains = ${{$compatibility_level} <level {2} ? {$mydestination} : {}}\nmydestination = example.org\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(text, "fuzz")
		if err != nil {
			return
		}
		lint := func() Report {
			return Lint(NewSettings(c, BuiltinDefaults(), Options{Tools: Tools{Postmap: "/nonexistent/postmap"}}), testListgate)
		}
		r := lint()
		for _, fd := range r.Findings {
			if fd.Param == "" || fd.Problem == "" || fd.Fix == "" {
				t.Errorf("incomplete finding %+v", fd)
			}
		}
		if again := lint(); !slices.Equal(again.Findings, r.Findings) || !slices.Equal(again.Notes, r.Notes) {
			t.Errorf("two reports for one configuration:\n%v\n%v", r, again)
		}
	})
}
