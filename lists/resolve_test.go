package lists_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/listgate/listgate/lists"
)

// TestResolveEdges: recipients the verdict corpus does not cover, each
// against a directory made for it.
func TestResolveEdges(t *testing.T) {
	tests := []struct {
		name   string
		opts   lists.Options
		files  []string
		rcpt   string
		status lists.Status
		list   string
		kind   lists.Kind
		ext    string
	}{
		{name: "invalid UTF-8 is not U+FFFD", files: []string{"\ufffd@example.com"},
			rcpt: "\xff@example.com", status: lists.Unknown},
		{name: "U+FFFD itself", files: []string{"\ufffd@example.com"},
			rcpt: "\ufffd@example.com", status: lists.Accept, list: "\ufffd@example.com", kind: lists.Post},
		{name: "invalid UTF-8 domain", files: []string{"l@example.com"},
			rcpt: "l@\xffexample.com", status: lists.NotServed},
		{name: "multi-byte delimiter", opts: lists.Options{Delimiters: "§"}, files: []string{"l@example.com"},
			rcpt: "l-owner§tag§more@example.com", status: lists.Accept, list: "l@example.com", kind: lists.Owner, ext: "tag§more"},
		{name: "several delimiters: the first cuts", opts: lists.Options{Delimiters: "+-"}, files: []string{"l@example.com"},
			rcpt: "l-x+y@example.com", status: lists.Accept, list: "l@example.com", kind: lists.Post, ext: "x+y"},
		{name: "no delimiter", opts: lists.Options{Delimiters: "none"}, files: []string{"l@example.com"},
			rcpt: "l+x@example.com", status: lists.Unknown},
		{name: "empty extension", files: []string{"l@example.com"},
			rcpt: "l-request+@example.com", status: lists.Accept, list: "l@example.com", kind: lists.Request},
		{name: "long suffix is no sub-address", files: []string{"l@example.com"},
			rcpt: "l-" + strings.Repeat("request", 10) + "@example.com", status: lists.Unknown},
		{name: "local part and domain over 255 octets", files: []string{strings.Repeat("l", 240) + "@example.com"},
			rcpt: strings.Repeat("L", 240) + "-Bounces+x@Example.com", status: lists.Accept,
			list: strings.Repeat("l", 240) + "@example.com", kind: lists.Bounces, ext: "x"},
		{name: "empty local part", files: []string{"l@example.com"},
			rcpt: "@example.com", status: lists.Unknown},
		{name: "only brackets", files: []string{"l@example.com"},
			rcpt: "<>", status: lists.NotServed},
		{name: "two trailing dots", files: []string{"l@example.com"},
			rcpt: "l@example.com..", status: lists.NotServed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := make(map[string]string)
			for _, f := range tt.files {
				files[f] = ""
			}
			_, snap := loadDir(t, tt.opts, files)
			v := snap.Resolve(tt.rcpt)
			if v.Status != tt.status || v.List != tt.list || v.Kind != tt.kind || v.Extension != tt.ext {
				t.Errorf("Resolve(%q) = %+v, want %v %q %q %q", tt.rcpt, v, tt.status, tt.list, tt.kind, tt.ext)
			}
		})
	}
}

// TestAliasClaimedThrice: an alias three lists claim tempfails, and each
// list after the first is told which file claimed it first.
func TestAliasClaimedThrice(t *testing.T) {
	dir, snap := loadDir(t, lists.Options{}, map[string]string{
		"a@example.com": `aliases = ["old@example.com"]`,
		"b@example.com": `aliases = ["old@example.com"]`,
		"c@example.com": `aliases = ["old@example.com"]`,
	})
	if v := snap.Resolve("old-request@example.com"); v.Status != lists.Broken || v.List != "old@example.com" {
		t.Errorf("Resolve = %+v, want a tempfail", v)
	}
	var got []string
	for _, p := range snap.Problems() {
		got = append(got, p.Error())
	}
	want := []string{
		dir + "/b@example.com: alias old@example.com is also claimed by " + dir + "/a@example.com: it tempfails until one claim is removed",
		dir + "/c@example.com: alias old@example.com is also claimed by " + dir + "/a@example.com: it tempfails until one claim is removed",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestUnsettledDomain: after a restart, a list file that no longer parses
// has no last good settings, so its aliases are unknown. Unknown addresses
// of its domain then tempfail (the sender retries) instead of getting a
// 550 that Postfix would turn into a bounce; other domains are unaffected.
func TestUnsettledDomain(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "announce@example.org"), "aliases = [\"news@example.org\"]\n")
	write(t, filepath.Join(dir, "other@example.com"), "")
	snap, err := lists.Load(dir, lists.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v := snap.Resolve("news@example.org"); v.Status != lists.Accept {
		t.Fatalf("alias before: %+v", v)
	}
	// The file breaks; the daemon restarts (a fresh Load).
	write(t, filepath.Join(dir, "announce@example.org"), "aliases = [\"news@example.org\"\n")
	if snap, err = lists.Load(dir, lists.Options{}); err != nil {
		t.Fatal(err)
	}
	for rcpt, want := range map[string]lists.Status{
		"announce@example.org":       lists.Broken,
		"announce-owner@example.org": lists.Broken,
		"news@example.org":           lists.Broken, // the alias: unknown now
		"bogus@example.org":          lists.Broken,
		"bogus@example.com":          lists.Unknown,
		"other@example.com":          lists.Accept,
		"x@example.net":              lists.NotServed,
	} {
		if v := snap.Resolve(rcpt); v.Status != want {
			t.Errorf("%s: %v, want %v", rcpt, v.Status, want)
		}
	}
	// Fixed, the domain answers 550 for unknown addresses again.
	write(t, filepath.Join(dir, "announce@example.org"), "")
	if snap, err = lists.Load(dir, lists.Options{}); err != nil {
		t.Fatal(err)
	}
	if v := snap.Resolve("bogus@example.org"); v.Status != lists.Unknown {
		t.Errorf("after the fix: %+v", v)
	}
}
