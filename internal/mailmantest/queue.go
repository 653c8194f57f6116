package mailmantest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/proctest"
	"github.com/listgate/listgate/internal/testutil"
)

// Message is one entry of a Mailman queue (a .pck file of queue/NAME):
// the message as Mailman stored it, and its metadata.
type Message struct {
	// File is the entry's file name in its queue directory.
	File string `json:"file"`
	// Raw is the message as Mailman would write it out (Python's
	// Message.as_bytes: LF line ends, headers as Mailman holds them).
	Raw []byte `json:"raw"`
	// Header lists the header fields in Mailman's order, names as written,
	// values unfolded as Python's email package holds them.
	Header []Field `json:"header"`
	// Data is the entry's metadata ("msgdata"): listid, to_list,
	// to_request, subaddress, original_size, received_time, ... Values
	// that are not JSON (a datetime) are their Python repr.
	Data map[string]any `json:"msgdata"`
}

// Field is one header field.
type Field struct {
	Name, Value string
}

// UnmarshalJSON reads a field written as [name, value].
func (f *Field) UnmarshalJSON(b []byte) error {
	var pair []string
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("header field %s: want [name, value]", b)
	}
	f.Name, f.Value = pair[0], pair[1]
	return nil
}

// Get returns the value of the first header field named name (in any
// case), or "".
func (msg Message) Get(name string) string {
	for _, f := range msg.Header {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Values returns the values of every header field named name (in any
// case), in order.
func (msg Message) Values(name string) []string {
	var out []string
	for _, f := range msg.Header {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}

// queueScript prints the entries of the queue directory argv[1] as JSON.
// A .pck file is two pickles, the message (a mailman.email.message.Message,
// or its text if _parsemsg) and its metadata, as Mailman's Switchboard
// writes them; unpickling imports Mailman's classes, hence Mailman's own
// Python, run as list. An entry a runner takes away meanwhile is skipped.
const queueScript = `
import base64, email, json, os, pickle, sys
d = sys.argv[1]
out = []
for name in sorted(os.listdir(d)):
    if not name.endswith('.pck'):
        continue
    try:
        with open(os.path.join(d, name), 'rb') as fp:
            msg = pickle.load(fp)
            data = pickle.load(fp)
    except FileNotFoundError:
        continue
    if isinstance(msg, str):
        raw = msg.encode('utf-8', 'surrogateescape')
        msg = email.message_from_string(msg)
    else:
        raw = msg.as_bytes()
    out.append({'file': name, 'raw': base64.b64encode(raw).decode('ascii'),
                'header': [[k, str(v)] for k, v in msg.items()], 'msgdata': data})
json.dump(out, sys.stdout, default=repr)
`

// Queue returns the entries of Mailman's queue name ("in", "command",
// "bounces", ...) in the order Mailman would process them (oldest first).
// With the default Options no runner takes them away, so they accumulate.
func (m *Mailman) Queue(t testing.TB, name string) []Message {
	t.Helper()
	dir, err := m.queueDir(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.python, "-I", "-c", queueScript, dir)
	cmd.Dir = m.VarDir
	cmd.Env = m.environ()
	cmd.SysProcAttr = proctest.SysProcAttr(m.uid, m.gid, false)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mailmantest: read queue %s: %s: %v\n%s", dir, env.python, err, stderr.String())
	}
	var msgs []Message
	if err := json.Unmarshal(stdout.Bytes(), &msgs); err != nil {
		t.Fatalf("mailmantest: read queue %s: %v\n%s", dir, err, stdout.String())
	}
	return msgs
}

// QueueLen returns how many entries queue name holds (its .pck files).
func (m *Mailman) QueueLen(t testing.TB, name string) int {
	t.Helper()
	n, err := m.queueLen(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// WaitQueue waits until queue name holds n entries and returns them; it
// fails the test if it holds more, or not n within d.
func (m *Mailman) WaitQueue(t testing.TB, name string, n int, d time.Duration) []Message {
	t.Helper()
	var have int
	var err error
	if _, ok := testutil.Poll(d, pollTick, func() bool {
		have, err = m.queueLen(name)
		return err != nil || have >= n
	}); err != nil {
		t.Fatal(err)
	} else if !ok || have != n {
		t.Fatalf("mailmantest: queue %s holds %d entries, want %d (waited up to %v)\n%s", name, have, n, d, m.Log())
	}
	return m.Queue(t, name)
}

// CountQueue returns how many entries queue name holds (its .pck files),
// as QueueLen does, for a program that is not a test.
func (m *Mailman) CountQueue(name string) (int, error) { return m.queueLen(name) }

func (m *Mailman) queueLen(name string) (int, error) {
	dir, err := m.queueDir(name)
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("mailmantest: %w", err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".pck") {
			n++
		}
	}
	return n, nil
}

func (m *Mailman) queueDir(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/.") {
		return "", fmt.Errorf("mailmantest: bad queue name %q", name)
	}
	dir := filepath.Join(m.QueueDir, name)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("mailmantest: queue %q: %w", name, err)
	}
	return dir, nil
}
