package milter

import (
	"bytes"
	"math"
)

// sizeMargin is the part of the margin (see margin) that does not depend
// on the session: what Postfix adds to a message after the milter has
// seen it and before the LMTP door judges it, besides the HELO name and
// the recipient that margin adds on top.
//
// Postfix's smtpd prepends its own Received: header and never shows it to
// milters (Sendmail compatibility, milter8.c milter8_header). Leaving out
// the HELO name and the recipient, which margin counts, that header is at
// most about 1,100 bytes: the client's validated name (at most 255) and
// address, two or three lines of TLS details, a client certificate's CN
// and issuer, myhostname (at most 255), the queue ID and a date. Postfix's
// queue file adds a few pointer records (about 60 bytes) to what its LMTP
// client announces as SIZE=. 2 KiB covers both with room to spare for
// headers added by a milter listed after listgate's in smtpd_milters (a
// milter listed before it is counted: Postfix shows each milter the
// message as the ones before it changed it).
const sizeMargin = 2 << 10

// margin is what the door adds to a message's size before comparing it
// with a limit, so that a message it lets through is never refused for its
// size by the LMTP door, which sees it later and bigger: with Postfix's
// Received: header on top (sizeMargin), whose first line names the client's
// HELO name (helo bytes) and, for a message with one recipient, that
// recipient (rcpt bytes, the longest recipient the door let through).
// Refusing a little early is safe: the sending server reports the 552 to
// its own user; a refusal by the LMTP door would be a bounce from Postfix.
func margin(helo, rcpt int) int64 {
	return sizeMargin + int64(helo) + int64(rcpt)
}

// addSat returns a+b for non-negative a and b, or math.MaxInt64 if the sum
// does not fit.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// lineExtra is how many bytes more than its CRLF on the wire a line of n
// bytes (its line end excluded) costs in Postfix's queue file, at most.
// Postfix stores each line as records of a type byte, a length in 7-bit
// groups (one byte below 128, two below 16,384) and the bytes, a line
// longer than line_length_limit (2048 by default, 512 at least) cut into
// several records. Postfix's LMTP client announces the queue file's size as
// SIZE=, which the LMTP door checks at RCPT: a line of 128 to 2048 bytes
// costs one byte more than on the wire. For 0 < n < 128 the record is
// exactly the line and its CRLF; above, a line is at most ceil(n/512)
// records of at most 3 bytes of framing each, against the 2 of its CRLF.
func lineExtra(n int64) int64 {
	if n < 128 {
		return 0
	}
	return 3*((n+511)/512) - 2
}

// counter estimates the size of a message from its milter events, from
// above, as both the LMTP door will see it (its bytes as received, line
// ends as CRLF) and as Postfix will announce it to that door (SIZE=, from
// its queue file). It sees header fields and body chunks and keeps only
// counts: the message is never buffered.
type counter struct {
	n    int64 // the estimate so far
	line int64 // bytes of the current line so far, its line end excluded
	cr   bool  // the last byte counted was a CR (of a CRLF, if a LF follows)
}

// lf is a line end for write: a bare LF, counted as CRLF.
var lf = []byte{'\n'}

// write counts p, bytes of the message in order. Lines may span calls. A
// line ends at LF; a bare LF (Postfix sends the lines of a folded header
// field separated by LF alone, as Sendmail does) counts as CRLF.
func (c *counter) write(p []byte) {
	c.n = addSat(c.n, int64(len(p)))
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.line = addSat(c.line, int64(len(p)))
			c.cr = p[len(p)-1] == '\r'
			return
		}
		n := addSat(c.line, int64(i))
		if (i > 0 && p[i-1] == '\r') || (i == 0 && c.cr) {
			n-- // the CR of a CRLF, not a byte of the line
		} else {
			c.n = addSat(c.n, 1) // the CR a bare LF stands for
		}
		c.n = addSat(c.n, lineExtra(n))
		c.line, c.cr = 0, false
		p = p[i+1:]
	}
}

// header counts one header field as the milter protocol gives it: name,
// colon, value (its line breaks bare LFs), and the field's line end.
// Without SMFIP_HDR_LEADSPC the MTA has eaten one space after the colon;
// it is counted back (one byte too many if there was none).
func (c *counter) header(name, value string, leadSpace bool) {
	c.write([]byte(name))
	if leadSpace {
		c.write([]byte{':'})
	} else {
		c.write([]byte{':', ' '})
	}
	c.write([]byte(value))
	c.write(lf)
}

// total is the estimate of the whole message: what was counted, a line
// left open counted as ended with CRLF (Postfix ends every line so; a CR
// it ends with counts as a byte of the line), and the empty line between
// header and body, which the milter protocol does not show (Postfix's
// cleanup writes one even when the client sent none).
func (c *counter) total() int64 {
	n := c.n
	if c.line > 0 {
		n = addSat(n, 2+lineExtra(c.line))
	}
	return addSat(n, 2)
}
