package daemon

import (
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// TestSpoolReserve: the daemon resolves spool_reserve's default (auto)
// with its max_message_size, and a spool below the reserve answers RCPT
// 452 4.3.1 through the LMTP door, shows in the gauges, and leaves /readyz
// at 200 with a note. A max_message_size of 1 TiB makes the default
// reserve 2 TiB, more than a test machine's disk.
func TestSpoolReserve(t *testing.T) {
	s := settings(t)
	s.MaxMessageSize = 1 << 40
	r := start(t, s)

	c := lmtpClient(t, "tcp", r.hostPort("lmtp"))
	if err := c.Mail("anne@example.net", nil); err != nil {
		t.Fatal(err)
	}
	var se *smtp.SMTPError
	if err := c.Rcpt("tour@example.org", nil); !errors.As(err, &se) || se.Code != 452 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 1}) {
		t.Errorf("RCPT below the reserve: %v, want 452 4.3.1", err)
	}

	st, body := get(t, "http://"+r.hostPort("metrics")+"/readyz")
	if st != 200 || !strings.HasPrefix(body, "ok\nnote: spool "+s.Spool+": ") || !strings.Contains(body, "below its reserve of 2199023255552 bytes") {
		t.Errorf("/readyz: %d %q, want 200 with a note on the reserve", st, body)
	}
	_, metrics := get(t, "http://"+r.hostPort("metrics")+"/metrics")
	if !strings.Contains(metrics, "\nlistgate_spool_reserve_bytes 2.199023255552e+12\n") {
		t.Errorf("/metrics lacks the reserve of 2 TiB:\n%s", grepLines(metrics, "listgate_spool_"))
	}
	for _, name := range []string{"listgate_spool_free_bytes", "listgate_spool_free_inodes", "listgate_spool_reserve_inodes"} {
		if !strings.Contains(metrics, "\n"+name+" ") {
			t.Errorf("/metrics lacks %s:\n%s", name, grepLines(metrics, "listgate_spool_"))
		}
	}
	if !strings.Contains(metrics, `listgate_lmtp_recipients_total{verdict="no-space"} 1`) {
		t.Errorf("/metrics does not count the no-space recipient:\n%s", grepLines(metrics, "listgate_lmtp_recipients_total"))
	}
	if n := strings.Count(r.log.String(), "spool below its reserve"); n != 1 {
		t.Errorf("%d log lines about the reserve, want 1 (at the start):\n%s", n, r.log)
	}
}

// grepLines returns the lines of text that start with prefix.
func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
