package forward

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/spool"
)

// FuzzReadStored stores a message with an arbitrary sender, recipient and
// content through spool.Deliver, exactly as the LMTP door does, and reads
// it back: the envelope comes back (each control byte made a '?', as the
// spool writes them), and the file is exactly the kept fields, the three
// fields of Mailman's that are dropped, then the rest as it was. Any
// other file is refused without a panic. Seeds:
// testdata/fuzz/FuzzReadStored.
func FuzzReadStored(f *testing.F) {
	f.Fuzz(func(t *testing.T, sender, rcpt string, msg []byte) {
		if len(sender) > 1000 || len(rcpt) > 1000 || rcpt == "" {
			return
		}
		// Any bytes: refused or read, never a panic.
		if s, err := readStored(bufio.NewReader(bytes.NewReader(msg))); err == nil {
			if s.sender+s.rcpt != "" && strings.ContainsAny(s.sender+s.rcpt, "\n") {
				t.Fatalf("an envelope with a line end: %q %q", s.sender, s.rcpt)
			}
		}
		sp, err := spool.New(spool.Options{Dir: t.TempDir(), Hostname: "h.test"})
		if err != nil {
			t.Fatal(err)
		}
		m, err := sp.ReadMessage(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		path, err := sp.Deliver(m, spool.Envelope{Sender: sender, Rcpt: rcpt, Domain: "example.org", Local: "l", Kind: "post", Helo: "mx", ID: "I"})
		if err != nil {
			t.Fatal(err)
		}
		file, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := readStored(bufio.NewReader(bytes.NewReader(file)))
		if err != nil {
			t.Fatalf("a file the spool wrote is refused: %v\n%q", err, file)
		}
		clean := func(v string) string { // as the spool writes envelope values
			b := []byte(v) // byte by byte: v need not be UTF-8
			for i, c := range b {
				if c < ' ' || c == 0x7f {
					b[i] = '?'
				}
			}
			return string(b)
		}
		if s.sender != clean(sender) || s.rcpt != clean(rcpt) {
			t.Fatalf("envelope %q -> %q, want %q -> %q", s.sender, s.rcpt, sender, rcpt)
		}
		rest, err := io.ReadAll(s.rest)
		if err != nil {
			t.Fatal(err)
		}
		kept := string(s.returnPath) + string(s.deliveredTo) + string(s.received) + string(s.messageID)
		if !strings.HasPrefix(string(file), kept) || !strings.HasSuffix(string(file), string(rest)) {
			t.Fatalf("the kept fields and the rest are not the file's start and end")
		}
		dropped := strings.SplitAfter(string(file)[len(kept):len(file)-len(rest)], "\n")
		if len(dropped) != 4 || dropped[3] != "" || !strings.HasPrefix(dropped[0], "Message-ID-Hash: ") ||
			!strings.HasPrefix(dropped[1], "X-Message-ID-Hash: ") || !strings.HasPrefix(dropped[2], "X-MailFrom: ") {
			t.Fatalf("dropped %q, want Mailman's three fields", dropped)
		}
		if !strings.HasPrefix(string(s.lmtpHeader()), "Received: ") || strings.Contains(string(s.lmtpHeader()), "Return-Path") {
			t.Fatalf("LMTP header %q", s.lmtpHeader())
		}
	})
}

// FuzzReason: any reason file reads without a panic, and what is written
// reads back as written, one line per value.
func FuzzReason(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, hop, reply string) {
		if len(data) > 1<<16 || len(hop)+len(reply) > 1<<14 {
			return
		}
		r := ParseReason(data)
		again := ParseReason(r.Marshal())
		if ParseReason(again.Marshal()) != again {
			t.Fatalf("not a fixed point: %+v", again)
		}
		date := time.Date(2026, 12, 2, 6, 34, 48, 0, time.UTC)
		w := Reason{NextHop: hop, Reply: reply, Sender: "<a@b>", Recipient: "l@example.org", Date: date}
		got := ParseReason(w.Marshal())
		if got.NextHop != oneLine(hop) || got.Reply != oneLine(reply) || got.Sender != "<a@b>" || !got.Date.Equal(date) {
			t.Fatalf("wrote %+v, read %+v", w, got)
		}
	})
}
