//go:build linux

package postfixtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

var subreaper struct {
	once sync.Once
	err  error
}

// becomeSubreaper makes this process the parent of the Postfix processes
// whose own parent exits: master(8) daemonizes, and on "postfix stop" it
// exits before its children do. Without this they are reparented to PID 1,
// and where PID 1 does not reap (many containers, CI sandboxes) every
// stopped instance would leave a handful of zombies behind. It is set once
// per test binary; reap collects the instance's processes by process group,
// so no other child of the test binary is waited for.
func becomeSubreaper() error {
	subreaper.once.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			subreaper.err = fmt.Errorf("postfixtest: prctl(PR_SET_CHILD_SUBREAPER): %w", err)
		}
	})
	return subreaper.err
}

// reap waits (without blocking) for every exited child in process group
// pgid; it reports whether none is left.
func reap(pgid int) bool {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-pgid, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil: // ECHILD: no child in that group
			return true
		case pid == 0: // children left, none exited yet
			return false
		}
	}
}

// livePIDs lists the processes in process group pgid that are not zombies.
func livePIDs(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces and ")".
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// killGroup sends SIGKILL to process group pgid.
func killGroup(pgid int) error {
	if err := unix.Kill(-pgid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("postfixtest: kill -KILL -%d: %w", pgid, err)
	}
	return nil
}

// lockFile takes an exclusive, non-blocking flock on path. The kernel drops
// it when the test binary exits, however it exits, which is how a later run
// tells an abandoned instance from a live one.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("postfixtest: open %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("postfixtest: lock %s: %w", path, err)
	}
	return f, nil
}

// openPTY opens a pseudo-terminal pair. postfix(1) writes its errors to
// stderr only when stderr is a terminal; otherwise to the log, which does
// not exist yet when main.cf itself is bad (and then to a syslog that may
// not exist either). The harness gives it the slave as stderr and reads
// the master.
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("postfixtest: open /dev/ptmx: %w", err)
	}
	var n int
	var ierr error
	// Control, not Fd: Fd would put master into blocking mode, and reads
	// need deadlines.
	rc, err := master.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) {
			if ierr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ierr == nil {
				n, ierr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
			}
		})
	}
	if err == nil {
		err = ierr
	}
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("postfixtest: unlock pty: %w", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	slave, err = os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("postfixtest: open %s: %w", name, err)
	}
	return master, slave, nil
}
