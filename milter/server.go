package milter

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"

	gomilter "github.com/d--j/go-milter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/lists"
)

// ErrServerClosed is returned by Serve once Shutdown has been called.
var ErrServerClosed = errors.New("milter: server closed")

// Options configure a Server.
type Options struct {
	// Lists gives the snapshot each recipient is resolved against; it is
	// asked once per RCPT, so a reload is seen at the next recipient.
	Lists lists.Source
	// Logger receives one info line per recipient and error lines for
	// panics and malformed packets. Nil means slog.Default().
	Logger *slog.Logger
	// Registerer, if not nil, registers the door's metrics
	// (listgate_milter_*).
	Registerer prometheus.Registerer
	// MaxMessageSize is the global limit in bytes (listgate's
	// --max-message-size), for every recipient: a SIZE= above it (margin
	// included) refuses each accepted recipient at RCPT with 552 5.3.4,
	// and a message counted above it is refused at its end. Zero means no
	// global limit.
	MaxMessageSize int64
}

// Server is the milter door. Create it with New, start it with Serve (on
// as many listeners as wanted, TCP or unix) and stop it with Shutdown.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	ms      *gomilter.Server

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool
}

// New returns a Server answering from opts.Lists. It panics if opts.Lists
// is nil, a wiring mistake.
func New(opts Options) *Server {
	if opts.Lists == nil {
		panic("milter: Options.Lists is nil")
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		metrics: newMetrics(opts.Registerer),
		conns:   make(map[*conn]struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.ms = gomilter.NewServer(
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
