package postfix

import (
	"testing"
	"time"

	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/listgate/listgate/internal/testutil"
)

// TestConnectionLimit: a connection past MaxConnections is closed before
// any request, logged and counted, while the connections already open
// keep answering; a slot freed is taken again. Both doors.
func TestConnectionLimit(t *testing.T) {
	for _, sm := range []bool{false, true} {
		name := map[bool]string{false: "policy", true: "socketmap"}[sm]
		t.Run(name, func(t *testing.T) {
			h := start(t, config{socketmap: sm, options: func(o *Options) { o.MaxConnections = 2 }})
			ask := func(c *client) {
				t.Helper()
				if sm {
					if got := c.lookup(mapDomains, "example.com"); got != "OK example.com" {
						t.Errorf("lookup: %q", got)
					}
				} else if got := c.ask(policyRequest("RCPT", "nosuchlist@example.com", 0)); got != actUnknown {
					t.Errorf("policy: %q", got)
				}
			}
			a, b := h.dial(), h.dial()
			ask(a)
			ask(b)
			if c := h.dial(); !c.closed() {
				t.Error("past the limit: not closed")
			}
			ask(a)
			ask(b)
			if n := promtestutil.ToFloat64(h.core.m.refused.WithLabelValues("max_connections")); n != 1 {
				t.Errorf("refused = %v, want 1", n)
			}
			if l := h.logs.Lines("refusing a connection"); len(l) != 1 {
				t.Errorf("%d refusal log lines, want 1", len(l))
			}
			a.nc.Close()
			testutil.WaitFor(t, 5*time.Second, "the closed connection to be given back", func() bool { return h.core.limit.Open() < 2 })
			ask(h.dial())
		})
	}
}
