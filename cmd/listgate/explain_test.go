package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/listgate/listgate/internal/corpus"
)

var updateExplain = flag.Bool("update-explain", false, "rewrite testdata/explain/*.txt from `listgate check --explain`")

// TestCheckExplain: `listgate check --explain` on the verdict corpus, for
// a post, a VERP bounce, an alias domain, a broken list, an unknown
// address and one of a domain in observe mode; each output is
// testdata/explain/NAME.txt, with the corpus directory written LISTS
// (go test -run TestCheckExplain -update-explain rewrites them; read
// the diff). Each step names what decided, and the doors' answers are
// the verdict table's.
func TestCheckExplain(t *testing.T) {
	tests := []struct {
		name, rcpt string
		status     int
		want       []string // lines the output must have, whatever the golden file says
	}{
		{"post", "Announce@Example.ORG", 0, []string{
			"list         announce@example.org is a list: LISTS/announce@example.org",
			"lmtp         RCPT: 250 2.0.0 (go-smtp's own text); after DATA: 250 2.1.5 Ok",
		}},
		{"verp-bounce", "<mylist-bounces+anne=example.org@example.com>", 0, []string{
			`extension    cut at the first recipient delimiter "+": local part "mylist-bounces", extension "anne=example.org"`,
			"verdict      accept list=mylist@example.com kind=bounces extension=anne=example.org",
		}},
		{"alias-domain", "mylist-request@Lists.Example.COM.", 0, []string{
			"domain       lists.example.com is an alias domain of example.com (aliases in LISTS/@example.com)",
		}},
		{"broken-list", "broken@broken.example", exitRefused, []string{
			`list         broken@broken.example tempfails: LISTS/broken@broken.example:1: unknown key "descripton" (as on disk now: a running listgate that parsed the file before keeps its last good settings until it parses again)`,
			"milter       RCPT: 451 4.3.0 Temporary lookup failure",
			"socketmap recipients  broken@broken.example: TEMP Temporary lookup failure",
		}},
		{"unknown", "nosuchlist@example.com", exitRefused, []string{
			"policy       RCPT: 550 5.1.1 Requested action not taken: mailbox unavailable",
			"socketmap recipients  nosuchlist@example.com: NOTFOUND",
		}},
		{"observed", "nosuchlist@observed.example", exitRefused, []string{
			"domain       observed.example is served (LISTS/@observed.example), mode observe (LISTS/@observed.example:2)",
			"milter       RCPT: continue",
			"socketmap recipients  nosuchlist@observed.example: OK observed.example",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			st := run([]string{"check", "--config", os.DevNull, "--lists", corpus.ListsDir(), "--lmtp", "inet:127.0.0.1:8024",
				"--explain", "--", tt.rcpt}, &out, &errb)
			if st != tt.status {
				t.Errorf("exit %d, want %d; stderr: %s", st, tt.status, errb.String())
			}
			got := strings.ReplaceAll(out.String(), corpus.ListsDir(), "LISTS")
			path := filepath.Join("testdata", "explain", tt.name+".txt")
			if *updateExplain {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (-update-explain rewrites it):\n%s", path, got)
			}
			lines := strings.Split(got, "\n")
			for _, l := range lines {
				if strings.HasSuffix(l, " ") {
					t.Errorf("a line ends with a blank: %q", l)
				}
			}
			if lines[0] != tt.rcpt {
				t.Errorf("first line %q, want the address", lines[0])
			}
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					found = found || strings.Join(strings.Fields(l), " ") == strings.Join(strings.Fields(w), " ")
				}
				if !found {
					t.Errorf("no line %q in:\n%s", w, got)
				}
			}
		})
	}
}
