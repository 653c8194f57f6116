package lists_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/listgate/listgate/internal/corpus"
	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
)

// TestObserveMode: which domains are in observe mode, and what that
// changes: only an address that would be Unknown becomes Observed (with
// its domain); lists, sub-addresses, postmaster@ aliases and tempfails
// are as in enforce mode. The observe setting (Options.Observe) covers
// every domain whose domain file sets no mode; `mode = "enforce"` wins
// over it. A domain file that never parsed tempfails the domain's
// unknown addresses (its mode is not known).
func TestObserveMode(t *testing.T) {
	files := map[string]string{
		"@observed.example":       "mode = \"observe\"\naliases = [\"alias.example\"]\npostmaster = \"h@example.net\"\n",
		"@enforced.example":       "mode = \"enforce\"\n",
		"@plain.example":          "description = \"no mode\"\n",
		"l@observed.example":      "",
		"l@enforced.example":      "",
		"l@plain.example":         "",
		"l@lists-only.example":    "",
		"b@broken-list.example":   "[broken\n",
		"@broken-domain.example":  "mode = \"observ\"\n",
		"l@broken-domain.example": "",
	}
	tests := []struct {
		rcpt         string
		enforce, all lists.Status // Options.Observe false, true
	}{
		{"x@observed.example", lists.Observed, lists.Observed},
		{"<X+ext@ALIAS.example.>", lists.Observed, lists.Observed},
		{"l-bogus@observed.example", lists.Observed, lists.Observed},
		{"l@observed.example", lists.Accept, lists.Accept},
		{"l-bounces+a=b@alias.example", lists.Accept, lists.Accept},
		{"postmaster@observed.example", lists.Alias, lists.Alias},
		{"x@enforced.example", lists.Unknown, lists.Unknown},
		{"x@plain.example", lists.Unknown, lists.Observed},
		{"x@lists-only.example", lists.Unknown, lists.Observed},
		{"x@broken-list.example", lists.Broken, lists.Broken},
		{"b@broken-list.example", lists.Broken, lists.Broken},
		{"x@broken-domain.example", lists.Broken, lists.Broken},
		{"l@broken-domain.example", lists.Accept, lists.Accept},
		{"x@not-served.example", lists.NotServed, lists.NotServed},
	}
	for _, observe := range []bool{false, true} {
		_, snap := loadDir(t, lists.Options{Observe: observe}, files)
		for _, tt := range tests {
			want := map[bool]lists.Status{false: tt.enforce, true: tt.all}[observe]
			v := snap.Resolve(tt.rcpt)
			if v.Status != want {
				t.Errorf("Observe %v: Resolve(%q) = %v, want %v", observe, tt.rcpt, v.Status, want)
			}
			if v.Status == lists.Observed && v.Domain == "" {
				t.Errorf("Observe %v: Resolve(%q).Domain = %q", observe, tt.rcpt, v.Domain)
			}
		}
	}
	_, snap := loadDir(t, lists.Options{}, files)
	if v := snap.Resolve("x@alias.example"); v.Domain != "observed.example" {
		t.Errorf("an alias domain's observed address: Domain %q, want its domain", v.Domain)
	}
	for _, d := range snap.Domains() {
		want := map[string]lists.Mode{"observed.example": lists.ModeObserve, "enforced.example": lists.ModeEnforce}[d.Name]
		if d.Mode != want {
			t.Errorf("%s: Mode %q, want %q", d.Name, d.Mode, want)
		}
	}
}

// TestWatchModeSwitch: rewriting a domain file from observe to enforce
// takes effect on the next Resolve after the reload, within a second; and
// back.
func TestWatchModeSwitch(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	write(t, filepath.Join(dir, "@example.org"), "mode = \"observe\"\n")
	write(t, filepath.Join(dir, "announce@example.org"), "")
	w, _ := startWatch(t, dir)
	if got := status(w, "bogus@example.org"); got != lists.Observed {
		t.Fatalf("observe: %v", got)
	}
	write(t, filepath.Join(dir, "@example.org"), "mode = \"enforce\"\n")
	took := testutil.WaitFor(t, time.Second, "enforce", func() bool { return status(w, "bogus@example.org") == lists.Unknown })
	t.Logf("enforced after %v", took)
	writeInPlace(t, filepath.Join(dir, "@example.org"), "# watching again\nmode = \"observe\"\n")
	testutil.WaitFor(t, time.Second, "observe again", func() bool { return status(w, "bogus@example.org") == lists.Observed })
}

// TestExplainCorpus: Explain's verdict is Resolve's for every recipient
// of the verdict corpus, in both modes of the observe setting, and its
// steps start where Resolve starts.
func TestExplainCorpus(t *testing.T) {
	cases, err := corpus.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, observe := range []bool{false, true} {
		snap, err := lists.Load(corpus.ListsDir(), lists.Options{Observe: observe})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			steps, v := snap.Explain(c.Rcpt)
			if w := snap.Resolve(c.Rcpt); v != w {
				t.Errorf("verdicts.txt:%d: Explain(%q) = %+v, Resolve = %+v", c.Line, c.Rcpt, v, w)
			}
			if len(steps) < 2 || steps[0].Name != lists.StepBrackets || steps[1].Name != lists.StepSplit {
				t.Errorf("verdicts.txt:%d: Explain(%q) steps %v", c.Line, c.Rcpt, steps)
			}
		}
	}
}

// TestExplainSteps: the steps Explain reports, for recipients that take
// each path of Resolve.
func TestExplainSteps(t *testing.T) {
	snap, err := lists.Load(corpus.ListsDir(), lists.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := corpus.ListsDir()
	tests := []struct {
		rcpt string
		want []string // "name: text" of each step, in order; DIR for the lists directory
	}{
		{"<MyList-Bounces+anne=example.org@Lists.Example.COM.>", []string{
			`brackets: "<MyList-Bounces+anne=example.org@Lists.Example.COM.>" without <>: "MyList-Bounces+anne=example.org@Lists.Example.COM."`,
			`split: at the last "@": local part "MyList-Bounces+anne=example.org", domain "Lists.Example.COM.", without its trailing dot "Lists.Example.COM"`,
			`extension: cut at the first recipient delimiter "+": local part "MyList-Bounces", extension "anne=example.org"`,
			`fold: lower case: local part "mylist-bounces", domain "lists.example.com"`,
			`domain: lists.example.com is an alias domain of example.com (aliases in DIR/@example.com)`,
			`domain: example.com is served (DIR/@example.com), mode enforce (the default)`,
			`list: mylist-bounces@example.com is no list and no list alias`,
			`sub-address: split at the last "-": "mylist" and "bounces": the bounces sub-address of the list mylist@example.com (DIR/mylist@example.com)`,
		}},
		{"straße@bücher.example", []string{
			`brackets: "straße@bücher.example": no <> to strip`,
			`split: at the last "@": local part "straße", domain "bücher.example"`,
			`extension: no recipient delimiter ("+") in the local part: no extension`,
			`fold: lower case: local part "straße", domain "xn--bcher-kva.example" ("bücher.example" in its A-label form, IDNA)`,
			`domain: xn--bcher-kva.example is served by its list files, mode enforce (the default)`,
			`list: straße@xn--bcher-kva.example is a list: DIR/straße@bücher.example`,
		}},
		{"broken-request@broken.example", []string{
			`brackets: "broken-request@broken.example": no <> to strip`,
			`split: at the last "@": local part "broken-request", domain "broken.example"`,
			`extension: no recipient delimiter ("+") in the local part: no extension`,
			`fold: lower case: local part "broken-request", domain "broken.example"`,
			`domain: broken.example is served by its list files, mode enforce (the default)`,
			`list: broken-request@broken.example is no list and no list alias`,
			`sub-address: split at the last "-": "broken" and "request", the request sub-address of broken@broken.example, which tempfails: DIR/broken@broken.example:1: unknown key "descripton"`,
		}},
		{"news@example.org", []string{
			`brackets: "news@example.org": no <> to strip`,
			`split: at the last "@": local part "news", domain "example.org"`,
			`extension: no recipient delimiter ("+") in the local part: no extension`,
			`fold: lower case: local part "news", domain "example.org"`,
			`domain: example.org is served by its list files, mode enforce (the default)`,
			`list: news@example.org is an alias of the list announce@example.org (aliases in DIR/announce@example.org)`,
		}},
		{"nosuchlist+x@observed.example", []string{
			`brackets: "nosuchlist+x@observed.example": no <> to strip`,
			`split: at the last "@": local part "nosuchlist+x", domain "observed.example"`,
			`extension: cut at the first recipient delimiter "+": local part "nosuchlist", extension "x"`,
			`fold: lower case: local part "nosuchlist", domain "observed.example"`,
			`domain: observed.example is served (DIR/@observed.example), mode observe (DIR/@observed.example:2)`,
			`list: nosuchlist@observed.example is no list and no list alias`,
			`sub-address: no "-" in "nosuchlist" after its first character: no sub-address`,
			`unknown: no list has this address; observed.example is in observe mode: enforce would refuse it, the doors at RCPT let it through and count it`,
		}},
		{"old-broken@broken.example", []string{
			`brackets: "old-broken@broken.example": no <> to strip`,
			`split: at the last "@": local part "old-broken", domain "broken.example"`,
			`extension: no recipient delimiter ("+") in the local part: no extension`,
			`fold: lower case: local part "old-broken", domain "broken.example"`,
			`domain: broken.example is served by its list files, mode enforce (the default)`,
			`list: old-broken@broken.example is no list and no list alias`,
			`sub-address: split at the last "-": "old" and "broken", which is no sub-address name (bounces confirm join leave owner request subscribe unsubscribe)`,
			`unknown: no list has this address, but a file of broken.example has never parsed, and it may declare it (an alias, or the domain's mode): tempfail until it parses: DIR/broken@broken.example:1: unknown key "descripton"`,
		}},
		{"postmaster", []string{
			`brackets: "postmaster": no <> to strip`,
			`split: no "@": not an address, so no domain of listgate's`,
		}},
	}
	for _, tt := range tests {
		steps, _ := snap.Explain(tt.rcpt)
		var got []string
		for _, s := range steps {
			got = append(got, fmt.Sprintf("%s: %s", s.Name, strings.ReplaceAll(s.Text, dir, "DIR")))
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("Explain(%q):\n%s\nwant:\n%s", tt.rcpt, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}
