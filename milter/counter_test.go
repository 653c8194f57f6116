package milter

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// recordBytes is what Postfix's queue file spends on a message's lines
// (its content size, which its LMTP client announces as SIZE=), from the
// record format: each line a record of a type byte, its length in 7-bit
// groups and its bytes, a line longer than lineLimit (Postfix's
// line_length_limit) cut into records of lineLimit bytes (cleanup_out.c).
// An unfinished last line is a line.
func recordBytes(msg []byte, lineLimit int) int64 {
	lenBytes := func(n int) int64 {
		b := int64(1)
		for n >= 128 {
			n >>= 7
			b++
		}
		return b
	}
	var total int64
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
			line = bytes.TrimSuffix(line, []byte{'\r'})
		} else {
			msg = nil
		}
		n := len(line)
		for n > lineLimit {
			total += 1 + lenBytes(lineLimit) + int64(lineLimit)
			n -= lineLimit
		}
		total += 1 + lenBytes(n) + int64(n)
	}
	return total
}

// wireBytes is the size of msg on the wire, every line end a CRLF and an
// unfinished last line ended with one.
func wireBytes(msg []byte) int64 {
	var n int64
	for _, line := range strings.SplitAfter(string(msg), "\n") {
		switch {
		case line == "":
		case strings.HasSuffix(line, "\r\n"):
			n += int64(len(line))
		case strings.HasSuffix(line, "\n"):
			n += int64(len(line)) + 1
		default:
			n += int64(len(line)) + 2
		}
	}
	return n
}

// TestCounter pins the estimate for messages whose size on the wire and in
// Postfix's queue file are known.
func TestCounter(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name string
		body string
		want int64 // total(), the empty line after the header included
	}{
		{"empty", "", 2},
		{"one line", "hello\r\n", 9},
		{"bare LF is CRLF", "hello\n", 9},
		{"lone CR stays a byte", "a\rb\r\n", 7},
		{"unfinished line is ended", "hello", 9},
		{"unfinished line ending in CR", "hello\r", 10},
		{"127 bytes: no framing beyond CRLF", long(127) + "\r\n", 131},
		{"128 bytes: one byte more", long(128) + "\r\n", 133},
		{"512 bytes", long(512) + "\r\n", 517},
		{"513 bytes: two records at most", long(513) + "\r\n", 521},
		{"2048 bytes", long(2048) + "\r\n", 2048 + 2 + 10 + 2},
		{"empty lines", "\r\n\r\n\r\n", 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c counter
			c.write([]byte(tt.body))
			if got := c.total(); got != tt.want {
				t.Errorf("total() = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestCounterChunks checks that a line split between body chunks, even
// between its CR and its LF, counts as one line.
func TestCounterChunks(t *testing.T) {
	msg := []byte(strings.Repeat("y", 300) + "\r\n" + "short\r\n" + strings.Repeat("z", 1000) + "\r\n")
	var whole counter
	whole.write(msg)
	for i := 0; i <= len(msg); i++ {
		var c counter
		c.write(msg[:i])
		c.write(msg[i:])
		if c.total() != whole.total() {
			t.Fatalf("split at %d: %d, whole %d", i, c.total(), whole.total())
		}
	}
}

// TestCounterHeader checks a header field: name, colon, value, CRLF; a
// folded value's LFs are CRLFs; without SMFIP_HDR_LEADSPC the space the
// MTA ate after the colon counts again.
func TestCounterHeader(t *testing.T) {
	var c counter
	c.header("Subject", " a\n\tb", true)
	if want := int64(len("Subject: a\r\n\tb\r\n")); c.n != want {
		t.Errorf("leading space: %d, want %d", c.n, want)
	}
	c = counter{}
	c.header("Subject", "a\n\tb", false)
	if want := int64(len("Subject: a\r\n\tb\r\n")); c.n != want {
		t.Errorf("no leading space: %d, want %d", c.n, want)
	}
	c = counter{}
	c.header("X-Long", " "+strings.Repeat("v", 200), true)
	if want := int64(len("X-Long: ") + 200 + 2 + 1); c.n != want {
		t.Errorf("long field: %d, want %d (one byte of framing)", c.n, want)
	}
}

// TestCounterSaturates checks that the counts stop at math.MaxInt64.
func TestCounterSaturates(t *testing.T) {
	c := counter{n: math.MaxInt64 - 3, line: math.MaxInt64 - 3}
	c.write([]byte("abcdef"))
	c.write([]byte("\r\n"))
	if c.total() != math.MaxInt64 {
		t.Errorf("total() = %d, want math.MaxInt64", c.total())
	}
	if addSat(math.MaxInt64, margin(10, 10)) != math.MaxInt64 {
		t.Error("addSat does not saturate")
	}
}

// FuzzCounter checks the estimate against the sizes it must bound: for any
// bytes, cut into body chunks anywhere, the estimate is the same, at least
// the message's size on the wire (what the LMTP door counts), and at least
// what Postfix's queue file spends on it (the SIZE= Postfix announces to
// the LMTP door) for any line_length_limit Postfix allows (512 or more).
// For a message without long lines it is exact.
func FuzzCounter(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg, cuts []byte) {
		var whole, cut counter
		whole.write(msg)
		rest := msg
		for _, k := range cuts {
			n := min(int(k), len(rest))
			cut.write(rest[:n])
			rest = rest[n:]
		}
		cut.write(rest)
		got := whole.total() - 2 // the empty line after the header
		if cut.total() != whole.total() {
			t.Fatalf("cut into chunks %v: %d, whole: %d", cuts, cut.total()-2, got)
		}
		wire := wireBytes(msg)
		if got < wire {
			t.Fatalf("estimate %d below the size on the wire %d", got, wire)
		}
		for _, limit := range []int{512, 1000, 2048, 4096, 1 << 20} {
			if rec := recordBytes(msg, limit); got < rec {
				t.Fatalf("estimate %d below Postfix's queue file %d (line_length_limit %d)", got, rec, limit)
			}
		}
		short := true
		for line := range bytes.SplitSeq(msg, []byte{'\n'}) {
			short = short && len(bytes.TrimSuffix(line, []byte{'\r'})) < 128
		}
		if short && got != wire {
			t.Fatalf("no long line: estimate %d, on the wire %d", got, wire)
		}
	})
}
