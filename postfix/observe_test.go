package postfix

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

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
// domain file sets mode and the alias domain example.net, and a broken
// list file of broken.example, a domain in the mode opts.Observe says.
func loadMode(t *testing.T, mode string, opts lists.Options) *lists.Snapshot {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"@example.org":          "aliases = [\"example.net\"]\nmode = \"" + mode + "\"\n",
		"announce@example.org":  "",
		"broken@broken.example": "descripton = \"typo\"\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := lists.Load(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// wouldRefuse is listgate_would_refuse_total{door,domain} of h.
func (h *harness) wouldRefuse(door, domain string) float64 {
	return promtestutil.ToFloat64(h.core.m.wouldRefuse.WithLabelValues(door, domain))
}

// TestPolicyObserve: in observe mode the policy door answers DUNNO to an
// unknown address of the domain (an alias domain's too), logs it as
// observed and counts it; a tempfail stays a tempfail. Once the domain
// file says enforce, the next request gets the 550, on the same
// connection.
func TestPolicyObserve(t *testing.T) {
	src := &swapSource{}
	src.p.Store(loadMode(t, "observe", lists.Options{}))
	h := start(t, config{options: func(o *Options) { o.Lists = src }})
	c := h.dial()
	for _, tt := range []struct{ rcpt, want string }{
		{"nosuchlist@example.org", "DUNNO"},
		{"<Announce-Bogus+x@EXAMPLE.net>", "DUNNO"},
		{"announce-request@example.org", "DUNNO"},
		{"x@broken.example", "451 4.3.0 Temporary lookup failure"},
	} {
		if got := c.ask(policyRequest("RCPT", tt.rcpt, 0)); got != tt.want {
			t.Errorf("%s in observe mode: %q, want %q", tt.rcpt, got, tt.want)
		}
	}
	if n := h.wouldRefuse(doorPolicy, "example.org"); n != 2 {
		t.Errorf("would_refuse{policy,example.org} = %v, want 2", n)
	}
	lines := h.logs.Lines("rcpt")
	if len(lines) != 4 || lines[0].Attrs["verdict"] != "observed" || lines[1].Attrs["rcpt"] != "<Announce-Bogus+x@EXAMPLE.net>" {
		t.Errorf("rcpt lines:\n%s", h.logs)
	}

	src.p.Store(loadMode(t, "enforce", lists.Options{Observe: true}))
	if got, want := c.ask(policyRequest("RCPT", "nosuchlist@example.org", 0)), policyAction(reply.Unknown); got != want {
		t.Errorf("after enforce: %q, want %q", got, want)
	}
	// The observe setting covers a domain whose file sets no mode.
	if got := c.ask(policyRequest("RCPT", "x@other.example", 0)); got != "DUNNO" {
		t.Errorf("not served: %q", got)
	}
	if n := h.wouldRefuse(doorPolicy, "example.org"); n != 2 {
		t.Errorf("would_refuse after enforce = %v, want still 2", n)
	}
}

// TestSocketmapObserve: in observe mode the recipients map finds an
// unknown address of the domain ("OK" and the domain, as
// relay_recipient_maps needs only "found") and counts it; the transport
// map sends it to the LMTP door (which refuses it: a bounce, as before
// listgate); the domains and aliases maps are unchanged. Enforce makes
// the next lookup NOTFOUND.
func TestSocketmapObserve(t *testing.T) {
	src := &swapSource{}
	src.p.Store(loadMode(t, "observe", lists.Options{}))
	h := start(t, config{socketmap: true, options: func(o *Options) { o.Lists = src }})
	c := h.dial()
	lmtpHop := "OK lmtp:" + testLMTP.String()
	for _, tt := range []struct{ name, key, want string }{
		{mapRecipients, "nosuchlist@example.org", "OK example.org"},
		{mapRecipients, "nosuchlist+tag@example.net", "OK example.org"},
		{mapRecipients, "announce@example.org", "OK announce@example.org"},
		{mapRecipients, "x@broken.example", "TEMP Temporary lookup failure"},
		{mapRecipients, "x@other.example", "NOTFOUND "},
		{mapTransport, "nosuchlist@example.org", lmtpHop},
		{mapAliases, "nosuchlist@example.org", "NOTFOUND "},
		{mapDomains, "example.net", "OK example.net"},
	} {
		if got := c.lookup(tt.name, tt.key); got != tt.want {
			t.Errorf("%s %s in observe mode: %q, want %q", tt.name, tt.key, got, tt.want)
		}
	}
	// Only the recipients map counts: the transport map routes what
	// Postfix accepted.
	if n := h.wouldRefuse(doorSocketmap, "example.org"); n != 2 {
		t.Errorf("would_refuse{socketmap,example.org} = %v, want 2", n)
	}
	if lines := h.logs.Lines("rcpt"); len(lines) == 0 || lines[0].Attrs["verdict"] != "observed" {
		t.Errorf("no observed line:\n%s", h.logs)
	}

	src.p.Store(loadMode(t, "enforce", lists.Options{Observe: true}))
	for _, name := range []string{mapRecipients, mapTransport} {
		if got := c.lookup(name, "nosuchlist@example.org"); got != "NOTFOUND " {
			t.Errorf("%s after enforce: %q, want NOTFOUND", name, got)
		}
	}
}
