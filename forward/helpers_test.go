package forward

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/spool"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// got is one transaction an LMTP next hop in a test received.
type got struct {
	from, rcpt string
	data       string // as read after DATA: CRLF line ends, dots unstuffed
	reply      int    // the code it answered after DATA
}

// hopServer is a real LMTP server (go-smtp, RFC 2033) that answers each
// transaction after DATA as script says: 250, or the *smtp.SMTPError
// returned. It records every transaction, whatever its answer.
type hopServer struct {
	t    testing.TB
	addr string
	srv  *smtp.Server

	mu     sync.Mutex
	script func(n int, g got) *smtp.SMTPError // n counts transactions from 0
	hold   chan struct{}                      // if set, DATA waits for it to close
	forget bool                               // keep no data, only the count (benchmarks)
	all    []got
}

// startHop starts an LMTP next hop on 127.0.0.1:0 that answers 250 unless
// script says otherwise (nil script: always 250).
func startHop(t testing.TB, script func(n int, g got) *smtp.SMTPError) *hopServer {
	t.Helper()
	h := &hopServer{t: t, script: script}
	h.srv = smtp.NewServer(h)
	h.srv.LMTP = true
	h.srv.Domain = "hop.test"
	h.srv.ReadTimeout, h.srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	go h.srv.Serve(ln)
	t.Cleanup(func() { h.srv.Close() })
	return h
}

func (h *hopServer) hop() string { return "lmtp:inet:" + h.addr }

// received returns every transaction so far.
func (h *hopServer) received() []got {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]got(nil), h.all...)
}

// taken returns the transactions answered 250.
func (h *hopServer) taken() []got {
	var out []got
	for _, g := range h.received() {
		if g.reply == 250 {
			out = append(out, g)
		}
	}
	return out
}

func (h *hopServer) NewSession(*smtp.Conn) (smtp.Session, error) { return &hopSession{h: h}, nil }

type hopSession struct {
	h          *hopServer
	from, rcpt string
}

var _ smtp.LMTPSession = (*hopSession)(nil)

func (s *hopSession) Reset()        { s.from, s.rcpt = "", "" }
func (s *hopSession) Logout() error { return nil }
func (s *hopSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *hopSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.rcpt != "" {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "one recipient per transaction, please"}
	}
	s.rcpt = to
	return nil
}
func (s *hopSession) Data(io.Reader) error { panic("LMTPData is used") }
func (s *hopSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	h := s.h
	h.mu.Lock()
	hold := h.hold
	h.mu.Unlock()
	if hold != nil {
		<-hold
	}
	g := got{from: s.from, rcpt: s.rcpt, data: string(b), reply: 250}
	h.mu.Lock()
	if h.forget {
		g.data = ""
	}
	var e *smtp.SMTPError
	if h.script != nil {
		e = h.script(len(h.all), g)
	}
	if e != nil {
		g.reply = e.Code
	}
	h.all = append(h.all, g)
	h.mu.Unlock()
	if e != nil {
		status.SetStatus(s.rcpt, e)
	} else {
		status.SetStatus(s.rcpt, nil)
	}
	return nil
}

// env is a spool, a lists directory and a forwarder over them.
type env struct {
	t     testing.TB
	root  string // the spool
	dir   string // the lists directory
	sp    *spool.Spool
	w     *lists.Watcher
	f     *Forwarder
	log   *testutil.SyncBuffer
	reg   *prometheus.Registry
	opts  Options
	ready bool
}

// newEnv makes a lists directory with files, a spool and a forwarder,
// started, with short backoffs; adjust changes the options first.
func newEnv(t testing.TB, files map[string]string, adjust func(*Options)) *env {
	t.Helper()
	e := &env{t: t, root: t.TempDir(), dir: t.TempDir(), log: new(testutil.SyncBuffer), reg: prometheus.NewRegistry()}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	e.w, err = lists.Watch(e.dir, lists.WatchOptions{Rescan: -1, Debounce: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.w.Close() })
	e.opts = Options{Spool: e.root, Lists: e.w, Hostname: "lg.test", MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond, ScanInterval: time.Hour, Timeout: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})), Registerer: e.reg}
	if adjust != nil {
		adjust(&e.opts)
	}
	e.f, err = New(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.sp, err = spool.New(spool.Options{Dir: e.root, Hostname: "lg.test", Delivered: e.f.Notify})
	if err != nil {
		t.Fatal(err)
	}
	e.f.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.f.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("forwarder log:\n%s", e.log)
		}
	})
	return e
}

// deliver stores msg (CRLF line ends) for one recipient as the LMTP door
// would, and returns the file's name.
func (e *env) deliver(from, rcpt, msg string) string {
	e.t.Helper()
	snap := e.w.Snapshot()
	v := snap.Resolve(rcpt)
	if v.Status != lists.Accept {
		e.t.Fatalf("%s: %v", rcpt, v.Status)
	}
	m, err := e.sp.ReadMessage(strings.NewReader(msg))
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := e.sp.Deliver(m, spool.Envelope{Sender: from, Rcpt: rcpt, Domain: v.Domain, Local: v.Local,
		Kind: string(v.Kind), Helo: "mx.test", RemoteAddr: "127.0.0.1:1", ID: "TESTID"})
	if err != nil {
		e.t.Fatal(err)
	}
	return filepath.Base(p)
}

// folder is the path of a list's folder.
func (e *env) folder(list, kind string) string {
	local, domain, _ := strings.Cut(list, "@")
	return filepath.Join(e.root, domain, local, kind)
}

// count is the number of messages in a folder's sub-directory.
func (e *env) count(list, kind, sub string) int {
	des, _ := os.ReadDir(filepath.Join(e.folder(list, kind), sub))
	n := 0
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), spool.ReasonSuffix) {
			n++
		}
	}
	return n
}

// waitFor waits for cond, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	return testutil.WaitFor(t, 10*time.Second, what, cond)
}
