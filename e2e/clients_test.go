package e2e

import (
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Besides go-smtp's client, the tests talk to Postfix with swaks and with
// Python's smtplib: three independent SMTP clients see the same replies.

// swaks sends one message with swaks and returns its exit status (0:
// delivered, 24: no recipient accepted, 23: MAIL FROM refused) and its
// transcript.
func swaks(t *testing.T, addr, to string, extra ...string) (int, string) {
	t.Helper()
	path := tool(t, "swaks", "swaks")
	args := append([]string{"--server", addr, "--from", "alice@sender.example", "--to", to,
		"--helo", "mx.sender.example", "--timeout", "20", "--header", "Subject: e2e via swaks"}, extra...)
	out, err := exec.Command(path, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	case err != nil:
		t.Fatalf("swaks: %v", err)
	}
	return 0, string(out)
}

// pythonScript sends one message with smtplib.SMTP.sendmail and prints the
// reply that decided it: "250" for delivered, else "CODE TEXT" of the
// refused MAIL FROM or RCPT TO.
const pythonScript = `
import smtplib, sys
host, port, sender, rcpt = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
msg = "From: <%s>\r\nTo: <%s>\r\nSubject: e2e via smtplib\r\n\r\nhello\r\n" % (sender, rcpt)
s = smtplib.SMTP(host, port, local_hostname="mx.sender.example", timeout=20)
try:
    s.sendmail(sender, [rcpt], msg)
    print("250")
except smtplib.SMTPRecipientsRefused as e:
    code, text = e.recipients[rcpt]
    print("RCPT", code, text.decode())
except smtplib.SMTPSenderRefused as e:
    print("MAIL", e.smtp_code, e.smtp_error.decode())
finally:
    s.quit()
`

// python sends one message with Python's smtplib and returns what it saw:
// "250", or "RCPT 550 5.1.1 ...".
func python(t *testing.T, addr, to string) string {
	t.Helper()
	path := tool(t, "python3", "python3")
	host, port, _ := strings.Cut(addr, ":")
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("smtpd address %q", addr)
	}
	out, err := exec.Command(path, "-c", pythonScript, host, port, "alice@sender.example", to).CombinedOutput()
	if err != nil {
		t.Fatalf("python3 smtplib to <%s>: %v\n%s", to, err, out)
	}
	return strings.TrimSpace(string(out))
}
