package lists_test

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
)

// faulty opens files as os.Open does, except the one path it is told to
// fail, with the error it is told, for as long as it is told.
type faulty struct {
	path  atomic.Pointer[string]
	errno syscall.Errno
	calls atomic.Int64 // opens of path that failed
}

func (f *faulty) fail(path string) { f.path.Store(&path) }
func (f *faulty) heal()            { f.path.Store(nil) }

func (f *faulty) open(path string) (*os.File, error) {
	if p := f.path.Load(); p != nil && *p == path {
		f.calls.Add(1)
		return nil, &fs.PathError{Op: "open", Path: path, Err: f.errno}
	}
	return os.Open(path)
}

// startFaultyWatch starts a watcher of dir that opens files with f, and
// retries failed reads with the delays of retry (nil: the defaults).
func startFaultyWatch(t *testing.T, dir string, f *faulty, retry func(*lists.WatchOptions)) (*lists.Watcher, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	opts := lists.WatchOptions{
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Debounce: 20 * time.Millisecond,
		Rescan:   -1, // no safety net: only the retry may heal
	}
	lists.SetOpen(&opts.Options, f.open)
	if retry != nil {
		retry(&opts)
	}
	w, err := lists.Watch(dir, opts)
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

// TestWatchRetriesFailedRead: a list file or the lists directory that
// could not be read once (descriptors exhausted, an I/O error, permission
// denied) is read again by itself once the fault is over, within seconds,
// with no SIGHUP, no edit and no periodic rescan. Before, an unchanged
// file was never read again and its list stayed at 451 (or its new
// settings unseen) until something touched it.
func TestWatchRetriesFailedRead(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after the watchers' Close
	const heal = 3 * time.Second               // RetryMin, and some
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.EIO, syscall.EACCES} {
		t.Run(errno.Error(), func(t *testing.T) {
			t.Parallel()
			t.Run("file at start", func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "a@example.com")
				write(t, path, "max_message_size = 7\n")
				f := &faulty{errno: errno}
				f.fail(path)
				w, _ := startFaultyWatch(t, dir, f, nil)
				if v := w.Snapshot().Resolve("a@example.com"); v.Status != lists.Broken {
					t.Fatalf("during the fault: %+v, want broken (451)", v)
				}
				if ps := w.Snapshot().Problems(); len(ps) != 1 || !strings.Contains(ps[0].Error(), errno.Error()) {
					t.Errorf("problems %v, want the %v", ps, errno)
				}
				f.heal()
				testutil.WaitFor(t, heal, "list answers after the fault", func() bool {
					v := w.Snapshot().Resolve("a@example.com")
					return v.Status == lists.Accept && v.MaxMessageSize == 7
				})
				if ps := w.Snapshot().Problems(); len(ps) != 0 {
					t.Errorf("problems after the fault: %v", ps)
				}
			})
			t.Run("edit during the fault", func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "a@example.com")
				write(t, path, "max_message_size = 7\n")
				f := &faulty{errno: errno}
				w, _ := startFaultyWatch(t, dir, f, nil)
				f.fail(path)
				gen := w.Generation()
				write(t, path, "max_message_size = 8\n")
				testutil.WaitFor(t, time.Second, "the edit's failed read", func() bool { return w.Generation() > gen })
				if v := w.Snapshot().Resolve("a@example.com"); v.Status != lists.Accept || v.MaxMessageSize != 7 {
					t.Errorf("during the fault: %+v, want the last good settings", v)
				}
				f.heal()
				testutil.WaitFor(t, heal, "the edit seen after the fault", func() bool {
					return w.Snapshot().Resolve("a@example.com").MaxMessageSize == 8 && len(w.Snapshot().Problems()) == 0
				})
			})
			t.Run("directory", func(t *testing.T) {
				// A change no event announces (a symlink's target
				// elsewhere), and a SIGHUP while the directory cannot be
				// listed: the reload fails and keeps the last snapshot, and
				// is retried until it reads.
				dir, elsewhere := t.TempDir(), t.TempDir()
				target := filepath.Join(elsewhere, "target")
				write(t, target, "max_message_size = 1\n")
				if err := os.Symlink(target, filepath.Join(dir, "ln@example.com")); err != nil {
					t.Fatal(err)
				}
				f := &faulty{errno: errno}
				w, logs := startFaultyWatch(t, dir, f, nil)
				write(t, target, "max_message_size = 2\n")
				f.fail(dir)
				w.Rescan()
				testutil.WaitFor(t, time.Second, "the failed rescan", func() bool { return f.calls.Load() > 0 })
				if v := w.Snapshot().Resolve("ln@example.com"); v.Status != lists.Accept || v.MaxMessageSize != 1 {
					t.Errorf("during the fault: %+v, want the last snapshot", v)
				}
				f.heal()
				testutil.WaitFor(t, heal, "the rescan retried", func() bool {
					return w.Snapshot().Resolve("ln@example.com").MaxMessageSize == 2
				})
				if n := strings.Count(logs.String(), "level=ERROR msg=\"lists reload failed"); n != 1 {
					t.Errorf("%d errors for one fault, want 1:\n%s", n, logs)
				}
			})
		})
	}
}

// TestWatchRetryBacksOff: while a fault lasts, the retries space out
// (RetryMin, doubling up to RetryMax; here 20 ms to 80 ms): a file that
// cannot be read is not hammered, and is still tried at RetryMax.
func TestWatchRetryBacksOff(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a@example.com")
	write(t, path, "")
	f := &faulty{errno: syscall.EIO}
	f.fail(path)
	const first, longest = 20 * time.Millisecond, 80 * time.Millisecond
	w, _ := startFaultyWatch(t, dir, f, func(o *lists.WatchOptions) { lists.SetRetry(o, first, longest) })
	// The start's read, then retries after 20, 40, 80, 80, 80 ms.
	var at []time.Time
	for n := int64(2); n <= 6; n++ {
		testutil.WaitFor(t, 5*time.Second, "a retry", func() bool { return f.calls.Load() >= n })
		at = append(at, time.Now())
	}
	// Gaps between retries 1-2, 2-3, 3-4, 4-5: 40, 80, 80, 80 ms. A
	// loaded machine makes them longer, never shorter.
	for i, want := range []time.Duration{2 * first, longest, longest, longest} {
		if gap := at[i+1].Sub(at[i]); gap < want-5*time.Millisecond {
			t.Errorf("gap %d: %v, want at least %v", i+1, gap, want)
		}
	}
	if got := w.Snapshot().Resolve("a@example.com").Status; got != lists.Broken {
		t.Errorf("status %v", got)
	}
	f.heal()
	testutil.WaitFor(t, time.Second, "healed", func() bool { return w.Snapshot().Resolve("a@example.com").Status == lists.Accept })
}

// TestWatchDirModeRestored: the lists directory made unreadable (chmod
// 000) while a new list arrives, then readable again (chmod 755): the
// list answers within seconds, with no SIGHUP and no edit. As root the
// mode does not keep anything from being read, and the test shows only
// that nothing goes wrong; TestWatchRetriesFailedRead injects the fault
// for root too.
func TestWatchDirModeRestored(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lists")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a@example.com"), "")
	logs := &testutil.SyncBuffer{}
	w, err := lists.Watch(dir, lists.WatchOptions{
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
		Debounce: 200 * time.Millisecond, // the chmod comes before the read
		Rescan:   -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Chmod(dir, 0o755) // so that TempDir can remove it
		w.Close()
	})
	gen := w.Generation()
	write(t, filepath.Join(dir, "b@example.com"), "max_message_size = 5\n")
	if err := os.Chmod(dir, 0); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 2*time.Second, "a reload (or its failure) during chmod 000", func() bool {
		return w.Generation() > gen || strings.Contains(logs.String(), "lists reload failed")
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 3*time.Second, "lists answer after chmod 755", func() bool {
		s := w.Snapshot()
		return s.Resolve("a@example.com").Status == lists.Accept && s.Resolve("b@example.com").MaxMessageSize == 5 &&
			len(s.Problems()) == 0
	})
}
