package lists

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestUpdateMatchesBuild makes random changes to a lists directory and
// checks that the incremental Snapshot.update, whenever it applies, gives
// exactly what build gives for the same entries, and leaves the old
// snapshot as it was. The names collide on purpose (case, aliases, domain
// files) so that update must also know when to decline.
func TestUpdateMatchesBuild(t *testing.T) {
	const delims = DefaultDelimiter
	names := []string{
		"a@x.example", "A@x.example", "b@x.example", "c@x.example", "d@y.example", "e@y.example",
		"a@y.example", "@x.example", "@y.example", "@z.example", "README", "bad@..", "f@z.example",
		"postmaster@x.example", "abuse@y.example",
	}
	contents := []string{
		"", "", "", "description = \"d\"\n", "max_message_size = 7\n", "max_message_size = 9\n",
		"descripton = 1\n", "[broken\n",
		"aliases = [\"b@x.example\"]\n", "aliases = [\"old@y.example\"]\n", "aliases = [\"a@z.example\"]\n",
		"aliases = [\"z.example\"]\n", "aliases = [\"w.example\"]\n",
		"postmaster = \"hm@w.example\"\nabuse = \"hm@w.example\"\n", "aliases = [\"abuse@x.example\"]\n",
	}
	var rcpts []string
	for _, n := range names {
		if at := strings.LastIndexByte(n, '@'); at > 0 {
			for _, d := range []string{"x.example", "y.example", "z.example", "w.example"} {
				l := strings.ToLower(n[:at])
				rcpts = append(rcpts, l+"@"+d, l+"-request@"+d)
			}
		}
	}
	rcpts = append(rcpts, "old@y.example", "old-owner@y.example", "nobody@x.example", "abuse@z.example", "postmaster@z.example")

	rnd := rand.New(rand.NewPCG(3, 4))
	dir := t.TempDir()
	old := build(map[string]*entry{}, delims, false, 1)
	applied := 0
	for step := range 1500 {
		batch := map[string]bool{}
		for range 1 + rnd.IntN(3) {
			name := names[rnd.IntN(len(names))]
			path := filepath.Join(dir, name)
			if rnd.IntN(4) == 0 {
				os.Remove(path)
			} else if err := os.WriteFile(path, []byte(contents[rnd.IntN(len(contents))]), 0o644); err != nil {
				t.Fatal(err)
			}
			batch[name] = true
		}
		before := state(old, rcpts)
		entries := maps.Clone(old.entries)
		var changes []change
		for name := range batch {
			prev := old.entries[name]
			e := reader{dir: dir, delims: delims, open: os.Open}.readEntry(name, prev, true)
			if e != nil {
				entries[name] = e
			} else {
				delete(entries, name)
			}
			changes = append(changes, change{old: prev, new: e})
		}
		full := build(entries, delims, false, old.gen+1)
		inc := old.update(entries, changes, old.gen+1)
		if got := state(old, rcpts); got != before {
			t.Fatalf("step %d: update changed the old snapshot:\n%s\nwas\n%s", step, got, before)
		}
		if inc == nil {
			old = full
			continue
		}
		applied++
		if got, want := state(inc, rcpts), state(full, rcpts); got != want {
			t.Fatalf("step %d: changes %v:\nupdate gives\n%s\nbuild gives\n%s", step, slices.Sorted(maps.Keys(batch)), got, want)
		}
		old = inc
	}
	if applied < 150 {
		t.Errorf("update applied %d times out of 1500: the test no longer exercises it", applied)
	}
}

// state prints everything a snapshot shows.
func state(s *Snapshot, rcpts []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "gen %d served %q\n", s.Generation(), s.ServedDomains())
	for _, l := range s.Lists() {
		fmt.Fprintf(&b, "list %+v\n", *l)
	}
	for _, d := range s.Domains() {
		fmt.Fprintf(&b, "domain %+v\n", *d)
	}
	for _, p := range s.Problems() {
		fmt.Fprintf(&b, "problem %s\n", p)
	}
	for _, r := range rcpts {
		fmt.Fprintf(&b, "%s: %+v\n", r, s.Resolve(r))
	}
	return b.String()
}
