package postfix

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/reply"
)

// The actions the policy door gives, from the verdict table.
var (
	actUnknown  = policyAction(reply.Unknown)
	actTooLarge = policyAction(reply.TooLarge)
	actBroken   = policyAction(reply.Broken)
	actError    = policyAction(reply.LocalError)
)

// TestPolicyActions checks the door's answers beyond the corpus, on one
// connection (Postfix sends many requests on one): only RCPT is judged,
// size= is checked with the milter's margin against the list's and the
// global limit, unknown attributes are ignored, CRLF line ends are
// taken.
func TestPolicyActions(t *testing.T) {
	const max = 1_000_000
	h := start(t, config{options: func(o *Options) { o.MaxMessageSize = max }})
	c := h.dial()
	const post = "announce@example.org" // max_message_size = "10KB": 10,000 bytes
	m := margin("mx.sender.example", post)
	mg := margin("mx.sender.example", "mylist@example.com")
	for _, tt := range []struct {
		name, req, want string
	}{
		{"accept", policyRequest("RCPT", "mylist@example.com", 0), "DUNNO"},
		{"unknown", policyRequest("RCPT", "nosuchlist@example.com", 0), actUnknown},
		{"not served", policyRequest("RCPT", "someone@not-ours.example", 0), "DUNNO"},
		{"broken", policyRequest("RCPT", "broken@broken.example", 0), actBroken},
		{"other states pass", policyRequest("DATA", "nosuchlist@example.com", 0), "DUNNO"},
		{"MAIL state", policyRequest("MAIL", "", 0), "DUNNO"},
		{"END-OF-MESSAGE", policyRequest("END-OF-MESSAGE", "nosuchlist@example.com", 1<<40), "DUNNO"},
		{"list limit, at", policyRequest("RCPT", post, 10_000-m), "DUNNO"},
		{"list limit, over", policyRequest("RCPT", post, 10_000-m+1), actTooLarge},
		{"sub-address has no list limit", policyRequest("RCPT", "news-request@example.org", 20_000), "DUNNO"},
		{"global limit, at", policyRequest("RCPT", "mylist@example.com", max-mg), "DUNNO"},
		{"global limit, over", policyRequest("RCPT", "mylist@example.com", max-mg+1), actTooLarge},
		{"size huge", policyRequest("RCPT", "mylist@example.com", 0, "size=99999999999999999999999"), actTooLarge},
		{"size of a domain not served", policyRequest("RCPT", "a@not-ours.example", 1<<40), "DUNNO"},
		{"unknown attributes", policyRequest("RCPT", "mylist@example.com", 0, "x_future=1", "y=a=b"), "DUNNO"},
		{"first recipient counts", strings.Replace(policyRequest("RCPT", "mylist@example.com", 0),
			"recipient=mylist@example.com\n", "recipient=mylist@example.com\nrecipient=nosuchlist@example.com\n", 1), "DUNNO"},
		{"empty attribute name", policyRequest("RCPT", "mylist@example.com", 0, "=weird"), actError},
		{"CRLF", strings.ReplaceAll(policyRequest("RCPT", "nosuchlist@example.com", 0), "\n", "\r\n"), actUnknown},
		{"no recipient at RCPT", policyRequest("RCPT", "", 0), actError},
		{"recipient attribute missing", strings.Replace(policyRequest("RCPT", "x", 0), "recipient=x\n", "", 1), actError},
		{"malformed size", policyRequest("RCPT", "mylist@example.com", 0, "size=12k"), actError},
		{"not a policy request", policyRequest("RCPT", "mylist@example.com", 0, "request=junk"), actError},
		{"no protocol_state", strings.Replace(policyRequest("RCPT", "x@example.com", 0), "protocol_state=RCPT\n", "", 1), actError},
		{"line without =", strings.Replace(policyRequest("RCPT", "mylist@example.com", 0), "stress=\n", "stress\n", 1), actError},
		{"NUL byte", policyRequest("RCPT", "mylist@example.com", 0, "x=a\x00b"), actError},
		{"binary junk", "\x00\x01\x02\xff\xfe\n\x80=\x81\n\n", actError},
		{"line too long", policyRequest("RCPT", "mylist@example.com", 0, "x="+strings.Repeat("x", DefaultMaxLine)), actError},
		{"still fine after", policyRequest("RCPT", "mylist-owner@example.com", 0), "DUNNO"},
	} {
		if got := c.ask(tt.req); got != tt.want {
			t.Errorf("%s: action %q, want %q", tt.name, got, tt.want)
		}
	}
	if n := promtestutil.ToFloat64(h.core.m.requests.WithLabelValues("ignored")); n != 3 {
		t.Errorf(`requests_total{verdict="ignored"} = %v, want 3`, n)
	}
	if n := promtestutil.ToFloat64(h.core.m.protocolErrors); n != 10 {
		t.Errorf("protocol_errors_total = %v, want 10:\n%s", n, h.logs)
	}
}

// TestPolicyLog checks the info line of a verdict: the keys of every door,
// with the SMTP client and sender Postfix names, as the milter logs them.
func TestPolicyLog(t *testing.T) {
	h := start(t, config{})
	c := h.dial()
	c.ask(policyRequest("RCPT", "MyList+tag@Example.COM", 0, "queue_id=4jfSv46qk3z1SQbl"))
	ls := h.logs.Lines("rcpt")
	if len(ls) != 1 {
		t.Fatalf("%d rcpt lines:\n%s", len(ls), h.logs)
	}
	want := map[string]string{"door": "policy", "rcpt": "MyList+tag@Example.COM", "list": "mylist@example.com",
		"verdict": "accept", "queue_id": "4jfSv46qk3z1SQbl", "client_addr": "192.0.2.1", "from": "anne@sender.example"}
	for k, v := range want {
		if ls[0].Attrs[k] != v {
			t.Errorf("rcpt line %s=%q, want %q", k, ls[0].Attrs[k], v)
		}
	}
	if ls[0].Level != slog.LevelInfo {
		t.Errorf("rcpt line at %v", ls[0].Level)
	}
}

// TestPolicyTooBig checks a request larger than MaxRequest: answered with
// the local-error tempfail, the connection closed (the rest of the
// request is not read), and the server serves other connections.
func TestPolicyTooBig(t *testing.T) {
	h := start(t, config{options: func(o *Options) { o.MaxRequest = 2000 }})
	c := h.dial()
	req := policyRequest("RCPT", "mylist@example.com", 0, "x="+strings.Repeat("x", 3000))
	if got := c.ask(req); got != actError {
		t.Errorf("action %q, want %q", got, actError)
	}
	if !c.closed() {
		t.Error("connection not closed")
	}
	if got := h.dial().ask(policyRequest("RCPT", "nosuchlist@example.com", 0)); got != actUnknown {
		t.Errorf("next connection: %q, want %q", got, actUnknown)
	}
	if n := len(h.logs.Lines("malformed policy request; replying tempfail")); n != 1 {
		t.Errorf("%d warnings:\n%s", n, h.logs)
	}
}

// TestPolicyCutOff checks a request the client ends in the middle: the
// connection is closed without a reply, and logged.
func TestPolicyCutOff(t *testing.T) {
	h := start(t, config{})
	c := h.dial()
	c.send("request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=mylist@exa")
	if err := c.nc.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.action(); !errors.Is(err, io.EOF) {
		t.Errorf("after a cut-off request: %v, want the connection closed", err)
	}
	testutil.WaitFor(t, 5*time.Second, "the warning", func() bool {
		return len(h.logs.Lines("policy request cut off; closing the connection")) == 1
	})
}

// TestPolicyPipelined checks requests sent back to back before any reply
// is read: each gets its reply, in order.
func TestPolicyPipelined(t *testing.T) {
	h := start(t, config{network: "unix"})
	c := h.dial()
	rcpts := []string{"mylist@example.com", "nosuchlist@example.com", "broken@broken.example", "x@not-ours.example"}
	want := []string{"DUNNO", actUnknown, actBroken, "DUNNO"}
	var all strings.Builder
	for _, r := range rcpts {
		all.WriteString(policyRequest("RCPT", r, 0))
	}
	c.send(all.String())
	for i := range rcpts {
		got, err := c.action()
		if err != nil || got != want[i] {
			t.Errorf("reply %d (%s): %q, %v; want %q", i, rcpts[i], got, err, want[i])
		}
	}
}

// TestReadRequest checks the parser on its own: what it reads, where it
// stops, and its errors.
func TestReadRequest(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		rcpt     string
		err      string // "" for none; "malformed", "too big", "eof", "unexpected eof"
		rest     string // what is left to read after the request
	}{
		{"plain", "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@b\n\nnext", "a@b", "", "next"},
		{"first wins", "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@b\nrecipient=c@d\n\n", "a@b", "", ""},
		{"value with =", "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a=b@c\n\n", "a=b@c", "", ""},
		{"empty stream", "", "", "eof", ""},
		{"cut", "request=smtpd_access_policy\nprotocol", "", "unexpected eof", ""},
		{"cut after a line", "request=smtpd_access_policy\n", "", "unexpected eof", ""},
		{"empty request", "\nrest", "", "malformed", "rest"},
		{"no =", "request=smtpd_access_policy\nprotocol_state=RCPT\nhello\n\nrest", "", "malformed", "rest"},
		{"long line skipped to the end", "request=smtpd_access_policy\nprotocol_state=RCPT\nx=" + strings.Repeat("y", 100) + "\n\nrest", "", "malformed", "rest"},
		{"too big", "request=smtpd_access_policy\n" + strings.Repeat("a=b\n", 100), "", "too big", ""},
		{"long junk", strings.Repeat("z", 1000), "", "too big", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.in), 64)
			req, err := readRequest(br, 64, 300)
			var mal *malformedError
			got := ""
			switch {
			case err == nil:
			case errors.As(err, &mal):
				got = "malformed"
			case errors.Is(err, errTooBig):
				got = "too big"
			case errors.Is(err, io.ErrUnexpectedEOF):
				got = "unexpected eof"
			case errors.Is(err, io.EOF):
				got = "eof"
			default:
				got = fmt.Sprint(err)
			}
			if got != tt.err {
				t.Fatalf("error %v (%s), want %s", err, got, tt.err)
			}
			if err == nil && req.rcpt != tt.rcpt {
				t.Errorf("recipient %q, want %q", req.rcpt, tt.rcpt)
			}
			if tt.err != "too big" {
				rest, _ := io.ReadAll(br)
				if string(rest) != tt.rest {
					t.Errorf("left %q, want %q", rest, tt.rest)
				}
			}
		})
	}
}

// TestParseSize checks the size= attribute's parser.
func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int64
		okay bool
	}{
		{"0", 0, true}, {"", 0, true}, {"12345", 12345, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775808", 9223372036854775807, true},
		{"-1", 0, false}, {"1k", 0, false}, {" 1", 0, false},
	} {
		if n, ok := parseSize(tt.in); n != tt.n || ok != tt.okay {
			t.Errorf("parseSize(%q) = %d, %v; want %d, %v", tt.in, n, ok, tt.n, tt.okay)
		}
	}
}
