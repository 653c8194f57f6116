package lists_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
)

// TestWatchReloads: Watcher.Reloads remembers each reload, newest first,
// with its reason, generation and what it added, changed and removed; a
// rescan in a row that changes nothing is folded into the one before.
func TestWatchReloads(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a@example.org"), "")
	write(t, filepath.Join(dir, "b@example.org"), "")
	w, _ := startWatch(t, dir)

	last := func() lists.Reload { return w.Reloads()[0] }
	step := func(what string, do func()) lists.Reload {
		t.Helper()
		gen := w.Generation()
		do()
		testutil.WaitFor(t, 5*time.Second, what, func() bool {
			rs := w.Reloads()
			return len(rs) > 0 && rs[0].Generation > gen
		})
		return last()
	}
	names := func(r lists.Reload) string { return fmt.Sprint(r.Changes) }

	if r := last(); r.Reason != "start" || r.Generation != 1 || r.Added != 2 || r.Lists != 2 ||
		names(r) != "[{a@example.org added} {b@example.org added}]" || r.Time.IsZero() {
		t.Errorf("first reload: %+v", r)
	}
	r := step("the new list's reload", func() { write(t, filepath.Join(dir, "c@example.org"), "") })
	if r.Reason != "change" || r.Added != 1 || r.Changed+r.Removed != 0 || r.Lists != 3 || names(r) != "[{c@example.org added}]" {
		t.Errorf("after adding c: %+v", r)
	}
	r = step("the broken list's reload", func() { write(t, filepath.Join(dir, "a@example.org"), "descripton = 1\n") })
	if r.Changed != 1 || r.Problems != 1 || names(r) != "[{a@example.org changed}]" {
		t.Errorf("after breaking a: %+v", r)
	}
	r = step("the removal's reload", func() {
		if err := os.Remove(filepath.Join(dir, "b@example.org")); err != nil {
			t.Fatal(err)
		}
	})
	if r.Removed != 1 || r.Lists != 2 || names(r) != "[{b@example.org removed}]" {
		t.Errorf("after removing b: %+v", r)
	}
	step("the first rescan", w.Rescan)
	n := len(w.Reloads())
	r = step("the second rescan", w.Rescan)
	if r.Reason != "rescan" || r.Repeated != 1 || len(w.Reloads()) != n || r.Added+r.Changed+r.Removed != 0 {
		t.Errorf("a second rescan that changed nothing: %+v, %d reloads (was %d), want it folded into the first", r, len(w.Reloads()), n)
	}
	if rs := w.Reloads(); rs[len(rs)-1].Reason != "start" {
		t.Errorf("oldest reload %+v, want the start", rs[len(rs)-1])
	}
}

// TestWatchReloadsBounded: Reloads keeps ReloadsKept reloads, and a reload
// that changed many entries names ReloadNames of them, the first by name.
func TestWatchReloadsBounded(t *testing.T) {
	dir := t.TempDir()
	for i := range 50 {
		write(t, filepath.Join(dir, fmt.Sprintf("l%02d@example.org", i)), "")
	}
	w, _ := startWatch(t, dir)
	r := w.Reloads()[0]
	if r.Added != 50 || len(r.Changes) != lists.ReloadNames || r.Changes[0].Name != "l00@example.org" ||
		r.Changes[lists.ReloadNames-1].Name != fmt.Sprintf("l%02d@example.org", lists.ReloadNames-1) {
		t.Errorf("start with 50 lists: %+v", r)
	}
	for i := range lists.ReloadsKept + 5 {
		gen := w.Generation()
		write(t, filepath.Join(dir, fmt.Sprintf("n%02d@example.org", i)), "")
		testutil.WaitFor(t, 5*time.Second, "the reload", func() bool { return w.Generation() > gen })
	}
	rs := w.Reloads()
	if len(rs) != lists.ReloadsKept {
		t.Fatalf("%d reloads kept, want %d", len(rs), lists.ReloadsKept)
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].Generation >= rs[i-1].Generation {
			t.Errorf("reload %d has generation %d after %d: not newest first", i, rs[i].Generation, rs[i-1].Generation)
		}
	}
	if rs[0].Generation != w.Generation() {
		t.Errorf("newest reload has generation %d, the watcher %d", rs[0].Generation, w.Generation())
	}
}
