//go:build linux

package mailmantest

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

type signal = unix.Signal

const (
	sigTERM = unix.SIGTERM
	sigKILL = unix.SIGKILL
)

var subreaper struct {
	once sync.Once
	err  error
}

// becomeSubreaper makes this process the parent of Mailman's runners when
// their master dies before them (the cleanup kills the whole instance at
// once), so that they are reaped here rather than left as zombies where
// PID 1 does not reap. It is set once per test binary; reap collects an
// instance's processes by process group, so no other child of the test
// binary is waited for.
func becomeSubreaper() error {
	subreaper.once.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			subreaper.err = fmt.Errorf("mailmantest: prctl(PR_SET_CHILD_SUBREAPER): %w", err)
		}
	})
	return subreaper.err
}

// sysProcAttr runs a command as uid:gid with no supplementary groups; with
// newGroup, in a process group of its own (master and the runners it forks
// share it, so that one signal reaches them all).
func sysProcAttr(uid, gid uint32, newGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}},
		Setpgid:    newGroup,
	}
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
	var out []int
	forEachProc(func(pid int, stat, _ []byte) {
		// pid (comm) state ppid pgrp ...; comm may contain spaces and ")".
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			return
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			return
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			out = append(out, pid)
		}
	})
	return out
}

// pidsUsing lists the live processes whose command line has the argument
// arg (an instance's configuration file: master and every runner get it
// with -C).
func pidsUsing(arg string) []int {
	var out []int
	forEachProc(func(pid int, stat, cmdline []byte) {
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 0 && (f[0] == "Z" || f[0] == "X") {
				return
			}
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

// signalGroup sends sig to process group pgid; a group already gone is no
// error.
func signalGroup(pgid int, sig signal) error {
	if err := unix.Kill(-pgid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("mailmantest: kill -%d -%d: %w", sig, pgid, err)
	}
	return nil
}

// signalPID sends sig to process pid; a process already gone is no error.
func signalPID(pid int, sig signal) error {
	if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("mailmantest: kill -%d %d: %w", sig, pid, err)
	}
	return nil
}

// lockFile takes an exclusive, non-blocking flock on path. The kernel drops
// it when the test binary exits, however it exits, which is how a later run
// tells an abandoned instance from a live one.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("mailmantest: open %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("mailmantest: lock %s: %w", path, err)
	}
	return f, nil
}
