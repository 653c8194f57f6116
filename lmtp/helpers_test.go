package lmtp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/spool"
)

// TestMain checks, after every test, that no goroutine is left behind:
// each harness shuts its server down, so a leak means Shutdown did not
// stop everything.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLists is the lists directory most tests serve.
var testLists = map[string]string{
	"@example.com":          `aliases = ["lists.example.com"]`,
	"mylist@example.com":    "",
	"test-join@example.com": "",
	"join@example.com":      "",
	"small@example.com":     `max_message_size = "1KB"`, // 1000 bytes
}

// config says how to start a harness. The zero value serves testLists
// over TCP with a static snapshot.
type config struct {
	network string               // "tcp" (default) or "unix"
	lists   map[string]string    // files of a fresh lists directory; nil: testLists
	dir     string               // serve this lists directory instead
	watch   bool                 // serve through lists.Watch (hot reload)
	source  lists.Source         // serve this source instead
	options func(*Options)       // adjust the server's options
	spool   func(*spool.Options) // adjust the spool's options (Dir too)
	wrap    func(net.Listener) net.Listener
}

// harness is a running server on a real socket, with its lists
// directory, spool, logs and metrics.
type harness struct {
	t        testing.TB
	srv      *Server
	network  string
	addr     string
	listsDir string
	spoolDir string
	logs     *testutil.SyncBuffer
	reg      *prometheus.Registry
	watcher  *lists.Watcher
	fault    atomic.Pointer[func(spool.Op, string) error]
	served   chan error
	stopped  bool
}

func start(t testing.TB, cfg config) *harness {
	t.Helper()
	h := &harness{t: t, network: cfg.network, logs: &testutil.SyncBuffer{}, reg: prometheus.NewRegistry(),
		served: make(chan error, 1)}
	if h.network == "" {
		h.network = "tcp"
	}
	h.listsDir = cfg.dir
	if h.listsDir == "" {
		h.listsDir = t.TempDir()
		files := cfg.lists
		if files == nil {
			files = testLists
		}
		for name, content := range files {
			writeFile(t, filepath.Join(h.listsDir, name), content)
		}
	}
	src := cfg.source
	switch {
	case src != nil:
	case cfg.watch:
		w, err := lists.Watch(h.listsDir, lists.WatchOptions{Debounce: 5 * time.Millisecond, Rescan: -1})
		if err != nil {
			t.Fatal(err)
		}
		h.watcher = w
		t.Cleanup(func() { w.Close() })
		src = w
	default:
		snap, err := lists.Load(h.listsDir, lists.Options{})
		if err != nil {
			t.Fatal(err)
		}
		src = lists.Static{S: snap}
	}
	spoolOpts := spool.Options{Dir: t.TempDir(), Hostname: "lmtp.test",
		Fault: func(op spool.Op, path string) error {
			if f := h.fault.Load(); f != nil {
				return (*f)(op, path)
			}
			return nil
		}}
	if cfg.spool != nil {
		cfg.spool(&spoolOpts)
	}
	sp, err := spool.New(spoolOpts)
	if err != nil {
		t.Fatal(err)
	}
	h.spoolDir = sp.Dir()
	opts := Options{Lists: src, Spool: sp, Logger: newLogger(h.logs), Registerer: h.reg,
		Hostname: "lmtp.test"}
	if cfg.options != nil {
		cfg.options(&opts)
	}
	h.srv = New(opts)

	var l net.Listener
	if h.network == "unix" {
		// A short path: sun_path holds 108 bytes, t.TempDir() can be longer.
		dir, err := os.MkdirTemp("", "lmtp")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		l, err = net.Listen("unix", filepath.Join(dir, "lmtp.sock"))
		if err != nil {
			t.Fatal(err)
		}
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	h.addr = l.Addr().String()
	if cfg.wrap != nil {
		l = cfg.wrap(l)
	}
	go func() { h.served <- h.srv.Serve(l) }()
	t.Cleanup(h.stop)
	return h
}

// stop shuts the server down and checks that Serve returned
// ErrServerClosed.
func (h *harness) stop() {
	h.t.Helper()
	if h.stopped {
		return
	}
	h.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		h.t.Errorf("Shutdown: %v", err)
	}
	select {
	case err := <-h.served:
		if !errors.Is(err, ErrServerClosed) {
			h.t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	case <-ctx.Done():
		h.t.Errorf("Serve did not return after Shutdown")
	}
}

// setFault makes the spool fail (or panic) as f says; nil clears it.
func (h *harness) setFault(f func(spool.Op, string) error) {
	if f == nil {
		h.fault.Store(nil)
		return
	}
	h.fault.Store(&f)
}

func (h *harness) dial() net.Conn {
	h.t.Helper()
	c, err := net.DialTimeout(h.network, h.addr, 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// client returns go-smtp's LMTP client, after LHLO.
func (h *harness) client() *smtp.Client {
	h.t.Helper()
	c := smtp.NewClientLMTP(h.dial())
	c.CommandTimeout = 10 * time.Second
	c.SubmissionTimeout = 10 * time.Second
	if err := c.Hello("remote.example.org"); err != nil {
		h.t.Fatalf("LHLO: %v", err)
	}
	return c
}

// newFiles returns the files in new/ of one spool folder, sorted.
func (h *harness) newFiles(list string, kind lists.Kind) []string {
	h.t.Helper()
	local, domain, _ := strings.Cut(list, "@")
	return h.folderFiles(filepath.Join(h.spoolDir, domain, local, string(kind), "new"))
}

func (h *harness) folderFiles(dir string) []string {
	h.t.Helper()
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, filepath.Join(dir, de.Name()))
	}
	return out
}

// spoolFiles returns every file under the spool whose parent directory
// is named sub ("new" or "tmp"), as paths relative to the spool.
func (h *harness) spoolFiles(sub string) []string {
	h.t.Helper()
	var out []string
	err := filepath.WalkDir(h.spoolDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && filepath.Base(filepath.Dir(path)) == sub {
			rel, _ := filepath.Rel(h.spoolDir, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// readOnly returns the content of the one file in new/ of a folder.
func (h *harness) readOnly(list string, kind lists.Kind) string {
	h.t.Helper()
	fs := h.newFiles(list, kind)
	if len(fs) != 1 {
		h.t.Fatalf("%s %s: %d files in new/, want 1: %v", list, kind, len(fs), fs)
	}
	b, err := os.ReadFile(fs[0])
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

// raw is a plain connection for checking reply lines byte for byte.
type raw struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

// raw dials and reads the greeting.
func (h *harness) raw() (*raw, string) {
	h.t.Helper()
	c := h.dial()
	r := &raw{t: h.t, c: c, r: bufio.NewReader(c)}
	return r, r.reply()
}

// lhlo opens a raw session: greeting and LHLO.
func (h *harness) lhlo() *raw {
	h.t.Helper()
	r, _ := h.raw()
	r.cmd("LHLO remote.example.org")
	return r
}

// write sends bytes as they are.
func (r *raw) write(s string) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// cmd sends one command line and returns the reply.
func (r *raw) cmd(line string) string {
	r.t.Helper()
	r.write(line + "\r\n")
	return r.reply()
}

// reply reads one reply, its lines joined by "\n" without CRLF.
func (r *raw) reply() string {
	r.t.Helper()
	var lines []string
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := r.r.ReadString('\n')
		if err != nil {
			r.t.Fatalf("read reply (after %q): %v", lines, err)
		}
		line = strings.TrimSuffix(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// eof reports whether the server closed the connection (within the
// deadline), reading and discarding anything before it.
func (r *raw) eof() bool {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf [512]byte
	for {
		_, err := r.r.Read(buf[:])
		if err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

// rcptErr checks an error from the client against a wire reply such as
// "550 5.1.1 Requested action not taken: mailbox unavailable"; "" wants
// no error.
func rcptErr(t testing.TB, what string, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("%s: %v, want success", what, err)
		}
		return
	}
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Errorf("%s: error %v, want %q", what, err, want)
		return
	}
	if got := wire(se); got != want {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

// wire formats a client-side error as the reply line it came from.
func wire(se *smtp.SMTPError) string {
	return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
}

// newLogger logs JSON lines into w, debug level included.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// logLines returns the logged lines whose message is msg, decoded.
func (h *harness) logLines(msg string) []map[string]any {
	h.t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			h.t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// message builds a message with CRLF line ends from LF-separated text.
func message(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
