//go:build linux

package spool

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestDurableStepOrder: a delivery to a made folder does its durable steps
// in the order that makes a 250 safe: the file is written and flushed in
// tmp/, then renamed into new/, then new/ is flushed; Deliver returns (and
// the LMTP door answers) only after that.
func TestDurableStepOrder(t *testing.T) {
	var steps []string
	var record atomic.Bool
	s := newTestSpool(t, func(op Op, path string) error {
		if record.Load() {
			steps = append(steps, op.String()+" "+path)
		}
		return nil
	})
	m := testMessage(t, "Message-ID: <ant>\r\n\r\nbody\r\n")
	if _, err := s.Deliver(m, testEnv); err != nil { // makes the folder
		t.Fatal(err)
	}
	record.Store(true)
	path, err := s.Deliver(m, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	record.Store(false)
	folder := filepath.Dir(filepath.Dir(path))
	tmp := filepath.Join(folder, "tmp", filepath.Base(path))
	want := []string{
		"create " + tmp,
		"write " + tmp,
		"fsync " + tmp,
		"rename " + path,
		"fsync directory " + filepath.Join(folder, "new"),
	}
	if strings.Join(steps, "\n") != strings.Join(want, "\n") {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
}

// fsyncChildEnv names the step a child process of TestFsyncReachesTheKernel
// makes fail.
const fsyncChildEnv = "LISTGATE_SPOOL_FSYNC_CHILD"

// TestFsyncReachesTheKernel: each fsync step really calls fsync(2). The
// fault-injection tests see a step through Options.Fault, before it runs,
// so a step whose fsync call was deleted still passes them; and a crash
// test cannot tell either (after SIGKILL the page cache still holds what
// was never flushed). Here a child process lets the spool reach the step,
// then makes fsync(2) itself fail for the whole process (a seccomp filter,
// installed from Options.Fault) and checks that the delivery fails at that
// very step, with the error the system gave, and nothing new in new/.
func TestFsyncReachesTheKernel(t *testing.T) {
	if v := os.Getenv(fsyncChildEnv); v != "" {
		op, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		fsyncChild(t, Op(op))
		return
	}
	for _, op := range []Op{OpFsync, OpDirFsync} {
		t.Run(op.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFsyncReachesTheKernel$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), fsyncChildEnv+"="+strconv.Itoa(int(op)))
			out, err := cmd.CombinedOutput()
			if strings.Contains(string(out), "--- SKIP") {
				t.Skipf("child skipped:\n%s", out)
			}
			if err != nil || !strings.Contains(string(out), "--- PASS: TestFsyncReachesTheKernel") {
				t.Fatalf("child failing fsync(2) at %s: %v\n%s", op, err, out)
			}
		})
	}
}

// fsyncChild delivers once, then delivers again with fsync(2) failing from
// the step op on.
func fsyncChild(t *testing.T, op Op) {
	var armed atomic.Bool
	var filterErr error
	s := newTestSpool(t, func(o Op, path string) error {
		if armed.Load() && o == op {
			armed.Store(false)
			filterErr = failFsync(syscall.EIO)
		}
		return nil
	})
	m := testMessage(t, "Message-ID: <ant>\r\n\r\nbody\r\n")
	first, err := s.Deliver(m, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	folder := filepath.Dir(filepath.Dir(first))
	armed.Store(true)
	path, err := s.Deliver(m, testEnv)
	if filterErr != nil {
		t.Skipf("cannot make fsync(2) fail here: %v", filterErr)
	}
	if err == nil {
		t.Fatalf("Deliver stored %s although fsync(2) failed from the %s step on: the step does not call fsync", path, op)
	}
	want := "spool: " + op.String() + " " + filepath.Join(folder, "tmp") + "/"
	if op == OpDirFsync {
		want = "spool: fsync directory " + filepath.Join(folder, "new") + ":"
	}
	if !errors.Is(err, syscall.EIO) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Deliver: %v\nwant the system's EIO, from %q", err, want)
	}
	if got := names(t, filepath.Join(folder, "new")); len(got) != 1 || got[0] != filepath.Base(first) {
		t.Errorf("new/ holds %q, want only the first message", got)
	}
	if got := names(t, filepath.Join(folder, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ holds %q", got)
	}
}

// failFsync makes every later fsync(2) of this process fail with errno,
// with a seccomp filter on all its threads. There is no undoing it: only a
// child process may call it.
func failFsync(errno syscall.Errno) error {
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_FSYNC},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(errno)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	// no_new_privs is per thread, and seccomp(2) checks the caller's.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	r, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if e != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", e)
	}
	if r != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): thread %d cannot take the filter", r)
	}
	return nil
}
