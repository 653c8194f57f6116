package lmtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/internal/connlimit"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/reply"
	"github.com/listgate/listgate/spool"
)

// Defaults for the zero values of Options. A zero MaxMessageSize means
// lists.DefaultMaxMessageSize, as in every door.
const (
	// DefaultMaxLineLength is the longest line, commands and message
	// lines alike, CRLF included: 1 MiB. RFC 5321 §4.5.3.1.6 lets lines be
	// 1000 octets; real mail is longer, and a message is never refused
	// for its content, so the limit is only a bound on memory.
	DefaultMaxLineLength = 1 << 20
	// DefaultReadTimeout is how long a command line may take to arrive
	// whole, and the base of a message's time (see Options.ReadTimeout):
	// RFC 5321 §4.5.3.2.7 asks a server to wait at least 5 minutes,
	// Postfix's smtpd_timeout is 300s.
	DefaultReadTimeout = 5 * time.Minute
	// DefaultWriteTimeout is how long the server waits to write a reply.
	DefaultWriteTimeout = 5 * time.Minute
	// DefaultMaxRecipients is the most recipients one transaction may
	// have: 1000, ten times the 100 that RFC 5321 §4.5.3.1.8 asks a server
	// to buffer at least, and twenty times Postfix's
	// lmtp_destination_recipient_limit (50), so Postfix never meets it.
	DefaultMaxRecipients = 1000
	// DefaultMaxConnections is the most connections the door holds open:
	// 1000, ten times Postfix's default_process_limit (100), which
	// bounds the lmtp(8) processes, and so the connections, of one
	// Postfix instance.
	DefaultMaxConnections = 1000
	// DefaultMaxConnectionsPerClient is the most connections from one
	// TCP client address: 500. Every Postfix instance on the host
	// connects from the same loopback address (the door's default), so
	// it stays above all a default Postfix opens: at most
	// default_process_limit (100) lmtp(8) processes, of which
	// lmtp_destination_concurrency_limit (20) deliver to one destination
	// at a time.
	DefaultMaxConnectionsPerClient = 500
)

// ErrServerClosed is returned by Serve after Shutdown, and by a second
// Shutdown. Test for it with errors.Is.
var ErrServerClosed = errors.New("lmtp: server closed")

// Options configure a Server. Spool is required.
type Options struct {
	// Lists gives the current snapshot of the lists directory; a
	// *lists.Watcher or a lists.Static. It is asked once per RCPT. Nil
	// (or a source without a snapshot) answers every recipient with the
	// local-error tempfail, 451 4.3.0, as every door does.
	Lists lists.Source
	// Spool stores accepted messages.
	Spool *spool.Spool
	// Logger receives one info line per verdict and per delivery, and
	// one error line per failed delivery or recovered panic. Nil
	// discards, as in every door.
	Logger *slog.Logger
	// Registerer, if set, gets the door's metrics (listgate_lmtp_...).
	// A second Server on the same Registerer shares them.
	Registerer prometheus.Registerer
	// Hostname is the name in the greeting and in the Received field.
	// Default: os.Hostname().
	Hostname string
	// MaxMessageSize is the largest message accepted for any recipient,
	// in bytes as received (CRLF line ends). It is advertised in LHLO as
	// SIZE, enforced on MAIL FROM's SIZE= and on the data. Zero (or
	// less) means lists.DefaultMaxMessageSize, as in every door.
	MaxMessageSize int64
	// MaxLineLength bounds every line read, CRLF included. Zero means
	// DefaultMaxLineLength.
	MaxLineLength int
	// MaxRecipients bounds the recipients accepted in one transaction
	// (each gets its own file). Past it, each RCPT is answered 452 4.5.3
	// (RFC 5321 §4.5.3.1.10, RFC 3463 X.5.3) and the client sends those
	// recipients again in a new transaction, as Postfix's LMTP client
	// does. Zero means DefaultMaxRecipients.
	MaxRecipients int
	// ReadTimeout bounds the wait for each command line, from the moment
	// the server is ready for it until its line end: bytes that trickle
	// in do not extend it, and a line still incomplete when it passes is
	// never run (the client gets go-smtp's "421 4.4.2 Idle timeout" and
	// the connection is closed), as Postfix's smtpd_timeout with
	// smtpd_per_record_deadline. A message (DATA, or a BDAT chunk) may
	// take ReadTimeout plus its size divided by MinDataRate, and at most
	// ReadTimeout between two reads; past that the connection is closed
	// and the client retries the message. WriteTimeout bounds each reply.
	// Zero means the default; negative means no timeout.
	ReadTimeout, WriteTimeout time.Duration
	// MinDataRate is the slowest rate, in bytes per second, a message
	// may arrive at once ReadTimeout is used up (Postfix's
	// smtpd_min_data_rate). Zero (or less) means DefaultMinDataRate.
	MinDataRate int64
	// MaxConnections bounds the connections the door holds open, and
	// MaxConnectionsPerClient those from one TCP client address (unix
	// socket peers count towards MaxConnections only). A connection past
	// either gets "421 4.7.0 Error: too many connections" (package
	// reply, outcome too-many-connections) and is closed; Postfix tries
	// again later. Zero means the default; negative means no limit.
	MaxConnections, MaxConnectionsPerClient int
}

// Server is the LMTP door: an RFC 2033 server that resolves each
// recipient with lists and stores accepted mail in the spool. Its zero
// value is not usable; call New.
type Server struct {
	lists       lists.Source
	spool       *spool.Spool
	log         *slog.Logger
	m           *metrics
	hostname    string
	max         int64
	maxRcpts    int
	readTimeout time.Duration
	minRate     int64
	lineMax     int
	limit       *connlimit.Limiter
	smtp        *smtp.Server

	mu        sync.Mutex
	closing   bool
	listeners []net.Listener
	conns     map[*conn]struct{}
}

// New returns a Server for opts. It registers the door's metrics with
// opts.Registerer (and panics, as prometheus.MustRegister does, if they
// are registered twice).
func New(opts Options) *Server {
	s := &Server{
		lists:    opts.Lists,
		spool:    opts.Spool,
		log:      opts.Logger,
		m:        newMetrics(opts.Registerer),
		hostname: opts.Hostname,
		max:      opts.MaxMessageSize,
		conns:    make(map[*conn]struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.hostname == "" {
		s.hostname, _ = os.Hostname()
		if s.hostname == "" {
			s.hostname = "localhost"
		}
	}
	if s.max <= 0 {
		s.max = lists.DefaultMaxMessageSize
	}
	s.maxRcpts = opts.MaxRecipients
	if s.maxRcpts <= 0 {
		s.maxRcpts = DefaultMaxRecipients
	}
	if s.lists == nil {
		s.log.Warn("no lists: every recipient is answered 451 4.3.0", "door", "lmtp")
	}
	lineMax := opts.MaxLineLength
	if lineMax <= 0 {
		lineMax = DefaultMaxLineLength
	}
	s.readTimeout = timeout(opts.ReadTimeout, DefaultReadTimeout)
	s.lineMax = lineMax
	s.minRate = opts.MinDataRate
	if s.minRate <= 0 {
		s.minRate = DefaultMinDataRate
	}
	s.limit = connlimit.New(limit(opts.MaxConnections, DefaultMaxConnections),
		limit(opts.MaxConnectionsPerClient, DefaultMaxConnectionsPerClient))

	srv := smtp.NewServer(backend{s})
	srv.LMTP = true // RFC 2033: LHLO only, one reply per recipient after DATA
	srv.Domain = s.hostname
	srv.MaxMessageBytes = s.max // advertised as SIZE, checked on SIZE= and on the data
	srv.MaxLineLength = lineMax
	srv.EnableSMTPUTF8 = true // RFC 6531: addresses are passed on as received
	// The door keeps its own read deadlines (deadlines, in deadline.go);
	// go-smtp's ReadTimeout only makes it call SetReadDeadline before each
	// command line, which tells the door that a command is awaited.
	srv.ReadTimeout = time.Hour
	srv.WriteTimeout = timeout(opts.WriteTimeout, DefaultWriteTimeout)
	srv.ErrorLog = errorLog{s.log}
	s.smtp = srv
	return s
}

// limit is the connection limit for the option n: the default for 0,
// none (0) for a negative n.
func limit(n, def int) int {
	switch {
	case n == 0:
		return def
	case n < 0:
		return 0
	}
	return n
}

func timeout(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0 // go-smtp: no deadline
	}
	return d
}

// Serve accepts LMTP connections on l (TCP or unix) until Shutdown, and
// then returns ErrServerClosed. Any other error is the listener's.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()

	err := s.smtp.Serve(&listener{Listener: l, srv: s})
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops the server gracefully: it closes the listeners, closes
// every idle connection (Postfix keeps LMTP connections open between
// deliveries, and go-smtp's own Shutdown would wait for them forever),
// lets each transaction in flight (from MAIL to the replies after DATA)
// finish and closes its connection right after, and returns when every
// connection is gone. If ctx ends first, it closes the remaining
// connections, whose senders then retry (no 250 was given), and returns
// ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.closing = true
	for _, l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		if !c.busy {
			c.Conn.Close()
		}
	}
	s.mu.Unlock()

	// go-smtp closes the listeners again (already closed: its error is
	// ignored) and waits for every connection handler to return.
	err := s.smtp.Shutdown(ctx)
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		s.mu.Lock()
		for c := range s.conns {
			c.Conn.Close()
		}
		s.mu.Unlock()
		return err
	}
	return nil
}

// begin marks c busy at MAIL: Shutdown lets its transaction finish. It
// reports false when the server is shutting down; c is then closed.
func (s *Server) begin(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		c.Conn.Close()
		return false
	}
	c.busy = true
	return true
}

// end marks c idle when its transaction is over (after the replies to
// DATA, or RSET), and closes it if the server is shutting down.
func (s *Server) end(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.busy = false
	if s.closing {
		c.Conn.Close()
	}
}

// listener tracks the connections it accepts, so Shutdown can close the
// idle ones.
type listener struct {
	net.Listener
	srv *Server
}

func (l *listener) Accept() (net.Conn, error) {
	var nc net.Conn
	var release func()
	for {
		var err error
		if nc, err = l.Listener.Accept(); err != nil {
			return nil, err
		}
		var reason string
		if release, reason = l.srv.limit.Acquire(nc.RemoteAddr()); reason == "" {
			break
		}
		l.srv.refuse(nc, reason)
	}
	c := &conn{Conn: nc, srv: l.srv, release: release}
	c.rd = newDeadlines(nc, l.srv.readTimeout, l.srv.minRate, l.srv.lineMax, c.timedOut)
	l.srv.mu.Lock()
	closing := l.srv.closing
	if !closing {
		l.srv.conns[c] = struct{}{}
		l.srv.m.connections.Inc()
	}
	l.srv.mu.Unlock()
	if closing {
		nc.Close() // go-smtp's handler sees a closed connection and returns
	}
	return c, nil
}

// refuseWriteTimeout bounds the writing of the 421 to a connection over a
// limit: the reply is small and the connection new, so it fits in the
// socket's buffer unless the peer is already gone.
const refuseWriteTimeout = time.Second

// refuse answers a connection over a connection limit with the table's
// reply at Connect, in place of the greeting (RFC 5321 §3.1: "421 ...
// closing transmission channel"), and closes it. It is logged and counted
// (listgate_lmtp_connections_refused_total, by reason).
func (s *Server) refuse(nc net.Conn, reason string) {
	s.m.refused.WithLabelValues(reason).Inc()
	s.log.Warn("refusing a connection", "door", "lmtp", "remote", remote(nc), "reason", reason)
	a := reply.For(reply.LMTP, reply.Connect, reply.TooManyConnections)
	if a.Action == reply.Send {
		nc.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
		io.WriteString(nc, a.Reply.String()+"\r\n")
	}
	nc.Close()
}

// remote is a connection's peer address for the logs ("" for an unnamed
// unix socket peer).
func remote(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// conn is one accepted connection.
type conn struct {
	net.Conn
	srv     *Server
	rd      *deadlines // the read side, under the door's deadlines
	release func()     // gives the connection back to srv.limit
	busy    bool       // a transaction is open; guarded by srv.mu
}

// Read reads under the door's deadlines (see deadlines).
func (c *conn) Read(b []byte) (int, error) { return c.rd.Read(b) }

// SetReadDeadline is called by go-smtp before each command line: the
// door starts that command's deadline (see deadlines). t is ignored.
func (c *conn) SetReadDeadline(time.Time) error { return c.rd.begin() }

// SetDeadline sets the write deadline to t and starts a command's read
// deadline, as SetReadDeadline.
func (c *conn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.rd.begin()
}

// timedOut logs and counts a deadline that passed: while a command line
// was awaited, or while a message was read.
func (c *conn) timedOut(awaiting bool) {
	phase := "data"
	if awaiting {
		phase = "command"
	}
	c.srv.m.timeouts.WithLabelValues(phase).Inc()
	c.srv.log.Info("closing a slow connection", "door", "lmtp", "remote", remote(c.Conn), "phase", phase,
		"timeout", c.srv.readTimeout.String(), "min_data_rate", c.srv.minRate)
}

// badSequence is what go-smtp v0.25.1 answers, with code 502 ("command
// not implemented"), to a command out of sequence. RFC 5321 §4.2.4 and
// §4.3.2 want 503 ("bad sequence of commands") there, and RFC 2033 §4.2
// says DATA with no successful RCPT "MUST fail with a 503 reply code", so
// Write turns these lines into 503s. A real "not implemented" stays 502.
var badSequence = [][]byte{
	[]byte("502 5.5.1 Please introduce yourself first.\r\n"),
	[]byte("502 5.5.1 Missing MAIL FROM command.\r\n"),
	[]byte("502 5.5.1 Missing RCPT TO command.\r\n"),
	[]byte("502 5.5.1 MAIL not allowed during message transfer\r\n"),
	[]byte("502 5.5.1 RCPT not allowed during message transfer\r\n"),
	[]byte("502 5.5.1 DATA not allowed during message transfer\r\n"),
}

var prefix502 = []byte("502 5.5.1 ")

// Write sends go-smtp's replies, with its bad-sequence 502s made 503s
// (see badSequence). go-smtp writes each reply whole and flushes it, so a
// reply line is never split across two writes.
func (c *conn) Write(b []byte) (int, error) {
	if !bytes.Contains(b, prefix502) {
		return c.Conn.Write(b)
	}
	fixed := bytes.Clone(b) // rare: only replies that start 502 5.5.1
	for _, line := range badSequence {
		for off := 0; ; {
			i := bytes.Index(fixed[off:], line)
			if i < 0 {
				break
			}
			if i += off; i == 0 || fixed[i-1] == '\n' {
				fixed[i+2] = '3'
			}
			off = i + len(line)
		}
	}
	if _, err := c.Conn.Write(fixed); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close closes the connection and forgets it.
func (c *conn) Close() error {
	c.srv.mu.Lock()
	if _, ok := c.srv.conns[c]; ok {
		delete(c.srv.conns, c)
		c.srv.m.connections.Dec()
	}
	c.srv.mu.Unlock()
	if c.release != nil {
		c.release()
	}
	return c.Conn.Close()
}

// errorLog passes go-smtp's own error lines (a connection that failed,
// an accept error) to slog.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...any) {
	e.log.Warn("lmtp connection", "door", "lmtp", "err", strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (e errorLog) Println(v ...any) {
	e.log.Warn("lmtp connection", "door", "lmtp", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}
