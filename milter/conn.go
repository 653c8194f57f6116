package milter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// maxPacket bounds one milter packet (command byte and data). The largest
// the protocol defines is a 1 MiB body chunk (SMFIP_MDS_1M); the door
// negotiates 64 KiB chunks (Postfix's MILTER_CHUNK_SIZE is 65,535 anyway),
// and a header field is at most Postfix's header_size_limit (100 KiB by
// default).
const maxPacket = 1 << 20

// keepPacket is the size of the largest packet whose buffer a connection
// keeps for the next one: a body chunk with its framing. go-milter copies
// each packet out of it.
const keepPacket = 4 + 1 + 65535

// Milter command codes (libmilter mfdef.h, SMFIC_*) that the framing layer
// looks at.
const (
	cmdConnect = 'C' // SMFIC_CONNECT
	cmdMail    = 'M' // SMFIC_MAIL
	cmdRcpt    = 'R' // SMFIC_RCPT
	cmdEOB     = 'E' // SMFIC_BODYEOB
	cmdAbort   = 'A' // SMFIC_ABORT
	cmdQuit    = 'Q' // SMFIC_QUIT
	cmdQuitNC  = 'K' // SMFIC_QUIT_NC
)

// checkPacket reports why a packet (command byte and data, without the
// length) must not reach go-milter, or nil. go-milter v0.10.2 indexes and
// slices these packets without checking them, and a panic there, in a
// goroutine of its own, would end the whole daemon.
func checkPacket(pkt []byte) error {
	if len(pkt) == 0 {
		return errors.New("empty packet")
	}
	data := pkt[1:]
	switch pkt[0] {
	case cmdMail, cmdRcpt:
		// The address and the ESMTP arguments are NUL-terminated strings.
		if bytes.IndexByte(data, 0) < 0 {
			return fmt.Errorf("command %q without a NUL-terminated address", pkt[0])
		}
	case cmdConnect:
		// hostname NUL, then the protocol family byte.
		if i := bytes.IndexByte(data, 0); i < 0 || i+1 >= len(data) {
			return fmt.Errorf("command %q without a NUL-terminated host name and a family", pkt[0])
		}
	}
	return nil
}

var (
	_ net.Conn     = (*conn)(nil)
	_ net.Listener = (*listener)(nil)
)

// conn is one connection from the MTA. It hands go-milter whole, checked
// packets (see checkPacket), follows whether a mail transaction is open
// (MAIL seen, no end of message or abort yet), and lets Shutdown end the
// connection at a packet boundary, never in the middle of a command.
type conn struct {
	net.Conn
	s    *Server
	buf  []byte // rest of the current packet; only the reading goroutine uses it
	keep []byte // a buffer for the next packet of up to keepPacket bytes

	mu       sync.Mutex
	inTx     bool      // inside a mail transaction
	waiting  bool      // blocked waiting for the first byte of a packet
	draining bool      // Shutdown asked to end the connection
	woken    bool      // drain set a past read deadline to wake the reader
	deadline time.Time // the read deadline go-milter last set
	closed   sync.Once
	release  func() // gives the connection back to the server's limiter
}

// Read gives go-milter the bytes of the next packet.
func (c *conn) Read(p []byte) (int, error) {
	if len(c.buf) == 0 {
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// next reads one whole packet from the MTA into c.buf. It returns io.EOF,
// which go-milter takes as a quiet end of the session, when the
// connection is draining and no transaction is open, or when the packet
// is malformed (that is logged here).
func (c *conn) next() error {
	c.mu.Lock()
	if c.draining && !c.inTx {
		c.mu.Unlock()
		return io.EOF
	}
	c.waiting = true
	c.mu.Unlock()

	var hdr [4]byte
	_, err := io.ReadFull(c.Conn, hdr[:1])

	c.mu.Lock()
	c.waiting = false
	woken := c.woken
	if woken {
		c.woken = false
		// The packet has begun (or the wait was cut): read it under the
		// deadline go-milter asked for, not the one drain set.
		_ = c.Conn.SetReadDeadline(c.deadline)
	}
	c.mu.Unlock()
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if !woken {
				c.idleClosed()
			}
			return io.EOF
		}
		return err
	}

	if _, err := io.ReadFull(c.Conn, hdr[1:]); err != nil {
		return c.cut(err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxPacket {
		c.protocolError(fmt.Errorf("packet length %d out of range 1..%d", n, maxPacket))
		return io.EOF
	}
	var pkt []byte
	if 4+int(n) <= keepPacket {
		if c.keep == nil {
			c.keep = make([]byte, keepPacket)
		}
		pkt = c.keep[:4+int(n)] // c.buf is empty: go-milter has copied the last packet out
	} else {
		pkt = make([]byte, 4+int(n))
	}
	copy(pkt, hdr[:])
	if _, err := io.ReadFull(c.Conn, pkt[4:]); err != nil {
		return c.cut(err)
	}
	if err := checkPacket(pkt[4:]); err != nil {
		c.protocolError(err)
		return io.EOF
	}
	c.mu.Lock()
	switch pkt[4] {
	case cmdMail:
		c.inTx = true
	case cmdEOB, cmdAbort, cmdQuit, cmdQuitNC:
		c.inTx = false
	}
	c.mu.Unlock()
	c.buf = pkt
	return nil
}

// cut handles an error in the middle of a packet: a packet that did not
// come whole within the idle timeout ends the connection quietly, logged
// and counted as idle.
func (c *conn) cut(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.idleClosed()
		return io.EOF
	}
	return err
}

// idleClosed logs and counts a connection that waited longer than the
// idle timeout for the MTA's next packet; it ends quietly.
func (c *conn) idleClosed() {
	c.s.log.Info("closing an idle milter connection", "door", "milter", "remote", remote(c.Conn),
		"idle_timeout", c.s.idle.String())
	c.s.metrics.idleClosed.Inc()
}

// remote is a connection's peer address for the logs ("" for an unnamed
// unix socket peer).
func remote(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// protocolError logs a malformed packet from the MTA; the connection ends.
func (c *conn) protocolError(err error) {
	remote := ""
	if a := c.RemoteAddr(); a != nil {
		remote = a.String()
	}
	c.s.log.Warn("malformed milter packet; closing the connection", "door", "milter",
		"remote", remote, "err", err)
	c.s.metrics.protocolErrors.Inc()
}

// SetReadDeadline records the deadline go-milter wants, so that drain can
// restore it after waking the reader.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	if c.woken {
		return nil // keep the wake-up deadline until next() sees it
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets both deadlines; see SetReadDeadline.
func (c *conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// drain asks the connection to end at the next packet boundary outside a
// transaction. A reader idle between commands is woken at once.
func (c *conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if c.waiting && !c.inTx && !c.woken {
		c.woken = true
		_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
	}
}

// Close closes the connection and forgets it.
func (c *conn) Close() error {
	err := net.ErrClosed
	c.closed.Do(func() {
		err = c.Conn.Close()
		c.s.forget(c)
		if c.release != nil {
			c.release()
		}
	})
	return err
}

// listener registers every connection it accepts with the server.
type listener struct {
	net.Listener
	s *Server
}

// Accept waits for the next connection from the MTA. go-milter's Serve
// returns on any Accept error, so errors that pass (a connection aborted
// before it was accepted, no file descriptors or memory left) are retried
// here with a growing delay, as net/http does.
func (l *listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		nc, err := l.Listener.Accept()
		if err == nil {
			release, reason := l.s.limit.Acquire(nc.RemoteAddr())
			if reason != "" {
				l.s.metrics.refused.WithLabelValues(reason).Inc()
				l.s.log.Warn("refusing a connection", "door", "milter", "remote", remote(nc), "reason", reason)
				nc.Close()
				continue
			}
			c := &conn{Conn: nc, s: l.s, release: release}
			l.s.track(c)
			return c, nil
		}
		if !transient(err) {
			return nil, err
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		l.s.log.Error("accepting a milter connection; retrying", "door", "milter", "err", err,
			"delay_ms", delay.Milliseconds())
		time.Sleep(delay)
	}
}

// transient reports whether an Accept error may pass.
func transient(err error) bool {
	for _, e := range []error{syscall.ECONNABORTED, syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
