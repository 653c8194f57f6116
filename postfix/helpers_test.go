package postfix

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/listgate/listgate/internal/corpus"
	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/postconf"
)

// TestMain checks, after every test, that no goroutine is left behind:
// each harness shuts its server down, so a leak means Shutdown did not
// stop everything.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLMTP is the LMTP endpoint the test servers' transport map names.
var testLMTP = postconf.Endpoint{Network: "tcp", Address: "127.0.0.1:8024"}

// door is what a harness runs: a PolicyServer or a SocketmapServer.
type door interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// harness is a running door on a real socket, with its logs and metrics.
type harness struct {
	t       testing.TB
	srv     door
	core    *server
	network string
	addr    string
	logs    *recorder
	reg     *prometheus.Registry
	served  chan error
	stopped bool
}

// config says how to start a harness. The zero value is the policy door
// over TCP, answering from the verdict corpus.
type config struct {
	socketmap bool           // the socketmap door instead of the policy door
	network   string         // "tcp" (default) or "unix"
	options   func(*Options) // adjust the options
}

func start(t testing.TB, cfg config) *harness {
	t.Helper()
	h := &harness{t: t, network: cfg.network, logs: &recorder{}, reg: prometheus.NewRegistry(),
		served: make(chan error, 1)}
	if h.network == "" {
		h.network = "tcp"
	}
	o := Options{Lists: corpusSource(t), LMTP: testLMTP, Logger: slog.New(h.logs), Registerer: h.reg}
	if cfg.options != nil {
		cfg.options(&o)
	}
	if cfg.socketmap {
		m := NewSocketmap(o)
		h.srv, h.core = m, m.s
	} else {
		p := NewPolicy(o)
		h.srv, h.core = p, p.s
	}
	l := listen(t, h.network)
	h.addr = l.Addr().String()
	go func() { h.served <- h.srv.Serve(l) }()
	t.Cleanup(h.stop)
	return h
}

// listen opens a listener on 127.0.0.1:0, or on a unix socket in a fresh
// directory with a short path (sun_path holds 108 bytes; t.TempDir() can
// be longer).
func listen(t testing.TB, network string) net.Listener {
	t.Helper()
	if network == "unix" {
		dir, err := os.MkdirTemp("", "postfix")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		l, err := net.Listen("unix", filepath.Join(dir, "door.sock"))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
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

// dial opens a raw connection to the door, closed when the test ends.
func (h *harness) dial() *client {
	h.t.Helper()
	nc, err := net.DialTimeout(h.network, h.addr, 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { nc.Close() })
	if err := nc.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		h.t.Fatal(err)
	}
	return &client{t: h.t, nc: nc, br: bufio.NewReader(nc)}
}

// client is a test client on a raw connection: a policy client as
// Postfix's smtpd, or a socketmap client as Postfix's dict_sockmap.
type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

// send writes raw bytes.
func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// policyRequest is a request as Postfix 3.7's smtpd sends it at RCPT
// (check_policy_service in smtpd_check.c: the same attributes, in the
// same order), for rcpt with MAIL FROM's SIZE= size (0: none), and with
// extra replacing or adding attributes ("name=value").
func policyRequest(state, rcpt string, size int64, extra ...string) string {
	attrs := [][2]string{
		{"request", "smtpd_access_policy"},
		{"protocol_state", state},
		{"protocol_name", "ESMTP"},
		{"client_address", "192.0.2.1"},
		{"client_name", "mx.sender.example"},
		{"client_port", "40000"},
		{"reverse_client_name", "mx.sender.example"},
		{"server_address", "127.0.0.1"},
		{"server_port", "25"},
		{"helo_name", "mx.sender.example"},
		{"sender", "anne@sender.example"},
		{"recipient", rcpt},
		{"recipient_count", "0"},
		{"queue_id", ""},
		{"instance", "1a2b.65f0a1b2.c3d4e.0"},
		{"size", fmt.Sprint(size)},
		{"etrn_domain", ""},
		{"stress", ""},
		{"sasl_method", ""},
		{"sasl_username", ""},
		{"sasl_sender", ""},
		{"ccert_subject", ""},
		{"ccert_issuer", ""},
		{"ccert_fingerprint", ""},
		{"ccert_pubkey_fingerprint", ""},
		{"encryption_protocol", ""},
		{"encryption_cipher", ""},
		{"encryption_keysize", "0"},
		{"policy_context", ""},
	}
	for _, e := range extra {
		name, value, _ := strings.Cut(e, "=")
		if i := slices.IndexFunc(attrs, func(a [2]string) bool { return a[0] == name }); i >= 0 {
			attrs[i][1] = value
		} else {
			attrs = append(attrs, [2]string{name, value})
		}
	}
	var b strings.Builder
	for _, a := range attrs {
		b.WriteString(a[0] + "=" + a[1] + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// action reads one policy reply and returns its action, or the error
// (io.EOF: the server closed the connection).
func (c *client) action() (string, error) {
	var action string
	for n := 0; ; n++ {
		line, err := c.br.ReadString('\n')
		if err != nil {
			if n == 0 && errors.Is(err, io.EOF) {
				return "", io.EOF
			}
			return "", fmt.Errorf("reading the policy reply: %w (read %q)", err, line)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if n != 1 || action == "" {
				return "", fmt.Errorf("policy reply of %d lines, action %q", n, action)
			}
			return action, nil
		}
		a, ok := strings.CutPrefix(line, "action=")
		if !ok {
			return "", fmt.Errorf("policy reply line %q", line)
		}
		action = a
	}
}

// ask sends a policy request and returns the action.
func (c *client) ask(req string) string {
	c.t.Helper()
	c.send(req)
	a, err := c.action()
	if err != nil {
		c.t.Fatalf("policy reply: %v", err)
	}
	return a
}

// lookup sends a socketmap request "name key" and returns the reply.
func (c *client) lookup(name, key string) string {
	c.t.Helper()
	c.send(string(appendNetstring(nil, name+" "+key)))
	r, err := c.reply()
	if err != nil {
		c.t.Fatalf("socketmap %s %q: %v", name, key, err)
	}
	return r
}

// reply reads one socketmap reply (io.EOF: the server closed the
// connection).
func (c *client) reply() (string, error) {
	b, err := readNetstring(c.br, 100000)
	return string(b), err
}

// closed reports whether the server has closed the connection: the next
// read gets EOF (or a reset) before any byte.
func (c *client) closed() bool {
	c.t.Helper()
	n, err := c.br.ReadByte()
	if err == nil {
		c.t.Fatalf("read %q, want the connection closed", n)
	}
	return errors.Is(err, io.EOF) || isEOF(err)
}

// corpusSource loads the verdict corpus lists directory.
func corpusSource(t testing.TB) lists.Source {
	t.Helper()
	return lists.Static{S: corpusSnapshot(t)}
}

func corpusSnapshot(t testing.TB) *lists.Snapshot {
	t.Helper()
	snap, err := lists.Load(corpus.ListsDir(), lists.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// loadCorpus reads the verdict corpus.
func loadCorpus(t testing.TB) []corpus.Case {
	t.Helper()
	cases, err := corpus.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 40 {
		t.Fatalf("corpus has %d cases; it lost some", len(cases))
	}
	return cases
}

// recorder keeps the door's log lines for assertions.
type recorder = testutil.LogRecorder
