package lists_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
)

// kubeletVolume lays out a directory the way the kubelet projects a
// ConfigMap volume (pkg/volume/util/atomic_writer.go): the data in a
// timestamped directory "..2006_01_02_15_04_05.NNNN", a symlink "..data"
// to it, and one user-visible symlink per key, "name -> ..data/name".
type kubeletVolume struct {
	t   *testing.T
	dir string
}

// write replaces the volume's content with files, in the kubelet's order:
// (5) a new timestamped directory, (6) the files written into it, (7)
// symlinks for new names (dangling until the swap), (8) a "..data_tmp"
// symlink to the new directory, (9) renamed over "..data", (10) the
// symlinks of names no longer there removed, (11) the old timestamped
// directory removed.
func (k kubeletVolume) write(files map[string]string) {
	t := k.t
	t.Helper()
	data := filepath.Join(k.dir, "..data")
	old, err := os.Readlink(data)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var gone []string
	if old != "" {
		names, err := os.ReadDir(filepath.Join(k.dir, old))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if _, ok := files[n.Name()]; !ok {
				gone = append(gone, n.Name())
			}
		}
	}
	ts, err := os.MkdirTemp(k.dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(ts, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name := range files {
		link := filepath.Join(k.dir, name)
		if _, err := os.Readlink(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, data); err != nil {
		t.Fatal(err)
	}
	for _, name := range gone {
		if err := os.Remove(filepath.Join(k.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(k.dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWatchConfigMapSwap: a lists directory that is a Kubernetes
// ConfigMap volume follows every update the kubelet makes — a list added,
// a list removed, a list changed — through the "..data" swap alone, and
// none of the kubelet's own entries ("..data", "..data_tmp", the
// timestamped directories) is ever read as a list or reported as a
// problem.
func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	vol := kubeletVolume{t: t, dir: dir}
	vol.write(map[string]string{
		"@example.org":         "aliases = [\"lists.example.org\"]\n",
		"announce@example.org": "max_message_size = 1000\n",
		"old@example.org":      "",
	})
	w, _ := startWatch(t, dir)

	// Every snapshot the watcher publishes is checked, not only the ones
	// the test waits for: a "..data" entry read even for one reload
	// would be a list or a problem of its own.
	var (
		mu  sync.Mutex
		bad []string
	)
	check := func(s *lists.Snapshot) {
		for _, l := range s.Lists() {
			if strings.HasPrefix(filepath.Base(l.File), "..") {
				mu.Lock()
				bad = append(bad, "list from "+l.File)
				mu.Unlock()
			}
		}
		for _, p := range s.Problems() {
			if strings.HasPrefix(filepath.Base(p.File), "..") {
				mu.Lock()
				bad = append(bad, "problem: "+p.Error())
				mu.Unlock()
			}
		}
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var seen uint64
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if s := w.Snapshot(); s.Generation() != seen {
					seen = s.Generation()
					check(s)
				}
			}
		}
	}()
	defer func() {
		close(stop)
		<-stopped
		check(w.Snapshot())
		if len(bad) > 0 {
			t.Errorf("kubelet entries read as lists or problems:\n%s", strings.Join(bad, "\n"))
		}
	}()

	settled := func(want ...string) func() bool { return settledTo(w, want...) }
	testutil.WaitFor(t, time.Second, "initial lists", settled("announce@example.org", "old@example.org"))
	if v := w.Snapshot().Resolve("announce@lists.example.org"); v.Status != lists.Accept || v.MaxMessageSize != 1000 {
		t.Fatalf("initial: announce@lists.example.org: %+v", v)
	}

	// A list added.
	vol.write(map[string]string{
		"@example.org":         "aliases = [\"lists.example.org\"]\n",
		"announce@example.org": "max_message_size = 1000\n",
		"old@example.org":      "",
		"new@example.org":      "description = \"new\"\n",
	})
	testutil.WaitFor(t, time.Second, "list added", settled("announce@example.org", "new@example.org", "old@example.org"))

	// A list removed.
	vol.write(map[string]string{
		"@example.org":         "aliases = [\"lists.example.org\"]\n",
		"announce@example.org": "max_message_size = 1000\n",
		"new@example.org":      "description = \"new\"\n",
	})
	testutil.WaitFor(t, time.Second, "list removed", settled("announce@example.org", "new@example.org"))
	if st := status(w, "old@example.org"); st != lists.Unknown {
		t.Errorf("old@example.org after its removal: %v, want unknown", st)
	}

	// A list changed, and the domain file too: only the "..data" link
	// moves, no user-visible name is touched.
	vol.write(map[string]string{
		"@example.org":         "aliases = [\"lists2.example.org\"]\n",
		"announce@example.org": "max_message_size = 2000\n",
		"new@example.org":      "description = \"new\"\n",
	})
	testutil.WaitFor(t, time.Second, "list changed", func() bool {
		v := w.Snapshot().Resolve("announce@lists2.example.org")
		return v.Status == lists.Accept && v.MaxMessageSize == 2000
	})
	if st := status(w, "announce@lists.example.org"); st == lists.Accept {
		t.Errorf("announce@lists.example.org after the alias domain changed: %v", st)
	}

	// Everything at once.
	vol.write(map[string]string{
		"@example.org":         "aliases = [\"lists2.example.org\"]\n",
		"announce@example.org": "max_message_size = 3000\n",
		"third@example.org":    "",
	})
	testutil.WaitFor(t, time.Second, "added, removed and changed at once", func() bool {
		return settled("announce@example.org", "third@example.org")() &&
			w.Snapshot().Resolve("announce@example.org").MaxMessageSize == 3000
	})

	// What is left on disk is what the kubelet leaves: one timestamped
	// directory, "..data", and the user-visible links.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ts int
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "..2") {
			ts++
		}
	}
	if ts != 1 {
		t.Errorf("%d timestamped directories left, want 1: %v", ts, ents)
	}
}
