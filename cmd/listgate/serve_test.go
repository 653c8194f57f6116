package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds listgate once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "listgate-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "listgate")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, binPath)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" && buildErr == nil {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// daemon is a running `listgate serve`.
type daemon struct {
	cmd   *exec.Cmd
	addrs map[string]string // door -> listening address (Postfix syntax)
	mu    sync.Mutex
	log   strings.Builder
	done  chan error
}

func (d *daemon) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

var listeningRE = regexp.MustCompile(`msg=listening door=(\S+) addr=(\S+)`)

// startDaemon runs `listgate serve` with args and waits until every door
// in doors has logged its address.
func startDaemon(t *testing.T, doors []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{addrs: make(map[string]string), done: make(chan error, 1)}
	d.cmd = exec.Command(binary(t), append([]string{"serve"}, args...)...)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.log.WriteString(line + "\n")
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				d.addrs[m[1]] = m[2]
			}
			all := !signalled
			for _, name := range doors {
				if d.addrs[name] == "" {
					all = false
				}
			}
			d.mu.Unlock()
			if all {
				signalled = true
				close(found)
			}
		}
		io.Copy(io.Discard, stderr)
		d.done <- d.cmd.Wait()
	}()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
	})
	select {
	case <-found:
	case err := <-d.done:
		d.done <- err
		t.Fatalf("listgate serve exited: %v\n%s", err, d.logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("doors %v not listening within 20s:\n%s", doors, d.logs())
	}
	return d
}

// stop sends sig and waits for the daemon to exit.
func (d *daemon) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit within 20s of %v:\n%s", sig, d.logs())
	}
	return nil
}

// TestServeDeliverAndStop runs the real binary: a list file added while it
// runs is delivered to over LMTP, SIGHUP rescans, SIGTERM stops cleanly.
func TestServeDeliverAndStop(t *testing.T) {
	listsDir, spoolDir := t.TempDir(), t.TempDir()
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	d := startDaemon(t, []string{"lmtp"}, "--lists", listsDir, "--spool", spoolDir,
		"--lmtp", "unix:"+sock, "--milter", "", "--hostname", "mx.test")
	if got := d.addrs["lmtp"]; got != "unix:"+sock {
		t.Fatalf("lmtp door at %q", got)
	}
	if err := os.WriteFile(filepath.Join(listsDir, "tour@example.org"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for {
		err = sendLMTP(sock, "anne@example.net", "tour@example.org", "Subject: hi\r\n\r\nhello\r\n")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("delivery: %v\n%s", err, d.logs())
	}
	files, _ := filepath.Glob(filepath.Join(spoolDir, "example.org", "tour", "post", "new", "*"))
	if len(files) != 1 {
		t.Fatalf("files in new/: %v", files)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, "reason=rescan")
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, d.logs())
	}
	for _, want := range []string{"SIGHUP: rescanning the lists directory", "listgate stopped"} {
		if !strings.Contains(d.logs(), want) {
			t.Errorf("log lacks %q:\n%s", want, d.logs())
		}
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

// sendLMTP delivers one message over LMTP with go-smtp's client and
// returns the first failure, including a non-250 reply after DATA.
func sendLMTP(sock, from, to, msg string) error {
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return err
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	return c.SendMail(from, []string{to}, strings.NewReader(msg))
}

// waitLog waits until the daemon's log has a line containing want.
func waitLog(t *testing.T, d *daemon, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.logs(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q after 10s:\n%s", want, d.logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
