package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/internal/testutil"
)

// reply is what an SMTP client saw: the stage a command was answered at
// (MAIL, RCPT, DATA) and the reply. A 250 at RCPT is Code 250.
type reply struct {
	Stage    string
	Code     int
	Enhanced smtp.EnhancedCode
	Text     string
}

func (r reply) String() string {
	return fmt.Sprintf("%s: %d %d.%d.%d %s", r.Stage, r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text)
}

// is reports whether r is a reply at stage with that code and enhanced
// code ("5.1.1"; "" for any).
func (r reply) is(stage string, code int, enhanced string) bool {
	return r.Stage == stage && r.Code == code &&
		(enhanced == "" || fmt.Sprintf("%d.%d.%d", r.Enhanced[0], r.Enhanced[1], r.Enhanced[2]) == enhanced)
}

func toReply(stage string, err error) (reply, error) {
	if err == nil {
		return reply{Stage: stage, Code: 250}, nil
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return reply{stage, se.Code, se.EnhancedCode, se.Message}, nil
	}
	return reply{}, fmt.Errorf("%s: %w", stage, err)
}

// dial connects to smtpd as a sending MX on the Internet would, and says
// EHLO.
func dial(t testing.TB, addr string) *smtp.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatalf("dial smtpd %s: %v", addr, err)
	}
	conn.SetDeadline(time.Now().Add(wait))
	c := smtp.NewClient(conn)
	if err := c.Hello("mx.sender.example"); err != nil {
		c.Close()
		t.Fatalf("EHLO to %s: %v", addr, err)
	}
	return c
}

// envelope is one SMTP transaction: sender, MAIL FROM parameters, and the
// recipients in order.
type envelope struct {
	From string
	Opts *smtp.MailOptions
	To   []string
}

// transact runs one transaction on a new connection and returns the reply
// to each RCPT (or, if MAIL FROM was refused, that reply once). If any
// recipient was accepted and send is true, the message is sent and the
// reply to its end of data is the last element; otherwise the transaction
// is abandoned with QUIT.
func transact(t testing.TB, addr string, env envelope, send bool) []reply {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	r, err := toReply("MAIL", c.Mail(env.From, env.Opts))
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 250 {
		c.Quit()
		return []reply{r}
	}
	var out []reply
	accepted := 0
	for _, to := range env.To {
		r, err := toReply("RCPT", c.Rcpt(to, nil))
		if err != nil {
			t.Fatalf("RCPT TO:<%s>: %v", to, err)
		}
		if r.Code == 250 {
			accepted++
		}
		out = append(out, r)
	}
	if accepted == 0 || !send {
		if err := c.Quit(); err != nil {
			t.Fatalf("QUIT: %v", err)
		}
		return out
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	fmt.Fprintf(w, "From: <%s>\r\nTo: %s\r\nSubject: e2e\r\nMessage-ID: <%d.e2e@sender.example>\r\n\r\nhello %s\r\n",
		env.From, strings.Join(env.To, ", "), time.Now().UnixNano(), strings.Join(env.To, " "))
	r, err = toReply("DATA", w.Close())
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, r)
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
	return out
}

// rcpt asks smtpd about one recipient and abandons the transaction: the
// reply is MAIL's if MAIL FROM was refused, else RCPT's.
func rcpt(t testing.TB, addr, to string) reply {
	t.Helper()
	return transact(t, addr, envelope{From: "alice@sender.example", To: []string{to}}, false)[0]
}

// send sends one message to one recipient and fails the test unless
// smtpd accepted it (250 at RCPT and at the end of data).
func send(t testing.TB, addr, to string) {
	t.Helper()
	rs := transact(t, addr, envelope{From: "alice@sender.example", To: []string{to}}, true)
	if len(rs) != 2 || rs[0].Code != 250 || rs[1].Code != 250 {
		t.Fatalf("send to <%s>: %v", to, rs)
	}
}

// spooled returns the messages in a Maildir's new/ folder:
// SPOOL/<domain>/<local>/<kind>/new.
func spooled(t testing.TB, spool, list, kind string) []string {
	t.Helper()
	local, domain, _ := strings.Cut(list, "@")
	files, err := filepath.Glob(filepath.Join(spool, domain, local, kind, "new", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// waitSpooled waits until a message with the header line "Delivered-To:
// rcpt" is in the list's kind folder and returns it.
func waitSpooled(t testing.TB, spool, list, kind, rcpt string) string {
	t.Helper()
	var found string
	if _, ok := testutil.Poll(wait, 10*time.Millisecond, func() bool {
		for _, m := range spooled(t, spool, list, kind) {
			if strings.Contains(m, "\nDelivered-To: "+rcpt+"\n") || strings.HasPrefix(m, "Delivered-To: "+rcpt+"\n") {
				found = m
			}
		}
		return found != ""
	}); !ok {
		t.Fatalf("no message for <%s> in %s/%s/%s/new within %v; spool holds:\n%s", rcpt, spool, list, kind, wait, tree(spool))
	}
	return found
}

// tree lists the files under dir, for failure messages.
func tree(dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b.WriteString(path + "\n")
		}
		return nil
	})
	return b.String()
}
