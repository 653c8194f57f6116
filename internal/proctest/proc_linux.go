//go:build linux

package proctest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

var subreaper struct {
	once sync.Once
	err  error
}

// BecomeSubreaper makes the test binary the parent of the processes of its
// instances whose own parent exits first (PR_SET_CHILD_SUBREAPER): Postfix's
// master(8) daemonizes and exits before its children on "postfix stop",
// Mailman's runners outlive a killed master. Without it they are reparented
// to PID 1, and where PID 1 does not reap every stopped instance leaves
// zombies behind. It takes effect once per test binary; later calls return
// the first call's error.
func BecomeSubreaper() error {
	subreaper.once.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			subreaper.err = fmt.Errorf("proctest: prctl(PR_SET_CHILD_SUBREAPER): %w", err)
		}
	})
	return subreaper.err
}

// SysProcAttr runs a command as uid:gid with no supplementary groups; with
// newGroup, in a process group of its own, whose id is then the command's
// pid (a master and the processes it forks share it, so that one signal
// reaches them all and Reap and LivePIDs find them).
func SysProcAttr(uid, gid uint32, newGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}},
		Setpgid:    newGroup,
	}
}

// Reap waits, without blocking, for every exited child in process group
// pgid; it reports whether none is left. It waits for no other child of
// the test binary.
func Reap(pgid int) bool {
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

// LivePIDs lists the processes in process group pgid that are not zombies,
// as /proc shows them.
func LivePIDs(pgid int) []int {
	var out []int
	forEachProc(func(pid int, stat, _ []byte) {
		if f := statFields(stat); len(f) >= 3 && !zombie(f) {
			if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
				out = append(out, pid)
			}
		}
	})
	return out
}

// PIDsUsing lists the processes that are not zombies and have arg as one
// of their arguments (an instance's configuration file, given to each of
// its processes), as /proc shows them.
func PIDsUsing(arg string) []int {
	var out []int
	forEachProc(func(pid int, stat, cmdline []byte) {
		if zombie(statFields(stat)) {
			return
		}
		for _, a := range bytes.Split(cmdline, []byte{0}) {
			if string(a) == arg {
				out = append(out, pid)
				return
			}
		}
	})
	return out
}

// statFields returns the fields of /proc/PID/stat after the command name:
// state, ppid, pgrp and so on. The name is in parentheses and may itself
// contain spaces and ")".
func statFields(stat []byte) []string {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// zombie reports whether the state in f (from statFields) is a zombie or
// a dead process.
func zombie(f []string) bool {
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

// forEachProc calls f with the pid, stat and command line of each process
// in /proc; a process that ends meanwhile is left out.
func forEachProc(f func(pid int, stat, cmdline []byte)) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		f(pid, stat, cmdline)
	}
}

// KillGroup sends SIGKILL to process group pgid; a group already gone is
// no error.
func KillGroup(pgid int) error {
	return signal(-pgid, unix.SIGKILL, "KILL")
}

// Kill sends SIGKILL to process pid; a process already gone is no error.
func Kill(pid int) error {
	return signal(pid, unix.SIGKILL, "KILL")
}

// Terminate sends SIGTERM to process pid; a process already gone is no
// error.
func Terminate(pid int) error {
	return signal(pid, unix.SIGTERM, "TERM")
}

func signal(pid int, sig unix.Signal, name string) error {
	if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("proctest: kill -%s %d: %w", name, pid, err)
	}
	return nil
}

// LockFile takes an exclusive, non-blocking flock on path, creating the
// file if need be. The kernel drops it when the test binary exits, however
// it exits, which is how Sweep tells an abandoned instance from a live
// one. It fails if another open file holds the lock.
func LockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("proctest: open %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("proctest: lock %s: %w", path, err)
	}
	return f, nil
}

// OpenPTY opens a pseudo-terminal pair, for a command that writes what a
// test needs to see only when its output is a terminal: the command gets
// the slave, the test reads the master. The master is non-blocking, so its
// reads take deadlines.
func OpenPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("proctest: open /dev/ptmx: %w", err)
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
		return nil, nil, fmt.Errorf("proctest: unlock pty: %w", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	slave, err = os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("proctest: open %s: %w", name, err)
	}
	return master, slave, nil
}
