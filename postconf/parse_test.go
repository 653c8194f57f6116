package postconf

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	c, err := Parse("# comment\n\na = 1\nb =\nc = x,\n    y\n  # indented comment\nd=e=f\r\nsmtp/inet/smtpd_milters = \na = 2\n", "main.cf")
	if err != nil {
		t.Fatal(err)
	}
	want := []Param{{"a", "1", "main.cf", 3}, {"b", "", "main.cf", 4}, {"c", "x, y", "main.cf", 5}, {"d", "e=f", "main.cf", 8}, {"a", "2", "main.cf", 10}}
	if !slices.Equal(c.Main, want) {
		t.Errorf("Main = %v\nwant %v", c.Main, want)
	}
	if want := []Param{{"smtp/inet/smtpd_milters", "", "main.cf", 9}}; !slices.Equal(c.Master, want) {
		t.Errorf("Master = %v, want %v", c.Master, want)
	}
	if v, ok := c.Get("a"); v != "2" || !ok {
		t.Errorf("Get(a) = %q, %v; want the last, 2", v, ok)
	}
	if v, ok := c.Override("smtp/inet", "smtpd_milters"); v != "" || !ok {
		t.Errorf("Override = %q, %v", v, ok)
	}
	dups := c.Duplicates()
	if len(dups) != 1 || len(dups[0]) != 2 || dups[0][0].Pos() != "main.cf:3" || dups[0][1].Pos() != "main.cf:10" {
		t.Errorf("Duplicates = %v, want a at main.cf:3 and main.cf:10", dups)
	}

	for _, tc := range []struct{ in, err string }{
		{"  leading = continuation\n", "t:1: continuation line with nothing to continue"},
		{"a = 1\nno equals sign\n", `t:2: not a main.cf line "name = value": "no equals sign"`},
		{"two words = x\n", "t:1: not a main.cf line"},
		{"= x\n", "t:1: not a main.cf line"},
	} {
		if _, err := Parse(tc.in, "t"); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Parse(%q) = %v, want %q", tc.in, err, tc.err)
		}
	}
}

func TestBuiltinDefaults(t *testing.T) {
	d := BuiltinDefaults()
	if _, err := Parse(builtin, "builtin"); err != nil {
		t.Fatal(err)
	}
	if !d.Builtin || d.Version != "3.7" || d.Source != "built-in defaults of Postfix 3.7" {
		t.Errorf("BuiltinDefaults = %+v", d)
	}
	for _, name := range []string{"relay_domains", "parent_domain_matches_subdomains", "smtpd_relay_restrictions", "queue_directory"} {
		if _, ok := d.Get(name); !ok {
			t.Errorf("no built-in default for %s", name)
		}
	}
}

func TestSplitList(t *testing.T) {
	got := splitList("a, b\tc,,{ inet:x:1, default_action = accept } inline:{ k=v, l=w }")
	want := []string{"a", "b", "c", "{ inet:x:1, default_action = accept }", "inline:{ k=v, l=w }"}
	if !slices.Equal(got, want) {
		t.Errorf("splitList = %q, want %q", got, want)
	}
}

// FuzzParse: any text either parses, with every setting's name free of
// blanks and its position inside the text, or is an error naming the text
// and a line in it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"a = 1\n  b\n", " x\n", "a\n", "s/t/n = v\n#c\n", "a = 1\r\na = 2\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		lines := strings.Count(text, "\n") + 1
		c, err := Parse(text, "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Errorf("error names no position: %v", err)
			}
			return
		}
		for _, p := range append(c.Main, c.Master...) {
			if p.Name == "" || strings.ContainsAny(p.Name, " \t\n") || p.Line < 1 || p.Line > lines || strings.Contains(p.Value, "\n") {
				t.Errorf("bad setting %+v", p)
			}
			if strings.Contains(p.Name, "/") != slices.Contains(c.Master, p) {
				t.Errorf("%q in the wrong section", p.Name)
			}
		}
	})
}
