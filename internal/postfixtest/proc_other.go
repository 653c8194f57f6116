//go:build !linux

package postfixtest

import (
	"errors"
	"os"
)

// The harness runs Postfix on Linux only (it reads /proc and uses
// PR_SET_CHILD_SUBREAPER); Require skips elsewhere.

var errNotLinux = errors.New("postfixtest: Linux only")

func becomeSubreaper() error            { return errNotLinux }
func reap(int) bool                     { return true }
func livePIDs(int) []int                { return nil }
func killGroup(int) error               { return errNotLinux }
func lockFile(string) (*os.File, error) { return nil, errNotLinux }

func openPTY() (master, slave *os.File, err error) { return nil, nil, errNotLinux }
