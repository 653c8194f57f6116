package spool

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// Fixed inputs, so the tests can compare exact bytes.
var (
	testNow  = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	testHost = "lists.example.org"
	testEnv  = Envelope{
		Sender:     "anne@example.com",
		Rcpt:       "Announce+tok@Example.ORG",
		Domain:     "example.org",
		Local:      "announce",
		Kind:       "post",
		Helo:       "mx.example.com",
		RemoteAddr: "127.0.0.1:41234",
		ID:         "S1T2",
	}
)

const (
	genID   = "<gen@lists.example.org>"
	genHash = "E3KB2NZWMEWGI3LLRIWCQUYTQUGQAT2A" // of "gen@lists.example.org"
	antHash = "MS6QLWERIJLGCRF44J7USBFDELMNT2BW" // of "ant"
)

func fixedID() string { return genID }

// top is the header block Deliver adds for testEnv; msgID is "" when the
// message has its own Message-ID.
func top(msgID, hash string) string {
	s := "Return-Path: <anne@example.com>\n" +
		"Delivered-To: Announce+tok@Example.ORG\n" +
		"Received: from mx.example.com (127.0.0.1:41234)\n" +
		"\tby lists.example.org (listgate) with LMTP id S1T2\n" +
		"\tfor <Announce+tok@Example.ORG>; Fri, 02 Jan 2026 03:04:05 +0000\n"
	if msgID != "" {
		s += "Message-ID: " + msgID + "\n"
	}
	return s + "Message-ID-Hash: " + hash + "\n" +
		"X-Message-ID-Hash: " + hash + "\n" +
		"X-MailFrom: anne@example.com\n"
}

// render returns what Deliver would store for m and env.
func render(m *Message, env Envelope) []byte {
	added, size := m.compose(env, testHost, testNow)
	var out bytes.Buffer
	out.Write(added)
	if err := m.writeTo(&out, make([]byte, 4096)); err != nil {
		panic(err)
	}
	if int64(out.Len()) != size {
		panic("compose: size does not match the content")
	}
	return out.Bytes()
}

func TestStoredBytes(t *testing.T) {
	long := strings.Repeat("x", 1500)
	tests := []struct {
		name  string
		in    string
		want  string
		msgID string // want MessageID()
	}{{
		name:  "crlf",
		in:    "From: a@example.com\r\nSubject: hi\r\nMessage-ID: <ant>\r\n\r\nbody\r\nline 2\r\n",
		want:  top("", antHash) + "From: a@example.com\nSubject: hi\nMessage-ID: <ant>\n\nbody\nline 2\n",
		msgID: "<ant>",
	}, {
		name:  "lone cr and lone lf stay",
		in:    "Subject: x\r\nMessage-ID: <ant>\r\n\r\na\rb\nc\r\r\nd\r",
		want:  top("", antHash) + "Subject: x\nMessage-ID: <ant>\n\na\rb\nc\r\nd\r",
		msgID: "<ant>",
	}, {
		name:  "8-bit latin-1 and nul",
		in:    "Subject: caf\xe9\r\nMessage-ID: <ant>\r\n\r\n\xe9t\xe9\x00\xff\xfe\r\n",
		want:  top("", antHash) + "Subject: caf\xe9\nMessage-ID: <ant>\n\n\xe9t\xe9\x00\xff\xfe\n",
		msgID: "<ant>",
	}, {
		name:  "1500-octet lines",
		in:    "X-Long: " + long + "\r\nMessage-ID: <ant>\r\n\r\n" + long + "\r\n",
		want:  top("", antHash) + "X-Long: " + long + "\nMessage-ID: <ant>\n\n" + long + "\n",
		msgID: "<ant>",
	}, {
		name:  "folded fields, folded message-id",
		in:    "Subject: a\r\n  b\r\n\tc\r\nMessage-ID:\r\n <ant>\r\nTo: x\r\n\r\nbody",
		want:  top("", antHash) + "Subject: a\n  b\n\tc\nMessage-ID:\n <ant>\nTo: x\n\nbody",
		msgID: "<ant>",
	}, {
		name: "existing hash fields removed",
		in: "Message-ID-Hash: AAAA\r\nSubject: s\r\nx-message-id-hash: BBBB\r\n  folded\r\n" +
			"Message-ID: <ant>\r\nMESSAGE-ID-HASH : CCCC\r\nX-Message-ID-Hash:DDDD\r\n\tmore\r\n\r\n" +
			"Message-ID-Hash: in the body stays\r\n",
		want: top("", antHash) + "Subject: s\nMessage-ID: <ant>\n\n" +
			"Message-ID-Hash: in the body stays\n",
		msgID: "<ant>",
	}, {
		name:  "only hash fields",
		in:    "Message-ID-Hash: AAAA\r\n\r\nbody\r\n",
		want:  top(genID, genHash) + "\nbody\n",
		msgID: genID,
	}, {
		name:  "missing message-id generated",
		in:    "Subject: s\r\n\r\nb\r\n",
		want:  top(genID, genHash) + "Subject: s\n\nb\n",
		msgID: genID,
	}, {
		name:  "no header section",
		in:    "hello world\r\nSubject: not a header\r\n",
		want:  top(genID, genHash) + "\nhello world\nSubject: not a header\n",
		msgID: genID,
	}, {
		name:  "first line is a continuation",
		in:    " folded\r\nSubject: x\r\n\r\nb",
		want:  top(genID, genHash) + "\n folded\nSubject: x\n\nb",
		msgID: genID,
	}, {
		name:  "mbox from line",
		in:    "From anne@example.com Fri Jan  2 03:04:05 2026\r\nMessage-ID: <ant>\r\n\r\nb",
		want:  top(genID, genHash) + "\nFrom anne@example.com Fri Jan  2 03:04:05 2026\nMessage-ID: <ant>\n\nb",
		msgID: genID,
	}, {
		name:  "control byte in first field name",
		in:    "Subj\rect: x\r\n\r\n",
		want:  top(genID, genHash) + "\nSubj\rect: x\n\n",
		msgID: genID,
	}, {
		name:  "starts with empty line",
		in:    "\r\nbody\r\n",
		want:  top(genID, genHash) + "\nbody\n",
		msgID: genID,
	}, {
		name:  "empty message",
		in:    "",
		want:  top(genID, genHash) + "\n",
		msgID: genID,
	}, {
		name:  "odd case Message-Id",
		in:    "message-iD: <ant>\r\n\r\n",
		want:  top("", antHash) + "message-iD: <ant>\n\n",
		msgID: "<ant>",
	}, {
		name:  "white space before colon",
		in:    "Message-ID \t: <ant>\r\n\r\n",
		want:  top("", antHash) + "Message-ID \t: <ant>\n\n",
		msgID: "<ant>",
	}, {
		name:  "white space around message-id",
		in:    "Message-ID: \t <ant>  \r\n\r\n",
		want:  top("", antHash) + "Message-ID: \t <ant>  \n\n",
		msgID: "<ant>",
	}, {
		name:  "first of two message-ids",
		in:    "Message-ID: <ant>\r\nMessage-ID: <bee>\r\n\r\n",
		want:  top("", antHash) + "Message-ID: <ant>\nMessage-ID: <bee>\n\n",
		msgID: "<ant>",
	}, {
		name:  "empty message-id is kept and hashed",
		in:    "Message-ID:\r\n\r\n",
		want:  top("", "3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ") + "Message-ID:\n\n",
		msgID: "",
	}, {
		name:  "malformed line ends the header section",
		in:    "Subject: x\r\nnot a header\r\nMessage-ID: <ant>\r\n\r\n",
		want:  top(genID, genHash) + "Subject: x\nnot a header\nMessage-ID: <ant>\n\n",
		msgID: genID,
	}, {
		name:  "header section without body or line end",
		in:    "Message-ID: <ant>",
		want:  top("", antHash) + "Message-ID: <ant>",
		msgID: "<ant>",
	}, {
		name:  "hash field last without line end",
		in:    "Message-ID: <ant>\r\nMessage-ID-Hash: x",
		want:  top("", antHash) + "Message-ID: <ant>\n",
		msgID: "<ant>",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := readMessage(strings.NewReader(tt.in), fixedID)
			if err != nil {
				t.Fatal(err)
			}
			if got := render(m, testEnv); string(got) != tt.want {
				t.Errorf("stored bytes:\n got %q\nwant %q", got, tt.want)
			}
			if m.MessageID() != tt.msgID {
				t.Errorf("MessageID() = %q, want %q", m.MessageID(), tt.msgID)
			}
			if m.Size() != int64(len(tt.in)) {
				t.Errorf("Size() = %d, want %d", m.Size(), len(tt.in))
			}
		})
	}
}

func TestAddedHeadersEnvelope(t *testing.T) {
	m, err := readMessage(strings.NewReader("Message-ID: <ant>\r\n\r\n"), fixedID)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  Envelope
		want string
	}{{
		name: "null sender",
		env: Envelope{Sender: "", Rcpt: "a-bounces+x=y@example.org", Domain: "example.org",
			Local: "a", Kind: "bounces", Helo: "mx", RemoteAddr: "[::1]:25", ID: "Q"},
		want: "Return-Path: <>\n" +
			"Delivered-To: a-bounces+x=y@example.org\n" +
			"Received: from mx ([::1]:25)\n" +
			"\tby lists.example.org (listgate) with LMTP id Q\n" +
			"\tfor <a-bounces+x=y@example.org>; Fri, 02 Jan 2026 03:04:05 +0000\n" +
			"Message-ID-Hash: " + antHash + "\nX-Message-ID-Hash: " + antHash + "\n" +
			"X-MailFrom: <>\n",
	}, {
		name: "no helo, address or id",
		env:  Envelope{Sender: "s@x", Rcpt: "a@example.org", Domain: "example.org", Local: "a", Kind: "post"},
		want: "Return-Path: <s@x>\n" +
			"Delivered-To: a@example.org\n" +
			"Received: from unknown\n" +
			"\tby lists.example.org (listgate) with LMTP\n" +
			"\tfor <a@example.org>; Fri, 02 Jan 2026 03:04:05 +0000\n" +
			"Message-ID-Hash: " + antHash + "\nX-Message-ID-Hash: " + antHash + "\n" +
			"X-MailFrom: s@x\n",
	}, {
		name: "line breaks in envelope values cannot start a field",
		env: Envelope{Sender: "s@x\r\nX-Evil: 1", Rcpt: "a@example.org\nX-Evil: 2", Domain: "example.org",
			Local: "a", Kind: "post", Helo: "h\x00\r", ID: "i\n"},
		want: "Return-Path: <s@x??X-Evil: 1>\n" +
			"Delivered-To: a@example.org?X-Evil: 2\n" +
			"Received: from h??\n" +
			"\tby lists.example.org (listgate) with LMTP id i?\n" +
			"\tfor <a@example.org?X-Evil: 2>; Fri, 02 Jan 2026 03:04:05 +0000\n" +
			"Message-ID-Hash: " + antHash + "\nX-Message-ID-Hash: " + antHash + "\n" +
			"X-MailFrom: s@x??X-Evil: 1\n",
	}, {
		// Postfix's smtpd accepts these bytes in an address and its lmtp
		// client passes them on (quoted); its log shows them as '?'.
		name: "control bytes in envelope values are shown as Postfix logs them",
		env: Envelope{Sender: "s\x1b[31m@x", Rcpt: "\"a+\x01\x08\v\f\x0e\x1f\x7f\tz\xc3\xa9\"@example.org", Domain: "example.org",
			Local: "a", Kind: "post", Helo: "h\x1b]0;x\x07", RemoteAddr: "192.0.2.1\x7f", ID: "i\x05"},
		want: "Return-Path: <s?[31m@x>\n" +
			"Delivered-To: \"a+????????z\xc3\xa9\"@example.org\n" +
			"Received: from h?]0;x? (192.0.2.1?)\n" +
			"\tby lists.example.org (listgate) with LMTP id i?\n" +
			"\tfor <\"a+????????z\xc3\xa9\"@example.org>; Fri, 02 Jan 2026 03:04:05 +0000\n" +
			"Message-ID-Hash: " + antHash + "\nX-Message-ID-Hash: " + antHash + "\n" +
			"X-MailFrom: s?[31m@x\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want + "Message-ID: <ant>\n\n"
			if got := render(m, tt.env); string(got) != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

func TestMessageIDHash(t *testing.T) {
	tests := []struct{ id, want string }{
		{"<ant>", antHash},
		{"ant", antHash},
		{"  <ant>\t", antHash},
		{"<<ant>>", "V3YEHAFKE2WVJNK63Z7RFP4JMHISI2RG"}, // one pair removed: "<ant>"
		{"<ant@example.org>", "GNEL24KTDKYTPXQIAOLAOMPFY3C56PHP"},
		{"", "3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"},
		{"<>", "3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"},
	}
	for _, tt := range tests {
		if got := MessageIDHash(tt.id); got != tt.want {
			t.Errorf("MessageIDHash(%q) = %s, want %s", tt.id, got, tt.want)
		}
	}
}

func TestGeneratedMessageID(t *testing.T) {
	a, err := ReadMessage(strings.NewReader("Subject: x\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ReadMessage(strings.NewReader("Subject: x\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	id := a.MessageID()
	if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, ">") || strings.Count(id, "@") != 1 {
		t.Errorf("generated Message-ID %q is not <left@right>", id)
	}
	if id == b.MessageID() {
		t.Errorf("two messages got the same Message-ID %q", id)
	}
	if a.Hash() != MessageIDHash(id) {
		t.Errorf("Hash() = %s, want MessageIDHash(%q) = %s", a.Hash(), id, MessageIDHash(id))
	}
	if !bytes.Contains(render(a, testEnv), []byte("\nMessage-ID: "+id+"\n")) {
		t.Errorf("generated Message-ID not stored")
	}
}

// errReader returns some bytes, then err.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// tooLarge stands for go-smtp's *smtp.SMTPError (ErrDataTooLarge).
type tooLarge struct{ code int }

func (e *tooLarge) Error() string { return "too large" }

func TestReadMessageError(t *testing.T) {
	sentinel := &tooLarge{552}
	m, err := ReadMessage(&errReader{data: []byte("Subject: x\r\n\r\nbody"), err: sentinel})
	if m != nil {
		t.Errorf("ReadMessage returned a message with error %v", err)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("errors.Is(%v, sentinel) = false", err)
	}
	var tl *tooLarge
	if !errors.As(err, &tl) || tl.code != 552 {
		t.Errorf("errors.As(%v) did not find the reader's error", err)
	}
	if !strings.HasPrefix(err.Error(), "spool: read message: ") {
		t.Errorf("error %q does not say what failed", err)
	}

	// io.ErrUnexpectedEOF is an error too: a cut-off DATA is no message.
	if _, err := ReadMessage(&errReader{err: io.ErrUnexpectedEOF}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestCRLFToLF(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"\r\n", "\n"},
		{"\r", "\r"},
		{"\n", "\n"},
		{"\r\r\n", "\r\n"},
		{"\r\n\r\n", "\n\n"},
		{"a\r\nb\rc\nd\r\n", "a\nb\rc\nd\n"},
		{"\n\r", "\n\r"},
		{"no line end", "no line end"},
	}
	for _, tt := range tests {
		if got := string(crlfToLF([]byte(tt.in))); got != tt.want {
			t.Errorf("crlfToLF(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestGeneratedMessageIDHost: a Spool's ReadMessage names its Hostname
// (--hostname) in a generated Message-ID, cleaned to a dot-atom.
func TestGeneratedMessageIDHost(t *testing.T) {
	for host, want := range map[string]string{
		"lists.example.org": "@lists.example.org>",
		"bad host/x":        "@badhostx>",
	} {
		sp, err := New(Options{Dir: t.TempDir(), Hostname: host})
		if err != nil {
			t.Fatal(err)
		}
		m, err := sp.ReadMessage(strings.NewReader("Subject: x\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		if id := m.MessageID(); !strings.HasSuffix(id, want) {
			t.Errorf("Hostname %q: Message-ID %q, want it to end %q", host, id, want)
		}
	}
}
