package forward

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/emersion/go-smtp"
)

// result is the outcome of one attempt to forward one message.
type result struct {
	ok        bool   // the next hop took it: 250, or exit status 0
	temporary bool   // not taken, try again later (with !ok)
	reply     string // the reply or exit status, for logs and the quarantine
	gone      bool   // (with ok) the file was no longer in new/: nothing sent
}

// taken is a successful attempt with the next hop's reply.
func taken(reply string) result { return result{ok: true, reply: reply} }

// smtpResult classifies an error from go-smtp's client: a reply is
// temporary for 4xx and permanent for 5xx (RFC 5321 §4.2.1); anything
// else — a dial error, a timeout, a dropped connection, a malformed
// reply — is temporary, since the next hop never decided.
func smtpResult(stage string, err error) result {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return result{temporary: se.Code < 500 || se.Code > 599, reply: replyText(se)}
	}
	return result{temporary: true, reply: stage + ": " + netError(err)}
}

// replyText spells a reply as it was on the wire: "550 5.1.1 text".
func replyText(se *smtp.SMTPError) string {
	if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], oneLine(se.Message))
	}
	return fmt.Sprintf("%d %s", se.Code, oneLine(se.Message))
}

// netError shortens a network error for a log line: the syscall's error
// ("connection refused") rather than the whole chain.
func netError(err error) string {
	var errno syscall.Errno
	var oe *net.OpError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.As(err, &oe) && oe.Addr != nil && errors.As(err, &errno):
		return oe.Op + " " + oe.Addr.String() + ": " + errno.Error()
	}
	return oneLine(err.Error())
}
