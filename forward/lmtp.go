package forward

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/postconf"
)

// dialTimeout bounds the connection to an LMTP next hop, as Postfix's
// lmtp_connect_timeout does.
const dialTimeout = 30 * time.Second

// sendLMTP forwards one stored message to the LMTP server at ep (RFC 2033):
// LHLO with the host name, MAIL FROM the original sender (<> stays <>),
// one RCPT, the original recipient, and DATA. go-smtp's client sends CRLF
// line ends and dot-stuffs; foldWriter keeps every line within 998
// octets. It returns once the server's reply for the one recipient is
// read, the timeout passes, or ctx ends (the connection is closed: a
// temporary result, and the message may have been taken anyway, which
// makes the next attempt a duplicate, never a loss).
func sendLMTP(ctx context.Context, ep postconf.Endpoint, helo string, timeout time.Duration, s *stored) result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, ep.Network, ep.Address)
	if err != nil {
		return smtpResult("connect", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	deadline, _ := ctx.Deadline()
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	c.CommandTimeout = time.Until(deadline)
	c.SubmissionTimeout = time.Until(deadline)
	if err := c.Hello(helo); err != nil {
		// A refused greeting or LHLO is the server's trouble, not the
		// message's: try again later.
		r := smtpResult("greeting", err)
		r.temporary = true
		return r
	}
	opts := &smtp.MailOptions{}
	if !isASCII(s.sender) || !isASCII(s.rcpt) {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			return result{reply: "550 5.6.7 the next hop does not offer SMTPUTF8, which the non-ASCII envelope needs"}
		}
		opts.UTF8 = true
	}
	if err := c.Mail(s.sender, opts); err != nil {
		return smtpResult("MAIL FROM", err)
	}
	if err := c.Rcpt(s.rcpt, nil); err != nil {
		return smtpResult("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return smtpResult("DATA", err)
	}
	conn.SetWriteDeadline(deadline)
	fw := &foldWriter{w: w}
	if _, err := fw.Write(s.lmtpHeader()); err != nil {
		return smtpResult("DATA", err)
	}
	if _, err := io.Copy(fw, s.rest); err != nil {
		return smtpResult("DATA", err)
	}
	// RFC 2033 §4.2: one reply per recipient after the final dot; there
	// is one recipient.
	resp, err := w.CloseWithLMTPResponse()
	if err != nil {
		if le, ok := err.(smtp.LMTPDataError); ok {
			for _, se := range le {
				return smtpResult("DATA", se)
			}
		}
		return smtpResult("DATA", err)
	}
	c.Quit()
	reply := "250"
	if r := resp[s.rcpt]; r != nil {
		reply = "250 " + oneLine(r.StatusText)
	}
	return taken(reply)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
