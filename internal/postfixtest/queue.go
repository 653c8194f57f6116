package postfixtest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/testutil"
)

// Log returns the instance's log (its maillog_file) so far.
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(p.LogFile)
	return string(b)
}

func (p *Postfix) logSize() int64 {
	fi, err := os.Stat(p.LogFile)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (p *Postfix) logFrom(off int64) string {
	log := p.Log()
	if off > int64(len(log)) {
		return log
	}
	return log[off:]
}

// WaitLog waits until a line of the log contains substr and returns the
// first such line; at the timeout it fails the test, showing the log.
func (p *Postfix) WaitLog(t testing.TB, substr string, timeout time.Duration) string {
	t.Helper()
	var log string
	i := -1
	if _, ok := testutil.Poll(timeout, pollTick, func() bool {
		log = p.Log()
		i = strings.Index(log, substr)
		return i >= 0
	}); !ok {
		t.Fatalf("postfixtest: no line with %q in the log within %v; maillog:\n%s", substr, timeout, log)
	}
	start := strings.LastIndexByte(log[:i], '\n') + 1
	end := strings.IndexByte(log[i:], '\n')
	if end < 0 {
		return log[start:]
	}
	return log[start : i+end]
}

// QueueMessage is one message in the queue, as "postqueue -j" describes it.
type QueueMessage struct {
	Queue      string           `json:"queue_name"` // maildrop, incoming, active, deferred, hold
	ID         string           `json:"queue_id"`
	Sender     string           `json:"sender"`
	Recipients []QueueRecipient `json:"recipients"`
}

// QueueRecipient is a recipient of a queued message still to be delivered.
type QueueRecipient struct {
	Address     string `json:"address"`
	DelayReason string `json:"delay_reason"`
}

// String formats m for a failure message: id, queue, sender, recipients
// and why each is delayed.
func (m QueueMessage) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s) from <%s>", m.ID, m.Queue, m.Sender)
	for _, r := range m.Recipients {
		fmt.Fprintf(&b, "; to <%s>", r.Address)
		if r.DelayReason != "" {
			fmt.Fprintf(&b, ": %s", r.DelayReason)
		}
	}
	return b.String()
}

// Queue returns the messages in the instance's queue ("postqueue -j").
func (p *Postfix) Queue(t testing.TB) []QueueMessage {
	t.Helper()
	msgs, err := p.Queued()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// Queued is Queue for a program that is not a test: it returns the
// messages in the instance's queue ("postqueue -j"), or an error.
func (p *Postfix) Queued() ([]QueueMessage, error) {
	out, _, err := p.run("postqueue", "-c", p.ConfigDir, "-j")
	if err != nil {
		return nil, err
	}
	var msgs []QueueMessage
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var m QueueMessage
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("postfixtest: postqueue -c %s -j: %w\n%s", p.ConfigDir, err, out)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// WaitQueueEmpty waits until the queue is empty (every message delivered
// or refused); at the timeout it fails the test, listing what is queued.
func (p *Postfix) WaitQueueEmpty(t testing.TB, timeout time.Duration) {
	t.Helper()
	p.WaitQueue(t, "an empty queue", timeout, func(q []QueueMessage) bool { return len(q) == 0 })
}

// WaitQueue waits until ok accepts the queue and returns it; at the timeout
// it fails the test, saying what it waited for (want) and what is queued.
// The log runs ahead of the queue: qmgr(8) moves a message to the deferred
// queue a moment after lmtp(8) logs "status=deferred".
func (p *Postfix) WaitQueue(t testing.TB, want string, timeout time.Duration, ok func([]QueueMessage) bool) []QueueMessage {
	t.Helper()
	var q []QueueMessage
	if _, held := testutil.Poll(timeout, pollTick, func() bool {
		q = p.Queue(t)
		return ok(q)
	}); !held {
		var lines []string
		for _, m := range q {
			lines = append(lines, m.String())
		}
		t.Fatalf("postfixtest: no %s within %v; queue:\n%s\nmaillog:\n%s", want, timeout, strings.Join(lines, "\n"), p.Log())
	}
	return q
}

// Flush asks Postfix to retry every queued message now ("postqueue -f"),
// e.g. after a deferral while the LMTP peer was down.
func (p *Postfix) Flush(t testing.TB) {
	t.Helper()
	if _, _, err := p.run("postqueue", "-c", p.ConfigDir, "-f"); err != nil {
		t.Fatal(err)
	}
}

// Postconf runs postconf(1) on the instance's configuration with args
// (e.g. "-n", or "-h", "smtpd_milters") and returns its output.
func (p *Postfix) Postconf(t testing.TB, args ...string) string {
	t.Helper()
	out, _, err := p.run("postconf", append([]string{"-c", p.ConfigDir}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ListenUnix listens on a unix-domain socket at name, relative to QueueDir
// (so "listgate/lmtp" is what Postfix's lmtp(8) reaches as
// "unix:listgate/lmtp", chrooted or not). The socket is made connectable
// by the postfix user; the listener is closed at cleanup.
func (p *Postfix) ListenUnix(t testing.TB, name string) net.Listener {
	t.Helper()
	path := filepath.Join(p.QueueDir, name)
	if len(path) > 107 {
		t.Fatalf("postfixtest: socket path %s is %d bytes, longer than sun_path allows (107)", path, len(path))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	// Connecting needs write permission on the socket; Postfix's daemons run
	// as the postfix user. (listgate itself would use a group, see
	// contrib/postfix/README.md.)
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	return ln
}

// Reload makes the instance read its main.cf and master.cf again, as
// "postfix reload" does after an admin's postconf -e or -X, and returns
// once master(8) has logged that it did: a new smtpd(8) runs with the new
// configuration from then on, while a session in progress finishes with
// the old one, and an idle smtpd of the old one may still take one more
// connection before it exits (seen in TestCanaryPostfix). The files are dated a minute back first, as Start's are:
// Postfix waits for a configuration file modified in the last second.
func (p *Postfix) Reload(t testing.TB) {
	t.Helper()
	for _, name := range []string{"main.cf", "master.cf"} {
		past := time.Now().Add(-time.Minute)
		if err := os.Chtimes(filepath.Join(p.ConfigDir, name), past, past); err != nil {
			t.Fatalf("postfixtest: %v", err)
		}
	}
	off := p.logSize()
	if _, _, err := p.run("postfix", "-c", p.ConfigDir, "reload"); err != nil {
		t.Fatal(err)
	}
	if _, ok := testutil.Poll(10*time.Second, pollTick, func() bool {
		return strings.Contains(p.logFrom(off), "reload -- version")
	}); !ok {
		t.Fatalf("postfixtest: master(8) of %s logged no reload within 10s; maillog:\n%s", p.ConfigDir, p.logFrom(off))
	}
}
