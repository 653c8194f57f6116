package milter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"
	"go.uber.org/goleak"

	"github.com/listgate/listgate/internal/corpus"
	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/reply"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// networks are the two kinds of socket every door listens on.
var networks = []string{"tcp", "unix"}

// testServer is a Server listening on a real socket.
type testServer struct {
	*Server
	network, addr string
	logs          *recorder
	served        chan error // Serve's result
	serveOnce     sync.Once
	serveErr      error
}

// serveResult waits for Serve to return and gives its error.
func (ts *testServer) serveResult() error {
	ts.serveOnce.Do(func() { ts.serveErr = <-ts.served })
	return ts.serveErr
}

// startServer starts a Server on 127.0.0.1:0 ("tcp") or on a unix socket
// in a temporary directory ("unix"), and shuts it down when the test ends.
// A nil Logger becomes a recorder (ts.logs), nil Lists the corpus.
func startServer(t testing.TB, network string, opts Options) *testServer {
	t.Helper()
	logs := &recorder{}
	if opts.Logger == nil {
		opts.Logger = slog.New(logs)
	}
	if opts.Lists == nil {
		opts.Lists = corpusSource(t)
	}
	ts := startExactly(t, network, opts)
	ts.logs = logs
	return ts
}

// startExactly is startServer with opts as they are.
func startExactly(t testing.TB, network string, opts Options) *testServer {
	t.Helper()
	var l net.Listener
	var err error
	switch network {
	case "tcp":
		l, err = net.Listen("tcp", "127.0.0.1:0")
	case "unix":
		// A short directory: unix socket paths are limited to ~100 bytes.
		l, err = net.Listen("unix", filepath.Join(shortTempDir(t), "milter.sock"))
	default:
		t.Fatalf("unknown network %q", network)
	}
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: New(opts), network: network, addr: l.Addr().String(), logs: &recorder{},
		served: make(chan error, 1)}
	go func() { ts.served <- ts.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ts.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := ts.serveResult(); !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ts
}

// shortTempDir is t.TempDir under /tmp, whatever TMPDIR says, so unix
// socket paths stay short.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "listgate-milter-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// corpusSource loads the verdict corpus lists directory.
func corpusSource(t testing.TB) lists.Source {
	t.Helper()
	snap, err := lists.Load(corpus.ListsDir(), lists.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return lists.Static{S: snap}
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

// wantMilter is what the milter door must answer for a corpus case: a
// continue for accepted and foreign recipients, for postmaster/abuse
// aliases and for unknown addresses of a domain in observe mode (the
// corpus codes are the LMTP door's), otherwise the corpus
// code and enhanced code with the reply table's text.
func wantMilter(c corpus.Case) string {
	switch c.Status {
	case lists.Accept, lists.NotServed, lists.Alias, lists.Observed:
		return "continue"
	}
	r := reply.For(reply.Milter, reply.RCPT, reply.Of(c.Status)).Reply
	return fmt.Sprintf("%d %s %s", c.Code, c.Enhanced, r.Text)
}

// refusal is the milter's refusal for outcome o as the test client
// renders it: the table's reply at RCPT (and, for too-large and error, at
// the end of message).
func refusal(o reply.Outcome) string {
	return reply.For(reply.Milter, reply.RCPT, o).Reply.String()
}

// answer renders a go-milter client Action the way wantMilter does.
func answer(act *gomilter.Action) string {
	switch act.Type {
	case gomilter.ActionContinue:
		return "continue"
	case gomilter.ActionAccept:
		return "accept"
	case gomilter.ActionRejectWithCode:
		return act.SMTPReply
	}
	return act.String()
}

// testHelo is the HELO name the test client announces; its length is part
// of the size margin.
const testHelo = "mx.example.net"

// marginFor is the size margin for a message to rcpt (alone, or the
// longest of its recipients) from a test client.
func marginFor(rcpt string) int64 {
	return margin(len(testHelo), len(rcpt))
}

// client opens a milter session to ts with d--j's own client, as an MTA
// would, and closes it when the test ends. macros may be nil.
func (ts *testServer) client(t *testing.T, macros gomilter.Macros, opts ...gomilter.Option) *gomilter.ClientSession {
	t.Helper()
	opts = append([]gomilter.Option{gomilter.WithReadTimeout(10 * time.Second)}, opts...)
	s, err := gomilter.NewClient(ts.network, ts.addr, opts...).Session(macros)
	if err != nil {
		t.Fatalf("milter session: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Conn("mx.example.net", gomilter.FamilyInet, 40000, "192.0.2.1"); err != nil {
		t.Fatalf("Conn: %v", err)
	}
	if _, err := s.Helo(testHelo); err != nil {
		t.Fatalf("Helo: %v", err)
	}
	return s
}

// rcpt sends one RCPT and returns the rendered answer.
func rcpt(t *testing.T, s *gomilter.ClientSession, addr string) string {
	t.Helper()
	act, err := s.Rcpt(addr, "")
	if err != nil {
		t.Fatalf("Rcpt(%q): %v", addr, err)
	}
	return answer(act)
}

// mail starts a transaction.
func mail(t *testing.T, s *gomilter.ClientSession, esmtpArgs string) {
	t.Helper()
	act, err := s.Mail("sender@example.net", esmtpArgs)
	if err != nil {
		t.Fatalf("Mail: %v", err)
	}
	if act.Type != gomilter.ActionContinue {
		t.Fatalf("Mail: %v, want continue", act)
	}
}

// endMessage sends the rest of a message (DATA, end of headers, one body
// chunk, end of message) and checks that the door accepts it.
func endMessage(t *testing.T, s *gomilter.ClientSession) {
	t.Helper()
	for _, step := range []func() (*gomilter.Action, error){s.DataStart, s.HeaderEnd,
		func() (*gomilter.Action, error) { return s.BodyChunk([]byte("hello\r\n")) }} {
		if act, err := step(); err != nil || act.Type != gomilter.ActionContinue {
			t.Fatalf("message: %v, %v; want continue", act, err)
		}
	}
	if _, act, err := s.End(); err != nil || act.Type != gomilter.ActionAccept {
		t.Fatalf("end of message: %v, %v; want accept", act, err)
	}
}

// recorder keeps the door's log lines for assertions.
type recorder = testutil.LogRecorder

// testHeader is the header section message sends, as Postfix gives it to
// a milter that negotiated SMFIP_HDR_LEADSPC: values with their leading
// space.
var testHeader = [][2]string{{"From", " <alice@example.net>"}, {"Subject", " size"}}

// bodyOf returns a body of exactly n bytes (n >= 2) in lines of at most
// 78 bytes, CRLF included, as most mail is.
func bodyOf(n int) []byte {
	line := strings.Repeat("x", 76) + "\r\n"
	b := []byte(strings.Repeat(line, n/len(line)))
	if r := n % len(line); r > 0 {
		b = append(b, strings.Repeat("y", max(r-2, 0))...)
		b = append(b, "\r\n"[2-min(r, 2):]...)
	}
	return b
}

// wireSize is the size of a message with this header section and body on
// the wire, line ends as CRLF, the empty line after the header included.
func wireSize(hdr [][2]string, body []byte) int64 {
	n := int64(2 + len(body))
	for _, h := range hdr {
		n += int64(len(h[0]) + 1 + len(h[1]) + 2)
	}
	return n
}

// message sends testHeader and a body of n bytes: see sendMessage.
func message(t *testing.T, s *gomilter.ClientSession, n int) (*gomilter.Action, bool) {
	t.Helper()
	return sendMessage(t, s, testHeader, bodyOf(n))
}

// sendMessage sends the rest of a message as Postfix does after the last
// RCPT: DATA, the header fields, the end of the header, the body in chunks
// of 65,535 bytes (Postfix's MILTER_CHUNK_SIZE), the end of message. It
// returns the answer to the end of message, and whether a body chunk was
// answered skip (go-milter's client then sends no more of the body).
func sendMessage(t *testing.T, s *gomilter.ClientSession, hdr [][2]string, body []byte) (*gomilter.Action, bool) {
	t.Helper()
	check := func(what string, act *gomilter.Action, err error) {
		t.Helper()
		if err != nil || act.Type != gomilter.ActionContinue {
			t.Fatalf("%s: %v, %v; want continue", what, act, err)
		}
	}
	act, err := s.DataStart()
	check("DATA", act, err)
	for _, h := range hdr {
		act, err := s.HeaderField(h[0], h[1], nil)
		check("header "+h[0], act, err)
	}
	act, err = s.HeaderEnd()
	check("end of header", act, err)
	// go-milter's client wants a body chunk before the end of message,
	// even an empty one.
	skipped := false
	for first := true; (first || len(body) > 0) && !skipped; first = false {
		n := min(len(body), 65535)
		act, err := s.BodyChunk(body[:n])
		check("body chunk", act, err)
		body = body[n:]
		skipped = s.Skip()
	}
	_, act, err = s.End()
	if err != nil {
		t.Fatalf("end of message: %v", err)
	}
	return act, skipped
}
