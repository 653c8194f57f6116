package forward

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// errNotListgate is the permanent failure of a file in new/ that does not
// start with the fields listgate's spool adds: it was not delivered by
// listgate, or was changed since, and its envelope cannot be recovered.
var errNotListgate = errors.New("not a message listgate stored: its first lines are not Return-Path, Delivered-To and Received")

// stored is a message file of the spool, opened for forwarding: its
// envelope, recovered from the fields listgate added on top
// (docs/design.md, "The spool"), and those fields themselves.
type stored struct {
	sender string // the envelope sender; "" for the null sender
	rcpt   string // the recipient as received, extension included

	returnPath, deliveredTo []byte // the two fields, with their LF
	received                []byte // listgate's Received field (folded), with its LF
	messageID               []byte // the Message-ID listgate generated, if it did; else nil
	// rest reads the message after listgate's fields: its own header
	// section and body, as stored (LF line ends).
	rest *bufio.Reader
}

// maxAddedLine bounds each line of the added fields: they hold an
// address, a host name or a date, never a long text.
const maxAddedLine = 8192

// readStored reads the fields listgate added on top of a stored message,
// in the order spool.Deliver writes them:
//
//	Return-Path: <sender>
//	Delivered-To: rcpt
//	Received: ... (with its continuation lines)
//	Message-ID: <...>        (only when listgate generated one)
//	Message-ID-Hash: ...
//	X-Message-ID-Hash: ...
//	X-MailFrom: ...
//
// and leaves r at the first byte after them. Any other start is
// errNotListgate.
func readStored(r *bufio.Reader) (*stored, error) {
	s := &stored{rest: r}
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	v, ok := fieldValue(line, "Return-Path")
	if !ok || len(v) < 2 || v[0] != '<' || v[len(v)-1] != '>' {
		return nil, errNotListgate
	}
	s.sender, s.returnPath = string(v[1:len(v)-1]), line
	if line, err = readLine(r); err != nil {
		return nil, err
	}
	if v, ok = fieldValue(line, "Delivered-To"); !ok || len(v) == 0 {
		return nil, errNotListgate
	}
	s.rcpt, s.deliveredTo = string(v), line
	if line, err = readLine(r); err != nil {
		return nil, err
	}
	if _, ok = fieldValue(line, "Received"); !ok {
		return nil, errNotListgate
	}
	s.received = line
	for {
		b, err := r.Peek(1)
		if err != nil || (b[0] != ' ' && b[0] != '\t') {
			break
		}
		if line, err = readLine(r); err != nil {
			return nil, err
		}
		s.received = append(s.received, line...)
	}
	// Then what Mailman's runner adds: kept only for a generated
	// Message-ID, which the message lacks without it.
	want := []string{"Message-ID", "Message-ID-Hash", "X-Message-ID-Hash", "X-MailFrom"}
	for i := 0; i < len(want); i++ {
		if line, err = readLine(r); err != nil {
			return nil, err
		}
		if _, ok := fieldValue(line, want[i]); ok {
			if i == 0 {
				s.messageID = line
			}
			continue
		}
		if i == 0 { // no Message-ID: the message had its own
			if _, ok := fieldValue(line, want[1]); ok {
				i++
				continue
			}
		}
		return nil, fmt.Errorf("%w (no %s field)", errNotListgate, want[i])
	}
	return s, nil
}

// readLine reads one line with its LF; a line that ends the file without
// one, or is longer than maxAddedLine, is errNotListgate.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxAddedLine {
			return nil, errNotListgate
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, errNotListgate
		default:
			return nil, err
		}
	}
}

// fieldValue returns the value of line if it is the field name (exact
// spelling, as the spool writes it) followed by ": ", without the LF.
func fieldValue(line []byte, name string) ([]byte, bool) {
	if len(line) < len(name)+2 || string(line[:len(name)]) != name || line[len(name)] != ':' || line[len(name)+1] != ' ' {
		return nil, false
	}
	return bytes.TrimSuffix(line[len(name)+2:], []byte("\n")), true
}

// lmtpHeader is what an LMTP next hop gets of listgate's fields: the
// Received trace field and a generated Message-ID. Return-Path and
// Delivered-To are the envelope, which the next hop records itself;
// Message-ID-Hash, X-Message-ID-Hash and X-MailFrom are added by
// Mailman's LMTP runner, which would otherwise find listgate's copies
// next to its own.
func (s *stored) lmtpHeader() []byte {
	return append(append([]byte(nil), s.received...), s.messageID...)
}

// execHeader is what a command next hop gets: Return-Path and
// Delivered-To on top, as Postfix's local(8) and pipe(8) (flags=DR) put
// them for a command, then Received and a generated Message-ID. Mailman's
// fields are removed, as for LMTP.
func (s *stored) execHeader() []byte {
	var b []byte
	b = append(b, s.returnPath...)
	b = append(b, s.deliveredTo...)
	b = append(b, s.received...)
	return append(b, s.messageID...)
}

// MaxLineLength is the longest line, in octets without its CRLF, that is
// sent to an LMTP next hop: RFC 5321 §4.5.3.1.6's 1000 octets with the
// CRLF, Postfix's lmtp_line_length_limit (998).
const MaxLineLength = 998

// foldWriter writes a stored message (LF line ends) to go-smtp's DATA
// writer, which turns LF into CRLF and dot-stuffs. A line longer than
// MaxLineLength is broken as Postfix's smtp(8)/lmtp(8) break it (postconf(5),
// smtp_line_length_limit): after 998 octets a line end and a space are
// inserted, so the rest reads as a continuation line, and so on; no line
// on the wire exceeds 998 octets.
type foldWriter struct {
	w   io.Writer
	col int // octets on the current line
	buf []byte
}

func (f *foldWriter) Write(p []byte) (int, error) {
	f.buf = f.buf[:0]
	for _, c := range p {
		if c == '\n' {
			f.col = 0
		} else {
			if f.col == MaxLineLength {
				f.buf = append(f.buf, '\n', ' ')
				f.col = 1
			}
			f.col++
		}
		f.buf = append(f.buf, c)
	}
	if _, err := f.w.Write(f.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}
