package lists

import (
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestExternalUpdateMatchesBuild changes an External at random beside a
// few list files (the same addresses, on purpose) and checks that what
// SetExternal publishes, incremental or not, is exactly what build gives
// for the same entries, and that the old snapshot is left as it was.
func TestExternalUpdateMatchesBuild(t *testing.T) {
	const delims = DefaultDelimiter
	dir := t.TempDir()
	for name, content := range map[string]string{
		"a@x.example": "", "@x.example": "aliases = [\"w.example\"]\n", "b@y.example": "aliases = [\"c@x.example\"]\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	addrs := []string{"a@x.example", "c@x.example", "d@x.example", "e@y.example", "f@z.example", "G@z.example", "g@z.example", "h+i@z.example"}
	doms := []string{"x.example", "z.example", "v.example"}
	var rcpts []string
	for _, a := range append(addrs, "nobody@x.example", "nobody@z.example", "a@w.example", "d@w.example", "f@u.example") {
		rcpts = append(rcpts, a, "x"+a, "a-request@"+a[len(a)-9:])
	}
	w, err := Watch(dir, WatchOptions{Rescan: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	rnd := rand.New(rand.NewPCG(5, 6))
	applied := 0
	settled, domains := true, []ExternalDomain{{Name: "x.example"}}
	have := make(map[string]*ExternalList)
	for step := range 800 {
		// Lists change at every step; domains and settledness now and
		// then, since they make a full build.
		if rnd.IntN(8) == 0 {
			settled = rnd.IntN(3) != 0
			domains = nil
			for _, d := range doms {
				if rnd.IntN(3) != 0 {
					xd := ExternalDomain{Name: d}
					if rnd.IntN(2) == 0 {
						xd.Aliases = []string{"u.example"}
					}
					domains = append(domains, xd)
				}
			}
		}
		// One or two lists come, go or change.
		for range 1 + rnd.IntN(2) {
			a := addrs[rnd.IntN(len(addrs))]
			if have[a] != nil && rnd.IntN(2) == 0 {
				delete(have, a)
			} else {
				have[a] = &ExternalList{Address: a, Description: []string{"", "d"}[rnd.IntN(2)]}
			}
		}
		x := &External{Source: "mailman", Settled: settled, Domains: domains}
		for _, a := range addrs {
			if l := have[a]; l != nil {
				x.Lists = append(x.Lists, *l)
			}
		}
		old := w.Snapshot()
		before := state(old, rcpts)
		w.SetExternal(x)
		got := w.Snapshot()
		if state(old, rcpts) != before {
			t.Fatalf("step %d: SetExternal changed the old snapshot", step)
		}
		entries := maps.Clone(got.entries)
		if full := build(entries, delims, false, got.gen); state(got, rcpts) != state(full, rcpts) {
			t.Fatalf("step %d: SetExternal gives\n%s\nbuild gives\n%s", step, state(got, rcpts), state(full, rcpts))
		}
		if inc := old.update(got.entries, externalChanges(old, got), old.gen+1); inc != nil {
			applied++
		}
	}
	if applied < 150 {
		t.Errorf("update applied %d times out of 800: the test no longer exercises it", applied)
	}
}

// externalChanges lists the entries that differ between a and b.
func externalChanges(a, b *Snapshot) []change {
	var cs []change
	for name, e := range a.entries {
		if b.entries[name] != e {
			cs = append(cs, change{old: e, new: b.entries[name]})
		}
	}
	for name, e := range b.entries {
		if a.entries[name] == nil {
			cs = append(cs, change{new: e})
		}
	}
	return cs
}
