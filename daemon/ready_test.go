package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/spool"
)

// TestReadyzSpool: /readyz, asked over a real HTTP socket, goes 503 within
// 5 s of the spool turning read-only, naming the spool, and back to 200
// within 5 s of it turning writable. As root the spool is a tmpfs that is
// really remounted read-only (root writes through file modes); otherwise
// the spool directory loses its write permission, which fails the probe
// alike.
func TestReadyzSpool(t *testing.T) {
	s := settings(t)
	// An 8 MiB tmpfs is below the default reserve (128 MiB): /readyz
	// would add a note (TestSpoolReserve); this test is about writes.
	s.SpoolReserve = spool.Reserve{}
	var readOnly, writable func() error
	if os.Geteuid() == 0 {
		s.Spool = filepath.Join(t.TempDir(), "spool")
		if err := os.Mkdir(s.Spool, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", s.Spool, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=8m"); err != nil {
			t.Fatalf("root, but cannot mount a tmpfs on %s: %v", s.Spool, err)
		}
		t.Cleanup(func() {
			if err := unix.Unmount(s.Spool, 0); err != nil {
				t.Errorf("unmount %s: %v", s.Spool, err)
				unix.Unmount(s.Spool, unix.MNT_DETACH)
			}
		})
		remount := func(flags uintptr) func() error {
			return func() error {
				return unix.Mount("tmpfs", s.Spool, "tmpfs", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV|flags, "size=8m")
			}
		}
		readOnly, writable = remount(unix.MS_RDONLY), remount(0)
		t.Logf("root: the spool is a tmpfs at %s, remounted read-only and back", s.Spool)
	} else {
		readOnly = func() error { return os.Chmod(s.Spool, 0o555) }
		writable = func() error { return os.Chmod(s.Spool, 0o755) }
		t.Cleanup(func() { os.Chmod(s.Spool, 0o755) })
		t.Logf("not root: the spool directory %s is made mode 0555 and back (a read-only remount needs root)", s.Spool)
	}
	r := start(t, s)
	url := "http://" + r.hostPort("metrics") + "/readyz"
	status := func() (int, string) { return get(t, url) }
	testutil.WaitFor(t, 5*time.Second, "/readyz 200 at the start", func() bool { st, _ := status(); return st == 200 })

	// A probe may hold a file open for a moment: a remount then fails
	// with EBUSY, and is tried again.
	change := func(what string, fn func() error) {
		t.Helper()
		var err error
		testutil.WaitFor(t, 5*time.Second, what, func() bool {
			err = fn()
			return !errors.Is(err, unix.EBUSY)
		})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	change("make the spool read-only", readOnly)
	t0 := time.Now()
	var body string
	testutil.WaitFor(t, 5*time.Second, "/readyz 503 after the spool turned read-only", func() bool {
		var st int
		st, body = status()
		return st == 503
	})
	t.Logf("503 after %v: %q", time.Since(t0).Round(time.Millisecond), body)
	if !strings.Contains(body, "not ready: spool "+s.Spool+": not writable") {
		t.Errorf("/readyz body %q does not name the spool", body)
	}
	change("make the spool writable", writable)
	t0 = time.Now()
	testutil.WaitFor(t, 5*time.Second, "/readyz 200 after the spool turned writable", func() bool { st, _ := status(); return st == 200 })
	t.Logf("200 after %v", time.Since(t0).Round(time.Millisecond))
	if st, body := status(); st != 200 || body != "ok\n" {
		t.Errorf("/readyz: %d %q", st, body)
	}
}
