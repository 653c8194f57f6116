package milter

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/reply"
)

// faultySource is a lists.Source that fails while the test wants it to:
// Snapshot panics, or returns nil.
type faultySource struct {
	lists.Source
	panics atomic.Int32 // Snapshot calls left that panic
	nils   atomic.Int32 // Snapshot calls left that return nil
}

func (f *faultySource) Snapshot() *lists.Snapshot {
	if f.panics.Add(-1) >= 0 {
		panic("injected fault in Snapshot")
	}
	if f.nils.Add(-1) >= 0 {
		return nil
	}
	return f.Source.Snapshot()
}

// TestFault checks that a failure while resolving a recipient is a
// tempfail for that recipient only, logged once with its stack, and that
// the session, its transaction and the server go on.
func TestFault(t *testing.T) {
	localError := refusal(reply.LocalError)
	tests := []struct {
		name         string
		panics, nils int32
	}{
		{"panic in Snapshot", 1, 0},
		{"two panics", 2, 0},
		{"nil snapshot", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &faultySource{Source: corpusSource(t)}
			src.panics.Store(tt.panics)
			src.nils.Store(tt.nils)
			ts := startServer(t, "tcp", Options{Lists: src})
			faults := int(tt.panics + tt.nils)

			s := ts.client(t, nil)
			mail(t, s, "")
			for i := range faults {
				if got := rcpt(t, s, "mylist@example.com"); got != localError {
					t.Errorf("RCPT %d during the fault: got %q, want %q", i, got, localError)
				}
			}
			// Same transaction, same session: answered again.
			if got := rcpt(t, s, "nosuchlist@example.com"); got != refusal(reply.Unknown) {
				t.Errorf("RCPT after the fault: got %q", got)
			}
			if got := rcpt(t, s, "mylist@example.com"); got != "continue" {
				t.Errorf("RCPT after the fault: got %q", got)
			}
			// A new connection is served as well.
			s2 := ts.client(t, nil)
			mail(t, s2, "")
			if got := rcpt(t, s2, "mylist@example.com"); got != "continue" {
				t.Errorf("RCPT on a new connection: got %q", got)
			}

			// A panic is an error line with its stack; no snapshot is
			// a verdict, "error", like any other.
			errs := ts.logs.AtLevel(slog.LevelError)
			if len(errs) != int(tt.panics) {
				t.Fatalf("%d error log lines, want %d:\n%s", len(errs), tt.panics, ts.logs)
			}
			for _, rec := range errs {
				if rec.Attrs["door"] != "milter" || rec.Attrs["rcpt"] != "mylist@example.com" ||
					!strings.Contains(rec.Attrs["stack"], "milter.(*session).RcptTo") {
					t.Errorf("error log line %v: want door, rcpt and a stack through RcptTo", rec.Attrs)
				}
			}
			if got, want := len(ts.logs.Lines("rcpt")), 3+int(tt.nils); got != want {
				t.Errorf("%d rcpt info lines, want %d (one per verdict given)", got, want)
			}
		})
	}
}

// packet encodes one milter packet: length, command, data.
func packet(cmd byte, data string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(data)))
	return append(append(b, cmd), data...)
}

// optneg is an MTA's SMFIC_OPTNEG offering protocol 6, every action and
// every protocol flag, as Postfix does.
var optneg = packet('O', string(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(
	binary.BigEndian.AppendUint32(nil, 6), 0x1ff), 0x1fffff)))

// rawSession connects to ts, negotiates, and returns the connection.
func rawSession(t *testing.T, ts *testServer) net.Conn {
	t.Helper()
	c, err := net.Dial(ts.network, ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(optneg); err != nil {
		t.Fatal(err)
	}
	cmd, _ := readPacket(t, c)
	if cmd != 'O' {
		t.Fatalf("negotiation reply %q, want 'O'", cmd)
	}
	return c
}

// readPacket reads one milter packet.
func readPacket(t *testing.T, r io.Reader) (byte, []byte) {
	t.Helper()
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		t.Fatalf("read packet: %v", err)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil || n == 0 {
		t.Fatalf("read packet of %d bytes: %v", n, err)
	}
	return buf[0], buf[1:]
}

// TestMalformedPackets sends packets that make go-milter v0.10.2 panic in
// its own goroutine, which would end the daemon. The door must close that
// one connection and keep serving.
func TestMalformedPackets(t *testing.T) {
	tests := []struct {
		name string
		pkt  []byte
	}{
		{"zero length", []byte{0, 0, 0, 0}},
		{"MAIL without NUL", packet('M', "<sender@example.net>")},
		{"RCPT without NUL", packet('R', "<mylist@example.com>")},
		{"CONNECT without family", packet('C', "mx.example.net\x00")},
		{"CONNECT without NUL", packet('C', "mx.example.net")},
		{"length beyond the limit", binary.BigEndian.AppendUint32(nil, maxPacket+1)},
		{"length 4 GiB", []byte{0xff, 0xff, 0xff, 0xff}},
	}
	ts := startServer(t, "tcp", Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rawSession(t, ts)
			if _, err := c.Write(tt.pkt); err != nil {
				t.Fatal(err)
			}
			if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Fatalf("after a malformed packet: read %d bytes, %v; want EOF", n, err)
			}
			// The server is alive and well.
			s := ts.client(t, nil)
			mail(t, s, "")
			if got := rcpt(t, s, "nosuchlist@example.com"); got != refusal(reply.Unknown) {
				t.Errorf("RCPT after a malformed packet: got %q", got)
			}
		})
	}
	if got := len(ts.logs.AtLevel(slog.LevelWarn)); got != len(tests) {
		t.Errorf("%d warnings logged, want %d:\n%s", got, len(tests), ts.logs)
	}
}

// panicky is a slog.Handler that panics on records with one message and
// keeps the others.
type panicky struct {
	*recorder
	msg string
}

func (p panicky) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Message == p.msg {
		panic("injected fault in the log handler")
	}
	return p.recorder.Handle(ctx, rec)
}

// TestFaultEndOfMessage checks that a panic while answering an end of
// message is a tempfail for that message (451 4.3.0, the sender retries),
// logged once with its stack, and that the next message on the same
// connection is judged as usual.
func TestFaultEndOfMessage(t *testing.T) {
	logs := &recorder{}
	ts := startServer(t, "tcp", Options{Logger: slog.New(panicky{logs, "message"})})
	s := ts.client(t, nil)
	mail(t, s, "")
	rcpt(t, s, "announce@example.org")
	if act, _ := message(t, s, 20000); answer(act) != refusal(reply.LocalError) {
		t.Errorf("end of message during the fault: %v", act)
	}
	mail(t, s, "")
	rcpt(t, s, "announce@example.org")
	if act, _ := message(t, s, 100); answer(act) != "accept" {
		t.Errorf("next message: %v, want accept", act)
	}
	errs := logs.AtLevel(slog.LevelError)
	if len(errs) != 1 || errs[0].Attrs["command"] != "eom" ||
		!strings.Contains(errs[0].Attrs["stack"], "milter.(*session).EndOfMessage") {
		t.Errorf("error log lines: %v; want one, with a stack through EndOfMessage", errs)
	}
}
