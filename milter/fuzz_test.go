package milter

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/listgate/listgate/reply"
)

// FuzzSession drives a live server, as an MTA would after negotiating,
// with arbitrary packets (seeds in testdata/fuzz/FuzzSession). Whatever
// the MTA sends, the server must not crash, must answer only with
// well-formed milter replies (continue, accept, skip, or a reply code and
// text from the verdict table), and must go on serving the next
// connection correctly.
func FuzzSession(f *testing.F) {
	ts := startServer(f, "tcp", Options{MaxMessageSize: 1_000_000})
	replies := [][]byte{
		[]byte(refusal(reply.Unknown) + "\x00"),
		[]byte(refusal(reply.Broken) + "\x00"),
		[]byte(refusal(reply.TooLarge) + "\x00"),
		[]byte(refusal(reply.LocalError) + "\x00"),
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		c := nc.(*net.TCPConn)
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		// Write and read at once: the server may stop reading early.
		werr := make(chan error, 1)
		go func() {
			_, err := c.Write(append(slices.Clone(optneg), in...))
			if err == nil {
				err = c.CloseWrite()
			}
			werr <- err
		}()
		out, err := io.ReadAll(c)
		if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatalf("reading the server's replies: %v", err)
		}
		<-werr // the server may close before reading everything: any result

		for first := true; len(out) > 0; first = false {
			if len(out) < 5 {
				t.Fatalf("truncated reply packet % x", out)
			}
			n := int(out[0])<<24 | int(out[1])<<16 | int(out[2])<<8 | int(out[3])
			if n < 1 || 4+n > len(out) {
				t.Fatalf("reply packet length %d with %d bytes left", n, len(out)-4)
			}
			code, data := out[4], out[5:4+n]
			out = out[4+n:]
			switch {
			case first:
				if code != 'O' {
					t.Fatalf("first reply %q, want the negotiation 'O'", code)
				}
			case code == 'c' || code == 'a' || code == 's':
				if len(data) != 0 {
					t.Fatalf("reply %q with data %q", code, data)
				}
			case code == 'y':
				if !slices.ContainsFunc(replies, func(r []byte) bool { return bytes.Equal(r, data) }) {
					t.Fatalf("reply code %q is not from the verdict table", data)
				}
			default:
				t.Fatalf("unexpected reply %q %q", code, data)
			}
		}

		// The server still serves, correctly.
		s := ts.client(t, nil)
		mail(t, s, "SIZE=20000")
		if got, want := rcpt(t, s, "announce@example.org"), refusal(reply.TooLarge); got != want {
			t.Fatalf("after the session: RCPT got %q, want %q", got, want)
		}
		if got := rcpt(t, s, "mylist@example.com"); got != "continue" {
			t.Fatalf("after the session: RCPT got %q, want continue", got)
		}
	})
}

// isReset reports a connection reset by the server, which closes a
// connection after a malformed packet without reading the rest.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET)
}
