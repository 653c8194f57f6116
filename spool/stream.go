package spool

import (
	"bytes"
	"crypto/sha1"
	"encoding/base32"
	"fmt"
	"hash"
	"io"
	"os"
)

// scanner finds the header section of a message while it streams past,
// already with LF line ends, and writes the message's content to w: the
// message minus its Message-ID-Hash and X-Message-ID-Hash fields. It
// records where the value of the first Message-ID field lies in the
// content, and whether the message has a header section at all. Its state
// is a few words whatever the message: no line is held in memory.
//
// The header section (RFC 5322 §2.1) is the run of header fields at the
// start of the message; a field is its first line plus every following
// line that starts with a space or a tab (RFC 5322 §2.2.3, folding). A
// line starts a field when it starts with a name of one or more printable
// US-ASCII characters other than ':' (RFC 5322 §2.2, ftext), then ':';
// white space between the name and the colon is accepted (RFC 5322
// §4.5.3, obsolete syntax, as Postfix's is_header accepts it). The
// section ends at the first line that neither starts a field nor continues
// one: normally the empty line before the body. That line and everything
// after it are the body and are stored unchanged. So:
//
//   - a message whose first line is empty has an empty header section and
//     already has the empty line that separates it from the body;
//   - a message that is empty, or whose first line is not a header field
//     (e.g. "hello world", " folded" or an mbox "From " line), has no
//     header section at all: the whole message is body, and an empty line
//     must separate it from the added headers, or its first line would
//     read as one of them;
//   - a malformed line in the middle of the header section ends it, as it
//     does for Python's email parser (and so for Mailman); it is kept as
//     the first line of the body, unchanged.
//
// Each line is written as it comes; a field found to be a hash field at
// its colon is taken back (spillWriter.rollback) and the rest of it is
// not written.
type scanner struct {
	w     *spillWriter
	state scanState
	first bool // at the first line of the message

	lineStart int64    // content offset where the current line began
	name      [17]byte // the first bytes of the current line's field name
	nameLen   int      // length of the whole name so far
	dropping  bool     // in a hash field: its bytes are not written
	inID      bool     // in the first Message-ID field

	headerless     bool
	found          bool  // a Message-ID field was seen
	idStart, idEnd int64 // its value (after the colon, to the end of the field) in the content
}

type scanState uint8

const (
	stLineStart scanState = iota // in the header section, at the start of a line
	stName                       // in a field name (or what may be one)
	stWSP                        // in white space after a name
	stField                      // in a line of a field, after its colon or in a continuation line
	stBody                       // past the header section
)

// isFtext reports whether c may be part of a field name.
func isFtext(c byte) bool { return c > ' ' && c < 0x7f && c != ':' }

// scan takes the next bytes of the message.
func (s *scanner) scan(p []byte) {
	for len(p) > 0 && s.w.err == nil {
		switch s.state {
		case stBody:
			s.w.write(p)
			return
		case stLineStart:
			c := p[0]
			if !s.first && (c == ' ' || c == '\t') {
				s.state = stField // a continuation line of the current field
				continue
			}
			s.endField()
			if c == '\n' {
				s.state = stBody // the empty line that ends the header section
				continue
			}
			s.lineStart, s.nameLen, s.state = s.w.pos(), 0, stName
		case stName:
			i := 0
			for i < len(p) && isFtext(p[i]) {
				i++
			}
			if s.nameLen < len(s.name) {
				copy(s.name[s.nameLen:], p[:i])
			}
			s.nameLen += i
			s.w.write(p[:i])
			p = p[i:]
			if len(p) == 0 {
				return
			}
			switch {
			case s.nameLen == 0:
				s.notField()
			case p[0] == ' ' || p[0] == '\t':
				s.state = stWSP
			default:
				p = s.colon(p)
			}
		case stWSP:
			i := 0
			for i < len(p) && (p[i] == ' ' || p[i] == '\t') {
				i++
			}
			s.w.write(p[:i])
			p = p[i:]
			if len(p) > 0 {
				p = s.colon(p)
			}
		case stField:
			i := bytes.IndexByte(p, '\n')
			line := p
			if i >= 0 {
				line, p = p[:i+1], p[i+1:]
				s.state = stLineStart
			} else {
				p = nil
			}
			if !s.dropping {
				s.w.write(line)
			}
		}
	}
}

// colon is called after a field name and its white space, with the byte
// that follows them first in p. A colon starts a field; anything else
// ends the header section.
func (s *scanner) colon(p []byte) []byte {
	if p[0] != ':' {
		s.notField()
		return p
	}
	s.first = false
	s.state = stField
	var name []byte
	if s.nameLen <= len(s.name) {
		name = s.name[:s.nameLen]
	}
	switch {
	case bytes.EqualFold(name, []byte("Message-ID-Hash")),
		bytes.EqualFold(name, []byte("X-Message-ID-Hash")):
		// Removed: Deliver adds its own (Mailman's add_message_hash
		// deletes them too).
		s.w.rollback(s.lineStart)
		s.dropping = true
	case !s.found && bytes.EqualFold(name, []byte("Message-ID")):
		s.w.write(p[:1])
		s.found, s.inID, s.idStart = true, true, s.w.pos()
	default:
		s.w.write(p[:1])
	}
	return p[1:]
}

// notField ends the header section at the current line, which is not a
// field: it and all that follows are body.
func (s *scanner) notField() {
	if s.first {
		s.headerless = true
	}
	s.state = stBody
}

// endField ends the current field, if any.
func (s *scanner) endField() {
	if s.inID {
		s.inID, s.idEnd = false, s.w.pos()
	}
	s.dropping = false
}

// end is called at the end of the message.
func (s *scanner) end() {
	switch s.state {
	case stLineStart:
		if s.first {
			s.headerless = true // an empty message
		}
		s.endField()
	case stName, stWSP:
		s.notField()
	case stField:
		s.endField()
	}
}

// spillWriter keeps the content of a message as it is written: the first
// bytes in its file once its buffer has been full, the rest in its buffer.
// The file is made on the first flush, in dir, and removed from dir at
// once. Its first error sticks: later writes do nothing.
type spillWriter struct {
	dir string
	buf []byte   // the content from off on; cap is the buffer size
	f   *os.File // holds content[:off]
	off int64
	err error
}

// pos returns the length of the content so far.
func (w *spillWriter) pos() int64 { return w.off + int64(len(w.buf)) }

func (w *spillWriter) write(p []byte) {
	for len(p) > 0 && w.err == nil {
		if len(w.buf) == cap(w.buf) {
			w.flush()
			continue
		}
		n := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf, p = w.buf[:len(w.buf)+n], p[n:]
	}
}

// flush moves the buffer to the file.
func (w *spillWriter) flush() {
	if w.f == nil {
		f, err := os.CreateTemp(w.dir, SpillPrefix+"*")
		if err != nil {
			w.err = fmt.Errorf("spool: spill message to %s: %w", w.dirName(), unwrapOS(err))
			return
		}
		w.f = f
		if err := os.Remove(f.Name()); err != nil {
			w.err = fmt.Errorf("spool: remove spill file %s: %w", f.Name(), unwrapOS(err))
			return
		}
	}
	if _, err := w.f.WriteAt(w.buf, w.off); err != nil {
		w.err = fmt.Errorf("spool: spill message to %s: %w", w.f.Name(), unwrapOS(err))
		return
	}
	w.off += int64(len(w.buf))
	w.buf = w.buf[:0]
}

// rollback cuts the content back to its first n bytes.
func (w *spillWriter) rollback(n int64) {
	if w.err != nil {
		return
	}
	if n >= w.off {
		w.buf = w.buf[:n-w.off]
		return
	}
	if err := w.f.Truncate(n); err != nil {
		w.err = fmt.Errorf("spool: truncate spill file %s: %w", w.f.Name(), unwrapOS(err))
		return
	}
	w.off, w.buf = n, w.buf[:0]
}

// close removes the file, after a failed read.
func (w *spillWriter) close() {
	if w.f != nil {
		w.f.Close()
		os.Remove(w.f.Name()) // in case the Remove after the create failed
		w.f = nil
	}
}

func (w *spillWriter) dirName() string {
	if w.dir == "" {
		return os.TempDir()
	}
	return w.dir
}

// content is the stored bytes of a message: the first n in f, the rest in
// tail. f is read with ReadAt only, so several deliveries may read it at
// once.
type content struct {
	f    *os.File
	n    int64
	tail []byte
}

// size returns the length of the content in bytes.
func (c *content) size() int64 { return c.n + int64(len(c.tail)) }

// ReadAt reads the content at off (io.ReaderAt).
func (c *content) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	if off < c.n {
		k := min(int64(len(p)), c.n-off)
		n, err := c.f.ReadAt(p[:k], off)
		done += n
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the file is shorter than written
			}
			return done, fmt.Errorf("spool: read spill file %s: %w", c.f.Name(), unwrapOS(err))
		}
		off += int64(n)
	}
	if done < len(p) && off >= c.n {
		done += copy(p[done:], c.tail[min(off-c.n, int64(len(c.tail))):])
	}
	if done < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// writeTo writes the content to w with buf as the copy buffer.
func (c *content) writeTo(w io.Writer, buf []byte) error {
	if c.n > 0 {
		if _, err := io.CopyBuffer(onlyWriter{w}, io.NewSectionReader(c.f, 0, c.n), buf); err != nil {
			return err
		}
	}
	if len(c.tail) > 0 {
		_, err := w.Write(c.tail)
		return err
	}
	return nil
}

// onlyWriter hides an *os.File's ReadFrom, so io.CopyBuffer uses the
// buffer it is given rather than one of its own.
type onlyWriter struct{ io.Writer }

// idHash returns the Message-ID whose raw value (after the colon, folding
// included) is content[start:end] and its Message-ID-Hash, reading the
// value in pieces: it is unfolded (RFC 5322 §2.2.3: the line ends are
// removed, the white space after them kept) and white space around it is
// removed; the hash is MessageIDHash's, computed without holding the
// value. The Message-ID returned is cut at maxMsgIDKept bytes.
func (c *content) idHash(start, end int64) (id, sum string, err error) {
	isSpace := func(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }
	var one [1]byte
	at := func(off int64) (byte, error) {
		_, err := c.ReadAt(one[:], off)
		return one[0], err
	}
	// The first and last bytes that are not white space.
	var buf [4096]byte
	first, last := int64(-1), int64(-1)
	for off := start; off < end && first < 0; {
		n, err := c.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
		if err != nil {
			return "", "", err
		}
		for i, b := range buf[:n] {
			if !isSpace(b) {
				first = off + int64(i)
				break
			}
		}
		off += int64(n)
	}
	if first < 0 {
		return "", MessageIDHash(""), nil
	}
	for off := end; off > first && last < 0; {
		k := min(int64(len(buf)), off-first)
		n, err := c.ReadAt(buf[:k], off-k)
		if err != nil {
			return "", "", err
		}
		for i := n - 1; i >= 0; i-- {
			if !isSpace(buf[i]) {
				last = off - k + int64(i)
				break
			}
		}
		off -= k
	}
	// MessageIDHash: one pair of enclosing angle brackets removed.
	lo, hi := first, last+1
	b0, err := at(first)
	if err != nil {
		return "", "", err
	}
	b1, err := at(last)
	if err != nil {
		return "", "", err
	}
	if first < last && b0 == '<' && b1 == '>' {
		lo, hi = first+1, last
	}
	h := sha1.New()
	var kept []byte
	if err := c.unfold(first, last+1, buf[:], func(p []byte) {
		if room := maxMsgIDKept - len(kept); room > 0 {
			kept = append(kept, p[:min(len(p), room)]...)
		}
	}); err != nil {
		return "", "", err
	}
	if err := c.unfold(lo, hi, buf[:], func(p []byte) { h.Write(p) }); err != nil {
		return "", "", err
	}
	return string(kept), encodeHash(h), nil
}

// unfold passes content[start:end] to fn in pieces, without its LFs.
func (c *content) unfold(start, end int64, buf []byte, fn func([]byte)) error {
	for off := start; off < end; {
		n, err := c.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
		if err != nil {
			return err
		}
		p := buf[:n]
		for len(p) > 0 {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				fn(p)
				break
			}
			fn(p[:i])
			p = p[i+1:]
		}
		off += int64(n)
	}
	return nil
}

// encodeHash returns a SHA-1 sum as MessageIDHash writes it.
func encodeHash(h hash.Hash) string {
	return base32.StdEncoding.EncodeToString(h.Sum(nil))
}
