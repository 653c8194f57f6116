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
	"sync"
	"time"
)

// Message is one received message, read once by ReadMessage and delivered
// to any number of recipients by Spool.Deliver. Its content is what every
// recipient's file holds below the added headers: the message as received
// with each CRLF turned into LF and every Message-ID-Hash and
// X-Message-ID-Hash field of its header section removed. Memory is
// bounded whatever the size of the message: the content is kept in a
// buffer of SpillBuffer bytes, and what does not fit goes to a spill
// file (see ReadMessage). A Message is never modified after ReadMessage
// returns, so it is safe to deliver from several goroutines at once;
// Close releases it, after the last delivery.
type Message struct {
	content          // the stored bytes of the message, after the added headers
	wireSize int64   // len of the message as received, before CRLF -> LF
	buf      *[]byte // the pooled buffer tail lives in, for Close

	mu     sync.RWMutex // Close against Deliver
	closed bool

	// headerless is true when the message has no header section (it is
	// empty, or its first line is not a header field): Deliver puts an
	// empty line between the added headers and the message.
	headerless bool

	msgID    string // the Message-ID, unfolded and trimmed (at most maxMsgIDKept bytes), or the generated one
	addMsgID bool   // msgID was generated: Deliver adds a Message-ID field
	hash     string // Message-ID-Hash of the whole Message-ID
}

// SpillBuffer is the size in bytes of the buffer that holds a message
// while ReadMessage reads it, and its end afterwards: a message whose
// content fits in it is never written anywhere but in its recipients'
// files. Each message being read or delivered holds one such buffer, and
// one read buffer of 32 KiB while it is read, whatever its size.
const SpillBuffer = 64 << 10

// readBufSize is the size in bytes of the buffer ReadMessage reads into.
const readBufSize = 32 << 10

// maxMsgIDKept bounds the Message-ID that MessageID returns; the hash is
// of the whole value whatever its length.
const maxMsgIDKept = 64 << 10

// SpillPrefix starts the name of a spill file in the spool root (a dot
// name: Folders and the forwarder skip it). The file is removed from the
// directory as soon as it is made, so a crash leaves nothing behind but,
// if it comes within that instant, an empty file that CleanTmp removes.
const SpillPrefix = ".listgate-msg-"

var (
	spillPool = sync.Pool{New: func() any { b := make([]byte, 0, SpillBuffer); return &b }}
	readPool  = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}
)

// ReadMessage reads all of r (the DATA of an LMTP transaction, after
// dot-unstuffing, lines ending in CRLF) and returns it as a Message, which
// the caller must Close once it is delivered. An error from r is returned
// wrapped with %w, so the caller can still find it with errors.Is or
// errors.As (for example go-smtp's smtp.ErrDataTooLarge, returned by its
// DATA reader when the message exceeds the server's MaxMessageBytes); no
// Message is returned then.
//
// No content makes ReadMessage fail: malformed headers, 8-bit or non-UTF-8
// bytes, NUL and long lines are all kept. The message is streamed: its
// header section is scanned and its CRLFs turned into LF as it is read,
// and at most SpillBuffer bytes of it are held in memory, however large
// the message or its header section. The rest goes to a spill file, in
// the system's temporary directory for this function and in the spool
// root for Spool.ReadMessage, removed from the directory as soon as it is
// made (a crash leaves nothing behind). The spill file is written as the
// message arrives, so a reader that stops at a size limit (as go-smtp's
// does) bounds the disk used as well. A failure to write it is an error
// that names the file and wraps the system's (IsNoSpace reports a full
// disk).
//
// When the message has no Message-ID field, ReadMessage generates one
// (as Mailman's LMTP runner does), so every recipient of the message gets
// the same Message-ID and Message-ID-Hash.
func ReadMessage(r io.Reader) (*Message, error) {
	host, _ := os.Hostname()
	return readMessageIn(r, "", SpillBuffer, func() string { return generateMessageID(host) })
}

// ReadMessage is the package's ReadMessage with a generated Message-ID
// naming the spool's Hostname (--hostname) rather than the system's, and
// the spill file of a large message in the spool root, on the file system
// of the folders.
func (s *Spool) ReadMessage(r io.Reader) (*Message, error) {
	return readMessageIn(r, s.dir, SpillBuffer, func() string { return generateMessageID(s.hostname) })
}

// readMessage is ReadMessage with the Message-ID generator given, so tests
// get exact bytes.
func readMessage(r io.Reader, genID func() string) (*Message, error) {
	return readMessageIn(r, "", SpillBuffer, genID)
}

// readMessageIn reads r into a Message that holds bufSize bytes in memory
// and whose spill file, if it needs one, is made in dir ("" for the
// system's temporary directory).
func readMessageIn(r io.Reader, dir string, bufSize int, genID func() string) (m *Message, err error) {
	var buf *[]byte
	if bufSize == SpillBuffer {
		buf = spillPool.Get().(*[]byte)
	} else {
		b := make([]byte, 0, bufSize)
		buf = &b
	}
	w := &spillWriter{dir: dir, buf: (*buf)[:0]}
	defer func() {
		if m == nil {
			w.close()
			if bufSize == SpillBuffer {
				spillPool.Put(buf)
			}
		}
	}()
	sc := scanner{w: w, first: true}
	rb := readPool.Get().(*[]byte)
	defer readPool.Put(rb)
	var wire int64
	cr := false // the last read ended in a CR, not scanned yet
	for w.err == nil {
		n, rerr := r.Read(*rb)
		if n > 0 {
			wire += int64(n)
			p := (*rb)[:n]
			if cr {
				cr = false
				if p[0] != '\n' {
					sc.scan([]byte{'\r'}) // a lone CR; else the CR of a split CRLF
				}
			}
			if p[len(p)-1] == '\r' {
				cr, p = true, p[:len(p)-1]
			}
			sc.scan(crlfToLF(p))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, fmt.Errorf("spool: read message: %w", rerr)
		}
	}
	if cr {
		sc.scan([]byte{'\r'})
	}
	sc.end()
	if w.err != nil {
		return nil, w.err
	}
	m = &Message{content: content{f: w.f, n: w.off, tail: w.buf}, wireSize: wire, headerless: sc.headerless}
	if bufSize == SpillBuffer {
		m.buf = buf
	}
	if sc.found {
		if m.msgID, m.hash, err = m.idHash(sc.idStart, sc.idEnd); err != nil {
			m.Close()
			return nil, err
		}
	} else {
		m.msgID = genID()
		m.addMsgID = true
		m.hash = MessageIDHash(m.msgID)
	}
	return m, nil
}

// Close releases the message: its spill file, if it has one, and its
// buffer. It waits for deliveries in progress; Deliver fails after Close.
// Close may be called more than once.
func (m *Message) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	var err error
	if m.f != nil {
		err = m.f.Close()
	}
	m.content = content{}
	if m.buf != nil {
		spillPool.Put(m.buf)
		m.buf = nil
	}
	return err
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
