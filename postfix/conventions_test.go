package postfix

import (
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
)

// TestNilLists checks the doors' convention for Options without Lists:
// the policy door answers every recipient at RCPT, of any domain, with
// the local-error tempfail, counted and logged as verdict "error"; the
// socketmap answers TEMP to every lookup that may concern listgate, but
// NOTFOUND where Postfix asks about any recipient (aliases) unless it is
// a postmaster@ or abuse@; New warns once.
func TestNilLists(t *testing.T) {
	t.Run("policy", func(t *testing.T) {
		h := start(t, config{options: func(o *Options) { o.Lists = nil }})
		c := h.dial()
		for _, addr := range []string{"mylist@example.com", "nosuchlist@example.com", "someone@not-ours.example"} {
			if got := c.ask(policyRequest("RCPT", addr, 0)); got != actError {
				t.Errorf("%s: %q, want %q", addr, got, actError)
			}
		}
		if got := c.ask(policyRequest("DATA", "", 0)); got != "DUNNO" {
			t.Errorf("at DATA: %q, want DUNNO", got)
		}
		if n := promtestutil.ToFloat64(h.core.m.requests.WithLabelValues("error")); n != 3 {
			t.Errorf(`listgate_policy_requests_total{verdict="error"} = %v, want 3`, n)
		}
		for _, l := range h.logs.Lines("rcpt") {
			if l.Attrs["verdict"] != "error" {
				t.Errorf("rcpt line %v, want verdict=error", l.Attrs)
			}
		}
		if n := len(h.logs.AtLevel(slog.LevelWarn)); n != 1 {
			t.Errorf("%d warnings, want the one of New:\n%s", n, h.logs)
		}
	})
	t.Run("socketmap", func(t *testing.T) {
		h := start(t, config{socketmap: true, options: func(o *Options) { o.Lists = nil }})
		c := h.dial()
		for _, tt := range []struct{ name, key, want string }{
			{mapDomains, "example.com", tempError},
			{mapDomains, "not-ours.example", tempError},
			{mapRecipients, "mylist@example.com", tempError},
			{mapRecipients, "@example.com", "NOTFOUND "},
			{mapTransport, "mylist@example.com", tempError},
			{mapAliases, "someone@local.example", "NOTFOUND "},
			{mapAliases, "postmaster@example.com", tempError},
			{mapAliases, "Abuse+x@example.com", tempError},
		} {
			if got := c.lookup(tt.name, tt.key); got != tt.want {
				t.Errorf("%s %q: %q, want %q", tt.name, tt.key, got, tt.want)
			}
		}
		if n := len(h.logs.AtLevel(slog.LevelWarn)); n != 1 {
			t.Errorf("%d warnings, want the one of New:\n%s", n, h.logs)
		}
	})
}

// TestNilLogger checks that a nil Logger discards: nothing of the doors'
// reaches slog's default logger.
func TestNilLogger(t *testing.T) {
	def := &recorder{}
	prev := slog.Default()
	slog.SetDefault(slog.New(def))
	t.Cleanup(func() { slog.SetDefault(prev) })

	p := start(t, config{options: func(o *Options) { o.Logger = nil }})
	p.dial().ask(policyRequest("RCPT", "nosuchlist@example.com", 0))
	p.dial().ask("junk\n\n")
	m := start(t, config{socketmap: true, options: func(o *Options) { o.Logger = nil }})
	m.dial().lookup(mapRecipients, "mylist@example.com")
	m.dial().lookup("junk", "x")
	p.stop()
	m.stop()
	for _, rec := range def.Records() {
		if rec.Attrs["door"] != "" {
			t.Errorf("the door logged to slog.Default: %v %s %v", rec.Level, rec.Msg, rec.Attrs)
		}
	}
}

// TestDefaultMaxMessageSize checks that a zero MaxMessageSize is
// lists.DefaultMaxMessageSize, the same global limit as the other doors':
// a size= that, with the margin, is at it passes, one octet more does
// not.
func TestDefaultMaxMessageSize(t *testing.T) {
	h := start(t, config{})
	c := h.dial()
	const addr = "mylist@example.com"
	at := lists.DefaultMaxMessageSize - margin("mx.sender.example", addr)
	if got := c.ask(policyRequest("RCPT", addr, at)); got != "DUNNO" {
		t.Errorf("size=%d: %q, want DUNNO", at, got)
	}
	if got := c.ask(policyRequest("RCPT", addr, at+1)); got != actTooLarge {
		t.Errorf("size=%d: %q, want %q", at+1, got, actTooLarge)
	}
}

// TestMetricNames checks the doors' metrics as every door names them,
// every label value there from the start, and the connections gauge.
func TestMetricNames(t *testing.T) {
	for _, tt := range []struct {
		socketmap bool
		want      map[string]string
	}{
		{false, map[string]string{
			"listgate_policy_requests_total":        "verdict=accept verdict=alias verdict=error verdict=ignored verdict=not-served verdict=observed verdict=tempfail verdict=too-large verdict=unknown",
			"listgate_policy_connections":           "",
			"listgate_policy_panics_total":          "",
			"listgate_policy_protocol_errors_total": "",

			"listgate_policy_connections_refused_total": "reason=max_connections reason=max_connections_per_client",
		}},
		{true, map[string]string{
			"listgate_socketmap_lookups_total": "map=aliases,result=found map=aliases,result=notfound map=aliases,result=temp " +
				"map=domains,result=found map=domains,result=notfound map=domains,result=temp " +
				"map=other,result=perm " +
				"map=recipients,result=found map=recipients,result=notfound map=recipients,result=temp " +
				"map=transport,result=found map=transport,result=notfound map=transport,result=temp",
			"listgate_socketmap_connections":           "",
			"listgate_socketmap_panics_total":          "",
			"listgate_socketmap_protocol_errors_total": "",

			"listgate_socketmap_connections_refused_total": "reason=max_connections reason=max_connections_per_client",
		}},
	} {
		h := start(t, config{socketmap: tt.socketmap})
		mfs, err := h.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		series := map[string][]string{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, l.GetName()+"="+l.GetValue())
				}
				series[mf.GetName()] = append(series[mf.GetName()], strings.Join(ls, ","))
			}
		}
		for name, labels := range tt.want {
			got := series[name]
			slices.Sort(got)
			if s := strings.Join(got, " "); s != labels {
				t.Errorf("%s: series %q, want %q", name, s, labels)
			}
		}
		if len(series) != len(tt.want) {
			t.Errorf("metrics %v, want %d", series, len(tt.want))
		}
		gauge := func() float64 { return promtestutil.ToFloat64(h.core.m.connections) }
		c := h.dial()
		testutil.WaitFor(t, 5*time.Second, "the connection counted", func() bool { return gauge() == 1 })
		c.nc.Close()
		testutil.WaitFor(t, 5*time.Second, "the connection gone", func() bool { return gauge() == 0 })
	}
}

// panicky is a lists.Source whose Snapshot panics while armed.
type panicky struct {
	armed atomic.Bool
	src   lists.Source
}

func (p *panicky) Snapshot() *lists.Snapshot {
	if p.armed.Load() {
		panic("boom")
	}
	return p.src.Snapshot()
}

// TestPanic checks that a panic while answering is the local-error
// tempfail for that request, logged once with its stack and counted, and
// that the connection and the server go on serving.
func TestPanic(t *testing.T) {
	for _, sm := range []bool{false, true} {
		src := &panicky{src: corpusSource(t)}
		h := start(t, config{socketmap: sm, options: func(o *Options) { o.Lists = src }})
		c := h.dial()
		src.armed.Store(true)
		if sm {
			if got := c.lookup(mapRecipients, "mylist@example.com"); got != tempError {
				t.Errorf("socketmap: %q, want %q", got, tempError)
			}
		} else if got := c.ask(policyRequest("RCPT", "mylist@example.com", 0)); got != actError {
			t.Errorf("policy: %q, want %q", got, actError)
		}
		src.armed.Store(false)
		if sm {
			if got := c.lookup(mapRecipients, "mylist@example.com"); got != "OK mylist@example.com" {
				t.Errorf("socketmap after the panic: %q", got)
			}
		} else if got := c.ask(policyRequest("RCPT", "mylist@example.com", 0)); got != "DUNNO" {
			t.Errorf("policy after the panic: %q", got)
		}
		errs := h.logs.AtLevel(slog.LevelError)
		if len(errs) != 1 || !strings.Contains(errs[0].Attrs["stack"], "panicky") || errs[0].Attrs["err"] != "boom" {
			t.Errorf("error lines: %s", h.logs)
		}
		if n := promtestutil.ToFloat64(h.core.m.panics); n != 1 {
			t.Errorf("panics_total = %v, want 1", n)
		}
	}
}
