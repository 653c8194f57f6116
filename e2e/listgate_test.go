package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// wait bounds every wait on a condition in this package: generous, since
// the tests share two cores with Postfix; they return as soon as the
// condition holds.
const wait = 15 * time.Second

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// TestMain removes the listgate binary built for the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// binary builds cmd/listgate once per test run (with -race when the tests
// run under the race detector) and returns its path.
func binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "listgate-e2e-")
		if err != nil {
			build.err = err
			return
		}
		build.dir = dir
		build.path = filepath.Join(dir, "listgate")
		args := []string{"build", "-o", build.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/listgate/listgate/cmd/listgate")
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// environ is the environment of listgate processes. A binary built with
// -race sleeps a second before it exits (GORACE atexit_sleep_ms, 1000 by
// default); a race it finds still makes it exit with status 66, which
// fails the test.
func environ() []string {
	return append(os.Environ(), "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
}

// runListgate runs a listgate command that exits (postfix, check) and
// returns its stdout, stderr and exit status.
func runListgate(t testing.TB, stdin string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = environ()
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	case err != nil:
		t.Fatalf("listgate %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), exit
}

// daemon is a `listgate serve` process run from the built binary.
type daemon struct {
	t    testing.TB
	args []string // serve's flags, with the addresses it listens on

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd has exited
	err   error         // cmd.Wait's result, once done
	addrs map[string]string
	log   strings.Builder // every run's log, in order
}

var listeningRE = regexp.MustCompile(`msg=listening door=(\S+) addr=(\S+)`)

// startListgate runs `listgate serve` with args and waits until its LMTP
// and milter doors listen; inet ports may be 0. It is stopped (SIGTERM,
// then SIGKILL) when the test ends.
func startListgate(t testing.TB, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, args: args}
	t.Cleanup(d.cleanup)
	d.start()
	// A restart must come back on the same addresses, the ones main.cf
	// names: replace any :0 by the port it got.
	d.args = append(append([]string(nil), args...), "--lmtp", d.Addr("lmtp"), "--milter", d.Addr("milter"))
	return d
}

func (d *daemon) start() {
	t := d.t
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"serve", "--hostname", "lg.e2e.invalid", "--log-level", "debug"}, d.args...)...)
	cmd.Env = environ()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	listening := make(chan struct{})
	d.mu.Lock()
	d.cmd, d.done, d.addrs = cmd, done, map[string]string{}
	fmt.Fprintf(&d.log, "--- listgate serve (pid %d)\n", cmd.Process.Pid)
	d.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.log.WriteString(line + "\n")
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				d.addrs[m[1]] = m[2]
			}
			up := d.addrs["lmtp"] != "" && d.addrs["milter"] != ""
			d.mu.Unlock()
			if up && !signalled {
				signalled = true
				close(listening)
			}
		}
		io.Copy(io.Discard, stderr)
		err := cmd.Wait()
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
		close(done)
	}()
	select {
	case <-listening:
	case <-done:
		t.Fatalf("listgate serve exited before listening: %v\n%s", d.err, d.Log())
	case <-time.After(wait):
		t.Fatalf("listgate serve: LMTP and milter not listening within %v:\n%s", wait, d.Log())
	}
}

// Addr is the address a door listens on, in Postfix syntax
// (inet:127.0.0.1:PORT or unix:/path).
func (d *daemon) Addr(door string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addrs[door]
}

// Log is everything listgate logged so far, over all its runs.
func (d *daemon) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// WaitLog waits until listgate's log has a line containing every one of
// substrs, and returns that line.
func (d *daemon) WaitLog(t testing.TB, substrs ...string) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		for _, line := range strings.Split(d.Log(), "\n") {
			all := true
			for _, s := range substrs {
				all = all && strings.Contains(line, s)
			}
			if all {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("listgate logged no line with %q within %v:\n%s", substrs, wait, d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for a clean exit.
func (d *daemon) Stop(t testing.TB) {
	t.Helper()
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatalf("listgate did not exit within %v of SIGTERM:\n%s", wait, d.Log())
	}
	d.mu.Lock()
	err := d.err
	d.mu.Unlock()
	if err != nil {
		t.Fatalf("listgate exited after SIGTERM: %v\n%s", err, d.Log())
	}
}

// Restart starts listgate again on the addresses it had.
func (d *daemon) Restart(t testing.TB) {
	t.Helper()
	d.start()
}

func (d *daemon) cleanup() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
	default:
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	if d.t.Failed() {
		d.t.Logf("listgate log:\n%s", d.Log())
	}
}

// writeList creates (or replaces) a file in the lists directory, as an
// admin would: written aside, then renamed into place.
func writeList(t testing.TB, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}
