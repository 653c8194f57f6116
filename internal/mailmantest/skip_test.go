package mailmantest_test

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

	"github.com/listgate/listgate/internal/mailmantest"
)

// promptly is how long the tests that need Mailman may take, all together,
// where it cannot run: they skip (or fail) before starting anything.
const promptly = 15 * time.Second

// TestSkipsPromptlyWithoutRoot: where Mailman cannot be run (here: not
// root), the tests that need it skip at once with a hint, or fail at once
// under LISTGATE_TEST_POSTFIX=1. As root, the test runs them again as the
// user nobody; as any other user, it checks Start itself.
func TestSkipsPromptlyWithoutRoot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the harness runs Mailman on Linux only")
	}
	if os.Geteuid() != 0 {
		begin := time.Now()
		r := startOutcome()
		want := "needs root"
		if os.Getenv(mailmantest.EnvRequire) == "1" {
			if !r.failed || !strings.Contains(r.msg, "Mailman is required") {
				t.Errorf("Start as uid %d with %s=1: %+v, want a failure saying Mailman is required", os.Geteuid(), mailmantest.EnvRequire, r)
			}
		} else if !r.skipped || !strings.Contains(r.msg, "mailman3") {
			t.Errorf("Start as uid %d: %+v, want a skip saying how to install mailman3", os.Geteuid(), r)
		} else if !strings.Contains(r.msg, want) && !strings.Contains(r.msg, "not installed") && !strings.Contains(r.msg, "no user") {
			t.Errorf("Start as uid %d: skipped with %q, want the reason", os.Geteuid(), r.msg)
		}
		if took := time.Since(begin); took > time.Second {
			t.Errorf("Start as uid %d took %v to give up, want under a second", os.Geteuid(), took)
		}
		return
	}

	mailmantest.Require(t) // as root: the reason to skip must be the user alone
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody to run the tests as: %v", err)
	}
	bin := copyTestBinary(t)
	const run = "^(TestMailman|TestTwoInstances)$"
	t.Run("skip", func(t *testing.T) {
		out, err, took := runAs(t, nobody, bin, run, "")
		if err != nil || took > promptly {
			t.Fatalf("as nobody: %v after %v (want success within %v):\n%s", err, took, promptly, out)
		}
		for _, name := range []string{"TestMailman", "TestTwoInstances"} {
			if !strings.Contains(out, "--- SKIP: "+name+" ") {
				t.Errorf("as nobody, %s did not skip:\n%s", name, out)
			}
		}
		if !strings.Contains(out, "mailmantest: running Mailman as the user list needs root") || !strings.Contains(out, "mailman3") {
			t.Errorf("as nobody, the skips do not say why and what to install:\n%s", out)
		}
	})
	t.Run(mailmantest.EnvRequire+"=1", func(t *testing.T) {
		out, err, took := runAs(t, nobody, bin, run, mailmantest.EnvRequire+"=1")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || took > promptly || !strings.Contains(out, "Mailman is required") {
			t.Fatalf("as nobody with %s=1: %v after %v, want a failure saying Mailman is required within %v:\n%s",
				mailmantest.EnvRequire, err, took, promptly, out)
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
func startOutcome() outcome {
	rec := &recordTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		mailmantest.Start(rec, mailmantest.Options{})
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

// copyTestBinary copies this test binary where nobody can run it (go
// test's own build directory is root's alone).
func copyTestBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "mailmantest-nobody-")
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

// runAs runs the tests matching run as user u, in bin's directory, with
// extra in the environment (and LISTGATE_TEST_POSTFIX unset unless there),
// and returns the output, the run's error and how long it took.
func runAs(t *testing.T, u *user.User, bin, run, extra string) (string, error, time.Duration) {
	t.Helper()
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("user %s: %v", u.Username, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*promptly)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.v", "-test.run", run, "-test.timeout", (3 * promptly).String())
	cmd.Dir = filepath.Dir(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, mailmantest.EnvRequire+"=") && !strings.HasPrefix(kv, "HOME=") {
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
