package spool

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Message is one received message, read once by ReadMessage and delivered
// to any number of recipients by Spool.Deliver. It holds the whole message
// in memory with each CRLF turned into LF, the result of one scan of its
// header section, and its Message-ID and Message-ID-Hash. A Message is
// never modified after ReadMessage returns, so it is safe to deliver from
// several goroutines at once.
type Message struct {
	data     []byte // the message as received, each CRLF turned into LF
	wireSize int64  // len of the message as received, before CRLF -> LF

	// header holds the parts of the header section that are stored: the
	// header section minus every Message-ID-Hash and X-Message-ID-Hash
	// field. Each part is a sub-slice of data.
	header [][]byte
	// body is data from the end of the header section on (the empty line
	// that ends the header section included). A sub-slice of data.
	body []byte
	// headerless is true when the message has no header section (it is
	// empty, or its first line is not a header field): Deliver puts an
	// empty line between the added headers and the message.
	headerless bool

	msgID    string // the Message-ID, unfolded and trimmed, or the generated one
	addMsgID bool   // msgID was generated: Deliver adds a Message-ID field
	hash     string // Message-ID-Hash of msgID
}

// ReadMessage reads all of r (the DATA of an LMTP transaction, after
// dot-unstuffing, lines ending in CRLF) and returns it as a Message. An
// error from r is returned wrapped with %w, so the caller can still find it
// with errors.Is or errors.As (for example go-smtp's smtp.ErrDataTooLarge,
// returned by its DATA reader when the message exceeds the server's
// MaxMessageBytes); no Message is returned then.
//
// No content makes ReadMessage fail: malformed headers, 8-bit or non-UTF-8
// bytes, NUL and long lines are all kept. The whole message is held in
// memory, so r must be bounded (the LMTP door's size limit does that).
//
// When the message has no Message-ID field, ReadMessage generates one
// (as Mailman's LMTP runner does), so every recipient of the message gets
// the same Message-ID and Message-ID-Hash.
func ReadMessage(r io.Reader) (*Message, error) {
	host, _ := os.Hostname()
	return readMessage(r, func() string { return generateMessageID(host) })
}

// ReadMessage is the package's ReadMessage with a generated Message-ID
// naming the spool's Hostname (--hostname) rather than the system's.
func (s *Spool) ReadMessage(r io.Reader) (*Message, error) {
	return readMessage(r, func() string { return generateMessageID(s.hostname) })
}

// readMessage is ReadMessage with the Message-ID generator given, so tests
// get exact bytes.
func readMessage(r io.Reader, genID func() string) (*Message, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("spool: read message: %w", err)
	}
	return newMessage(data, genID), nil
}

// newMessage converts data in place and scans its header section.
func newMessage(data []byte, genID func() string) *Message {
	m := &Message{wireSize: int64(len(data))}
	m.data = crlfToLF(data)
	rawID, found := m.scanHeader()
	if found {
		m.msgID = string(unfoldTrim(rawID))
	} else {
		m.msgID = genID()
		m.addMsgID = true
	}
	m.hash = MessageIDHash(m.msgID)
	return m
}

// Size returns the size of the message in bytes as received on the wire
// (CRLF line endings, before the conversion to LF), for size checks
// against SIZE= and max_message_size. It does not count the headers
// Deliver adds.
func (m *Message) Size() int64 { return m.wireSize }

// MessageID returns the value of the message's first Message-ID field,
// unfolded and with surrounding white space removed but angle brackets
// kept (e.g. "<ant@example.org>"), or the Message-ID that ReadMessage
// generated when the message had none. It may be any bytes the sender
// sent, including the empty string for an empty Message-ID field.
func (m *Message) MessageID() string { return m.msgID }

// Hash returns the Message-ID-Hash of the message: see MessageIDHash.
// Deliver stores it in the Message-ID-Hash and X-Message-ID-Hash fields.
func (m *Message) Hash() string { return m.hash }

// MessageIDHash returns Mailman's Message-ID-Hash of a Message-ID value:
// the value with surrounding white space removed, then one pair of
// enclosing angle brackets removed, hashed with SHA-1 and encoded in
// upper-case base32 (RFC 4648 §6, 32 characters, no padding needed).
// MessageIDHash("<ant>") is "MS6QLWERIJLGCRF44J7USBFDELMNT2BW".
//
// Mailman's add_message_hash strips the brackets only when the value as
// parsed starts with '<' and ends with '>', and strips white space
// otherwise; trimming first and then stripping the brackets gives the same
// hash for every well-formed Message-ID and the one readers expect for a
// value with stray white space around it.
func MessageIDHash(id string) string {
	id = strings.Trim(id, " \t\r\n")
	if len(id) >= 2 && id[0] == '<' && id[len(id)-1] == '>' {
		id = id[1 : len(id)-1]
	}
	sum := sha1.Sum([]byte(id))
	return base32.StdEncoding.EncodeToString(sum[:])
}

// generateMessageID returns a new Message-ID in the shape of Python's
// email.utils.make_msgid, which Mailman's LMTP runner uses:
// <time.pid.random@host>. host is cleaned to a dot-atom; empty becomes
// "localhost".
func generateMessageID(host string) string {
	host = dotAtom(host)
	if host == "" {
		host = "localhost"
	}
	var r [8]byte
	rand.Read(r[:])
	return "<" + strconv.FormatInt(time.Now().UnixNano(), 10) + "." +
		strconv.Itoa(os.Getpid()) + "." + hex.EncodeToString(r[:]) + "@" + host + ">"
}

// dotAtom keeps the bytes of s that may appear in the domain part of a
// Message-ID without quoting (letters, digits, '-', '.'), so a strange
// host name cannot make the generated Message-ID malformed.
func dotAtom(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return -1
	}, s)
}

var crlf = []byte("\r\n")

// crlfToLF turns each CRLF of b into LF, in place, and returns the
// shortened slice. A CR not followed by LF and an LF not preceded by CR
// are kept. It copies each stretch between line ends once (memmove), so
// it is linear in len(b).
func crlfToLF(b []byte) []byte {
	i := bytes.Index(b, crlf)
	if i < 0 {
		return b
	}
	w := i // b[:w] is final
	for {
		b[w] = '\n'
		w++
		r := i + 2 // first byte after this CRLF
		j := bytes.Index(b[r:], crlf)
		if j < 0 {
			w += copy(b[w:], b[r:])
			return b[:w]
		}
		w += copy(b[w:], b[r:r+j])
		i = r + j
	}
}

// fieldName returns the name of the header field that starts line (which
// need not end at a line end), and whether line starts a header field at
// all.
//
// A header field starts with a name of one or more printable US-ASCII
// characters other than ':' (RFC 5322 §2.2, ftext), then ':'. White space
// between the name and the colon is accepted (RFC 5322 §4.5.3, obsolete
// syntax, as Postfix's is_header accepts it). Anything else, including a
// line that starts with white space (a continuation line) or an mbox
// "From " line, does not start a header field.
func fieldName(line []byte) (name []byte, ok bool) {
	i := 0
	for i < len(line) && line[i] > ' ' && line[i] < 0x7f && line[i] != ':' {
		i++
	}
	if i == 0 {
		return nil, false
	}
	n := i
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i == len(line) || line[i] != ':' {
		return nil, false
	}
	return line[:n], true
}

// scanHeader finds the header section of m.data, sets m.header, m.body
// and m.headerless, and returns the raw value (after the colon, folding
// included) of the first Message-ID field.
//
// The header section (RFC 5322 §2.1) is the run of header fields at the
// start of the message; a field is its first line plus every following
// line that starts with a space or a tab (RFC 5322 §2.2.3, folding). The
// section ends at the first line that neither starts a field nor continues
// one: normally the empty line before the body. That line and everything
// after it are the body and are stored unchanged. So:
//
//   - a message whose first line is empty has an empty header section and
//     already has the empty line that separates it from the body;
//   - a message that is empty, or whose first line is not a header field
//     (e.g. "hello world" or " folded"), has no header section at all: the
//     whole message is body, and an empty line must separate it from the
//     added headers, or its first line would read as one of them;
//   - a malformed line in the middle of the header section ends it, as it
//     does for Python's email parser (and so for Mailman); it is kept as
//     the first line of the body, unchanged.
//
// Only the header section is scanned; the body is neither read nor copied.
func (m *Message) scanHeader() (msgID []byte, found bool) {
	data := m.data
	if len(data) == 0 || data[0] != '\n' {
		if _, ok := fieldName(data); !ok {
			m.headerless = true
			m.body = data
			return nil, false
		}
	}
	pos := 0      // start of the current field
	keepFrom := 0 // start of the run of kept fields not yet in m.header
	for pos < len(data) && data[pos] != '\n' {
		name, ok := fieldName(data[pos:])
		if !ok {
			break
		}
		end := pos // end of the field, after its last LF
		for {
			nl := bytes.IndexByte(data[end:], '\n')
			if nl < 0 {
				end = len(data)
				break
			}
			end += nl + 1
			if end == len(data) || (data[end] != ' ' && data[end] != '\t') {
				break
			}
		}
		switch {
		case bytes.EqualFold(name, []byte("Message-ID-Hash")),
			bytes.EqualFold(name, []byte("X-Message-ID-Hash")):
			// Removed: Deliver adds its own (Mailman's add_message_hash
			// deletes them too).
			if keepFrom < pos {
				m.header = append(m.header, data[keepFrom:pos])
			}
			keepFrom = end
		case !found && bytes.EqualFold(name, []byte("Message-ID")):
			colon := bytes.IndexByte(data[pos:end], ':')
			msgID, found = data[pos+colon+1:end], true
		}
		pos = end
	}
	if keepFrom < pos {
		m.header = append(m.header, data[keepFrom:pos])
	}
	m.body = data[pos:]
	return msgID, found
}

// unfoldTrim unfolds a header field value (RFC 5322 §2.2.3: the line ends
// of a folded field are removed, the white space after them kept) and
// removes white space around it.
func unfoldTrim(v []byte) []byte {
	if bytes.IndexByte(v, '\n') >= 0 {
		v = bytes.ReplaceAll(v, []byte("\n"), nil)
	}
	return bytes.Trim(v, " \t\r")
}
