//go:build !linux

package mailmantest

import (
	"errors"
	"os"
	"syscall"
)

// The harness runs Mailman on Linux only (it reads /proc, switches to the
// list user and uses PR_SET_CHILD_SUBREAPER); Require skips elsewhere.

var errNotLinux = errors.New("mailmantest: Linux only")

type signal = int

const (
	sigTERM signal = 15
	sigKILL signal = 9
)

func becomeSubreaper() error                                { return errNotLinux }
func sysProcAttr(uint32, uint32, bool) *syscall.SysProcAttr { return nil }
func reap(int) bool                                         { return true }
func livePIDs(int) []int                                    { return nil }
func pidsUsing(string) []int                                { return nil }
func signalGroup(int, signal) error                         { return errNotLinux }
func signalPID(int, signal) error                           { return errNotLinux }
func lockFile(string) (*os.File, error)                     { return nil, errNotLinux }
