package proctest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/listgate/listgate/internal/testutil"
)

// lockName is the lock file in an instance directory.
const lockName = "lock"

// NewInstance readies the test binary for a new instance of a daemon and
// makes the instance's directory. It makes the test binary a child
// subreaper (BecomeSubreaper), removes the instances that killed test
// binaries left behind (Sweep, with kill), then makes /tmp/PREFIX-NNNN and
// takes its lock (LockFile on DIR/lock), which the caller holds for as
// long as the instance lives and gives back to RemoveInstance. The
// directory is under /tmp rather than t.TempDir: its path is short, for
// unix-domain sockets, and other users can be let in. It is mode 0700; the
// harness opens it up as its daemon needs. On error no directory is left.
func NewInstance(prefix string, kill func(dir string)) (dir string, lock *os.File, err error) {
	if err := BecomeSubreaper(); err != nil {
		return "", nil, err
	}
	Sweep(prefix, kill)
	dir, err = os.MkdirTemp("/tmp", prefix+"-")
	if err != nil {
		return "", nil, fmt.Errorf("proctest: %w", err)
	}
	lock, err = LockFile(filepath.Join(dir, lockName))
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, lock, nil
}

// RemoveInstance removes an instance directory that NewInstance made, once
// no process of the instance is left, then releases its lock (if lock is
// not nil).
func RemoveInstance(dir string, lock *os.File) error {
	err := os.RemoveAll(dir)
	if lock != nil {
		lock.Close()
	}
	if err != nil {
		return fmt.Errorf("proctest: %w", err)
	}
	return nil
}

// Sweep removes the instance directories /tmp/PREFIX-* whose lock no test
// binary holds any more: one that was killed (a go test timeout runs no
// cleanups) left them behind. For each, it first calls kill with the
// directory, to end the instance's processes. Directories younger than a
// minute are left alone, so that one that another test binary is creating
// right now, not locked yet, is never mistaken for an abandoned one.
func Sweep(prefix string, kill func(dir string)) {
	dirs, _ := filepath.Glob(filepath.Join("/tmp", prefix+"-*"))
	for _, dir := range dirs {
		lockPath := filepath.Join(dir, lockName)
		fi, err := os.Stat(lockPath)
		if err != nil || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		f, err := LockFile(lockPath)
		if err != nil {
			continue // alive
		}
		kill(dir)
		os.RemoveAll(dir)
		f.Close()
	}
}

// WaitGone reaps process group pgid (Reap) every tick until none of its
// processes is alive (LivePIDs); it returns nil then, or the pids still
// alive after timeout.
func WaitGone(pgid int, timeout, tick time.Duration) []int {
	var left []int
	if _, gone := testutil.Poll(timeout, tick, func() bool {
		reaped := Reap(pgid)
		left = LivePIDs(pgid)
		return len(left) == 0 && reaped
	}); gone {
		return nil
	}
	return left
}

// FreePort returns a TCP port of 127.0.0.1 that was free when it looked. A
// daemon may find it taken when it binds it; the harnesses then try
// another.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("proctest: pick a port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
