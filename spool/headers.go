package spool

import (
	"strings"
	"time"
)

// compose returns the header block Deliver adds on top of m for one
// recipient, and the size in bytes of the file it stores: that block,
// then m's content.
//
// The added fields, in this order (see the package documentation):
//
//	Return-Path: <sender>
//	Delivered-To: rcpt
//	Received: from helo (remoteaddr)
//		by hostname (listgate) with LMTP id ID
//		for <rcpt>; date
//	Message-ID: <generated>          (only when the message has none)
//	Message-ID-Hash: hash
//	X-Message-ID-Hash: hash
//	X-MailFrom: sender
func (m *Message) compose(env Envelope, hostname string, now time.Time) ([]byte, int64) {
	var b strings.Builder
	b.Grow(320 + 2*len(env.Rcpt) + 2*len(env.Sender) + len(env.Helo) + len(m.msgID))

	// RFC 5322 §3.6.7 and RFC 5321 §4.4: the reverse-path in angle
	// brackets, "<>" for the null sender.
	b.WriteString("Return-Path: <")
	b.WriteString(clean(env.Sender))
	b.WriteString(">\n")

	// Postfix local(8) and Dovecot add Delivered-To with the recipient as
	// delivered; we keep it exactly as received, extension included.
	b.WriteString("Delivered-To: ")
	b.WriteString(clean(env.Rcpt))
	b.WriteString("\n")

	// RFC 5321 §4.4 trace field, folded as Postfix folds its own.
	helo := clean(env.Helo)
	if helo == "" {
		helo = "unknown"
	}
	b.WriteString("Received: from ")
	b.WriteString(helo)
	if env.RemoteAddr != "" {
		b.WriteString(" (")
		b.WriteString(clean(env.RemoteAddr))
		b.WriteString(")")
	}
	b.WriteString("\n\tby ")
	b.WriteString(clean(hostname))
	b.WriteString(" (listgate) with LMTP")
	if env.ID != "" {
		b.WriteString(" id ")
		b.WriteString(clean(env.ID))
	}
	b.WriteString("\n\t")
	if env.Rcpt != "" {
		b.WriteString("for <")
		b.WriteString(clean(env.Rcpt))
		b.WriteString(">")
	}
	b.WriteString("; ")
	b.WriteString(now.Format(time.RFC1123Z)) // RFC 5322 §3.3 date-time
	b.WriteString("\n")

	// What Mailman's LMTP runner adds: a Message-ID when there is none,
	// the hash of the Message-ID (twice, the X- form for older readers)
	// and the envelope sender.
	if m.addMsgID {
		b.WriteString("Message-ID: ")
		b.WriteString(m.msgID)
		b.WriteString("\n")
	}
	b.WriteString("Message-ID-Hash: ")
	b.WriteString(m.hash)
	b.WriteString("\nX-Message-ID-Hash: ")
	b.WriteString(m.hash)
	b.WriteString("\nX-MailFrom: ")
	if env.Sender == "" {
		b.WriteString("<>") // as Mailman (aiosmtpd) records the null sender
	} else {
		b.WriteString(clean(env.Sender))
	}
	b.WriteString("\n")
	if m.headerless {
		// The message has no header section: keep its first line out of
		// ours.
		b.WriteString("\n")
	}

	added := []byte(b.String())
	return added, int64(len(added)) + m.size()
}

// clean makes an envelope value safe inside a header field: every ASCII
// control byte (0x00-0x1f, TAB, CR, LF and NUL included, and DEL) becomes
// a '?', as Postfix shows such bytes in its own log lines (printable() with
// '?'): no envelope value starts a header line, and none puts a terminal
// escape or other control into a header a list manager or an admin reads.
// Postfix's smtpd accepts these bytes in an address (it is 8-bit clean)
// and passes them on over LMTP, so the spool encodes them rather than the
// LMTP door refusing the recipient, which would bounce mail that Postfix
// already accepted; the '?' makes the stored value match Postfix's
// maillog line for the same recipient. Bytes from 0x80 up (UTF-8, or not)
// are kept.
func clean(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	b := []byte(s) // byte by byte: s need not be UTF-8
	for i, c := range b {
		if c < ' ' || c == 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}

// isControl reports whether r is an ASCII control character (C0 or DEL).
// An invalid UTF-8 byte decodes as utf8.RuneError, not a control.
func isControl(r rune) bool { return r < ' ' || r == 0x7f }
