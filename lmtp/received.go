package lmtp

import (
	"bytes"
	"io"
)

// maxHead is how much of a message headReader keeps: enough for the
// topmost Received: field, which Postfix writes first in its queue file
// (its own is about 1 KiB with TLS details).
const maxHead = 16 << 10

// maxQueueID bounds a queue id: Postfix's long ids have 15 to 17
// characters, its short ones 10 to 12.
const maxQueueID = 64

// headReader passes a message through and keeps its first maxHead bytes,
// for receivedQueueID.
type headReader struct {
	r    io.Reader
	head []byte
}

func (h *headReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if k := min(n, maxHead-len(h.head)); k > 0 {
		h.head = append(h.head, p[:k]...)
	}
	return n, err
}

// receivedQueueID returns the queue id that the topmost Received: field
// of a message names, or "". head is the start of the message as
// received (CRLF or LF line ends).
//
// Postfix's smtpd writes that field first in its queue file, so the id is
// Postfix's queue id for the message it hands the LMTP door, the one its
// own log lines carry ("postfix/smtpd[...]: 4Xyz...: client=..."):
//
//	Received: from mx.sender.example (mx.sender.example [192.0.2.1])
//		by mx.example.org (Postfix) with ESMTPS id 4TvJkQ1Z5Bz9sW0
//		for <announce@example.org>; Tue, 12 Mar 2024 10:00:00 +0100 (CET)
//
// The id is the ID clause of RFC 5321 §4.4's time-stamp line: the word
// "id" (any case) after the "by" clause and before the ";" that precedes
// the date. Comments, in parentheses, may hold anything (TLS details, an
// authenticated sender) and are skipped. Postfix's pickup (mail from the
// local sendmail command) writes the same clause without "with". An id
// that is not 1 to 64 letters and digits, as Postfix's are, is not
// taken; neither is an id in any Received: field but the topmost.
func receivedQueueID(head []byte) string {
	value, ok := topReceived(head)
	if !ok {
		return ""
	}
	var seenBy, wantID bool
	for tok, rest := nextToken(value); tok != nil; tok, rest = nextToken(rest) {
		last := false
		if i := bytes.IndexByte(tok, ';'); i >= 0 {
			tok, last = tok[:i], true
		}
		switch {
		case wantID:
			if validQueueID(tok) {
				return string(tok)
			}
			return ""
		case bytes.EqualFold(tok, []byte("by")):
			seenBy = true
		case seenBy && bytes.EqualFold(tok, []byte("id")):
			wantID = true
		}
		if last {
			return ""
		}
	}
	return ""
}

// topReceived returns the value of the first Received: field of the
// header section at the start of msg, its folded lines joined, and
// whether there is one.
func topReceived(msg []byte) ([]byte, bool) {
	var value []byte
	in := false // inside the Received: field
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if in {
				value = append(append(value, ' '), line...)
			}
			continue // a continuation line
		}
		if in {
			return value, true
		}
		name, v, ok := bytes.Cut(line, []byte(":"))
		if len(line) == 0 || !ok || !fieldName(name) {
			return nil, false // the end of the header section
		}
		if bytes.EqualFold(name, []byte("Received")) {
			in = true
			value = append(value, v...)
		}
	}
	return value, in
}

// fieldName reports whether b is a header field name (RFC 5322 §3.6.8:
// printable US-ASCII but ':').
func fieldName(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return len(b) > 0
}

// nextToken returns the next word of a field value, after skipping white
// space and comments (RFC 5322 §3.2.2: parentheses, nested, with
// backslash quoting), and the rest of the value; nil when there is none.
func nextToken(b []byte) (tok, rest []byte) {
	for len(b) > 0 {
		switch c := b[0]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			b = b[1:]
		case c == '(':
			b = skipComment(b)
		default:
			i := bytes.IndexAny(b, " \t\r\n(")
			if i < 0 {
				return b, nil
			}
			return b[:i], b[i:]
		}
	}
	return nil, nil
}

// skipComment returns b after the comment it starts with, or nothing if
// the comment does not end.
func skipComment(b []byte) []byte {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return b[i+1:]
			}
		}
	}
	return nil
}

// validQueueID reports whether id looks like a Postfix queue id: 1 to
// maxQueueID ASCII letters and digits.
func validQueueID(id []byte) bool {
	if len(id) == 0 || len(id) > maxQueueID {
		return false
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}
