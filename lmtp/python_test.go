package lmtp

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/postfixtest"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/spool"
)

// pythonClient is the LMTP client Mailman's own tests use: Python's
// smtplib.LMTP. It prints the extensions LHLO gave and what sendmail
// refused.
const pythonClient = `
import smtplib, sys
host, port = sys.argv[1], int(sys.argv[2])
lmtp = smtplib.LMTP(host, port)
code, _ = lmtp.ehlo('remote.example.org')  # LHLO, for smtplib.LMTP
print('lhlo', code, ' '.join(sorted(lmtp.esmtp_features)))
msg = b'From: anne.person@example.com\r\nTo: mylist@example.com\r\nSubject: from smtplib\r\nMessage-ID: <python>\r\n\r\nHello from smtplib \xc3\xa9.\r\n'
refused = lmtp.sendmail('anne.person@example.com', ['mylist-bogus@example.com', 'mylist@example.com'], msg)
for rcpt, (code, text) in sorted(refused.items()):
    print('refused', rcpt, code, text.decode())
lmtp.quit()
`

// TestPythonSmtplibLMTP talks to the door with another client
// implementation, the one Mailman's tests use.
func TestPythonSmtplibLMTP(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		// As for Postfix: CI sets the variable, so that it cannot pass
		// by skipping.
		if os.Getenv(postfixtest.EnvRequire) == "1" {
			t.Fatalf("python3 is not installed (%v); %s=1 requires it", err, postfixtest.EnvRequire)
		}
		t.Skipf("python3 is not installed (%v): apt-get install python3; %s=1 makes this a failure", err, postfixtest.EnvRequire)
	}
	h := start(t, config{})
	host, port, _ := net.SplitHostPort(h.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", pythonClient, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{
		"lhlo 250 8bitmime chunking enhancedstatuscodes pipelining size smtputf8",
		"refused mylist-bogus@example.com 550 5.1.1 Requested action not taken: mailbox unavailable",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("python3 printed:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	got := h.readOnly("mylist@example.com", lists.Post)
	if header(got, "Message-ID-Hash") != spool.MessageIDHash("<python>") {
		t.Errorf("stored:\n%s", got)
	}
	if !strings.HasSuffix(got, "\n\nHello from smtplib \xc3\xa9.\n") {
		t.Errorf("stored body: %q", got)
	}
}
