package milter

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/listgate/listgate/reply"
)

// TestSize checks SIZE= at RCPT: announce@example.org has
// max_message_size = "10KB" (10,000 bytes), and the global limit is
// 1,000,000. A SIZE= is checked with the margin the end of message adds
// (which counts the recipient's length). Sub-addresses are bounded by the
// global limit only; refusals other than "too large" and foreign domains
// are unaffected.
func TestSize(t *testing.T) {
	tooLarge := refusal(reply.TooLarge)
	size := func(limit int64, rcpt string, plus int64) string {
		return fmt.Sprintf("SIZE=%d", limit-marginFor(rcpt)+plus)
	}
	tests := []struct {
		name  string
		args  string // MAIL FROM ESMTP arguments
		rcpts map[string]string
	}{
		{"no SIZE", "", map[string]string{
			"announce@example.org": "continue",
		}},
		{"list limit exceeded", "SIZE=10001", map[string]string{
			"announce@example.org":         tooLarge,
			"<announce@example.org>":       tooLarge,
			"news@example.org":             tooLarge, // alias of the posting address
			"announce+tag@example.org":     tooLarge,
			"announce-request@example.org": "continue", // sub-address: no list limit
			"news-bounces@example.org":     "continue",
			"mylist@example.com":           "continue",
		}},
		{"list limit exact", size(10000, "announce@example.org", 0), map[string]string{
			"announce@example.org": "continue",
			"news@example.org":     "continue",
		}},
		{"list limit, margin exceeded", size(10000, "announce@example.org", 1), map[string]string{
			"announce@example.org":         tooLarge,
			"news@example.org":             "continue", // a shorter address, a smaller margin
			"announce-request@example.org": "continue",
		}},
		{"list limit, SIZE= within the margin", "SIZE=10000", map[string]string{
			"announce@example.org": tooLarge,
			"news@example.org":     tooLarge,
		}},
		{"keyword case", "BODY=8BITMIME size=20000 SMTPUTF8", map[string]string{
			"announce@example.org": tooLarge,
			"mylist@example.com":   "continue",
		}},
		{"global limit exceeded", "SIZE=1000001", map[string]string{
			"mylist@example.com":           tooLarge,
			"mylist-request@example.com":   tooLarge,
			"announce-request@example.org": tooLarge,
			"nosuchlist@example.com":       refusal(reply.Unknown),
			"broken@broken.example":        refusal(reply.Broken),
			"mylist@not-ours.example":      "continue", // never touch other domains
		}},
		{"global limit exact", size(1_000_000, "announce-request@example.org", 0), map[string]string{
			"mylist@example.com":           "continue",
			"announce-request@example.org": "continue",
		}},
		{"global limit, margin exceeded", size(1_000_000, "mylist@example.com", 1), map[string]string{
			"mylist@example.com":           tooLarge,
			"announce-request@example.org": tooLarge,
			"mylist@not-ours.example":      "continue",
		}},
		{"beyond int64", "SIZE=99999999999999999999", map[string]string{
			"mylist@example.com": tooLarge,
		}},
		{"not a number", "SIZE=12x", map[string]string{
			"announce@example.org": "continue",
		}},
	}
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			ts := startServer(t, network, Options{MaxMessageSize: 1_000_000})
			s := ts.client(t, nil)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					// All recipients in one transaction, then a new
					// transaction without SIZE= must forget it.
					mail(t, s, tt.args)
					for addr, want := range tt.rcpts {
						if got := rcpt(t, s, addr); got != want {
							t.Errorf("MAIL %q, RCPT %q: got %q, want %q", tt.args, addr, got, want)
						}
					}
					if err := s.Abort(nil); err != nil {
						t.Fatal(err)
					}
					mail(t, s, "")
					if got := rcpt(t, s, "announce@example.org"); got != "continue" {
						t.Errorf("next transaction without SIZE=: got %q, want continue", got)
					}
					if err := s.Abort(nil); err != nil {
						t.Fatal(err)
					}
				})
			}
		})
	}
}

// TestSizeParam pins the parsing of MAIL FROM's ESMTP arguments.
func TestSizeParam(t *testing.T) {
	tests := []struct {
		args string
		want int64
	}{
		{"", 0},
		{"SIZE=0", 0},
		{"SIZE=12345", 12345},
		{"size=12345", 12345},
		{"Size=7", 7},
		{"BODY=8BITMIME SIZE=42 SMTPUTF8", 42},
		{"SIZE=1 SIZE=2", 1},
		{"SIZE=", 0},
		{"SIZE=-1", 0},
		{"SIZE=+1", 0},
		{"SIZE=1e3", 0},
		{"SIZE= 12", 0},
		{"XSIZE=12", 0},
		{"SIZE12", 0},
		{"SIZE=9223372036854775807", math.MaxInt64},
		{"SIZE=9223372036854775808", math.MaxInt64},
		{"SIZE=99999999999999999999", math.MaxInt64},
		{"SIZE=00000000000000000000000000012", 12},
	}
	for _, tt := range tests {
		if got := sizeParam(tt.args); got != tt.want {
			t.Errorf("sizeParam(%q) = %d, want %d", tt.args, got, tt.want)
		}
	}
}

// FuzzSizeParam checks sizeParam against a plain reference: the first
// SIZE= argument, all digits, saturating at math.MaxInt64.
func FuzzSizeParam(f *testing.F) {
	f.Fuzz(func(t *testing.T, args string) {
		got := sizeParam(args)
		if got < 0 {
			t.Fatalf("sizeParam(%q) = %d < 0", args, got)
		}
		var want int64
		for _, arg := range strings.Split(args, " ") {
			if len(arg) < 5 || !strings.EqualFold(arg[:5], "SIZE=") {
				continue
			}
			val := arg[5:]
			if val != "" && strings.Trim(val, "0123456789") == "" {
				n, err := strconv.ParseInt(val, 10, 64)
				if err != nil {
					n = math.MaxInt64 // all digits: out of range
				}
				want = n
			}
			break
		}
		if got != want {
			t.Fatalf("sizeParam(%q) = %d, want %d", args, got, want)
		}
	})
}
