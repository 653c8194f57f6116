package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A second, line-based model of the header section, written from the
// package documentation rather than from scanHeader, for the fuzz targets
// to compare against.

// refFieldStart matches a line that starts a header field: ftext name,
// optional white space, colon.
var refFieldStart = regexp.MustCompile(`^[!-9;-~]+[ \t]*:`)

type refField struct {
	name string // lower case, without trailing white space
	raw  []byte // the whole field, continuation lines and final LF included
}

type refMsg struct {
	fields     []refField // the header section
	rest       []byte     // everything after it
	headerless bool       // empty, or first line not a header field
}

func refParse(norm []byte) refMsg {
	lines := bytes.SplitAfter(norm, []byte("\n"))
	if len(norm) == 0 || (norm[0] != '\n' && !refFieldStart.Match(lines[0])) {
		return refMsg{rest: norm, headerless: true}
	}
	var r refMsg
	i := 0
	for i < len(lines) && len(lines[i]) > 0 && lines[i][0] != '\n' && refFieldStart.Match(lines[i]) {
		raw := append([]byte(nil), lines[i]...)
		for i++; i < len(lines) && len(lines[i]) > 0 && (lines[i][0] == ' ' || lines[i][0] == '\t'); i++ {
			raw = append(raw, lines[i]...)
		}
		name := string(raw[:bytes.IndexByte(raw, ':')])
		r.fields = append(r.fields, refField{strings.ToLower(strings.TrimRight(name, " \t")), raw})
	}
	r.rest = bytes.Join(lines[i:], nil)
	return r
}

// value returns the unfolded, trimmed value of f.
func (f refField) value() string {
	v := f.raw[bytes.IndexByte(f.raw, ':')+1:]
	return strings.Trim(strings.ReplaceAll(string(v), "\n", ""), " \t\r")
}

// first returns the first field named name.
func (r refMsg) first(name string) (refField, bool) {
	for _, f := range r.fields {
		if f.name == name {
			return f, true
		}
	}
	return refField{}, false
}

func (r refMsg) count(name string) int {
	n := 0
	for _, f := range r.fields {
		if f.name == name {
			n++
		}
	}
	return n
}

var hashRE = regexp.MustCompile(`^[A-Z2-7]{32}$`)

// checkStored checks the invariants of the bytes stored for in.
func checkStored(t *testing.T, in []byte, m *Message, out []byte, addedNames []string) {
	t.Helper()
	norm := bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
	ref := refParse(norm)

	if m.Size() != int64(len(in)) {
		t.Errorf("Size() = %d, want %d", m.Size(), len(in))
	}
	if id, ok := ref.first("message-id"); ok {
		if m.MessageID() != id.value() {
			t.Errorf("MessageID() = %q, want %q", m.MessageID(), id.value())
		}
	} else if m.MessageID() != genID {
		t.Errorf("MessageID() = %q, want the generated %q", m.MessageID(), genID)
	}
	if !hashRE.MatchString(m.Hash()) || m.Hash() != MessageIDHash(m.MessageID()) {
		t.Errorf("Hash() = %q, want MessageIDHash(%q) = %q", m.Hash(), m.MessageID(), MessageIDHash(m.MessageID()))
	}

	// The message follows the added fields: its header section minus the
	// hash fields, then the rest unchanged, CRLF turned into LF.
	var want []byte
	if ref.headerless {
		want = append(want, '\n')
	}
	for _, f := range ref.fields {
		if f.name != "message-id-hash" && f.name != "x-message-id-hash" {
			want = append(want, f.raw...)
		}
	}
	want = append(want, ref.rest...)
	if !bytes.HasSuffix(out, want) {
		t.Fatalf("stored bytes do not end with the message:\n got %q\nwant suffix %q", out, want)
	}

	// The stored header section starts with exactly the added fields, and
	// has one of each hash field, for the Message-ID it has first.
	stored := refParse(out)
	if len(stored.fields) < len(addedNames) {
		t.Fatalf("stored header section has %d fields, want at least %d: %q", len(stored.fields), len(addedNames), out)
	}
	var added int
	for i, name := range addedNames {
		if stored.fields[i].name != name {
			t.Fatalf("stored field %d is %q, want %q: %q", i, stored.fields[i].name, name, out)
		}
		added += len(stored.fields[i].raw)
	}
	if added+len(want) != len(out) {
		t.Errorf("stored %d bytes = %d added + %d message; want %d", len(out), added, len(want), added+len(want))
	}
	for _, name := range []string{"message-id-hash", "x-message-id-hash"} {
		if n := stored.count(name); n != 1 {
			t.Errorf("stored header section has %d %s fields, want 1: %q", n, name, out)
		}
		if f, _ := stored.first(name); f.value() != m.Hash() {
			t.Errorf("stored %s is %q, want %q", name, f.value(), m.Hash())
		}
	}
	if id, ok := stored.first("message-id"); !ok || MessageIDHash(id.value()) != m.Hash() {
		t.Errorf("stored first Message-ID %q does not have hash %s", id.value(), m.Hash())
	}
}

// addedNames returns the names of the fields Deliver adds to m.
func addedNames(m *Message) []string {
	names := []string{"return-path", "delivered-to", "received"}
	if m.addMsgID {
		names = append(names, "message-id")
	}
	return append(names, "message-id-hash", "x-message-id-hash", "x-mailfrom")
}

func FuzzReadMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := readMessage(bytes.NewReader(in), fixedID)
		if err != nil {
			t.Fatal(err)
		}
		want := render(m, testEnv)
		checkStored(t, in, m, want, addedNames(m))
		// The same through a buffer of a few bytes: the content is
		// spilled, and hash fields are taken back across flushes.
		size := 1 + len(in)%11
		small, err := readMessageIn(bytes.NewReader(in), "", size, fixedID)
		if err != nil {
			t.Fatal(err)
		}
		defer small.Close()
		if got := render(small, testEnv); !bytes.Equal(got, want) {
			t.Fatalf("buffer of %d bytes: stored\n%q\nwant\n%q", size, got, want)
		}
		if small.MessageID() != m.MessageID() || small.Hash() != m.Hash() {
			t.Fatalf("buffer of %d bytes: Message-ID %q hash %s, want %q %s", size, small.MessageID(), small.Hash(), m.MessageID(), m.Hash())
		}
	})
}

// FuzzDeliver stores fuzzed messages with fuzzed envelopes in a real
// spool: a valid folder gets exactly the bytes of compose, inside the
// spool; an invalid one gets an error and no file; an envelope value never
// adds a header field.
func FuzzDeliver(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte, sender, rcpt, local string) {
		s := newTestSpool(t, nil)
		m, err := readMessage(bytes.NewReader(in), fixedID)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		env := Envelope{Sender: sender, Rcpt: rcpt, Domain: "example.org", Local: local,
			Kind: "request", Helo: rcpt, RemoteAddr: sender, ID: local}
		path, err := s.Deliver(m, env)

		valid := local != "" && local != "." && local != ".." &&
			!strings.ContainsFunc(local, func(r rune) bool { return r == '/' || r < ' ' || r == 0x7f })
		if !valid {
			if err == nil {
				t.Fatalf("Deliver to local part %q stored %s", local, path)
			}
			if ents, _ := os.ReadDir(s.Dir()); len(ents) != 0 {
				t.Fatalf("invalid local part %q left %d entries in the spool", local, len(ents))
			}
			return
		}
		if err != nil {
			if strings.Contains(err.Error(), "file name too long") {
				t.Skip(err)
			}
			t.Fatal(err)
		}
		if rel, err := filepath.Rel(s.Dir(), path); err != nil ||
			rel != filepath.Join("example.org", local, "request", "new", filepath.Base(path)) {
			t.Fatalf("file %s is not in the folder of %q", path, local)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := render(m, env); !bytes.Equal(got, want) {
			t.Fatalf("stored\n%q\nwant\n%q", got, want)
		}
		checkStored(t, in, m, got, addedNames(m))
		checkAddedClean(t, m, env)
	})
}

// checkAddedClean checks that the fields compose adds for env carry no
// control byte but their LF line ends and the TAB that starts a
// continuation line: no envelope value puts one there raw.
func checkAddedClean(t *testing.T, m *Message, env Envelope) {
	t.Helper()
	added, _ := m.compose(env, testHost, testNow)
	for i, c := range added {
		switch {
		case c == '\n', c == '\t' && i > 0 && added[i-1] == '\n':
		case c < ' ' || c == 0x7f:
			t.Fatalf("control byte %#x at %d of the added fields %q", c, i, added)
		}
	}
}

// FuzzAddedFields: whatever the envelope (sender, recipient, LHLO name,
// client address, queue id), the added fields hold no control byte raw.
// Seeds: testdata/fuzz/FuzzAddedFields.
func FuzzAddedFields(f *testing.F) {
	m, err := readMessage(strings.NewReader("Subject: s\r\n\r\nbody\r\n"), fixedID)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sender, rcpt, helo, addr, id string) {
		checkAddedClean(t, m, Envelope{Sender: sender, Rcpt: rcpt, Domain: "example.org", Local: "l",
			Kind: "post", Helo: helo, RemoteAddr: addr, ID: id})
	})
}
