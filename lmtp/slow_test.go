package lmtp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
)

// trickler writes bytes one at a time, one per tick: the slow client
// under test. Its goroutine ends when everything is written, a write
// fails (the server closed the connection) or stop is called.
type trickler struct {
	done chan struct{}
	quit chan struct{}
	once sync.Once
}

func trickle(c net.Conn, s string, every time.Duration) *trickler {
	tr := &trickler{done: make(chan struct{}), quit: make(chan struct{})}
	go func() {
		defer close(tr.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; i < len(s); i++ {
			select {
			case <-tick.C:
			case <-tr.quit:
				return
			}
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte{s[i]}); err != nil {
				return
			}
		}
	}()
	return tr
}

func (tr *trickler) stop() {
	tr.once.Do(func() { close(tr.quit) })
	<-tr.done
}

// readAll reads what the server sends until it closes the connection, or
// until limit passes (then closed is false).
func readAll(c net.Conn, limit time.Duration) (got string, closed bool) {
	c.SetReadDeadline(time.Now().Add(limit))
	b, err := io.ReadAll(bufio.NewReader(c))
	var ne net.Error
	return string(b), !(errors.As(err, &ne) && ne.Timeout())
}

// TestSlowClient is issue 10's first "must show": a client that sends one
// byte a second is disconnected within the read timeout, whether it
// trickles a command line (go-smtp v0.25.1 ran the partial line when its
// per-line deadline fired, then started a new one) or a message (the
// deadline moved on with every byte), while a normal client is served
// meanwhile. The partial command is never run: the only reply is the 421.
func TestSlowClient(t *testing.T) {
	const timeout = 2 * time.Second
	h := start(t, config{options: func(o *Options) { o.ReadTimeout = timeout }})

	type result struct {
		name    string
		got     string
		closed  bool
		elapsed time.Duration
	}
	results := make(chan result, 3)
	run := func(name string, setup func(r *raw), slow string) {
		r, _ := h.raw()
		setup(r)
		at := time.Now()
		tr := trickle(r.c, slow, time.Second)
		got, closed := readAll(r.c, timeout+5*time.Second)
		elapsed := time.Since(at)
		tr.stop()
		results <- result{name, got, closed, elapsed}
	}
	go run("command", func(*raw) {}, "LHLO slow.example.org\r\n")
	go run("data", func(r *raw) {
		r.cmd("LHLO slow.example.org")
		r.cmd("MAIL FROM:<anne@example.org>")
		r.cmd("RCPT TO:<mylist@example.com>")
		if got := r.cmd("DATA"); !strings.HasPrefix(got, "354 ") {
			t.Errorf("DATA: %q", got)
		}
	}, "Subject: slow\r\n\r\nslow body\r\n.\r\n")
	// A partial line that stops: sent at once, then nothing.
	go run("partial", func(r *raw) { r.write("LHLO sss") }, "")

	// Meanwhile a normal client is served.
	c := h.client()
	if err := c.SendMail("anne@example.org", []string{"mylist@example.com"}, strings.NewReader(message("Subject: quick\n\nhi\n"))); err != nil {
		t.Errorf("a normal client while slow ones trickle: %v", err)
	}
	c.Close()

	for range 3 {
		r := <-results
		if !r.closed {
			t.Errorf("%s: not disconnected within %v (read %q)", r.name, timeout+5*time.Second, r.got)
			continue
		}
		if r.elapsed < timeout-100*time.Millisecond || r.elapsed > timeout+1500*time.Millisecond {
			t.Errorf("%s: disconnected after %v, want about %v", r.name, r.elapsed, timeout)
		}
		want := "421 4.4.2 Idle timeout, bye bye\r\n"
		if r.name == "data" {
			want = "" // closed at once: no 554 or 451 for a message cut off
		}
		if r.got != want {
			t.Errorf("%s: read %q, want %q (a partial line must never run)", r.name, r.got, want)
		}
	}
	if got := len(h.newFiles("mylist@example.com", lists.Post)); got != 1 {
		t.Errorf("%d messages delivered, want the normal client's 1", got)
	}
	if n := h.metric("listgate_lmtp_timeouts_total", "phase", "command"); n != 2 {
		t.Errorf("command timeouts: %v, want 2", n)
	}
	if n := h.metric("listgate_lmtp_timeouts_total", "phase", "data"); n != 1 {
		t.Errorf("data timeouts: %v, want 1", n)
	}
	if l := h.logLines("closing a slow connection"); len(l) != 3 {
		t.Errorf("%d log lines for slow connections, want 3", len(l))
	}
}

// TestMinDataRate: a message that comes faster than MinDataRate is
// served even when it takes several times ReadTimeout, and the deadline
// still stops a client that then stalls.
func TestMinDataRate(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := start(t, config{options: func(o *Options) { o.ReadTimeout = timeout; o.MinDataRate = 100 }})
	r := h.lhlo()
	r.cmd("MAIL FROM:<anne@example.org>")
	r.cmd("RCPT TO:<mylist@example.com>")
	r.cmd("DATA")
	r.write("Subject: steady\r\n\r\n")
	// 40 bytes every 100 ms, 400 bytes a second, for 1.2 s: four times
	// the timeout, at four times the minimum rate.
	at := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	for i := range 12 {
		<-tick.C
		r.write(fmt.Sprintf("line %02d %s\r\n", i, strings.Repeat("x", 30)))
	}
	tick.Stop()
	r.write(".\r\n")
	if got := r.reply(); got != ok("mylist@example.com") {
		t.Errorf("after a steady DATA of %v: %q", time.Since(at), got)
	}
	// The next command is awaited under a fresh deadline, and a stall
	// there ends the connection.
	r.write("NOO")
	if got, closed := readAll(r.c, 5*time.Second); !closed || got != "421 4.4.2 Idle timeout, bye bye\r\n" {
		t.Errorf("after a stall: read %q, closed %v", got, closed)
	}
}

// TestBDATPipelined: a BDAT chunk that does not end a line, sent after its
// command line came in the same packet as the command before it, is read
// at once: the door follows BDAT chunks and holds back only partial
// command lines.
func TestBDATPipelined(t *testing.T) {
	h := start(t, config{options: func(o *Options) { o.ReadTimeout = time.Minute }})
	r := h.lhlo()
	r.cmd("MAIL FROM:<anne@example.org>")
	chunk := "Subject: chunked\r\n\r\nno line end"
	r.write(fmt.Sprintf("RCPT TO:<mylist@example.com>\r\nBDAT %d LAST\r\n", len(chunk)))
	if got := r.reply(); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("RCPT: %q", got)
	}
	r.write(chunk)
	at := time.Now()
	if got := r.reply(); got != ok("mylist@example.com") {
		t.Errorf("after BDAT LAST: %q", got)
	}
	if d := time.Since(at); d > 5*time.Second {
		t.Errorf("the chunk was answered after %v: held back as a partial line", d)
	}
	if got := r.cmd("NOOP"); !strings.HasPrefix(got, "250 ") {
		t.Errorf("NOOP after the chunk: %q", got)
	}
}

// TestConnectionLimits: a connection past MaxConnections, or past
// MaxConnectionsPerClient from one address, gets 421 4.7.0 from the reply
// table and is closed, logged and counted; the connections already open
// keep working, and a slot freed is taken again. Unix socket peers count
// towards MaxConnections only.
func TestConnectionLimits(t *testing.T) {
	const refusal = "421 4.7.0 Error: too many connections\r\n"
	dialFrom := func(t *testing.T, h *harness, ip string) net.Conn {
		t.Helper()
		d := net.Dialer{Timeout: 5 * time.Second}
		if ip != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
		}
		c, err := d.Dial(h.network, h.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	greeting := func(t *testing.T, c net.Conn) *raw {
		t.Helper()
		r := &raw{t: t, c: c, r: bufio.NewReader(c)}
		if got := r.reply(); !strings.HasPrefix(got, "220 ") {
			t.Fatalf("greeting: %q", got)
		}
		return r
	}
	for _, tt := range []struct {
		name             string
		network          string
		max, perClient   int
		open             []string // client addresses of the connections that fit
		refused, another string   // the address refused; one still let in after it ("-": none)
		reason           string
	}{
		{"door", "tcp", 3, 0, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, "127.0.0.4", "-", "max_connections"},
		{"client", "tcp", 10, 2, []string{"127.0.0.1", "127.0.0.1"}, "127.0.0.1", "127.0.0.2", "max_connections_per_client"},
		{"unix", "unix", 3, 1, []string{"", "", ""}, "", "-", "max_connections"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, config{network: tt.network, options: func(o *Options) {
				o.MaxConnections, o.MaxConnectionsPerClient = tt.max, tt.perClient
			}})
			var open []*raw
			for _, ip := range tt.open {
				open = append(open, greeting(t, dialFrom(t, h, ip)))
			}
			c := dialFrom(t, h, tt.refused)
			if got, closed := readAll(c, 5*time.Second); got != refusal || !closed {
				t.Errorf("past the limit: read %q, closed %v; want %q and the connection closed", got, closed, refusal)
			}
			if tt.another != "-" {
				r := greeting(t, dialFrom(t, h, tt.another))
				if got := r.cmd("LHLO other.example.org"); !strings.HasPrefix(got, "250") {
					t.Errorf("another client: %q", got)
				}
			}
			for i, r := range open {
				if got := r.cmd("LHLO remote.example.org"); !strings.HasPrefix(got, "250") {
					t.Errorf("connection %d after the refusal: %q", i, got)
				}
			}
			if n := h.metric("listgate_lmtp_connections_refused_total", "reason", tt.reason); n != 1 {
				t.Errorf("refused{%s} = %v, want 1", tt.reason, n)
			}
			if l := h.logLines("refusing a connection"); len(l) != 1 || l[0]["reason"] != tt.reason || l[0]["door"] != "lmtp" {
				t.Errorf("log lines %v", l)
			}
			// A slot freed is taken again.
			held := len(tt.open)
			if tt.another != "-" {
				held++
			}
			open[0].cmd("QUIT")
			open[0].c.Close()
			testutil.WaitFor(t, 5*time.Second, "the closed connection to be given back", func() bool {
				return h.srv.limit.Open() < held
			})
			r := greeting(t, dialFrom(t, h, tt.open[0]))
			if got := r.cmd("NOOP"); !strings.HasPrefix(got, "250 ") {
				t.Errorf("in a freed slot: %q", got)
			}
		})
	}
}

// TestBDATPipelinedSlow: a BDAT line sent in the same packet as MAIL and
// RCPT starts a message like any other: its chunk earns time at
// MinDataRate (go-smtp asks for the BDAT line from its own buffer, which
// must not restart a command wait), and a chunk that stalls ends the
// connection with no reply — never go-smtp's permanent 554 for a read
// that timed out.
func TestBDATPipelinedSlow(t *testing.T) {
	const timeout = 300 * time.Millisecond
	h := start(t, config{options: func(o *Options) { o.ReadTimeout = timeout; o.MinDataRate = 100 }})
	chunk := "Subject: pipelined\r\n\r\n" + strings.Repeat("line of forty bytes, give or take.....\r\n", 12)
	pipelined := fmt.Sprintf("MAIL FROM:<anne@example.org>\r\nRCPT TO:<mylist@example.com>\r\nBDAT %d LAST\r\n", len(chunk))

	// 40 bytes every 100 ms: four times the minimum rate, for 1.2 s, four
	// times the timeout.
	r := h.lhlo()
	r.write(pipelined)
	at := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	for i := 0; i < len(chunk); i += 40 {
		<-tick.C
		r.write(chunk[i:min(i+40, len(chunk))])
	}
	tick.Stop()
	for _, want := range []string{"250 ", "250 ", ok("mylist@example.com")} {
		if got := r.reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("pipelined BDAT at 4× the minimum rate, after %v: %q, want %q", time.Since(at), got, want)
		}
	}

	// A chunk that stalls: closed, no 554.
	r = h.lhlo()
	r.write(pipelined)
	r.write(chunk[:40])
	got, closed := readAll(r.c, 5*time.Second)
	if !closed || strings.Contains(got, "554") || strings.Count(got, "250 ") != 2 || strings.Count(got, "\r\n") != 2 {
		t.Errorf("a stalled pipelined chunk: read %q, closed %v; want the two 250s and the connection closed", got, closed)
	}
}
