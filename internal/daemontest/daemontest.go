// Package daemontest runs the listgate binary for tests: it builds
// cmd/listgate once per test binary, runs its one-shot commands, and starts
// `listgate serve` as a real process, reading the addresses its doors
// listen on from its log. The end-to-end tests and cmd/listgate's own
// tests use it.
package daemontest

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

	"github.com/listgate/listgate/internal/testutil"
)

// wait bounds every wait on a condition: generous, since the tests share
// two cores with Postfix; they return as soon as the condition holds.
const wait = 15 * time.Second

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Cleanup removes the binary Binary built. Call it from TestMain after
// m.Run.
func Cleanup() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

// Binary builds cmd/listgate once per test binary (with -race when the
// tests run under the race detector, else with CGO_ENABLED=0) and returns
// its path. Call Cleanup
// from TestMain to remove it.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "listgate-e2e-")
		if err != nil {
			build.err = err
			return
		}
		build.dir = dir
		build.path = filepath.Join(dir, "listgate")
		// -buildvcs=auto stamps the revision where the go command can
		// (a git checkout; not a git worktree, whose .git is a file),
		// whatever GOFLAGS says. Without -race the binary is built as
		// docs/install.md builds it: CGO_ENABLED=0, static; the race
		// detector needs cgo.
		args := []string{"build", "-buildvcs=auto", "-o", build.path}
		cgo := "CGO_ENABLED=0"
		if raceEnabled {
			args, cgo = append(args, "-race"), "CGO_ENABLED=1"
		}
		args = append(args, "github.com/listgate/listgate/cmd/listgate")
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// Environ is the environment of listgate processes. A binary built with
// -race sleeps a second before it exits (GORACE atexit_sleep_ms, 1000 by
// default); a race it finds still makes it exit with status 66, which
// fails the test.
func Environ() []string {
	return append(os.Environ(), "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
}

// Run runs a listgate command that exits (postfix, check, lists) with
// stdin as its input and returns its stdout, stderr and exit status.
func Run(t testing.TB, stdin string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = Environ()
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

// Daemon is a `listgate serve` process run from the built binary.
type Daemon struct {
	t     testing.TB
	args  []string // serve's flags, with the addresses it listens on
	doors []string // the doors Start waits for

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd has exited
	err   error         // cmd.Wait's result, once done
	addrs map[string]string
	log   strings.Builder // every run's log, in order
}

var listeningRE = regexp.MustCompile(`msg=listening door=(\S+) addr=(\S+)`)

// Start runs `listgate serve` with args and waits until each of doors
// ("lmtp", "milter", "metrics") logs its address; inet ports may be 0. It
// is stopped (SIGTERM, then SIGKILL) when the test ends.
func Start(t testing.TB, doors []string, args ...string) *Daemon {
	t.Helper()
	d := &Daemon{t: t, args: args, doors: doors}
	t.Cleanup(d.cleanup)
	d.start()
	// A restart must come back on the same addresses (the ones Postfix's
	// main.cf names): replace any :0 by the port it got.
	d.args = append([]string(nil), args...)
	for _, door := range doors {
		d.args = append(d.args, "--"+door, d.Addr(door))
	}
	return d
}

func (d *Daemon) start() {
	t := d.t
	t.Helper()
	// An empty config file: a /etc/listgate/listgate.toml on the machine
	// must not change what the tests run. A --config in args wins.
	cmd := exec.Command(Binary(t), append([]string{"serve", "--config", os.DevNull, "--hostname", "lg.e2e.invalid", "--log-level", "debug"}, d.args...)...)
	cmd.Env = Environ()
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
			up := true
			for _, door := range d.doors {
				up = up && d.addrs[door] != ""
			}
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
		t.Fatalf("listgate serve: %v not listening within %v:\n%s", d.doors, wait, d.Log())
	}
}

// Addr is the address a door listens on, in Postfix syntax
// (inet:127.0.0.1:PORT or unix:/path).
func (d *Daemon) Addr(door string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addrs[door]
}

// Log is everything listgate logged so far, over all its runs.
func (d *Daemon) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// WaitLog waits until listgate's log has a line containing every one of
// substrs, and returns that line.
func (d *Daemon) WaitLog(t testing.TB, substrs ...string) string {
	t.Helper()
	var found string
	if _, ok := testutil.Poll(wait, 20*time.Millisecond, func() bool {
		for _, line := range strings.Split(d.Log(), "\n") {
			all := true
			for _, s := range substrs {
				all = all && strings.Contains(line, s)
			}
			if all {
				found = line
				return true
			}
		}
		return false
	}); !ok {
		t.Fatalf("listgate logged no line with %q within %v:\n%s", substrs, wait, d.Log())
	}
	return found
}

// Pid is the process id of the running process.
func (d *Daemon) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd.Process.Pid
}

// Signal sends sig to the running process.
func (d *Daemon) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	d.mu.Lock()
	cmd := d.cmd
	d.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// Stop sends SIGTERM and waits for a clean exit.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	d.Signal(t, syscall.SIGTERM)
	d.mu.Lock()
	done := d.done
	d.mu.Unlock()
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
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	d.start()
}

func (d *Daemon) cleanup() {
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
