package lists_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
)

func startWatch(t *testing.T, dir string) (*lists.Watcher, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	w, err := lists.Watch(dir, lists.WatchOptions{
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
		Debounce: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	return w, logs
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func status(w *lists.Watcher, rcpt string) lists.Status { return w.Snapshot().Resolve(rcpt).Status }

// TestWatchHotReload: add, edit, remove and atomic mv each take effect
// within one second, with no restart.
func TestWatchHotReload(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after the watcher's Close
	dir := t.TempDir()
	w, _ := startWatch(t, dir)
	const second = time.Second

	if got := status(w, "mylist@example.com"); got != lists.NotServed {
		t.Fatalf("before the file: %v", got)
	}
	write(t, filepath.Join(dir, "mylist@example.com"), "")
	testutil.WaitFor(t, second, "new list accepted", func() bool { return status(w, "mylist@example.com") == lists.Accept })

	write(t, filepath.Join(dir, "mylist@example.com"), "max_message_size = 100\n")
	testutil.WaitFor(t, second, "edit seen", func() bool { return w.Snapshot().Resolve("mylist@example.com").MaxMessageSize == 100 })

	tmp := filepath.Join(dir, ".other@example.com.tmp")
	write(t, tmp, "description = \"moved in\"\n")
	if err := os.Rename(tmp, filepath.Join(dir, "other@example.com")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, second, "mv into place", func() bool { return status(w, "other-request@example.com") == lists.Accept })

	if err := os.Remove(filepath.Join(dir, "mylist@example.com")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, second, "removed list refused", func() bool { return status(w, "mylist@example.com") == lists.Unknown })

	if err := os.Remove(filepath.Join(dir, "other@example.com")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, second, "last list of the domain removed", func() bool { return status(w, "other@example.com") == lists.NotServed })
}

// TestWatchArtefacts: editor and package-manager files never become lists.
func TestWatchArtefacts(t *testing.T) {
	dir := t.TempDir()
	w, _ := startWatch(t, dir)
	for _, name := range []string{"a@example.com.swp", "a@example.com~", "a@example.com.tmp", ".a@example.com",
		"a@example.com.bak", "a@example.com.dpkg-old", "a@example.com.rpmnew", "a@example.com.orig"} {
		write(t, filepath.Join(dir, name), "")
	}
	// A real list after the artefacts: once it is seen, so were they.
	write(t, filepath.Join(dir, "real@example.com"), "")
	testutil.WaitFor(t, time.Second, "real list", func() bool { return status(w, "real@example.com") == lists.Accept })
	snap := w.Snapshot()
	if got := snap.Resolve("a@example.com").Status; got != lists.Unknown {
		t.Errorf("artefact became a list: %v", got)
	}
	if len(snap.Lists()) != 1 || len(snap.Problems()) != 0 {
		t.Errorf("lists %d, problems %v", len(snap.Lists()), snap.Problems())
	}
}

// TestWatchBrokenFile: a bad edit keeps the old settings and logs one
// error naming file and line; a new broken list tempfails.
func TestWatchBrokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "announce@example.org")
	write(t, path, "max_message_size = 1000\n")
	w, logs := startWatch(t, dir)
	gen := w.Generation()

	write(t, path, "description = \"ok\"\ndescripton = \"typo\"\n")
	testutil.WaitFor(t, time.Second, "reload", func() bool { return w.Generation() > gen })
	v := w.Snapshot().Resolve("announce@example.org")
	if v.Status != lists.Accept || v.MaxMessageSize != 1000 {
		t.Errorf("broken edit: %+v, want the last good settings", v)
	}
	wantErr := path + `:2: unknown key "descripton"`
	logged := "announce@example.org:2: unknown key"
	if n := strings.Count(logs.String(), logged); n != 1 {
		t.Errorf("logged %q %d times, want once; logs:\n%s", wantErr, n, logs)
	}
	if ps := w.Snapshot().Problems(); len(ps) != 1 || ps[0].Error() != wantErr {
		t.Errorf("problems = %v", ps)
	}

	// A forced rescan changes nothing and logs nothing new.
	gen = w.Generation()
	w.Rescan()
	testutil.WaitFor(t, time.Second, "rescan", func() bool { return w.Generation() > gen })
	if n := strings.Count(logs.String(), logged); n != 1 {
		t.Errorf("after rescan logged %d times, want once", n)
	}

	write(t, filepath.Join(dir, "new@example.org"), "[broken\n")
	testutil.WaitFor(t, time.Second, "new broken list", func() bool { return status(w, "new@example.org") != lists.Unknown })
	for _, rcpt := range []string{"new@example.org", "new-request@example.org"} {
		if v := w.Snapshot().Resolve(rcpt); v.Status != lists.Broken {
			t.Errorf("%s: %+v, want 451 tempfail", rcpt, v)
		}
	}

	// Fixing the file clears the problem.
	write(t, path, "description = \"fixed\"\n")
	testutil.WaitFor(t, time.Second, "fix seen", func() bool { return len(w.Snapshot().Problems()) == 1 })
}

// TestWatchConfigMap: a Kubernetes ConfigMap mount (symlinks into ..data,
// swapped atomically) is followed.
func TestWatchConfigMap(t *testing.T) {
	dir := t.TempDir()
	mkData := func(name string, files map[string]string) {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, c := range files {
			write(t, filepath.Join(d, f), c)
		}
	}
	mkData("..v1", map[string]string{"cm@example.com": "max_message_size = 1\n"})
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/cm@example.com", filepath.Join(dir, "cm@example.com")); err != nil {
		t.Fatal(err)
	}
	w, _ := startWatch(t, dir)
	if v := w.Snapshot().Resolve("cm@example.com"); v.MaxMessageSize != 1 {
		t.Fatalf("initial: %+v", v)
	}
	// kubelet: new data dir, ..data_tmp link, renamed over ..data.
	mkData("..v2", map[string]string{"cm@example.com": "max_message_size = 2\n"})
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, time.Second, "..data swap", func() bool { return w.Snapshot().Resolve("cm@example.com").MaxMessageSize == 2 })
}

// TestWatchDirReplaced: the lists directory itself renamed away and
// replaced by another is watched again.
func TestWatchDirReplaced(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "lists")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "old@example.com"), "")
	w, _ := startWatch(t, dir)
	next := filepath.Join(parent, "lists.new")
	if err := os.Mkdir(next, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(next, "new@example.com"), "")
	if err := os.Rename(dir, filepath.Join(parent, "lists.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, dir); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 2*time.Second, "replacement dir read", func() bool { return status(w, "new@example.com") == lists.Accept })
	if got := status(w, "old@example.com"); got != lists.Unknown {
		t.Errorf("old list still answers: %v", got)
	}
	// And the new directory is watched for changes.
	write(t, filepath.Join(dir, "later@example.com"), "")
	testutil.WaitFor(t, time.Second, "change in replacement dir", func() bool { return status(w, "later@example.com") == lists.Accept })
}

// TestWatchRescanSeesUnwatchedChange: Rescan (SIGHUP) picks up what no
// event announced, such as a change in a symlink's target outside the dir.
func TestWatchRescanSeesUnwatchedChange(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	target := filepath.Join(elsewhere, "target")
	write(t, target, "max_message_size = 1\n")
	if err := os.Symlink(target, filepath.Join(dir, "ln@example.com")); err != nil {
		t.Fatal(err)
	}
	w, _ := startWatch(t, dir)
	write(t, target, "max_message_size = 22\n")
	gen := w.Generation()
	w.Rescan()
	testutil.WaitFor(t, time.Second, "rescan", func() bool { return w.Generation() > gen })
	if v := w.Snapshot().Resolve("ln@example.com"); v.MaxMessageSize != 22 {
		t.Errorf("after rescan: %+v", v)
	}
}

// TestWatchDomainChanges: a domain that becomes served, or stops being
// served, is logged as a warning naming it, since Postfix's relay_domains
// must follow (or mail for a removed domain is accepted and bounced).
func TestWatchDomainChanges(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "keep@example.org"), "")
	w, logs := startWatch(t, dir)
	write(t, filepath.Join(dir, "team@newdom.example"), "")
	testutil.WaitFor(t, time.Second, "new domain", func() bool { return status(w, "team@newdom.example") == lists.Accept })
	if !strings.Contains(logs.String(), `msg="domain newly served`) || !strings.Contains(logs.String(), "domain=newdom.example") {
		t.Errorf("no warning for the new domain:\n%s", logs)
	}
	if err := os.Remove(filepath.Join(dir, "team@newdom.example")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, time.Second, "domain gone", func() bool { return status(w, "team@newdom.example") == lists.NotServed })
	if n := strings.Count(logs.String(), `msg="domain no longer served`); n != 1 {
		t.Errorf("%d warnings for the removed domain, want 1:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "domain=example.org") {
		t.Errorf("a domain that stayed served was logged:\n%s", logs)
	}
}
