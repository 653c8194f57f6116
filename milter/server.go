package milter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	gomilter "github.com/d--j/go-milter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/internal/connlimit"
	"github.com/listgate/listgate/lists"
)

// ErrServerClosed is returned by Serve once Shutdown has been called.
// Test for it with errors.Is.
var ErrServerClosed = errors.New("milter: server closed")

// Options configure a Server.
type Options struct {
	// Lists gives the snapshot each recipient is resolved against; it is
	// asked once per RCPT, so a reload is seen at the next recipient. Nil
	// (or a source without a snapshot) answers every recipient with the
	// local-error tempfail, 451 4.3.0, as every door does.
	Lists lists.Source
	// Logger receives one info line per recipient and error lines for
	// panics and malformed packets. Nil discards, as in every door.
	Logger *slog.Logger
	// Registerer, if not nil, registers the door's metrics
	// (listgate_milter_*). A second Server on the same Registerer shares
	// them.
	Registerer prometheus.Registerer
	// MaxMessageSize is the global limit in bytes (listgate's
	// --max-message-size), for every recipient: a SIZE= above it (margin
	// included) refuses each accepted recipient at RCPT with 552 5.3.4,
	// and a message counted above it is refused at its end. Zero (or
	// less) means lists.DefaultMaxMessageSize, as in every door.
	MaxMessageSize int64
	// IdleTimeout closes a connection that waits this long for the MTA's
	// next packet, or for the rest of one (go-milter's read timeout, set
	// per packet): logged and counted
	// (listgate_milter_idle_closed_total). Postfix keeps a milter
	// connection for a whole SMTP session, idle while the client is
	// slow, so it must exceed the longest pause of a session. Zero means
	// DefaultIdleTimeout; negative means none.
	IdleTimeout time.Duration
	// MaxConnections bounds the connections the door holds open, and
	// MaxConnectionsPerClient those from one TCP client address (unix
	// socket peers count towards MaxConnections only). A connection past
	// either is closed before a packet is read, logged and counted
	// (listgate_milter_connections_refused_total); the MTA applies its
	// milter_default_action. Zero means the default (1000 and 500, as
	// the LMTP door's); negative means no limit.
	MaxConnections, MaxConnectionsPerClient int
}

// DefaultIdleTimeout is libmilter's default timeout for reading from the
// MTA (smfi_settimeout): 7210 seconds.
const DefaultIdleTimeout = 7210 * time.Second

// Connection limits for the zero values of Options, as the LMTP door's.
const (
	DefaultMaxConnections          = 1000
	DefaultMaxConnectionsPerClient = 500
)

// Server is the milter door. Create it with New, start it with Serve (on
// as many listeners as wanted, TCP or unix) and stop it with Shutdown.
type Server struct {
	opts    Options
	max     int64 // the global limit: Options.MaxMessageSize or its default
	log     *slog.Logger
	metrics *metrics
	ms      *gomilter.Server
	limit   *connlimit.Limiter
	idle    time.Duration // 0: none

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool
}

// New returns a Server answering from opts.Lists.
func New(opts Options) *Server {
	s := &Server{
		opts:    opts,
		max:     opts.MaxMessageSize,
		log:     opts.Logger,
		metrics: newMetrics(opts.Registerer),
		conns:   make(map[*conn]struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.max <= 0 {
		s.max = lists.DefaultMaxMessageSize
	}
	if opts.Lists == nil {
		s.log.Warn("no lists: every recipient is answered 451 4.3.0", "door", "milter")
	}
	s.limit = connlimit.New(limit(opts.MaxConnections, DefaultMaxConnections),
		limit(opts.MaxConnectionsPerClient, DefaultMaxConnectionsPerClient))
	switch {
	case opts.IdleTimeout == 0:
		s.idle = DefaultIdleTimeout
	case opts.IdleTimeout > 0:
		s.idle = opts.IdleTimeout
	}
	s.ms = gomilter.NewServer(
		gomilter.WithReadTimeout(s.idle),
		gomilter.WithMaximumVersion(protocolVersion),
		gomilter.WithActions(wantActions),
		gomilter.WithProtocols(wantProtocol),
		gomilter.WithMacroRequest(gomilter.StageRcpt, []gomilter.MacroName{gomilter.MacroQueueId}),
		gomilter.WithMacroRequest(gomilter.StageEOM, []gomilter.MacroName{gomilter.MacroQueueId}),
		gomilter.WithNegotiationCallback(negotiate),
		gomilter.WithDynamicMilter(s.newSession),
	)
	return s
}

// Serve accepts milter connections on l until Shutdown and answers them.
// It always returns a non-nil error: ErrServerClosed after Shutdown,
// otherwise the error that stopped the listener. l is closed on return.
func (s *Server) Serve(l net.Listener) error {
	defer func() { _ = l.Close() }()
	s.mu.Lock()
	down := s.shutdown
	s.mu.Unlock()
	if down {
		return ErrServerClosed
	}
	err := s.ms.Serve(&listener{Listener: l, s: s})
	if err == nil || errors.Is(err, gomilter.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops the server: it closes the listeners, closes every
// connection that is not inside a mail transaction (one whose MAIL FROM
// the door has read, until its end of message or abort), and waits for the
// others to finish their transaction. When ctx ends first, the remaining
// connections are closed and ctx's error is returned. The MTA applies its
// milter_default_action to the rest of the SMTP sessions whose connection
// was closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	for c := range s.conns {
		c.drain()
	}
	s.mu.Unlock()
	return s.ms.Shutdown(ctx)
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

// track registers a new connection; during shutdown it is drained at once.
func (s *Server) track(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[c] = struct{}{}
	s.metrics.connections.Inc()
	if s.shutdown {
		c.drain()
	}
}

// forget unregisters a closed connection.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	s.metrics.connections.Dec()
}

// LogLibraryWarnings sends the warnings of go-milter, the protocol library
// under the door, to log (at level warn, with door=milter and
// source=go-milter). go-milter v0.10.2 writes them with the standard log
// package through a package-level hook (its LogWarning variable) and
// offers no per-server option, so this changes process-wide state: call
// it once, from main, before any Server serves, and not while one does.
// Without it the warnings (a connection that failed mid-command, a packet
// it could not parse) go to the standard logger, not to the door's
// Logger. The door logs what it catches itself (malformed packets) to
// Options.Logger.
func LogLibraryWarnings(log *slog.Logger) {
	gomilter.LogWarning = func(format string, v ...any) {
		log.Warn("milter library", "door", "milter", "source", "go-milter",
			"err", strings.TrimSpace(fmt.Sprintf(format, v...)))
	}
}
