//go:build !linux

package proctest

import (
	"errors"
	"os"
	"syscall"
)

// The harnesses run their daemons on Linux only (this package reads /proc
// and uses PR_SET_CHILD_SUBREAPER); their Require skips elsewhere.

var errNotLinux = errors.New("proctest: Linux only")

// BecomeSubreaper fails: Linux only.
func BecomeSubreaper() error { return errNotLinux }

// SysProcAttr returns nil: Linux only.
func SysProcAttr(uid, gid uint32, newGroup bool) *syscall.SysProcAttr { return nil }

// Reap reports that no child is left: Linux only.
func Reap(pgid int) bool { return true }

// LivePIDs finds none: Linux only.
func LivePIDs(pgid int) []int { return nil }

// PIDsUsing finds none: Linux only.
func PIDsUsing(arg string) []int { return nil }

// KillGroup fails: Linux only.
func KillGroup(pgid int) error { return errNotLinux }

// Kill fails: Linux only.
func Kill(pid int) error { return errNotLinux }

// Terminate fails: Linux only.
func Terminate(pid int) error { return errNotLinux }

// LockFile fails: Linux only.
func LockFile(path string) (*os.File, error) { return nil, errNotLinux }

// OpenPTY fails: Linux only.
func OpenPTY() (master, slave *os.File, err error) { return nil, nil, errNotLinux }
