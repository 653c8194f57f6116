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
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/internal/connlimit"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/postconf"
)

// Defaults for the zero values of Options.
const (
	// DefaultIdleTimeout is how long a connection may wait for its next
	// request, and how long the rest of a request, once begun, and the
	// reply may take: 5 minutes. Postfix closes an idle policy
	// connection itself after smtpd_policy_service_max_idle (300s) and
	// an idle socketmap connection after 10s (dict_sockmap.c,
	// DICT_SOCKMAP_DEF_MAX_IDLE); both reconnect when they find the
	// connection closed (attr_clnt retries up to
	// smtpd_policy_service_try_limit times, dict_sockmap once).
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultMaxLine is the longest attribute line of a policy request,
	// its newline included: 16 KiB. Postfix's attribute encoder caps each
	// name and each value at 4 × line_length_limit characters (8192 by
	// default; attr_scan_plain.c), so a line Postfix sends, name, '=' and
	// value, fits with room to spare.
	DefaultMaxLine = 16 << 10
	// DefaultMaxRequest bounds a whole policy request (every line, the
	// empty line included) and a socketmap request's netstring payload:
	// 100,000 bytes, the limit Postfix puts on a socketmap reply
	// (dict_sockmap.c, DICT_SOCKMAP_DEF_MAX_REPLY). A policy request
	// from Postfix 3.7 is about 30 attributes, well under 10 KiB;
	// Postfix 3.10 and later do not send a socketmap query longer than
	// 10,000 bytes (DICT_SOCKMAP_DEF_MAX_QUERY), 3.7 has no limit but
	// its keys are addresses and domains from an SMTP command line.
	DefaultMaxRequest = 100000
)

// ErrServerClosed is returned by Serve after Shutdown, and by a second
// Shutdown. Test for it with errors.Is.
var ErrServerClosed = errors.New("postfix: server closed")

// Options configure a PolicyServer or a SocketmapServer. All fields are
// optional.
type Options struct {
	// Lists gives the current snapshot of the lists; a *lists.Watcher or
	// a lists.Static. It is asked once per policy request and per
	// socketmap lookup, so a reload is seen at the next one. Nil (or a
	// source without a snapshot) answers every policy request at RCPT
	// with the local-error tempfail, 451 4.3.0, and every socketmap
	// lookup that could concern listgate with TEMP, as every door does.
	Lists lists.Source
	// MaxMessageSize is the global limit in bytes (--max-message-size)
	// for the policy door's check of the size= attribute (MAIL FROM's
	// SIZE=). Zero (or less) means lists.DefaultMaxMessageSize, as in
	// every door. The socketmap door does not use it.
	MaxMessageSize int64
	// LMTP is listgate's LMTP door as Postfix reaches it: the transport
	// map answers "lmtp:" + LMTP.String() (e.g.
	// "lmtp:inet:127.0.0.1:8024"), an lmtp(8) next hop. With Network ""
	// the transport map answers NOTFOUND to everything.
	LMTP postconf.Endpoint
	// IdleTimeout closes a connection that waits this long for its next
	// request; it also bounds the reading of the rest of a request once
	// its first byte has come, and the writing of a reply, so a client
	// that stalls is dropped. Zero means DefaultIdleTimeout; negative
	// means no timeout.
	IdleTimeout time.Duration
	// MaxLine bounds one attribute line of a policy request, newline
	// included. A longer line makes the request malformed: it is read
	// to its end and answered with the local-error tempfail. Zero means
	// DefaultMaxLine. The socketmap door does not use it.
	MaxLine int
	// MaxRequest bounds a whole policy request, and a socketmap
	// request's netstring payload, in bytes. A larger one is answered
	// (policy: the local-error tempfail) or not (socketmap), and the
	// connection is closed. Zero means DefaultMaxRequest.
	MaxRequest int
	// Logger receives one info line per verdict, debug lines for every
	// request and lookup, warnings for malformed input and error lines
	// for recovered panics. Nil discards, as in every door.
	Logger *slog.Logger
	// Registerer, if set, gets the door's metrics (listgate_policy_* or
	// listgate_socketmap_*). A second server of the same door on the
	// same Registerer shares them.
	Registerer prometheus.Registerer
	// MaxConnections bounds the connections the door holds open, and
	// MaxConnectionsPerClient those from one TCP client address (unix
	// socket peers count towards MaxConnections only). A connection past
	// either is closed before a request is read, logged and counted
	// (listgate_<door>_connections_refused_total): Postfix gets a lookup
	// error and retries, or applies smtpd_policy_service_default_action.
	// Zero means the default (DefaultMaxConnections,
	// DefaultMaxConnectionsPerClient); negative means no limit.
	MaxConnections, MaxConnectionsPerClient int
}

// Connection limits for the zero values of Options, as the LMTP door's:
// a Postfix instance asks a policy service from each smtpd process (at
// most default_process_limit, 100, per smtpd service) and opens a
// socketmap from each process that uses the table.
const (
	DefaultMaxConnections          = 1000
	DefaultMaxConnectionsPerClient = 500
)

// server is what both doors share: the listeners, the connections, their
// limits and Shutdown. Each door gives it the function that serves one
// connection.
type server struct {
	door    string // "policy" or "socketmap": the door key of the log lines
	lists   lists.Source
	log     *slog.Logger
	m       *metrics
	idle    time.Duration // 0: none
	maxLine int
	maxReq  int
	serve   func(c *conn) // serves one connection until it ends; must not close it
	limit   *connlimit.Limiter

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	wg        sync.WaitGroup // one per connection handler
	done      chan struct{}  // closed when Shutdown begins
}

func newServer(door string, o Options) *server {
	s := &server{
		door:      door,
		lists:     o.Lists,
		log:       o.Logger,
		m:         newMetrics(door, o.Registerer),
		maxLine:   o.MaxLine,
		maxReq:    o.MaxRequest,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		done:      make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.limit = connlimit.New(limit(o.MaxConnections, DefaultMaxConnections),
		limit(o.MaxConnectionsPerClient, DefaultMaxConnectionsPerClient))
	switch {
	case o.IdleTimeout == 0:
		s.idle = DefaultIdleTimeout
	case o.IdleTimeout > 0:
		s.idle = o.IdleTimeout
	}
	if s.maxLine <= 0 {
		s.maxLine = DefaultMaxLine
	}
	if s.maxReq <= 0 {
		s.maxReq = DefaultMaxRequest
	}
	return s
}

// snapshot returns the current snapshot, or nil when there is none to ask.
func (s *server) snapshot() *lists.Snapshot {
	if s.lists == nil {
		return nil
	}
	return s.lists.Snapshot()
}

// Serve accepts connections on l until Shutdown; see PolicyServer.Serve.
func (s *server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			if !transient(err) {
				return err
			}
			// A connection aborted before it was accepted, or no file
			// descriptors left: wait a little and go on, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed; retrying", "door", s.door, "err", err, "delay_ms", delay.Milliseconds())
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
			}
			continue
		}
		delay = 0
		release, reason := s.limit.Acquire(nc.RemoteAddr())
		if reason != "" {
			s.m.refused.WithLabelValues(reason).Inc()
			s.log.Warn("refusing a connection", "door", s.door, "remote", remoteAddr(nc), "reason", reason)
			nc.Close()
			continue
		}
		c := &conn{nc: nc, srv: s, br: bufio.NewReaderSize(nc, s.bufSize()), release: release}
		if !s.track(c) {
			nc.Close()
			release()
			return ErrServerClosed
		}
		go s.handle(c)
	}
}

// bufSize is the size of a connection's read buffer: a whole policy line
// fits, so a line too long is seen as bufio.ErrBufferFull.
func (s *server) bufSize() int {
	if s.door == doorPolicy {
		return s.maxLine
	}
	return 4096
}

// transient reports an Accept error after which listening goes on.
func transient(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EMFILE) ||
		errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// track registers a new connection; it reports false during Shutdown.
func (s *server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.m.connections.Inc()
	return true
}

// handle serves c until it ends, then closes and forgets it. A panic that
// escapes the door's own recovery (in the framing) ends this connection
// only.
func (s *server) handle(c *conn) {
	defer s.wg.Done()
	defer func() {
		c.nc.Close()
		c.release()
		s.mu.Lock()
		delete(s.conns, c)
		s.m.connections.Dec()
		s.mu.Unlock()
	}()
	defer func() {
		if p := recover(); p != nil {
			s.panicked(c, "connection", "", p)
		}
	}()
	s.serve(c)
}

// panicked logs and counts a panic recovered while serving c.
func (s *server) panicked(c *conn, what, rcpt string, p any) {
	s.log.Error("panic answering Postfix; replying tempfail", "door", s.door, "command", what,
		"rcpt", rcpt, "remote", c.remote(), "err", fmt.Sprint(p), "stack", string(debug.Stack()))
	s.m.panics.Inc()
}

// Shutdown stops the server: it closes the listeners, closes every
// connection that waits for its next request, lets each request being
// read or answered finish (its reply is sent) and closes its connection
// right after, and returns when every connection is gone. If ctx ends
// first, it closes the remaining connections and returns ctx's error.
// Postfix reconnects, or, when listgate stays down, applies its own
// default: smtpd_policy_service_default_action (451 4.3.5) for the policy
// door, a lookup error (a tempfail) for a socketmap.
func (s *server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.closing = true
	close(s.done)
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.drain()
	}
	s.mu.Unlock()

	all := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(all)
	}()
	select {
	case <-all:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-all
		return ctx.Err()
	}
}

// conn is one connection from Postfix. Its requests are read and answered
// one after the other by a single goroutine.
type conn struct {
	nc      net.Conn
	srv     *server
	br      *bufio.Reader
	release func() // gives the connection back to srv.limit

	mu       sync.Mutex
	idle     bool // waiting for the first byte of a request
	busy     bool // a request has begun and is not answered yet
	draining bool // Shutdown asked the connection to end after its request
}

// remote is the peer's address for the logs ("" for an unnamed unix
// socket peer).
func (c *conn) remote() string { return remoteAddr(c.nc) }

// remoteAddr is nc's peer address for the logs ("" for an unnamed unix
// socket peer).
func remoteAddr(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
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

// next waits for the first byte of the next request. It reports false
// when the connection is to end: Postfix closed it (or broke it), it was
// idle for longer than the idle timeout, or Shutdown woke it. Once it has
// reported true the request is in flight: Shutdown lets it finish.
func (c *conn) next() bool {
	c.mu.Lock()
	if c.draining {
		c.mu.Unlock()
		return false
	}
	c.idle, c.busy = true, false
	c.setReadDeadline()
	c.mu.Unlock()

	_, err := c.br.Peek(1)

	c.mu.Lock()
	c.idle, c.busy = false, err == nil
	draining := c.draining
	c.mu.Unlock()
	if err != nil {
		switch {
		case draining:
		case errors.Is(err, os.ErrDeadlineExceeded):
			c.srv.log.Debug("closing an idle connection", "door", c.srv.door, "remote", c.remote(),
				"idle_timeout", c.srv.idle.String())
		case !isEOF(err):
			c.srv.log.Debug("connection ended", "door", c.srv.door, "remote", c.remote(), "err", err)
		}
		return false
	}
	// The request has begun: the rest of it comes under a fresh deadline,
	// even if drain set a past one to wake an idle wait that just ended.
	c.setReadDeadline()
	return true
}

func (c *conn) setReadDeadline() {
	var t time.Time
	if c.srv.idle > 0 {
		t = time.Now().Add(c.srv.idle)
	}
	c.nc.SetReadDeadline(t)
}

// reply writes b, the whole framed reply, under the write deadline.
func (c *conn) reply(b []byte) error {
	var t time.Time
	if c.srv.idle > 0 {
		t = time.Now().Add(c.srv.idle)
	}
	c.nc.SetWriteDeadline(t)
	_, err := c.nc.Write(b)
	return err
}

// drain asks the connection to end after the request in flight, if any;
// one waiting for a request is woken at once. Called with srv.mu held.
func (c *conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if c.idle {
		c.nc.SetReadDeadline(time.Unix(1, 0))
	}
}

// isEOF reports a connection closed by the peer, or reset.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}
