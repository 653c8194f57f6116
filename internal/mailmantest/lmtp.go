package mailmantest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// Deliver hands msg to Mailman's LMTP runner directly, for one recipient,
// as Postfix's lmtp(8) does when it delivers to Mailman: LHLO, MAIL FROM
// from ("" for the null sender <>), RCPT TO rcpt, DATA (RFC 2033). It returns nil for a 250 after DATA,
// and otherwise an error wrapping the runner's *smtp.SMTPError (Mailman
// 3.3.8 refuses an unknown list or sub-address at RCPT with 550) or the
// connection's error.
func (m *Mailman) Deliver(from, rcpt string, msg []byte) error {
	conn, err := net.DialTimeout("tcp", m.LMTPAddr, 10*time.Second)
	if err != nil {
		return fmt.Errorf("mailmantest: LMTP to %s: %w", m.LMTPAddr, err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mailmantest.invalid"); err != nil {
		return fmt.Errorf("mailmantest: LMTP LHLO to %s: %w", m.LMTPAddr, err)
	}
	if err := c.Mail(from, nil); err != nil {
		return fmt.Errorf("mailmantest: LMTP MAIL FROM:<%s> to %s: %w", from, m.LMTPAddr, err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return fmt.Errorf("mailmantest: LMTP RCPT TO:<%s> to %s: %w", rcpt, m.LMTPAddr, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mailmantest: LMTP DATA to %s: %w", m.LMTPAddr, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("mailmantest: LMTP DATA to %s: %w", m.LMTPAddr, err)
	}
	if _, err := w.CloseWithLMTPResponse(); err != nil {
		var lerr smtp.LMTPDataError
		if errors.As(err, &lerr) && lerr[rcpt] != nil {
			err = lerr[rcpt]
		}
		return fmt.Errorf("mailmantest: LMTP DATA for <%s> to %s: %w", rcpt, m.LMTPAddr, err)
	}
	c.Quit()
	return nil
}

// lmtpAnswers reports whether this instance's LMTP runner greets: a 220
// naming Mailman's runner (another process may listen on a port picked as
// free).
func (m *Mailman) lmtpAnswers() bool {
	conn, err := net.DialTimeout("tcp", m.LMTPAddr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "220 ") || !strings.Contains(line, "GNU Mailman LMTP runner") {
		return false
	}
	conn.Write([]byte("QUIT\r\n"))
	return true
}
