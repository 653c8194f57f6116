package mailman_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/goleak"

	"github.com/listgate/listgate/internal/mailmanfake"
	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/mailman"
	"github.com/listgate/listgate/postconf"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// source makes a Source for the fake with opts, logging into a buffer.
func source(t *testing.T, mm *mailmanfake.Server, opts mailman.Options) (*mailman.Source, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	if opts.URL == "" {
		opts.URL = mm.URL()
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src, err := mailman.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return src, logs
}

// serve resolves rcpt against an empty lists directory and x.
func serve(t *testing.T, x *lists.External) *lists.Snapshot {
	t.Helper()
	snap, err := lists.Load(t.TempDir(), lists.Options{External: x})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func addrs(x *lists.External) string {
	var as []string
	for _, l := range x.Lists {
		as = append(as, l.Address)
	}
	return strings.Join(as, " ")
}

// TestRefreshReadsEveryPage: every list, over several pages; every domain
// with its alias domain; the LMTP runner as the lists' next hop. The lists
// are served as list files would be.
func TestRefreshReadsEveryPage(t *testing.T) {
	mm := mailmanfake.New(t)
	var want []string
	for i := range 23 {
		a := fmt.Sprintf("list%02d@example.org", i)
		mm.CreateList(a)
		want = append(want, a)
	}
	mm.CreateDomain("example.org", "lists.example.org")
	mm.CreateDomain("empty.example", "")
	mm.SetMTA("lmtp_port", "8026")
	src, _ := source(t, mm, mailman.Options{PageSize: 5})
	if err := src.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	x := src.External()
	if got := addrs(x); got != strings.Join(want, " ") {
		t.Errorf("lists %s, want %s", got, want)
	}
	if n := mm.Requests("/3.1/lists"); n != 5 {
		t.Errorf("%d requests for /3.1/lists, want 5 pages of 5", n)
	}
	if !x.Settled || x.Source != "mailman" {
		t.Errorf("set %+v, want settled, from mailman", x)
	}
	l := x.Lists[7]
	if l.NextHop != "lmtp:inet:127.0.0.1:8026" || l.Origin != mm.Base()+"/lists/list07.example.org" || l.ListID != "list07.example.org" {
		t.Errorf("list %+v", l)
	}
	snap := serve(t, x)
	for rcpt, want := range map[string]lists.Status{
		"list07@example.org":                             lists.Accept,
		"list22-bounces+anne=example.net@example.org":    lists.Accept,
		"List00-Request@Lists.Example.Org":               lists.Accept,
		"list07-confirm+abcdef0123@lists.example.org":    lists.Accept,
		"list23@example.org":                             lists.Unknown,
		"anyone@empty.example":                           lists.Unknown,
		"list07@example.net":                             lists.NotServed,
		"list07-bogus@example.org":                       lists.Unknown,
		"list07-bounces-request@example.org":             lists.Unknown,
		"<list07-unsubscribe@lists.example.org.>":        lists.Accept,
		"list07-subscribe+confirm-me@lists.example.org.": lists.Accept,
	} {
		if v := snap.Resolve(rcpt); v.Status != want {
			t.Errorf("Resolve(%q) = %+v, want %v", rcpt, v, want)
		}
	}
	st := src.Status()
	if !st.Reached || st.Err != nil || st.Lists != 23 || st.Domains != 2 || st.NextHop != "lmtp:inet:127.0.0.1:8026" {
		t.Errorf("status %+v", st)
	}
}

// TestRunFollowsMailman: a list created in Mailman is accepted within a
// poll interval, and a removed one refused, through a watcher that takes
// the Source's sets; Run stops with its context and leaves no goroutine.
func TestRunFollowsMailman(t *testing.T) {
	mm := mailmanfake.New(t)
	mm.CreateList("announce@example.org")
	var w *lists.Watcher // set before Run starts
	src, logs := source(t, mm, mailman.Options{Interval: 20 * time.Millisecond,
		OnChange: func(x *lists.External) { w.SetExternal(x) }})
	if err := src.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	w, err := lists.Watch(t.TempDir(), lists.WatchOptions{Options: lists.Options{External: src.External()}, Rescan: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- src.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	status := func(rcpt string) lists.Status { return w.Snapshot().Resolve(rcpt).Status }
	if s := status("new-request@example.org"); s != lists.Unknown {
		t.Fatalf("before: %v", s)
	}
	mm.CreateList("new@example.org")
	took := testutil.WaitFor(t, 2*time.Second, "the new list to be accepted", func() bool { return status("new-request@example.org") == lists.Accept })
	t.Logf("a new list was accepted after %v", took)
	mm.RemoveList("announce@example.org")
	testutil.WaitFor(t, 2*time.Second, "the removed list to be refused", func() bool { return status("announce@example.org") == lists.Unknown })
	if got := strings.Count(logs.String(), `msg="mailman lists changed"`); got != 2 {
		t.Errorf("%d change lines, want 2:\n%s", got, logs)
	}
}

// metric returns the value of the gauge or counter name (with labels
// "k=v") in reg, and the whole exposition text.
func metric(t *testing.T, reg *prometheus.Registry, name string) (float64, string) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	value := -1.0
	for _, mf := range mfs {
		expfmt.MetricFamilyToText(&text, mf)
		for _, m := range mf.GetMetric() {
			full := mf.GetName()
			for _, l := range m.GetLabel() {
				full += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			if full == name {
				switch {
				case m.Gauge != nil:
					value = m.GetGauge().GetValue()
				case m.Counter != nil:
					value = m.GetCounter().GetValue()
				}
			}
		}
	}
	return value, text.String()
}

// TestUnreachableKeepsLastGood: a poll that fails keeps the last good
// set, says so once (not once per poll), and sets the metrics; Mailman
// back is said once too.
func TestUnreachableKeepsLastGood(t *testing.T) {
	mm := mailmanfake.New(t)
	mm.CreateList("announce@example.org")
	reg := prometheus.NewRegistry()
	src, logs := source(t, mm, mailman.Options{Registerer: reg})
	ctx := context.Background()
	if err := src.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	good := src.External()
	okAt, _ := metric(t, reg, "listgate_mailman_last_success_timestamp_seconds")
	mm.SetDown(true)
	for range 3 {
		if err := src.Refresh(ctx); err == nil {
			t.Fatal("a poll of a Mailman that is down succeeded")
		}
	}
	if src.External() != good {
		t.Error("the set changed while Mailman was down")
	}
	for name, want := range map[string]float64{
		"listgate_mailman_last_poll_successful":           0,
		"listgate_mailman_last_success_timestamp_seconds": okAt,
		"listgate_mailman_lists":                          1,
		"listgate_mailman_polls_total{result=error}":      3,
		"listgate_mailman_polls_total{result=ok}":         1,
	} {
		if got, text := metric(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v\n%s", name, got, want, text)
		}
	}
	if st := src.Status(); st.Err == nil || !st.Reached || st.LastSuccess.IsZero() {
		t.Errorf("status %+v", st)
	}
	if n := strings.Count(logs.String(), "mailman not reachable"); n != 1 {
		t.Errorf("%d lines say Mailman is not reachable, want 1:\n%s", n, logs)
	}
	snap := serve(t, src.External())
	if v := snap.Resolve("announce@example.org"); v.Status != lists.Accept {
		t.Errorf("while Mailman is down: %+v", v)
	}
	if v := snap.Resolve("bogus@example.org"); v.Status != lists.Unknown {
		t.Errorf("reached once, Mailman's unknown addresses get 550 even while it is down: %+v", v)
	}
	mm.SetDown(false)
	for range 2 {
		if err := src.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "mailman reachable again"); n != 1 {
		t.Errorf("%d lines say Mailman is back, want 1:\n%s", n, logs)
	}
	if got, _ := metric(t, reg, "listgate_mailman_last_poll_successful"); got != 1 {
		t.Errorf("last_poll_successful %v after Mailman came back", got)
	}
}

// TestCacheAcrossRestart: the last set read is cached; a Source started
// while Mailman is down serves the cached lists, and an unknown address
// of Mailman's domains tempfails (never 550) until Mailman answers. With
// no cache, only the domains the configuration names are known, and
// tempfail; others are not served. A cache of another Mailman is not used.
func TestCacheAcrossRestart(t *testing.T) {
	mm := mailmanfake.New(t)
	mm.CreateList("announce@example.org")
	mm.CreateDomain("example.org", "lists.example.org")
	mm.CreateList("dev@example.com")
	cache := filepath.Join(t.TempDir(), "state", "mailman.json")
	src, _ := source(t, mm, mailman.Options{CacheFile: cache})
	if err := src.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(cache)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(mm.Password())) || !bytes.Contains(b, []byte("announce@example.org")) {
		t.Errorf("cache:\n%s", b)
	}
	mm.SetDown(true)

	for _, tt := range []struct {
		name    string
		opts    mailman.Options
		verdict map[string]lists.Status
		cached  bool // the set is the cache's
	}{
		{"cache", mailman.Options{CacheFile: cache}, map[string]lists.Status{
			"announce@example.org":             lists.Accept,
			"announce-owner@lists.example.org": lists.Accept,
			"dev-request@example.com":          lists.Accept,
			"created-since@example.org":        lists.Broken,
			"created-since@example.com":        lists.Broken,
			"created-since@lists.example.org":  lists.Broken,
			"someone@example.net":              lists.NotServed,
		}, true},
		{"no cache, mailman_domains", mailman.Options{Domains: []string{"example.org"}}, map[string]lists.Status{
			"announce@example.org": lists.Broken,
			"dev@example.com":      lists.NotServed,
		}, false},
		{"no cache", mailman.Options{}, map[string]lists.Status{
			"announce@example.org": lists.NotServed,
		}, false},
		{"cache of another Mailman", mailman.Options{CacheFile: cache, URL: "http://u:p@127.0.0.1:1/3.1"}, map[string]lists.Status{
			"announce@example.org": lists.NotServed,
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src, logs := source(t, mm, tt.opts)
			if err := src.Refresh(context.Background()); err == nil {
				t.Fatal("Mailman is down, yet a poll worked")
			}
			x := src.External()
			if x.Settled {
				t.Error("a set Mailman did not give is settled")
			}
			snap := serve(t, x)
			for rcpt, want := range tt.verdict {
				if v := snap.Resolve(rcpt); v.Status != want {
					t.Errorf("Resolve(%q) = %v, want %v", rcpt, v.Status, want)
				}
			}
			st := src.Status()
			if st.Reached || st.Cached.IsZero() == tt.cached {
				t.Errorf("status %+v", st)
			}
			if strings.Contains(tt.name, "another") && !strings.Contains(logs.String(), "mailman cache not used") {
				t.Errorf("the other Mailman's cache was not refused:\n%s", logs)
			}
		})
	}

	// Mailman back: the set is settled, and what was removed meanwhile is
	// gone.
	mm.SetDown(false)
	mm.RemoveList("dev@example.com")
	src2, _ := source(t, mm, mailman.Options{CacheFile: cache})
	if err := src2.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap := serve(t, src2.External())
	for rcpt, want := range map[string]lists.Status{"created-since@example.org": lists.Unknown, "dev@example.com": lists.Unknown} {
		if v := snap.Resolve(rcpt); v.Status != want {
			t.Errorf("after Mailman answered: Resolve(%q) = %v, want %v", rcpt, v.Status, want)
		}
	}
	if b, _ := os.ReadFile(cache); bytes.Contains(b, []byte("dev@example.com")) {
		t.Error("the cache still holds a removed list")
	}
}

// TestCredentialsNeverShown: the password, given in the URL or in a
// credentials file, appears in no log line (at debug level), no error,
// no status and no metric, whether Mailman answers, refuses the
// credentials or is down.
func TestCredentialsNeverShown(t *testing.T) {
	mm := mailmanfake.New(t)
	mm.CreateList("announce@example.org")
	credFile := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(credFile, []byte(mailmanfake.User+":"+mm.Password()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cred, err := mailman.ReadCredentials(credFile)
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(mm.URL(), mm.Password(), mm.Password()+"-wrong", 1)
	for _, tt := range []struct {
		name string
		opts mailman.Options
		down bool
		ok   bool
	}{
		{"in the URL", mailman.Options{}, false, true},
		{"in a file", mailman.Options{URL: mm.Base(), Credentials: cred}, false, true},
		{"the file's win", mailman.Options{URL: wrong, Credentials: cred}, false, true},
		{"refused", mailman.Options{URL: wrong}, false, false},
		{"none", mailman.Options{URL: mm.Base()}, false, false},
		{"down", mailman.Options{}, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mm.SetDown(tt.down)
			defer mm.SetDown(false)
			reg := prometheus.NewRegistry()
			tt.opts.Registerer = reg
			tt.opts.CacheFile = filepath.Join(t.TempDir(), "mailman.json")
			src, logs := source(t, mm, tt.opts)
			err := src.Refresh(context.Background())
			if (err == nil) != tt.ok {
				t.Fatalf("Refresh: %v", err)
			}
			if !tt.ok && !tt.down && !strings.Contains(err.Error(), "401 Unauthorized: Mailman refused the credentials") {
				t.Errorf("error %q does not say the credentials were refused", err)
			}
			_, metrics := metric(t, reg, "")
			cache, _ := os.ReadFile(tt.opts.CacheFile)
			shown := map[string]string{"log": logs.String(), "status": fmt.Sprintf("%+v", src.Status()),
				"url": src.URL(), "metrics": metrics, "cache": string(cache)}
			if err != nil {
				shown["error"] = err.Error()
			}
			for where, text := range shown {
				if strings.Contains(text, mm.Password()) {
					t.Errorf("the password is in the %s:\n%s", where, text)
				}
			}
			if !strings.Contains(logs.String(), mm.Base()) {
				t.Errorf("the log does not name Mailman's URL:\n%s", logs)
			}
		})
	}
}

// TestBadURL: a URL New refuses is named without its password.
func TestBadURL(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"http://restadmin:hunter2@127.0.0.1:8001", "name the API version, e.g. http://127.0.0.1:8001/3.1"},
		{"ftp://restadmin:hunter2@127.0.0.1:8001/3.1", "want http:// or https://"},
		{"http://restadmin:hunter2@/3.1", "no host"},
		{"http://restadmin:hunter2@127.0.0.1:8001/3.1?x=1", "no query"},
		{"http://restadmin:hunter2@127.0.0.1:8001/3.1%zz", "not a URL"},
		{"127.0.0.1:8001/3.1", "not a URL"},
	} {
		_, err := mailman.New(mailman.Options{URL: tt.url})
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("New(%q): %v, want %q without the password", tt.url, err, tt.want)
		}
	}
	if got := mailman.Redact("http://restadmin:hunter2@127.0.0.1:8001/3.1"); got != "http://127.0.0.1:8001/3.1" {
		t.Errorf("Redact: %q", got)
	}
	if got := mailman.Redact("http://a:hunter2@x/%zz"); strings.Contains(got, "hunter2") {
		t.Errorf("Redact of a bad URL: %q", got)
	}
}

// TestPagesThatDoNotFit: lists created or removed between two pages are
// noticed (total_size changed, a list on two pages, or a list missing
// that Mailman still has) and the pages are read again, so no list that
// exists is ever dropped for a poll.
func TestPagesThatDoNotFit(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(mm *mailmanfake.Server)
		want   string
	}{
		{"created", func(mm *mailmanfake.Server) { mm.CreateList("a0@example.org") }, "a0 a1 a2 a3 a4"},
		{"removed", func(mm *mailmanfake.Server) { mm.RemoveList("a1@example.org") }, "a2 a3 a4"},
		// Same total_size, no list twice: only asking for a3 finds it.
		{"removed and created", func(mm *mailmanfake.Server) {
			mm.RemoveList("a1@example.org")
			mm.CreateList("a5@example.org")
		}, "a2 a3 a4 a5"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mm := mailmanfake.New(t)
			for _, l := range []string{"a1", "a2", "a3", "a4"} {
				mm.CreateList(l + "@example.org")
			}
			src, _ := source(t, mm, mailman.Options{PageSize: 2})
			ctx := context.Background()
			if err := src.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			var once atomic.Bool
			mm.SetHook(func(r *http.Request) {
				if r.URL.Query().Get("page") == "2" && !once.Swap(true) {
					tt.change(mm)
				}
			})
			if err := src.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			got := strings.ReplaceAll(addrs(src.External()), "@example.org", "")
			if got != tt.want {
				t.Errorf("lists %s, want %s", got, tt.want)
			}
		})
	}
}

// TestMTASettings: the next hop is Mailman's LMTP runner (a wildcard
// lmtp_host reached on loopback) unless LMTP says another; one that is
// listgate's own LMTP door is withheld, loudly; a verp_delimiter that is
// not listgate's recipient delimiter is warned about, once.
func TestMTASettings(t *testing.T) {
	self := postconf.Endpoint{Network: "tcp", Address: "127.0.0.1:8024"}
	for _, tt := range []struct {
		name      string
		mta       map[string]string
		opts      mailman.Options
		hop, warn string
	}{
		{"default port: a loop", nil, mailman.Options{Self: self}, "", "forwarding there would loop"},
		{"moved", map[string]string{"lmtp_port": "8026"}, mailman.Options{Self: self}, "lmtp:inet:127.0.0.1:8026", ""},
		{"wildcard", map[string]string{"lmtp_host": "0.0.0.0", "lmtp_port": "8026"}, mailman.Options{}, "lmtp:inet:127.0.0.1:8026", ""},
		{"ipv6", map[string]string{"lmtp_host": "::", "lmtp_port": "8026"}, mailman.Options{}, "lmtp:inet:[::1]:8026", ""},
		{"override", nil, mailman.Options{Self: self, LMTP: "unix:/run/mailman3/lmtp"}, "lmtp:unix:/run/mailman3/lmtp", ""},
		{"verp", map[string]string{"lmtp_port": "8026", "verp_delimiter": "="}, mailman.Options{}, "lmtp:inet:127.0.0.1:8026", "verp_delimiter is"},
		{"verp among several", map[string]string{"lmtp_port": "8026", "verp_delimiter": "="}, mailman.Options{Delimiters: "+="}, "lmtp:inet:127.0.0.1:8026", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mm := mailmanfake.New(t)
			mm.CreateList("announce@example.org")
			for k, v := range tt.mta {
				mm.SetMTA(k, v)
			}
			src, logs := source(t, mm, tt.opts)
			for range 2 {
				if err := src.Refresh(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if got := src.External().Lists[0].NextHop; got != tt.hop {
				t.Errorf("next hop %q, want %q", got, tt.hop)
			}
			if tt.warn == "" {
				if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
					t.Errorf("unexpected warning:\n%s", logs)
				}
			} else if n := strings.Count(logs.String(), tt.warn); n != 1 {
				t.Errorf("%q logged %d times, want once:\n%s", tt.warn, n, logs)
			}
		})
	}
}

// TestHungMailman: a Mailman that accepts and never answers costs a poll
// at most Timeout, and does not hold up Run's end.
func TestHungMailman(t *testing.T) {
	mm := mailmanfake.New(t)
	mm.CreateList("announce@example.org")
	mm.SetHook(func(r *http.Request) { <-r.Context().Done() })
	src, _ := source(t, mm, mailman.Options{Timeout: 100 * time.Millisecond, Interval: 10 * time.Millisecond})
	start := time.Now()
	err := src.Refresh(context.Background())
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("Refresh of a hung Mailman: %v after %v", err, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- src.Run(ctx) }()
	testutil.WaitFor(t, 5*time.Second, "a poll in flight", func() bool { return mm.Requests("/3.1/lists") > 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if n := src.Status().Err; n == nil {
		t.Error("no error recorded for a hung Mailman")
	}
}
