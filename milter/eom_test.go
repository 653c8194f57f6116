package milter

import (
	"fmt"
	"strings"
	"testing"

	gomilter "github.com/d--j/go-milter"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/listgate/listgate/reply"
)

// TestEndOfMessageSize checks the size of messages sent without SIZE=, at
// their end, with go-milter's client over TCP and a unix socket.
// announce@example.org (alias news@) has max_message_size = "10KB"
// (10,000 bytes); the global limit is 1,000,000. A message is refused
// (552 5.3.4, the whole message) if it is too large for a posting address
// let through at RCPT, or for the global limit; the size counted is the
// message's, line ends as CRLF, plus the margin.
func TestEndOfMessageSize(t *testing.T) {
	tooLarge := refusal(reply.TooLarge)
	// fits is the largest body a message (testHeader) to rcpt alone may
	// have under limit.
	fits := func(limit int64, rcpt string) int {
		return int(limit - marginFor(rcpt) - wireSize(testHeader, nil))
	}
	tests := []struct {
		name  string
		rcpts []string // RCPTs, each let through
		body  int
		want  string
	}{
		{"too large for the list", []string{"announce@example.org"}, 20000, tooLarge},
		{"small post", []string{"announce@example.org"}, 1000, "accept"},
		{"empty body", []string{"announce@example.org"}, 0, "accept"},
		{"alias of the posting address", []string{"news@example.org"}, 20000, tooLarge},
		{"posting address with an extension", []string{"announce+tag@example.org"}, 20000, tooLarge},
		{"list limit exact", []string{"announce@example.org"}, fits(10000, "announce@example.org"), "accept"},
		{"list limit exceeded by the margin", []string{"announce@example.org"}, fits(10000, "announce@example.org") + 1, tooLarge},
		{"sub-address: no list limit", []string{"announce-request@example.org"}, 20000, "accept"},
		{"sub-addresses and other lists", []string{"news-bounces@example.org", "mylist@example.com", "mylist-owner@example.com"}, 500000, "accept"},
		{"one post among others refuses the whole message", []string{"mylist@example.com", "announce@example.org", "announce-owner@example.org"}, 20000, tooLarge},
		{"the smallest list limit counts", []string{"mylist@example.com", "news@example.org"}, fits(10000, "news@example.org") + 1, tooLarge},
		{"global limit exceeded", []string{"mylist@example.com"}, 1_000_001, tooLarge},
		{"global limit, sub-address", []string{"announce-request@example.org"}, 1_000_001, tooLarge},
		{"global limit exact", []string{"mylist@example.com"}, fits(1_000_000, "mylist@example.com"), "accept"},
		{"global limit exceeded by the margin", []string{"mylist@example.com"}, fits(1_000_000, "mylist@example.com") + 1, tooLarge},
		{"not ours: unchecked", []string{"mylist@not-ours.example"}, 1_500_000, "accept"},
	}
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			ts := startServer(t, network, Options{MaxMessageSize: 1_000_000})
			s := ts.client(t, nil) // every message on one connection
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					mail(t, s, "")
					for _, r := range tt.rcpts {
						if got := rcpt(t, s, r); got != "continue" {
							t.Fatalf("RCPT %q: %q", r, got)
						}
					}
					act, _ := message(t, s, tt.body)
					if got := answer(act); got != tt.want {
						t.Errorf("message of %d bytes to %v: got %q, want %q", tt.body, tt.rcpts, got, tt.want)
					}
				})
			}
		})
	}
}

// TestEndOfMessageRefusedRcpt checks that a recipient refused at RCPT
// does not count: its SIZE= made the posting address too large, the
// sub-address of the same transaction still gets the message.
func TestEndOfMessageRefusedRcpt(t *testing.T) {
	ts := startServer(t, "tcp", Options{MaxMessageSize: 1_000_000})
	s := ts.client(t, nil)
	mail(t, s, "SIZE=20000")
	if got := rcpt(t, s, "announce@example.org"); got != refusal(reply.TooLarge) {
		t.Fatalf("RCPT: %q", got)
	}
	for _, r := range []string{"nosuchlist@example.org", "announce-request@example.org"} {
		rcpt(t, s, r)
	}
	if act, _ := message(t, s, 20000); answer(act) != "accept" {
		t.Errorf("message: %v, want accept", act)
	}
}

// TestEndOfMessageTransactions checks that each transaction starts afresh:
// several messages on one connection, and after an abort (RSET, or an
// SMTP client gone) at any stage.
func TestEndOfMessageTransactions(t *testing.T) {
	tooLarge := refusal(reply.TooLarge)
	ts := startServer(t, "tcp", Options{MaxMessageSize: 1_000_000})
	s := ts.client(t, nil)
	send := func(rcpts []string, body int, want string) {
		t.Helper()
		mail(t, s, "")
		for _, r := range rcpts {
			rcpt(t, s, r)
		}
		if act, _ := message(t, s, body); answer(act) != want {
			t.Errorf("message of %d bytes to %v: %v, want %s", body, rcpts, act, want)
		}
	}
	post, sub := []string{"announce@example.org"}, []string{"announce-request@example.org"}
	send(post, 20000, tooLarge)
	send(post, 5000, "accept") // the count starts at zero again
	send(sub, 20000, "accept") // the list limit of the last message is gone
	send(post, 20000, tooLarge)

	// Aborted after RCPT: the posting address is forgotten.
	mail(t, s, "")
	rcpt(t, s, "announce@example.org")
	if err := s.Abort(nil); err != nil {
		t.Fatal(err)
	}
	send(sub, 20000, "accept")

	// Aborted in the body: what was counted is forgotten.
	mail(t, s, "")
	rcpt(t, s, "announce@example.org")
	if _, err := s.DataStart(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HeaderEnd(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BodyChunk(bodyOf(6000)); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort(nil); err != nil {
		t.Fatal(err)
	}
	send(post, 6000, "accept")

	// A second SMTP session on the same milter connection (SMFIC_QUIT_NC).
	mail(t, s, "")
	rcpt(t, s, "announce@example.org")
	if err := s.Reset(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Conn("mx2.example.net", gomilter.FamilyInet, 40001, "192.0.2.2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Helo(testHelo); err != nil {
		t.Fatal(err)
	}
	send(sub, 20000, "accept")
	send(post, 5000, "accept")
}

// TestEndOfMessageSkip checks SMFIR_SKIP: a body chunk is answered skip
// once the door needs no more of the body (no recipient of listgate's
// was let through, or the message is too large already), never before, and never where
// the MTA did not negotiate SMFIP_SKIP.
func TestEndOfMessageSkip(t *testing.T) {
	const big = 3 * 65535
	tests := []struct {
		name    string
		global  int64
		rcpts   []string
		body    int
		want    string
		skipped bool
	}{
		{"not ours", 1_000_000, []string{"mylist@not-ours.example"}, big, "accept", true},
		// A zero MaxMessageSize is lists.DefaultMaxMessageSize: there is
		// always a global limit, so listgate's recipients are counted.
		{"default global limit: counted", 0, []string{"mylist@example.com", "announce-request@example.org"}, big, "accept", false},
		{"list limit, default global limit: counted", 0, []string{"announce@example.org"}, 5000, "accept", false},
		{"too large already", 0, []string{"announce@example.org"}, big, refusal(reply.TooLarge), true},
		{"global limit: counted to the end", 1_000_000, []string{"mylist@example.com"}, big, "accept", false},
		{"refused recipient only", 1_000_000, []string{"nosuchlist@example.org", "mylist@not-ours.example"}, big, "accept", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, "tcp", Options{MaxMessageSize: tt.global})
			for _, opts := range [][]gomilter.Option{nil, {gomilter.WithoutProtocol(gomilter.OptSkip)}} {
				s := ts.client(t, nil, opts...)
				mail(t, s, "")
				for _, r := range tt.rcpts {
					rcpt(t, s, r)
				}
				act, skipped := message(t, s, tt.body)
				wantSkip := tt.skipped && opts == nil
				if answer(act) != tt.want || skipped != wantSkip {
					t.Errorf("SMFIP_SKIP %v: %v, skipped %v; want %s, skipped %v",
						opts == nil, act, skipped, tt.want, wantSkip)
				}
			}
		})
	}
}

// TestEndOfMessageHeaders checks how header fields are counted: name,
// colon, value and CRLF, a folded field's line breaks (bare LFs, as
// Postfix sends them) as CRLF, and the space after the colon that the MTA
// eats when SMFIP_HDR_LEADSPC is not negotiated. Each message is exactly
// at the list limit, then one byte over.
func TestEndOfMessageHeaders(t *testing.T) {
	const rcptAddr = "announce@example.org"
	folded := [][2]string{{"Subject", " a long\n\tsubject\n folded"}, {"X-Empty", ""}, {"X-Tab", "\tvalue"}}
	// On the wire: "Subject: a long\r\n\tsubject\r\n folded\r\n" ...
	wire := int64(len("Subject: a long\r\n\tsubject\r\n folded\r\nX-Empty:\r\nX-Tab:\tvalue\r\n\r\n"))
	tests := []struct {
		name      string
		opts      []gomilter.Option
		hdr       [][2]string
		wireBytes int64 // the header section on the wire
	}{
		{"leading space", nil, folded, wire},
		// Without SMFIP_HDR_LEADSPC the MTA sends "a long..." for
		// "Subject: a long...": the door counts the space back, one per
		// field, also where there was none (X-Empty, X-Tab): those count
		// one byte too many each.
		{"no leading space", []gomilter.Option{gomilter.WithoutProtocol(gomilter.OptHeaderLeadingSpace)},
			[][2]string{{"Subject", "a long\n\tsubject\n folded"}, {"X-Empty", ""}, {"X-Tab", "\tvalue"}}, wire + 2},
	}
	ts := startServer(t, "tcp", Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ts.client(t, nil, tt.opts...)
			body := int(10000 - marginFor(rcptAddr) - tt.wireBytes)
			for _, c := range []struct {
				body int
				want string
			}{{body, "accept"}, {body + 1, refusal(reply.TooLarge)}} {
				mail(t, s, "")
				rcpt(t, s, rcptAddr)
				if act, _ := sendMessage(t, s, tt.hdr, bodyOf(c.body)); answer(act) != c.want {
					t.Errorf("body of %d bytes: %v, want %s", c.body, act, c.want)
				}
			}
		})
	}
}

// TestEndOfMessageMargin checks what the margin is made of: sizeMargin,
// the HELO name and the longest recipient let through.
func TestEndOfMessageMargin(t *testing.T) {
	ts := startServer(t, "tcp", Options{})
	long := strings.Repeat("x", 200)
	for _, tt := range []struct {
		name, helo string
		rcpts      []string
	}{
		{"short HELO", "a", []string{"announce@example.org"}},
		{"long HELO", long + ".example", []string{"announce@example.org"}},
		{"long recipient", "a", []string{"announce+" + long + "@example.org"}},
		{"longest recipient", "a", []string{"announce@example.org", "announce-request+" + long + "@example.org"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := gomilter.NewClient(ts.network, ts.addr).Session(nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Conn("mx.example.net", gomilter.FamilyInet, 40000, "192.0.2.1"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Helo(tt.helo); err != nil {
				t.Fatal(err)
			}
			longest := 0
			for _, r := range tt.rcpts {
				longest = max(longest, len(r))
			}
			body := int(10000 - margin(len(tt.helo), longest) - wireSize(testHeader, nil))
			for _, c := range []struct {
				body int
				want string
			}{{body, "accept"}, {body + 1, refusal(reply.TooLarge)}} {
				mail(t, s, "")
				for _, r := range tt.rcpts {
					rcpt(t, s, r)
				}
				if act, _ := message(t, s, c.body); answer(act) != c.want {
					t.Errorf("body of %d bytes: %v, want %s", c.body, act, c.want)
				}
			}
		})
	}
}

// TestEndOfMessageLongLines checks that lines of 128 bytes or more count
// what Postfix's queue file spends on them (Postfix announces that size to
// the LMTP door as SIZE=): one byte more than on the wire up to 512 bytes.
func TestEndOfMessageLongLines(t *testing.T) {
	ts := startServer(t, "tcp", Options{})
	s := ts.client(t, nil)
	const rcptAddr = "announce@example.org"
	line := strings.Repeat("z", 198) + "\r\n" // 198 bytes and CRLF: one byte extra
	budget := 10000 - marginFor(rcptAddr) - wireSize(testHeader, nil)
	n := budget / int64(len(line)+1)
	for _, c := range []struct {
		lines int64
		tail  int64 // short last line, CRLF included
		want  string
	}{
		{n, budget - n*int64(len(line)+1), "accept"},
		{n, budget - n*int64(len(line)+1) + 1, refusal(reply.TooLarge)},
	} {
		body := []byte(strings.Repeat(line, int(c.lines)))
		body = append(body, bodyOf(int(c.tail))...)
		mail(t, s, "")
		rcpt(t, s, rcptAddr)
		if act, _ := sendMessage(t, s, testHeader, body); answer(act) != c.want {
			t.Errorf("%d long lines and %d bytes (%d on the wire): %v, want %s",
				c.lines, c.tail, len(body), act, c.want)
		}
	}
}

// TestEndOfMessageLog checks the one log line of a message refused at its
// end, with the queue ID Postfix sends with the end of message, and the
// message counters.
func TestEndOfMessageLog(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts := startServer(t, "tcp", Options{Registerer: reg, MaxMessageSize: 1_000_000})
	macros := gomilter.NewMacroBag()
	s := ts.client(t, macros)
	for _, m := range []struct {
		rcpt string
		body int
	}{
		{"announce@example.org", 20000},           // too large for the list
		{"mylist@example.com", 1_000_001},         // for the global limit
		{"announce@example.org", 100},             // accepted
		{"mylist@not-ours.example", 2_000_000},    // unchecked
		{"announce-request@example.org", 300_000}, // accepted
	} {
		mail(t, s, "")
		rcpt(t, s, m.rcpt)
		macros.Set(gomilter.MacroQueueId, fmt.Sprintf("QID%d", m.body))
		message(t, s, m.body)
	}
	logged := ts.logs.Lines("message")
	if len(logged) != 2 {
		t.Fatalf("%d message log lines, want 2:\n%s", len(logged), ts.logs)
	}
	hdr := wireSize(testHeader, nil)
	for i, want := range []map[string]string{
		{"door": "milter", "list": "announce@example.org", "verdict": "too-large", "queue_id": "QID20000",
			"bytes": fmt.Sprint(hdr + 20000), "margin": fmt.Sprint(marginFor("announce@example.org")), "limit": "10000"},
		{"door": "milter", "list": "", "verdict": "too-large", "queue_id": "QID1000001",
			"bytes": fmt.Sprint(hdr + 1_000_001), "margin": fmt.Sprint(marginFor("mylist@example.com")), "limit": "1000000"},
	} {
		for k, v := range want {
			if got := logged[i].Attrs[k]; got != v {
				t.Errorf("message log line %d: %s=%q, want %q", i, k, got, v)
			}
		}
	}
	want := `
# HELP listgate_milter_messages_total Messages the milter door answered at their end, by result (accept, too-large, unchecked: no recipient of listgate's, error).
# TYPE listgate_milter_messages_total counter
listgate_milter_messages_total{result="accept"} 2
listgate_milter_messages_total{result="error"} 0
listgate_milter_messages_total{result="too-large"} 2
listgate_milter_messages_total{result="unchecked"} 1
`
	if err := promtestutil.GatherAndCompare(reg, strings.NewReader(want), "listgate_milter_messages_total"); err != nil {
		t.Error(err)
	}
}

// BenchmarkMessage measures what a 10 MB message costs through the door,
// from the first body chunk to the answer to its end, over TCP with
// go-milter's client as the MTA: counted (a recipient with a limit; every
// 64 KiB chunk is sent and answered), and skipped (no recipient of
// listgate's: the first chunk is answered skip, the rest never sent).
func BenchmarkMessage(b *testing.B) {
	body := bodyOf(10_000_000)
	for _, bm := range []struct {
		name, rcpt string
	}{
		{"counted", "mylist@example.com"},
		{"skipped", "mylist@not-ours.example"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			ts := startServer(b, "tcp", Options{MaxMessageSize: 64 << 20})
			s, err := gomilter.NewClient(ts.network, ts.addr).Session(nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Conn("mx.example.net", gomilter.FamilyInet, 40000, "192.0.2.1"); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Helo(testHelo); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := s.Mail("sender@example.net", ""); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Rcpt(bm.rcpt, ""); err != nil {
					b.Fatal(err)
				}
				if _, err := s.DataStart(); err != nil {
					b.Fatal(err)
				}
				if _, err := s.HeaderEnd(); err != nil {
					b.Fatal(err)
				}
				for rest := body; len(rest) > 0 && !s.Skip(); {
					n := min(len(rest), 65535)
					if _, err := s.BodyChunk(rest[:n]); err != nil {
						b.Fatal(err)
					}
					rest = rest[n:]
				}
				if _, act, err := s.End(); err != nil || act.Type != gomilter.ActionAccept {
					b.Fatalf("end of message: %v, %v", act, err)
				}
			}
		})
	}
}
