package lmtp

import (
	"bytes"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultMinDataRate is the slowest a message (DATA, or a BDAT chunk) may
// come, in bytes per second, once the command timeout is used up: 500,
// Postfix's smtpd_min_data_rate.
const DefaultMinDataRate = 500

// readBuf is the first size of a connection's read buffer; it grows only
// for a command line longer than that.
const readBuf = 4096

// deadlines is the read side of an LMTP connection under the door's own
// deadlines. go-smtp v0.25.1 sets a read deadline before each command
// line and none while it reads a message, and when the deadline passes in
// the middle of a line, net/textproto hands it the partial line without
// the error and it runs that as a command (bufio.Reader.ReadLine drops an
// error that comes after some bytes). So the door keeps the deadlines
// itself, in the manner of Postfix's smtpd_timeout with
// smtpd_per_record_deadline and smtpd_min_data_rate:
//
//   - Each command line must arrive whole within timeout of the moment
//     go-smtp starts to wait for it; trickling bytes do not extend it. go-smtp
//     announces that moment by calling SetReadDeadline, whose value is
//     ignored.
//   - While go-smtp waits for a command line, bytes after the last line end
//     are held back until the line is complete. When the deadline passes,
//     go-smtp gets the error and no partial line: it answers 421 4.4.2
//     and closes the connection, and the partial line is never run.
//   - Message bytes (DATA, a BDAT chunk, which follow their command's line)
//     are passed on as they come, and each earns 1/rate seconds: the
//     deadline is the command's start + timeout + bytes/rate, but never more
//     than timeout after the latest read. A message of n bytes may thus
//     take timeout + n/rate; a client sending slower than rate is cut
//     after about timeout.
//   - A deadline that passed is final: every later read fails. When it
//     passes while a message is being read, the connection is closed at
//     once, so nothing go-smtp writes after it (a 554 for a BDAT chunk)
//     reaches the client, which retries the message later.
//
// go-smtp reads a message after its command line without asking for a
// new deadline; to know where a BDAT chunk ends (it need not end a line,
// and it may follow its command in the same packet), the released bytes
// are parsed for BDAT command lines as go-smtp parses them.
type deadlines struct {
	nc        net.Conn
	timeout   time.Duration // 0: none
	rate      int64         // bytes per second; > 0
	maxHold   int           // the longest command line held back (go-smtp's MaxLineLength)
	onTimeout func(awaiting bool)

	// Only the reading goroutine (one at a time: go-smtp's connection
	// goroutine, or the one it runs LMTPData in while it waits) touches
	// these.
	buf       []byte
	r, w      int   // buf[r:w] are read from nc and not yet released
	chunk     int64 // bytes of a BDAT chunk still to release
	lineStart bool  // the next byte released begins a line

	mu       sync.Mutex
	awaiting bool      // go-smtp waits for a command line
	partial  bool      // the released bytes end inside a line (not in a chunk)
	start    time.Time // when go-smtp began waiting for the current command
	passed   int64     // message bytes released since start
	deadline time.Time // the deadline set on nc
	err      error     // the deadline passed: every read fails with it
}

func newDeadlines(nc net.Conn, timeout time.Duration, rate int64, maxHold int, onTimeout func(bool)) *deadlines {
	return &deadlines{nc: nc, timeout: timeout, rate: rate, maxHold: maxHold, onTimeout: onTimeout, lineStart: true}
}

// begin starts the wait for a command line: go-smtp calls SetReadDeadline
// right before it reads one.
//
// go-smtp calls it for every command line, also for lines it already
// holds in its own buffer: when a BDAT line came in the same packet as
// the commands before it, the chunk's bytes are still to come (d.chunk >
// 0) when go-smtp asks for the BDAT line, and what it reads next is the
// chunk. Then the wait is for message bytes, which earn time at the data
// rate and are never held back.
func (d *deadlines) begin() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil
	}
	d.awaiting, d.start, d.passed = d.chunk == 0, time.Now(), 0
	d.deadline = time.Time{}
	if d.timeout > 0 {
		d.deadline = d.start.Add(d.timeout)
	}
	return d.nc.SetReadDeadline(d.deadline)
}

// Read gives go-smtp the bytes it may have: see deadlines.
func (d *deadlines) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		d.mu.Lock()
		err := d.err
		d.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if n := d.release(p); n > 0 {
			return n, nil
		}
		if err := d.fill(); err != nil {
			return 0, d.fail(err)
		}
	}
}

// release copies into p the held bytes go-smtp may have now, and returns
// how many.
func (d *deadlines) release(p []byte) int {
	held := d.buf[d.r:d.w]
	if len(held) == 0 {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var end int
	if d.chunk > 0 {
		end = int(min(int64(len(held)), d.chunk))
	} else if end = bytes.LastIndexByte(held, '\n') + 1; end == 0 {
		if d.awaiting && len(held) <= d.maxHold {
			return 0 // the line is not complete: hold it back
		}
		// A message line in pieces, or a command line too long, which
		// go-smtp's own line limit then refuses.
		end = len(held)
	}
	n := copy(p, held[:end])
	out := held[:n]
	d.r += n
	if d.r == d.w {
		d.r, d.w = 0, 0
		if cap(d.buf) > 16*readBuf {
			d.buf = nil // a long line has passed: do not keep its buffer
		}
	}
	wasAwaiting := d.awaiting
	if d.awaiting && d.chunk == 0 && bytes.IndexByte(out, '\n') >= 0 {
		d.awaiting = false // the command line is complete; what follows is the message's
	}
	d.scan(out)
	d.partial = !d.lineStart && d.chunk == 0
	if !wasAwaiting {
		d.credit(n)
	}
	return n
}

// scan follows the command lines in out, bytes just released, to find
// BDAT chunks: the size go-smtp will read after a BDAT line, whatever
// they contain.
func (d *deadlines) scan(out []byte) {
	for len(out) > 0 {
		if d.chunk > 0 {
			k := int(min(int64(len(out)), d.chunk))
			out, d.chunk = out[k:], d.chunk-int64(k)
			d.lineStart = d.chunk == 0
			continue
		}
		i := bytes.IndexByte(out, '\n')
		if i < 0 {
			d.lineStart = false
			return
		}
		if d.lineStart {
			d.chunk = bdatSize(out[:i])
		}
		out, d.lineStart = out[i+1:], true
	}
}

// bdatSize returns the size of the chunk that follows line, if it is a
// BDAT command go-smtp reads a chunk after (RFC 3030 §2: "BDAT" SP size
// [SP "LAST"]), and 0 otherwise.
func bdatSize(line []byte) int64 {
	l := strings.TrimRight(string(line), "\r")
	if len(l) < 6 || !strings.EqualFold(l[:5], "BDAT ") {
		return 0
	}
	args := strings.Fields(l[5:])
	if len(args) == 0 || len(args) > 2 || len(args) == 2 && !strings.EqualFold(args[1], "LAST") {
		return 0
	}
	n, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		return 0
	}
	return int64(n)
}

// credit moves the deadline on for n message bytes: see deadlines.
// Called with mu held.
func (d *deadlines) credit(n int) {
	d.passed += int64(n)
	if d.timeout <= 0 || d.start.IsZero() {
		return
	}
	now := time.Now()
	next := d.start.Add(d.timeout + time.Duration(float64(d.passed)/float64(d.rate)*float64(time.Second)))
	if limit := now.Add(d.timeout); next.After(limit) {
		next = limit
	}
	if next.After(d.deadline) {
		d.deadline = next
		d.nc.SetReadDeadline(next)
	}
}

// fill reads more bytes from the connection into buf.
func (d *deadlines) fill() error {
	if d.buf == nil {
		d.buf = make([]byte, readBuf)
	}
	if d.w == len(d.buf) {
		if d.r > 0 {
			d.w = copy(d.buf, d.buf[d.r:d.w])
			d.r = 0
		} else {
			d.buf = append(d.buf, make([]byte, len(d.buf))...)
		}
	}
	n, err := d.nc.Read(d.buf[d.w:])
	d.w += n
	if n > 0 {
		return nil // an error comes again at the next read
	}
	return err
}

// fail handles a read error. A deadline that passed is final; during a
// message, or when go-smtp may hold a partial line (after a BDAT chunk
// the door could not follow), the connection is closed too.
func (d *deadlines) fail(err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	d.mu.Lock()
	if d.err != nil {
		d.mu.Unlock()
		return d.err
	}
	d.err = err
	awaiting := d.awaiting && d.chunk == 0
	closeNow := !awaiting || d.partial
	d.r, d.w = 0, 0 // a partial command line is dropped
	d.mu.Unlock()
	if d.onTimeout != nil {
		d.onTimeout(awaiting) // logged and counted before the client can see the end
	}
	if closeNow {
		d.nc.Close()
	}
	return err
}
