package lists_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
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

// write makes the file at path hold content, atomically (a temporary file
// renamed over it, as tools that install a file do): a watcher sees the
// old content or the new, never the empty file that os.WriteFile's
// truncation shows for a moment. The temporary name starts with a dot, so
// the watcher ignores it. For an edit in place, see writeInPlace.
func write(t testing.TB, path, content string) {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(path), ".write-*.tmp")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		t.Fatal(err)
	}
}

// writeInPlace truncates the file at path and writes content into it, as
// an editor that saves in place (or `cat > file`) does: a reader may see
// the file empty in between.
func writeInPlace(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func status(w *lists.Watcher, rcpt string) lists.Status { return w.Snapshot().Resolve(rcpt).Status }

// TestWatchHotReload: add, edit in place, remove and atomic mv each take
// effect within one second, with no restart. The edit in place may show the
// watcher an empty file (a valid list with default settings) for a
// moment; the write that follows is an event of its own, so the watcher
// ends with the new settings.
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

	writeInPlace(t, filepath.Join(dir, "mylist@example.com"), "max_message_size = 100\n")
	testutil.WaitFor(t, second, "edit seen", func() bool { return w.Snapshot().Resolve("mylist@example.com").MaxMessageSize == 100 })

	tmp := filepath.Join(dir, ".other@example.com.tmp")
	writeInPlace(t, tmp, "description = \"moved in\"\n")
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
// error naming file and line; a new broken list tempfails. The edits are
// atomic (write): edited in place, the file could be seen empty, a valid
// list whose default settings would become the last good ones.
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
	if !strings.Contains(logs.String(), `msg="domain newly served`) ||
		!strings.Contains(logs.String(), "domain=newdom.example file="+filepath.Join(dir, "team@newdom.example")) {
		t.Errorf("no warning for the new domain naming its file:\n%s", logs)
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

// TestWatchDomainChangesLive: with the socketmap door on (LiveDomains),
// Postfix may ask listgate for its domains, so a domain's arrival and
// departure are logged at info level, saying what holds for each kind of
// relay_domains, and never as a warning to edit it.
func TestWatchDomainChangesLive(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "keep@example.org"), "")
	logs := &testutil.SyncBuffer{}
	w, err := lists.Watch(dir, lists.WatchOptions{Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Debounce: 20 * time.Millisecond, LiveDomains: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	write(t, filepath.Join(dir, "team@newdom.example"), "")
	testutil.WaitFor(t, time.Second, "new domain", func() bool { return status(w, "team@newdom.example") == lists.Accept })
	if err := os.Remove(filepath.Join(dir, "team@newdom.example")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, time.Second, "domain gone", func() bool { return status(w, "team@newdom.example") == lists.NotServed })
	for _, want := range []string{`level=INFO msg="domain newly served: a relay_domains that asks listgate's socketmap`,
		`level=INFO msg="domain no longer served: a relay_domains that asks listgate's socketmap`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("a warning with the socketmap door on:\n%s", logs)
	}
}

// TestWatchPeriodicRescanLogs: the safety-net rescan logs "lists loaded"
// at info level only when it found a change, and at debug level otherwise,
// even with entries that are only problems (made afresh by every scan);
// the reload's duration is logged as "duration_ms", a number of
// milliseconds (a bare time.Duration is an integer of nanoseconds in JSON).
func TestWatchPeriodicRescanLogs(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, "plain@example.com"), "")
	write(t, filepath.Join(dir, "README"), "not a list") // a problem: ignored, with a warning
	target := filepath.Join(elsewhere, "target")
	write(t, target, "max_message_size = 1\n")
	if err := os.Symlink(target, filepath.Join(dir, "ln@example.com")); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	w, err := lists.Watch(dir, lists.WatchOptions{
		Logger:   slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Debounce: 5 * time.Millisecond,
		Rescan:   20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })

	// loaded returns the "lists loaded" lines logged so far.
	loaded := func() []map[string]any {
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			if m["msg"] == "lists loaded" {
				out = append(out, m)
			}
		}
		return out
	}
	periodic := func(level string) int {
		n := 0
		for _, m := range loaded() {
			if m["reason"] == "periodic" && m["level"] == level {
				n++
			}
		}
		return n
	}
	testutil.WaitFor(t, 5*time.Second, "three periodic rescans", func() bool { return periodic("DEBUG") >= 3 })
	if n := periodic("INFO"); n != 0 {
		t.Errorf("%d periodic rescans logged at info with nothing changed:\n%s", n, logs)
	}

	// A change no event announces (a symlink's target elsewhere, NFS): the
	// next periodic rescan finds it, and says so at info level.
	write(t, target, "max_message_size = 2\n")
	testutil.WaitFor(t, 5*time.Second, "the change found", func() bool { return w.Snapshot().Resolve("ln@example.com").MaxMessageSize == 2 })
	if n := periodic("INFO"); n != 1 {
		t.Errorf("%d periodic rescans logged at info after one change, want 1:\n%s", n, logs)
	}

	for _, m := range loaded() {
		if _, ok := m["duration"]; ok {
			t.Errorf("a duration without its unit: %v", m)
		}
		if ms, ok := m["duration_ms"].(float64); !ok || ms < 0 || ms > 5000 {
			t.Errorf("duration_ms = %#v, want a number of milliseconds: %v", m["duration_ms"], m)
		}
	}
}

// settledTo returns a condition for testutil.WaitFor: w's snapshot has
// exactly the lists want (posting addresses, sorted) and no problem.
func settledTo(w *lists.Watcher, want ...string) func() bool {
	return func() bool {
		var got []string
		for _, l := range w.Snapshot().Lists() {
			got = append(got, l.Address)
		}
		slices.Sort(got)
		return slices.Equal(got, want) && len(w.Snapshot().Problems()) == 0
	}
}
