package milter

import (
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	gomilter "github.com/d--j/go-milter"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/listgate/listgate/reply"
)

// TestCorpus runs the verdict corpus through the milter door with
// go-milter's own client, over TCP and over a unix socket: first one
// transaction per recipient, then every recipient in one transaction
// (a refused recipient must not end the transaction), which then carries
// a message to its end.
func TestCorpus(t *testing.T) {
	cases := loadCorpus(t)
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			ts := startServer(t, network, Options{})
			s := ts.client(t, nil)

			t.Run("transaction per recipient", func(t *testing.T) {
				for _, c := range cases {
					t.Run(c.Rcpt, func(t *testing.T) {
						mail(t, s, "")
						if got, want := rcpt(t, s, c.Rcpt), wantMilter(c); got != want {
							t.Errorf("verdicts.txt:%d: RCPT %q: got %q, want %q", c.Line, c.Rcpt, got, want)
						}
						if err := s.Abort(nil); err != nil {
							t.Fatalf("Abort: %v", err)
						}
					})
				}
			})

			t.Run("one transaction", func(t *testing.T) {
				mail(t, s, "")
				for _, c := range cases {
					if got, want := rcpt(t, s, c.Rcpt), wantMilter(c); got != want {
						t.Errorf("verdicts.txt:%d: RCPT %q: got %q, want %q", c.Line, c.Rcpt, got, want)
					}
					// SMFIP_SKIP is negotiated, but a RCPT is never
					// answered skip: the MTA would stop asking about
					// the recipients that follow.
					if s.Skip() {
						t.Fatalf("verdicts.txt:%d: RCPT %q answered skip", c.Line, c.Rcpt)
					}
				}
				endMessage(t, s)
			})

			// One info line per recipient, with the keys every door uses,
			// the SMTP client's address and the envelope sender.
			logged := ts.logs.Lines("rcpt")
			if len(logged) != 2*len(cases) {
				t.Fatalf("%d rcpt log lines, want %d:\n%s", len(logged), 2*len(cases), ts.logs)
			}
			for i, rec := range logged {
				c := cases[i%len(cases)]
				want := map[string]string{"door": "milter", "rcpt": c.Rcpt, "list": c.List,
					"verdict": c.Status.String(), "queue_id": "",
					"client_addr": "192.0.2.1", "from": "sender@example.net"}
				for k, v := range want {
					if rec.Attrs[k] != v {
						t.Errorf("log line %d for %q: %s=%q, want %q", i, c.Rcpt, k, rec.Attrs[k], v)
					}
				}
				if rec.Attrs["verdict"] == "" {
					t.Errorf("log line %d: no verdict", i)
				}
			}
		})
	}
}

// TestNegotiation checks what the door asks of an MTA offering everything
// (Postfix with milter_protocol = 6) and that it still works with an MTA
// speaking protocol 2 with none of the v6 flags (Postfix with
// milter_protocol = 2).
func TestNegotiation(t *testing.T) {
	ts := startServer(t, "tcp", Options{})
	tests := []struct {
		name    string
		opts    []gomilter.Option
		want    gomilter.OptProtocol // must be negotiated
		notWant gomilter.OptProtocol // must not be
		actions gomilter.OptAction
	}{
		{
			name: "v6",
			want: wantProtocol,
			notWant: gomilter.OptNoConnect | gomilter.OptNoHelo | gomilter.OptNoMailFrom | gomilter.OptNoRcptTo |
				gomilter.OptNoRcptReply | gomilter.OptNoHeaders | gomilter.OptNoBody | gomilter.OptNoBodyReply | gomilter.OptRcptRej,
			actions: gomilter.OptSetMacros,
		},
		{
			name: "v2",
			opts: []gomilter.Option{gomilter.WithMaximumVersion(2), gomilter.WithActions(gomilter.OptAddHeader),
				gomilter.WithProtocols(gomilter.OptNoConnect | gomilter.OptNoHelo | gomilter.OptNoMailFrom |
					gomilter.OptNoRcptTo | gomilter.OptNoBody | gomilter.OptNoHeaders | gomilter.OptNoEOH)},
			want: gomilter.OptNoEOH,
			notWant: gomilter.OptNoConnect | gomilter.OptNoHelo | gomilter.OptNoMailFrom | gomilter.OptNoRcptTo | gomilter.OptNoHeaders |
				gomilter.OptNoBody | gomilter.OptNoMailReply | gomilter.OptNoRcptReply | gomilter.OptSkip,
			actions: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ts.client(t, nil, tt.opts...)
			for bit := gomilter.OptProtocol(1); bit != 0 && bit <= gomilter.OptHeaderLeadingSpace; bit <<= 1 {
				if tt.want&bit != 0 && !s.ProtocolOption(bit) {
					t.Errorf("%v not negotiated", bit)
				}
				if tt.notWant&bit != 0 && s.ProtocolOption(bit) {
					t.Errorf("%v negotiated", bit)
				}
			}
			for bit := gomilter.OptAction(1); bit <= gomilter.OptSetMacros; bit <<= 1 {
				if got, want := s.ActionOption(bit), tt.actions&bit != 0; got != want {
					t.Errorf("action %v negotiated: %v, want %v", bit, got, want)
				}
			}
			mail(t, s, "SIZE=100")
			if got, want := rcpt(t, s, "nosuchlist@example.com"), refusal(reply.Unknown); got != want {
				t.Errorf("RCPT: got %q, want %q", got, want)
			}
			if got := rcpt(t, s, "mylist@example.com"); got != "continue" {
				t.Errorf("RCPT: got %q, want continue", got)
			}
			// The message is counted, without SMFIR_SKIP in v2.
			if act, _ := message(t, s, 20000); answer(act) != "accept" {
				t.Errorf("small message: %v, want accept", act)
			}
			mail(t, s, "")
			rcpt(t, s, "announce@example.org")
			if act, _ := message(t, s, 20000); answer(act) != refusal(reply.TooLarge) {
				t.Errorf("message too large for the list: %v", act)
			}
		})
	}
}

// TestQueueID checks that the queue ID macro Postfix sends at RCPT ({i})
// is asked for and logged.
func TestQueueID(t *testing.T) {
	ts := startServer(t, "tcp", Options{})
	macros := gomilter.NewMacroBag()
	s := ts.client(t, macros)
	mail(t, s, "")
	macros.Set(gomilter.MacroQueueId, "4Xk2Lq0Zz9z1")
	rcpt(t, s, "mylist@example.com")
	logged := ts.logs.Lines("rcpt")
	if len(logged) != 1 || logged[0].Attrs["queue_id"] != "4Xk2Lq0Zz9z1" {
		t.Fatalf("log: %s; want one rcpt line with queue_id=4Xk2Lq0Zz9z1", ts.logs)
	}
}

// TestMilterReply pins the exact answer for every outcome at each stage,
// as go-milter puts it on the wire.
func TestMilterReply(t *testing.T) {
	const (
		unavail  = `response=reply_code action=reject code=550 reason="550 5.1.1 Requested action not taken: mailbox unavailable"`
		lookup   = `response=reply_code action=temp_fail code=451 reason="451 4.3.0 Temporary lookup failure"`
		tooLarge = `response=reply_code action=reject code=552 reason="552 5.3.4 Message size exceeds fixed limit"`
		local    = `response=reply_code action=temp_fail code=451 reason="451 4.3.0 Requested action aborted: local error in processing"`
	)
	tests := []struct {
		o         reply.Outcome
		rcpt, eom string
	}{
		{reply.Accept, "response=continue", "response=accept"},
		{reply.NotServed, "response=continue", local},
		{reply.Unknown, unavail, local},
		{reply.Broken, lookup, local},
		{reply.TooLarge, tooLarge, tooLarge},
		{reply.LocalError, local, local},
		{reply.NoSpace, local, local},
		{reply.Outcome(200), local, local},
	}
	for _, tt := range tests {
		t.Run(tt.o.String(), func(t *testing.T) {
			if got := milterReply(reply.RCPT, tt.o).String(); got != tt.rcpt {
				t.Errorf("milterReply(RCPT, %v) = %s, want %s", tt.o, got, tt.rcpt)
			}
			if got := milterReply(reply.Data, tt.o).String(); got != tt.eom {
				t.Errorf("milterReply(end of message, %v) = %s, want %s", tt.o, got, tt.eom)
			}
		})
	}
}

// flakyListener fails its first Accept calls with a transient error.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptRetry checks that a transient Accept error (out of file
// descriptors) does not stop the door, as it would stop go-milter's Serve.
func TestAcceptRetry(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: l}
	fl.fails.Store(3)
	logs := &recorder{}
	ts := &testServer{Server: New(Options{Lists: corpusSource(t), Logger: slog.New(logs)}),
		network: "tcp", addr: l.Addr().String(), logs: logs, served: make(chan error, 1)}
	go func() { ts.served <- ts.Serve(fl) }()

	s := ts.client(t, nil)
	mail(t, s, "")
	if got := rcpt(t, s, "mylist@example.com"); got != "continue" {
		t.Errorf("RCPT: got %q", got)
	}
	if err := s.Abort(nil); err != nil {
		t.Fatal(err)
	}
	if n := len(logs.AtLevel(slog.LevelError)); n != 3 {
		t.Errorf("%d error lines, want one per failed Accept:\n%s", n, logs)
	}
	ts.shutdown(t)
}

// TestMetrics checks the counters by verdict and the connection gauge,
// and that a second server on the same registry shares them.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts := startServer(t, "tcp", Options{Registerer: reg})
	ts2 := startServer(t, "unix", Options{Registerer: reg})
	s := ts.client(t, nil)
	s2 := ts2.client(t, nil)
	mail(t, s, "SIZE=20000")
	mail(t, s2, "")
	for _, addr := range []string{"mylist@example.com", "mylist-owner@example.com", "nosuchlist@example.com",
		"mylist@not-ours.example", "broken@broken.example", "announce@example.org"} {
		rcpt(t, s, addr)
	}
	rcpt(t, s2, "mylist@example.com")

	want := `
# HELP listgate_milter_connections Milter connections from the MTA currently open.
# TYPE listgate_milter_connections gauge
listgate_milter_connections 2
# HELP listgate_milter_recipients_total Recipients the milter door answered, by verdict (accept, unknown, not-served, tempfail, too-large, alias, observed, error).
# TYPE listgate_milter_recipients_total counter
listgate_milter_recipients_total{verdict="accept"} 3
listgate_milter_recipients_total{verdict="alias"} 0
listgate_milter_recipients_total{verdict="error"} 0
listgate_milter_recipients_total{verdict="not-served"} 1
listgate_milter_recipients_total{verdict="observed"} 0
listgate_milter_recipients_total{verdict="tempfail"} 1
listgate_milter_recipients_total{verdict="too-large"} 1
listgate_milter_recipients_total{verdict="unknown"} 1
`
	if err := promtestutil.GatherAndCompare(reg, strings.NewReader(want),
		"listgate_milter_connections", "listgate_milter_recipients_total"); err != nil {
		t.Error(err)
	}
	for _, name := range []string{"listgate_milter_panics_total", "listgate_milter_protocol_errors_total"} {
		if n, err := promtestutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: %d series, %v; want 1", name, n, err)
		}
	}
}
