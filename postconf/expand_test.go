package postconf

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needPostconf returns the path of postconf(1), or skips the test with a
// hint; under LISTGATE_TEST_POSTFIX=1 a missing Postfix fails it.
func needPostconf(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"postconf", "/usr/sbin/postconf"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("LISTGATE_TEST_POSTFIX") == "1" {
		t.Fatal("postconf is not installed (LISTGATE_TEST_POSTFIX=1 requires it)")
	}
	t.Skip("postconf is not installed: apt-get install postfix (LISTGATE_TEST_POSTFIX=1 makes this a failure)")
	return ""
}

// writeConfig writes the files of a configuration directory, dated a
// minute ago: Postfix rereads a main.cf younger than a second until it
// settles, 300 ms at a time.
func writeConfig(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	old := time.Now().Add(-time.Minute)
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// expandMainCF sets the parameters the expansion cases refer to; the
// cases are values of parameters Postfix knows, so that "postconf -x"
// prints them too.
const expandMainCF = `compatibility_level = 3.6
mydomain = example.org
myhostname = mx.example.org
lg_empty =
lg_set = x
lg_a = $lg_b
lg_b = deep
`

// expandCases are values and their expansion (postconf(5), the
// introduction), as Postfix 3.7's postconf -x prints them.
var expandCases = []struct{ param, value, want string }{
	{"smtpd_banner", "$myhostname, localhost.$mydomain", "mx.example.org, localhost.example.org"},
	{"bounce_notice_recipient", "${myhostname}x $(mydomain)", "mx.example.orgx example.org"},
	{"delay_notice_recipient", "${mydomain?yes} ${lg_empty?no}", "yes"},
	{"error_notice_recipient", "${lg_empty:fallback} ${mydomain:no}", "fallback"},
	{"2bounce_notice_recipient", "$$literal $lg_a ${lg_set?value with spaces}", "$literal deep value with spaces"},
	{"smtpd_sasl_local_domain", "${{$compatibility_level} <level {2} ? {old} : {new}} ${{10} < {9} ? {num-lt} : {num-ge}} ${{abc} < {abd} ? {lex-lt} : {lex-ge}}", "new num-ge lex-lt"},
	{"smtp_helo_name", "${{3.10} >level {3.9} ? {yes} : {no}} ${lg_set?{a}:{b}} ${lg_empty?{a}:{b}} ${{$mydomain} == {example.org} ? {eq} : {ne}}", "yes a b eq"},
	{"lmtp_lhlo_name", "${{ 1 } == {01} ? {numeq}:{numne}} ${lg_set:{x}} ${{a}!={b}?{ne}} ${lg_empty?{a}}", "numne ne"},
	{"smtpd_authorized_xclient_hosts", "${{a} == {a} : {x}}x ${lg_set?{y} : {z}}", "x y"},
	{"smtpd_sasl_exceptions_networks", "[${lg_undefined}]", "[]"}, // postconf -d: every name known
	{"relay_domains", "", ""}, // the default, at compatibility level 3.6
	{"smtpd_relay_restrictions", "", "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"},
	{"mydestination", "", "mx.example.org, localhost.example.org, localhost"},
}

func expandSettings(t *testing.T, d *Defaults) *Settings {
	t.Helper()
	text := expandMainCF
	for _, tc := range expandCases {
		if tc.value != "" {
			text += tc.param + " = " + tc.value + "\n"
		}
	}
	c, err := Parse(text, "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	return NewSettings(c, d, Options{})
}

func TestExpand(t *testing.T) {
	s := expandSettings(t, BuiltinDefaults())
	for _, tc := range expandCases {
		if strings.Contains(tc.value, "lg_undefined") {
			continue // see below
		}
		if got := strings.Join(strings.Fields(s.Value(tc.param)), " "); got != tc.want {
			t.Errorf("%s = %s\n  expands to %q, want %q", tc.param, tc.value, got, tc.want)
		}
	}
	// With the built-in defaults, which are not all of Postfix's, an
	// unknown name stays as it is rather than becoming empty.
	c, _ := Parse("relay_domains = $myhostname, ${nosuch}, $nosuch\n", "t")
	if got := NewSettings(c, BuiltinDefaults(), Options{}).Value("relay_domains"); got != "$myhostname, ${nosuch}, $nosuch" {
		t.Errorf("unknown names: %q", got)
	}
	// Loops and explosions end.
	c, _ = Parse("a = $a $a $a $a $a $a $a $a $a $a\nb = ${a\nc = ${{x} ~~ {y} ? {z}}\n", "t")
	s = NewSettings(c, BuiltinDefaults(), Options{})
	if got := s.Value("a"); len(got) > 2*maxExpansion {
		t.Errorf("a expands to %d bytes", len(got))
	}
	if got := s.Value("b"); got != "${a" {
		t.Errorf("b = %q", got)
	}
	if got := s.Value("c"); got != "${{x} ~~ {y} ? {z}}" {
		t.Errorf("c = %q", got)
	}
}

// TestExpandAsPostconf checks the expansion against Postfix's own:
// postconf -x of the same main.cf, with postconf -d's defaults. (postconf
// prints a value's words with one space between them; so does the
// comparison.)
func TestExpandAsPostconf(t *testing.T) {
	path := needPostconf(t)
	dir := t.TempDir()
	text := expandMainCF
	args := []string{"-c", dir, "-x", "-h"}
	for _, tc := range expandCases {
		if tc.value != "" {
			text += tc.param + " = " + tc.value + "\n"
		}
		args = append(args, tc.param)
	}
	writeConfig(t, dir, map[string]string{"main.cf": text})
	out, err := exec.Command(path, args...).Output()
	if err != nil {
		t.Fatalf("postconf %s: %v", strings.Join(args, " "), err)
	}
	d, err := Tools{Postconf: path}.Defaults(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := expandSettings(t, d)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(expandCases) {
		t.Fatalf("postconf -x printed %d lines for %d parameters:\n%s", len(lines), len(expandCases), out)
	}
	for i, tc := range expandCases {
		if got := strings.Join(strings.Fields(s.Value(tc.param)), " "); got != lines[i] {
			t.Errorf("%s = %s\n  expands to %q; postconf -x says %q", tc.param, tc.value, got, lines[i])
		}
	}
}
