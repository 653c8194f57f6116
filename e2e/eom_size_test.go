package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// sizeMargin is milter.sizeMargin: what the milter adds, with the HELO
// name and the recipient, to the size it counts (milter/size.go).
const sizeMargin = 2 << 10

// heloName is the HELO name dial sends.
const heloName = "mx.sender.example"

// margin is the milter's margin for a message to rcpt alone from dial.
func margin(rcpt string) int {
	return sizeMargin + len(heloName) + len(rcpt)
}

// 6b. A client that does not declare SIZE= (go-smtp's client, swaks and
// smtplib's low-level calls do not) and posts more than a list's
// max_message_size gets 552 5.3.4 as the reply to its final dot, from
// listgate's milter: nothing is queued, nothing is spooled, and Postfix
// bounces nothing. A post at the limit less the milter's margin is
// delivered: the LMTP door, which sees it with Postfix's Received: header
// on top, does not refuse it. A post of long lines, which Postfix's queue
// file makes bigger than on the wire, is judged by that size.
func TestSizeWithoutSIZE(t *testing.T) {
	t.Parallel()
	e := start(t, setup{"generated-tcp", true, false}, map[string]string{
		"big@example.org":  "max_message_size = \"100KB\"\n", // 100,000 bytes
		"huge@example.org": "max_message_size = \"1MB\"\n",   // 1,000,000 bytes
	})
	addr := e.pf.SMTPAddr
	const text = "Message size exceeds fixed limit"

	// Refused: 150,000 bytes to a list of 100,000, by each client.
	rs, mailCmd := post(t, addr, "gosmtp@sender.example", []string{"big@example.org"}, sized(150_000, 78, "gosmtp"))
	if strings.Contains(strings.ToUpper(mailCmd), "SIZE=") {
		t.Fatalf("go-smtp's client declared a size: %q", mailCmd)
	}
	if len(rs) != 2 || rs[0].Code != 250 || !rs[1].is("DATA", 552, "5.3.4") || rs[1].Text != text {
		t.Fatalf("150,000 bytes without SIZE= to a list of 100KB: %v", rs)
	}
	line := e.pf.WaitLog(t, "from=<gosmtp@sender.example> to=<big@example.org>", wait)
	if !strings.Contains(line, ": milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]: 5.3.4 "+text+";") {
		t.Errorf("Postfix log: %s", line)
	}
	e.lg.WaitLog(t, "msg=message", "door=milter", "list=big@example.org", "verdict=too-large", "limit=100000")

	data := filepath.Join(t.TempDir(), "swaks.eml")
	if err := os.WriteFile(data, sized(150_000, 78, "swaks"), 0o644); err != nil {
		t.Fatal(err)
	}
	// swaks exits 26: "server did not accept mail following data".
	exit, out := swaks(t, addr, "big@example.org", "--data", "@"+data)
	if exit != 26 || !strings.Contains(out, "<** 552 5.3.4 "+text) || strings.Contains(strings.ToUpper(out), "SIZE=") {
		t.Errorf("swaks: exit %d\n%.3000s", exit, out)
	}
	if got := pythonNoSize(t, addr, "big@example.org", sized(150_000, 78, "smtplib")); got != "RCPT 250 DATA 552 5.3.4 "+text {
		t.Errorf("smtplib without SIZE=: %s", got)
	}

	// At the limit less the margin: delivered. One byte more: refused,
	// a little early (the LMTP door would still take it).
	fits := 100_000 - margin("big@example.org")
	if rs, _ := post(t, addr, "fits@sender.example", []string{"big@example.org"}, sized(fits+1, 78, "over")); len(rs) != 2 || !rs[1].is("DATA", 552, "5.3.4") {
		t.Errorf("%d bytes: %v, want 552 5.3.4 after DATA", fits+1, rs)
	}
	if rs, _ := post(t, addr, "fits@sender.example", []string{"big@example.org"}, sized(fits, 78, "fits")); len(rs) != 2 || !rs[1].is("DATA", 250, "") {
		t.Fatalf("%d bytes: %v, want 250", fits, rs)
	}
	m := waitSpooled(t, e.spool, "big@example.org", "post", "big@example.org")
	if !strings.Contains(m, "Subject: fits\n") {
		t.Errorf("the spooled post is not the one that fits:\n%.500s", m)
	}
	line = e.pf.WaitLog(t, "to=<big@example.org>, relay=", wait)
	if !strings.Contains(line, "status=sent (250 2.1.5 <big@example.org> Ok)") {
		t.Errorf("Postfix log: %s", line)
	}
	if size := queuedSize(t, e, "fits@sender.example"); size > 100_000 {
		t.Errorf("Postfix announced SIZE=%d to the LMTP door, above the list's limit", size)
	}

	// Lines of 200 bytes cost Postfix's queue file, and so the SIZE= its
	// LMTP client announces, one byte more each than on the wire. A post
	// whose size on the wire is within the limit less the margin, but
	// whose queue file is not, would be refused by the LMTP door at RCPT
	// (a bounce): the milter counts the same and refuses it at DATA. The
	// same message to a sub-address (no list limit) shows the size.
	long := sized(1_000_000-margin("huge@example.org"), 200, "long lines")
	if rs, _ := post(t, addr, "long@sender.example", []string{"huge-request@example.org"}, long); len(rs) != 2 || !rs[1].is("DATA", 250, "") {
		t.Fatalf("long lines to a sub-address: %v", rs)
	}
	waitSpooled(t, e.spool, "huge@example.org", "request", "huge-request@example.org")
	if size := queuedSize(t, e, "long@sender.example"); size <= 1_000_000 {
		t.Fatalf("Postfix's size of %d bytes on the wire in lines of 200: %d; the test needs it above 1,000,000", len(long), size)
	}
	if rs, _ := post(t, addr, "long2@sender.example", []string{"huge@example.org"}, long); len(rs) != 2 || !rs[1].is("DATA", 552, "5.3.4") {
		t.Errorf("long lines to a list of 1MB: %v, want 552 5.3.4 after DATA", rs)
	}
	e.pf.WaitLog(t, "from=<long2@sender.example> to=<huge@example.org>", wait)

	// Nothing of the refused posts is queued, spooled or bounced.
	e.pf.WaitQueueEmpty(t, wait)
	for _, bounce := range []string{"sender non-delivery notification", "status=bounced", "from=<>"} {
		if strings.Contains(e.pf.Log(), bounce) {
			t.Errorf("Postfix log has %q: a bounce was generated", bounce)
		}
	}
	if n := len(spooled(t, e.spool, "big@example.org", "post")); n != 1 {
		t.Errorf("%d posts spooled for big@example.org, want the one that fits", n)
	}
	if n := len(spooled(t, e.spool, "huge@example.org", "post")); n != 0 {
		t.Errorf("%d posts spooled for huge@example.org, want none", n)
	}
	for _, l := range strings.Split(e.lg.Log(), "\n") {
		if strings.Contains(l, "door=lmtp") && (strings.Contains(l, "too-large") || strings.Contains(l, "not stored")) {
			t.Errorf("the LMTP door refused a message for its size: %s", l)
		}
	}
}

// sized returns a message of exactly n bytes on the wire (n > 300), CRLF
// line ends: a header section with every field Postfix would otherwise
// add (Date, Message-ID), Subject: subject, and a body of lines of
// lineLen bytes (CRLF included), ending in lines shorter than 128 bytes.
func sized(n, lineLen int, subject string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <alice@sender.example>\r\nTo: <list@example.org>\r\nSubject: %s\r\n"+
		"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%d.size@sender.example>\r\n\r\n",
		subject, time.Now().UnixNano())
	for n-b.Len() >= lineLen+2 {
		b.WriteString(strings.Repeat("x", lineLen-2) + "\r\n")
	}
	for rest := n - b.Len(); rest > 0; rest = n - b.Len() {
		k := min(rest, 100)
		if rest-k == 1 {
			k--
		}
		b.WriteString(strings.Repeat("z", k-2) + "\r\n")
	}
	return b.Bytes()
}

// recorder is a net.Conn that keeps what the client wrote.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	if r.out.Len() < 4096 {
		r.out.Write(p[:min(len(p), 4096)])
	}
	r.mu.Unlock()
	return r.Conn.Write(p)
}

// post sends data (the whole message, CRLF line ends) with go-smtp's
// client without SIZE=, and returns the reply to each RCPT and, if any
// was accepted, the reply to the end of data; and the MAIL command as the
// client wrote it.
func post(t *testing.T, addr, from string, to []string, data []byte) ([]reply, string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(wait))
	rec := &recorder{Conn: nc}
	c := smtp.NewClient(rec)
	defer c.Close()
	if err := c.Hello(heloName); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	if err := c.Mail(from, nil); err != nil {
		t.Fatalf("MAIL FROM: %v", err)
	}
	rec.mu.Lock()
	mailCmd, _, _ := strings.Cut(rec.out.String()[strings.Index(rec.out.String(), "MAIL FROM:"):], "\r\n")
	rec.mu.Unlock()
	var out []reply
	accepted := false
	for _, r := range to {
		rp, err := toReply("RCPT", c.Rcpt(r, nil))
		if err != nil {
			t.Fatal(err)
		}
		accepted = accepted || rp.Code == 250
		out = append(out, rp)
	}
	if !accepted {
		return out, mailCmd
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("writing the message: %v", err)
	}
	rp, err := toReply("DATA", w.Close())
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
	return append(out, rp), mailCmd
}

// queuedSize is the size qmgr(8) logged for the message from sender: its
// queue file's content size, which its LMTP client announces as SIZE=.
func queuedSize(t *testing.T, e *env, sender string) int {
	t.Helper()
	line := e.pf.WaitLog(t, ": from=<"+sender+">, size=", wait)
	m := regexp.MustCompile(`, size=(\d+),`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no size in %q", line)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// pythonNoSizeScript sends a message with smtplib's low-level calls, which
// add no SIZE= (sendmail() would), and prints the replies to RCPT and to
// the end of data.
const pythonNoSizeScript = `
import smtplib, sys
host, port, rcpt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
msg = sys.stdin.buffer.read()
s = smtplib.SMTP(host, port, local_hostname="mx.sender.example", timeout=20)
s.ehlo()
s.mail("smtplib@sender.example")
code, _ = s.rcpt(rcpt)
dcode, dtext = s.data(msg)
print("RCPT", code, "DATA", dcode, dtext.decode())
s.quit()
`

// pythonNoSize posts msg to rcpt with Python's smtplib, without SIZE=.
func pythonNoSize(t *testing.T, addr, rcpt string, msg []byte) string {
	t.Helper()
	path := tool(t, "python3", "python3")
	host, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command(path, "-c", pythonNoSizeScript, host, port, rcpt)
	cmd.Stdin = bytes.NewReader(msg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 smtplib to <%s>: %v\n%s", rcpt, err, out)
	}
	return strings.TrimSpace(string(out))
}
