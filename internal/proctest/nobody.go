package proctest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Promptly is how long a harness package's tests may take, all together,
// where its daemon cannot run: they skip (or fail) before starting
// anything. `go test ./...` as an unprivileged user once hung for ten
// minutes instead, in the cleanup of an LMTP peer started before the skip.
const Promptly = 15 * time.Second

// Outcome is how a harness's Start ended a test, as StartOutcome records
// it.
type Outcome struct {
	Skipped, Failed bool
	// Msg is the skip's or the failure's message.
	Msg string
}

// StartOutcome calls start (a harness's Start) with a testing.TB that
// records the skip or failure ending it, and returns that. start runs on a
// goroutine of its own, since a skip or failure ends it; the recording TB
// passes every other call on to t.
func StartOutcome(t testing.TB, start func(testing.TB)) Outcome {
	rec := &recordTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		start(rec)
	}()
	<-done
	return rec.out
}

// recordTB records the skip or failure that ends a test, and ends only the
// calling goroutine.
type recordTB struct {
	testing.TB
	out Outcome
}

func (r *recordTB) Helper() {}

func (r *recordTB) Skipf(format string, args ...any) {
	r.out.Skipped, r.out.Msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordTB) Fatalf(format string, args ...any) {
	r.out.Failed, r.out.Msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordTB) Fatal(args ...any) {
	r.out.Failed, r.out.Msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}

// GivesUp checks, where the daemon cannot run (the test binary is not
// root), that start (a harness's Start) ends the test within a second:
// under EnvRequire=1 with a failure saying "NAME is required", otherwise
// with a skip whose message contains hint; either way the message gives
// one of reasons. It reports what is wrong with t.Errorf.
func GivesUp(t testing.TB, start func(testing.TB), name, hint string, reasons ...string) {
	t.Helper()
	begin := time.Now()
	r := StartOutcome(t, start)
	took := time.Since(begin)
	reason := slices.ContainsFunc(reasons, func(s string) bool { return strings.Contains(r.Msg, s) })
	if os.Getenv(EnvRequire) == "1" {
		if want := name + " is required"; !r.Failed || !strings.Contains(r.Msg, want) || !reason {
			t.Errorf("Start as uid %d with %s=1: %+v, want a failure saying %q and one of %q", os.Geteuid(), EnvRequire, r, want, reasons)
		}
	} else if !r.Skipped || !strings.Contains(r.Msg, hint) || !reason {
		t.Errorf("Start as uid %d: %+v, want a skip saying %q and one of %q", os.Geteuid(), r, hint, reasons)
	}
	if took > time.Second {
		t.Errorf("Start as uid %d took %v to give up, want under a second", os.Geteuid(), took)
	}
}

// Nobody runs tests of the running test binary again as the user nobody,
// who can start no daemon: see AsNobody.
type Nobody struct {
	// Bin is the copy of the test binary that nobody runs.
	Bin string

	user *user.User
	dir  string
	args []string
}

// AsNobody prepares to run the tests of the running test binary as the
// user nobody, in dir ("" for the directory of the copy), with args (such
// as -test.run and -test.skip) after -test.v and a -test.timeout of
// 3*Promptly. It copies the test binary where nobody can run it (go test's
// build directory is root's alone), as /tmp/PREFIX-nobody-NNNN/NAME, which
// the test's cleanup removes. It skips the test if there is no user nobody
// or nobody cannot read dir, and fails it if the copy fails.
func AsNobody(t testing.TB, prefix, dir string, args ...string) *Nobody {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody to run the tests as: %v", err)
	}
	if dir != "" && !othersCanRead(dir) {
		t.Skipf("%s is not readable by other users, so the tests cannot run there as nobody", dir)
	}
	bin := copyTestBinary(t, prefix)
	if dir == "" {
		dir = filepath.Dir(bin)
	}
	return &Nobody{Bin: bin, user: u, dir: dir, args: args}
}

// Skip runs the tests as nobody without EnvRequire and returns their
// output (go test -v's) and how long they took. It fails the test unless
// they pass, that is skip, within Promptly.
func (n *Nobody) Skip(t testing.TB) (out string, took time.Duration) {
	t.Helper()
	out, took, err := n.run(t, "")
	if err != nil || took > Promptly {
		t.Fatalf("as nobody: %v after %v (want success within %v):\n%s", err, took, Promptly, out)
	}
	return out, took
}

// Fail runs the tests as nobody with EnvRequire=1. It fails the test
// unless they fail within Promptly, with output that contains want.
func (n *Nobody) Fail(t testing.TB, want string) {
	t.Helper()
	out, took, err := n.run(t, EnvRequire+"=1")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || took > Promptly || !strings.Contains(out, want) {
		t.Fatalf("as nobody with %s=1: %v after %v, want a failure saying %q within %v:\n%s",
			EnvRequire, err, took, want, Promptly, out)
	}
}

// run runs the tests as nobody, with HOME=/ and the test binary's
// environment without EnvRequire, plus extra if not empty, and returns the
// output, how long the run took and its error.
func (n *Nobody) run(t testing.TB, extra string) (string, time.Duration, error) {
	t.Helper()
	uid, err1 := strconv.ParseUint(n.user.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(n.user.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("user %s: %v", n.user.Username, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*Promptly)
	defer cancel()
	args := append([]string{"-test.v", "-test.timeout", (3 * Promptly).String()}, n.args...)
	cmd := exec.CommandContext(ctx, n.Bin, args...)
	cmd.Dir = n.dir
	cmd.SysProcAttr = SysProcAttr(uint32(uid), uint32(gid), false)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvRequire+"=") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME=/")
	if extra != "" {
		cmd.Env = append(cmd.Env, extra)
	}
	begin := time.Now()
	out, err := cmd.CombinedOutput()
	return string(out), time.Since(begin), err
}

// othersCanRead reports whether a user with no rights of its own can
// reach dir and read it.
func othersCanRead(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == dir && fi.Mode().Perm()&0o004 == 0 {
			return false
		}
		if filepath.Dir(d) == d {
			return true
		}
	}
}

// copyTestBinary copies the running test binary into a new directory
// /tmp/PREFIX-nobody-NNNN that everyone can read, removed at the test's
// cleanup.
func copyTestBinary(t testing.TB, prefix string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", prefix+"-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(exe))
	in, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
