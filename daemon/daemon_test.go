package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"go.uber.org/goleak"

	"github.com/listgate/listgate/config"
	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/postconf"
	"github.com/listgate/listgate/spool"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// loopback0 is a TCP door on a port the kernel chooses.
var loopback0 = postconf.Endpoint{Network: "tcp", Address: "127.0.0.1:0"}

// settings returns settings for a test daemon: a lists directory with
// tour@example.org, a spool, every door on 127.0.0.1:0.
func settings(t *testing.T) config.Settings {
	t.Helper()
	s := config.Defaults()
	s.Lists, s.Spool = t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(s.Lists, "tour@example.org"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.LMTP, s.Milter, s.Metrics = loopback0, loopback0, loopback0
	s.Hostname = "mx.test"
	s.ShutdownTimeout = 10 * time.Second
	return s
}

// running is a Daemon whose Run goroutine a test follows.
type running struct {
	*Daemon
	log    *testutil.SyncBuffer
	cancel context.CancelFunc
	done   chan error // Run's result
}

// start runs a daemon on s until the test ends.
func start(t *testing.T, s config.Settings) *running {
	t.Helper()
	log := new(testutil.SyncBuffer)
	d, err := New(Config{Settings: s, Logger: slog.New(slog.NewTextHandler(log, nil)), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Daemon: d, log: log, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
		if t.Failed() {
			t.Logf("daemon log:\n%s", log)
		}
	})
	testutil.WaitFor(t, 5*time.Second, "the daemon to start", func() bool { return strings.Contains(log.String(), "listgate started") })
	return r
}

// stop ends Run and returns its result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	return nil
}

// hostPort returns the host:port of an inet: door.
func (r *running) hostPort(door string) string {
	return strings.TrimPrefix(r.Addr(door), "inet:")
}

// lmtpClient opens an LMTP session with the daemon's LMTP door.
func lmtpClient(t *testing.T, network, addr string) *smtp.Client {
	t.Helper()
	conn, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// get fetches url from the metrics door and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestRunDeliversAndStops: a daemon started in-process delivers over LMTP
// (on a unix socket), answers on the milter and HTTP doors at the ports
// Addr reports, and stops when its context ends: Run returns nil, every
// listener is closed, the socket is removed.
func TestRunDeliversAndStops(t *testing.T) {
	s := settings(t)
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	s.LMTP = postconf.Endpoint{Network: "unix", Address: sock}
	r := start(t, s)
	if got := r.Addr("lmtp"); got != "unix:"+sock {
		t.Errorf("Addr(lmtp) = %q", got)
	}
	for _, door := range []string{"milter", "metrics"} {
		if a := r.Addr(door); !strings.HasPrefix(a, "inet:127.0.0.1:") || strings.HasSuffix(a, ":0") {
			t.Errorf("Addr(%s) = %q: want the port chosen", door, a)
		}
	}
	if a := r.Addr("policy"); a != "" {
		t.Errorf("Addr(policy) = %q for a door that is off", a)
	}

	c := lmtpClient(t, "unix", sock)
	if err := c.SendMail("anne@example.net", []string{"tour@example.org"}, strings.NewReader("Subject: hi\r\n\r\nhello\r\n")); err != nil {
		t.Fatalf("delivery: %v", err)
	}
	c.Close()
	files, _ := filepath.Glob(filepath.Join(s.Spool, "example.org", "tour", "post", "new", "*"))
	if len(files) != 1 {
		t.Fatalf("files in new/: %v", files)
	}
	if st, body := get(t, "http://"+r.hostPort("metrics")+"/metrics"); st != 200 || !strings.Contains(body, "listgate_lists 1\n") {
		t.Errorf("/metrics: %d, lacks listgate_lists 1", st)
	}
	if st, body := get(t, "http://"+r.hostPort("metrics")+"/healthz"); st != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", st, body)
	}
	milterAddr := r.hostPort("milter")
	if c, err := net.Dial("tcp", milterAddr); err != nil {
		t.Errorf("milter door: %v", err)
	} else {
		c.Close()
	}

	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	if c, err := net.Dial("tcp", milterAddr); err == nil {
		c.Close()
		t.Errorf("milter door still accepts after Run returned")
	}
	if !strings.Contains(r.log.String(), "listgate stopped") {
		t.Errorf("log lacks listgate stopped:\n%s", r.log)
	}
}

// TestNewBusyPort: a port in use fails New, naming the setting, and
// leaves no door up: the unix socket of the door opened before it is
// gone, and the lists watcher is closed (goleak checks its goroutine).
func TestNewBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	s := settings(t)
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	s.LMTP = postconf.Endpoint{Network: "unix", Address: sock}
	s.Milter = postconf.Endpoint{Network: "tcp", Address: busy.Addr().String()}
	_, err = New(Config{Settings: s})
	if err == nil || !strings.Contains(err.Error(), "--milter inet:"+busy.Addr().String()) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("New: %v, want the milter's address in use", err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the LMTP socket is left behind: %v", err)
	}
}

// TestNewErrors: settings New refuses, with the setting named.
func TestNewErrors(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(s *config.Settings)
		want   string
	}{
		{"every door off", func(s *config.Settings) {
			s.LMTP, s.Milter, s.Metrics = postconf.Endpoint{}, postconf.Endpoint{}, postconf.Endpoint{}
		}, "every door is off"},
		{"no lists directory", func(s *config.Settings) { s.Lists = filepath.Join(s.Lists, "nope") }, "the directory does not exist"},
		{"spool is a file", func(s *config.Settings) { s.Spool = notDir }, "--spool: spool: create " + notDir},
		{"zero shutdown timeout", func(s *config.Settings) { s.ShutdownTimeout = 0 }, "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := settings(t)
			tt.change(&s)
			if _, err := New(Config{Settings: s}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want %q", err, tt.want)
			}
		})
	}
}

// TestDoorFailure: when a door stops serving on its own, Run shuts the
// others down and returns an error naming it.
func TestDoorFailure(t *testing.T) {
	r := start(t, settings(t))
	milterAddr := r.hostPort("milter")
	r.doors[0].ln.Close() // the LMTP door's listener fails under it
	select {
	case err := <-r.done:
		r.done <- err
		if err == nil || !strings.Contains(err.Error(), "lmtp door") {
			t.Fatalf("Run: %v, want the lmtp door's failure", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after a door failed")
	}
	if c, err := net.Dial("tcp", milterAddr); err == nil {
		c.Close()
		t.Errorf("milter door still accepts after Run returned")
	}
}

// TestShutdownLetsTransactionsFinish: a shutdown closes idle LMTP sessions
// at once and lets a transaction in flight finish with its 250.
func TestShutdownLetsTransactionsFinish(t *testing.T) {
	s := settings(t)
	r := start(t, s)
	addr := r.hostPort("lmtp")
	idle := lmtpClient(t, "tcp", addr)
	busy := lmtpClient(t, "tcp", addr)
	if err := busy.Mail("anne@example.net", nil); err != nil {
		t.Fatal(err)
	}
	if err := busy.Rcpt("tour@example.org", nil); err != nil {
		t.Fatal(err)
	}
	w, err := busy.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: in flight\r\n\r\n")
	r.cancel()
	testutil.WaitFor(t, 5*time.Second, "the shutdown to start", func() bool { return strings.Contains(r.log.String(), "shutting down") })
	// The idle session is closed: its next command fails.
	testutil.WaitFor(t, 5*time.Second, "the idle session to be closed", func() bool { return idle.Noop() != nil })
	io.WriteString(w, "the rest\r\n")
	if err := w.Close(); err != nil {
		t.Fatalf("the transaction in flight: %v", err)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(s.Spool, "example.org", "tour", "post", "new", "*"))
	if len(files) != 1 {
		t.Fatalf("files in new/: %v", files)
	}
}

// TestRunOnce: a second Run is an error, not a second set of doors.
func TestRunOnce(t *testing.T) {
	r := start(t, settings(t))
	if err := r.Run(context.Background()); err == nil {
		t.Fatal("a second Run returned nil")
	}
}

// TestCloseWithoutRun: Close releases a Daemon that never ran.
func TestCloseWithoutRun(t *testing.T) {
	d, err := New(Config{Settings: settings(t)})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(d.Addr("lmtp"), "inet:")
	d.Close()
	d.Close()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("LMTP port still open after Close")
	}
}

// TestReadyzDoors: /readyz names a door that stopped serving.
func TestReadyzDoors(t *testing.T) {
	r := start(t, settings(t))
	url := "http://" + r.hostPort("metrics") + "/readyz"
	if st, body := get(t, url); st != 200 || body != "ok\n" {
		t.Fatalf("/readyz: %d %q", st, body)
	}
	r.doors[1].serving.Store(false) // as if the milter door had stopped
	st, body := get(t, url)
	if want := fmt.Sprintf("not ready: milter door (%s): not serving\n", r.Addr("milter")); st != 503 || body != want {
		t.Errorf("/readyz: %d %q, want 503 %q", st, body, want)
	}
	r.doors[1].serving.Store(true)
}

// TestStartCleansTmp: on start, the files a crash left in a folder's tmp/
// (older than spool.TmpGrace) are removed and counted in the log; a fresh
// one, as a delivery in flight has, stays.
func TestStartCleansTmp(t *testing.T) {
	s := settings(t)
	tmp := filepath.Join(s.Spool, "example.org", "tour", "post", "tmp")
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(filepath.Dir(tmp), sub), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	stale, fresh := filepath.Join(tmp, "1.M1P1Q1R1.mx.test"), filepath.Join(tmp, "2.M1P1Q2R1.mx.test")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-spool.TmpGrace - time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	r := start(t, s)
	testutil.WaitFor(t, 5*time.Second, "the stale file removed", func() bool {
		_, err := os.Stat(stale)
		return errors.Is(err, os.ErrNotExist)
	})
	testutil.WaitFor(t, 5*time.Second, "the count logged", func() bool {
		return strings.Contains(r.log.String(), `msg="spool: removed stale files from tmp/" count=1`)
	})
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("the fresh file: %v", err)
	}
}

// TestMaxRecipientsSetting: max_recipients reaches the LMTP door: the
// recipient past it gets 452 4.5.3.
func TestMaxRecipientsSetting(t *testing.T) {
	s := settings(t)
	s.MaxRecipients = 100
	r := start(t, s)
	c := lmtpClient(t, "tcp", r.hostPort("lmtp"))
	if err := c.Mail("anne@example.net", nil); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := c.Rcpt(fmt.Sprintf("tour+%d@example.org", i), nil); err != nil {
			t.Fatalf("RCPT %d: %v", i+1, err)
		}
	}
	var se *smtp.SMTPError
	if err := c.Rcpt("tour@example.org", nil); !errors.As(err, &se) || se.Code != 452 || se.EnhancedCode != (smtp.EnhancedCode{4, 5, 3}) {
		t.Fatalf("RCPT 101: %v, want 452 4.5.3", err)
	}
}

// TestConnectionSettings: command_timeout and max_connections reach the
// LMTP door: a connection past the cap gets 421 4.7.0, and one that stalls
// in a command line is cut after the timeout.
func TestConnectionSettings(t *testing.T) {
	s := settings(t)
	s.MaxConnections, s.CommandTimeout = 1, time.Second
	r := start(t, s)
	read := func(c net.Conn) string {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	first, err := net.DialTimeout("tcp", r.hostPort("lmtp"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := io.WriteString(first, "LHLO stall"); err != nil {
		t.Fatal(err)
	}
	second, err := net.DialTimeout("tcp", r.hostPort("lmtp"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if got := read(second); got != "421 4.7.0 Error: too many connections\r\n" {
		t.Errorf("past max_connections: %q", got)
	}
	if got := read(first); !strings.HasSuffix(got, "421 4.4.2 Idle timeout, bye bye\r\n") || strings.Contains(got, "250") {
		t.Errorf("a stalled command line: %q", got)
	}
}
