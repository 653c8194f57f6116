package milter

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	gomilter "github.com/d--j/go-milter"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/reply"
)

// swapSource is a lists.Source whose snapshot a test replaces, as a
// reload does.
type swapSource struct {
	p atomic.Pointer[lists.Snapshot]
}

func (s *swapSource) Snapshot() *lists.Snapshot { return s.p.Load() }

// loadMode loads a lists directory with one list of example.org, whose
// domain file sets mode (none when empty).
func loadMode(t *testing.T, mode string) *lists.Snapshot {
	t.Helper()
	dir := t.TempDir()
	dom := ""
	if mode != "" {
		dom = "mode = \"" + mode + "\"\n"
	}
	for name, content := range map[string]string{"@example.org": dom, "announce@example.org": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := lists.Load(dir, lists.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestObserve: in observe mode the milter lets an unknown address of the
// domain pass (continue), logs it as observed and counts it in
// listgate_would_refuse_total{door="milter"}; the message is then not
// listgate's to size. The next RCPT after the domain file says enforce
// (a new snapshot) gets the 550, on the same connection.
func TestObserve(t *testing.T) {
	reg := prometheus.NewRegistry()
	src := &swapSource{}
	src.p.Store(loadMode(t, "observe"))
	ts := startServer(t, "tcp", Options{Lists: src, Registerer: reg, MaxMessageSize: 1000})
	s := ts.client(t, nil)
	mail(t, s, "SIZE=5000")
	for _, to := range []string{"nosuchlist@example.org", "<Announce-Bogus+x@EXAMPLE.org>"} {
		if got := rcpt(t, s, to); got != "continue" {
			t.Errorf("RCPT %s in observe mode: %s, want continue", to, got)
		}
	}
	// A list's address is judged as ever: its SIZE= too.
	if got := rcpt(t, s, "announce@example.org"); got != refusal(reply.TooLarge) {
		t.Errorf("RCPT announce@ with SIZE=5000: %s, want %s", got, refusal(reply.TooLarge))
	}
	if act, _ := message(t, s, 500); act.Type != gomilter.ActionAccept {
		t.Errorf("end of message: %v, want accept (no recipient of listgate's)", act)
	}
	want := `
# HELP listgate_would_refuse_total Recipients let through in observe mode that enforce mode would refuse (550 5.1.1), by door (milter, policy, socketmap) and served domain.
# TYPE listgate_would_refuse_total counter
listgate_would_refuse_total{domain="example.org",door="milter"} 2
`
	if err := promtestutil.GatherAndCompare(reg, strings.NewReader(want), "listgate_would_refuse_total"); err != nil {
		t.Error(err)
	}
	if n := promtestutil.ToFloat64(ts.metrics.rcpt.WithLabelValues("observed")); n != 2 {
		t.Errorf("recipients_total{verdict=observed} = %v, want 2", n)
	}
	lines := ts.logs.Lines("rcpt")
	if len(lines) != 3 || lines[0].Attrs["verdict"] != "observed" || lines[0].Attrs["rcpt"] != "nosuchlist@example.org" {
		t.Errorf("rcpt lines:\n%s", ts.logs)
	}

	src.p.Store(loadMode(t, "enforce"))
	mail(t, s, "")
	if got := rcpt(t, s, "nosuchlist@example.org"); got != refusal(reply.Unknown) {
		t.Errorf("RCPT after switching to enforce: %s, want %s", got, refusal(reply.Unknown))
	}
	if n := promtestutil.ToFloat64(ts.metrics.wouldRefuse.WithLabelValues("milter", "example.org")); n != 2 {
		t.Errorf("would_refuse after enforce = %v, want still 2", n)
	}
}
