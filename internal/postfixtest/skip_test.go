package postfixtest_test

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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/postfixtest"
)

// promptly is how long the tests of this package may take, all together,
// where Postfix cannot run: they skip (or fail) before starting anything.
const promptly = 15 * time.Second

// TestSkipsPromptlyWithoutRoot: where Postfix cannot be started (here: not
// root), every test that needs it skips at once with the hint, or fails at
// once under LISTGATE_TEST_POSTFIX=1. `go test ./...` as an unprivileged
// user once hung for ten minutes instead, in the cleanup of an LMTP peer
// started before the skip. As root, the test runs this package's tests
// again as the user nobody; as any other user, it checks Start itself.
func TestSkipsPromptlyWithoutRoot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the harness runs Postfix on Linux only")
	}
	if os.Geteuid() != 0 {
		begin := time.Now()
		r := startOutcome(t)
		took := time.Since(begin)
		want := "starting Postfix needs root"
		if os.Getenv(postfixtest.EnvRequire) == "1" {
			if !r.failed || !strings.Contains(r.msg, want) {
				t.Errorf("Start as uid %d with %s=1: %+v, want a failure saying %q", os.Geteuid(), postfixtest.EnvRequire, r, want)
			}
		} else if !r.skipped || !strings.Contains(r.msg, want) || !strings.Contains(r.msg, "apt-get install postfix") {
			t.Errorf("Start as uid %d: %+v, want a skip saying %q and how to install Postfix", os.Geteuid(), r, want)
		}
		if took > time.Second {
			t.Errorf("Start as uid %d took %v to give up, want under a second", os.Geteuid(), took)
		}
		return
	}

	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody to run the tests as: %v", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if !othersCanRead(wd) {
		t.Skipf("%s is not readable by other users, so the tests cannot run there as nobody", wd)
	}
	bin := copyTestBinary(t)
	tests := listTests(t, bin)

	t.Run("skip", func(t *testing.T) {
		out, err, took := runAs(t, nobody, bin, wd, "")
		if err != nil || took > promptly {
			t.Fatalf("as nobody: %v after %v (want success within %v):\n%s", err, took, promptly, out)
		}
		// Parallel tests interleave their lines: count the skips and the
		// skip messages with the hint.
		skips := strings.Count(out, "--- SKIP: ")
		hints := 0
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "postfixtest: starting Postfix needs root") && strings.Contains(line, "apt-get install postfix") {
				hints++
			}
		}
		if skips == 0 || hints != skips {
			t.Errorf("as nobody, %d tests skipped, %d with the reason and how to install Postfix:\n%s", skips, hints, out)
		}
		if !strings.Contains(out, "--- SKIP: TestContribMainCFOverTCP ") {
			t.Errorf("as nobody, TestContribMainCFOverTCP did not skip:\n%s", out)
		}
		t.Logf("as nobody: %d of %d tests skipped, in %v", skips, len(tests), took.Round(time.Millisecond))
	})
	t.Run(postfixtest.EnvRequire+"=1", func(t *testing.T) {
		out, err, took := runAs(t, nobody, bin, wd, postfixtest.EnvRequire+"=1")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || took > promptly || !strings.Contains(out, "Postfix is required") {
			t.Fatalf("as nobody with %s=1: %v after %v, want a failure saying Postfix is required within %v:\n%s",
				postfixtest.EnvRequire, err, took, promptly, out)
		}
	})
}

// outcome is how a call to Start ended for a test.
type outcome struct {
	skipped, failed bool
	msg             string
}

// startOutcome calls Start for a recording TB, on a goroutine of its own
// since a skip or failure ends it.
func startOutcome(t *testing.T) outcome {
	rec := &recordTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		postfixtest.Start(rec, postfixtest.Options{LMTP: "unix:listgate/lmtp", Milter: "unix:listgate/milter"})
	}()
	<-done
	return rec.outcome
}

// recordTB records the skip or failure that ends a test, and ends only the
// calling goroutine.
type recordTB struct {
	testing.TB
	outcome
}

func (r *recordTB) Helper() {}

func (r *recordTB) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordTB) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordTB) Fatal(args ...any) {
	r.failed, r.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}

// othersCanRead reports whether a user with no rights of its own can
// reach dir and read it (as the tests read contrib/postfix).
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

// copyTestBinary copies this test binary where nobody can run it (go
// test's own build directory is root's alone).
func copyTestBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "postfixtest-nobody-")
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

// listTests lists the tests of this package but this one.
func listTests(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command(bin, "-test.list", ".").Output()
	if err != nil {
		t.Fatalf("%s -test.list: %v", bin, err)
	}
	var tests []string
	for _, name := range strings.Fields(string(out)) {
		if strings.HasPrefix(name, "Test") && name != "TestSkipsPromptlyWithoutRoot" {
			tests = append(tests, name)
		}
	}
	return tests
}

// runAs runs every test of this package but this one as user u, in dir,
// with extra in the environment (and LISTGATE_TEST_POSTFIX unset unless
// there), and returns the output, the run's error and how long it took.
func runAs(t *testing.T, u *user.User, bin, dir, extra string) (string, error, time.Duration) {
	t.Helper()
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("user %s: %v", u.Username, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*promptly)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.v", "-test.run", ".", "-test.skip", "^TestSkipsPromptlyWithoutRoot$",
		"-test.timeout", (3 * promptly).String())
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, postfixtest.EnvRequire+"=") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME=/")
	if extra != "" {
		cmd.Env = append(cmd.Env, extra)
	}
	begin := time.Now()
	out, err := cmd.CombinedOutput()
	return string(out), err, time.Since(begin)
}
