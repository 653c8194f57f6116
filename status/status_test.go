package status_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/status"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// load reads a lists directory made of files (name → content).
func load(t testing.TB, files map[string]string, ext *lists.External) *lists.Snapshot {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := lists.Load(dir, lists.Options{External: ext})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// serve starts the page on a test server and returns its URL.
func serve(t *testing.T, o status.Options) string {
	t.Helper()
	srv := httptest.NewServer(status.New(o))
	t.Cleanup(srv.Close)
	return srv.URL
}

// fetch sends a request and returns the response with its body read.
func fetch(t *testing.T, method, u string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestMethodsAndPaths: the page answers GET and HEAD at / only, with its
// security headers on every answer.
func TestMethodsAndPaths(t *testing.T) {
	u := serve(t, status.Options{Lists: lists.Static{S: load(t, map[string]string{"announce@example.org": ""}, nil)}})
	for _, tt := range []struct {
		method, path string
		code         int
		allow        string
		body         string // in the body; "" for none expected
	}{
		{"GET", "/", 200, "", "announce@example.org"},
		{"GET", "/?q=announce&page=1", 200, "", "announce@example.org"},
		{"HEAD", "/", 200, "", ""},
		{"POST", "/", 405, "GET, HEAD", "read-only"},
		{"PUT", "/", 405, "GET, HEAD", "read-only"},
		{"DELETE", "/", 405, "GET, HEAD", "read-only"},
		{"GET", "/index.html", 404, "", "not found"},
		{"GET", "/lists/", 404, "", "not found"},
		{"POST", "/elsewhere", 404, "", "not found"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := fetch(t, tt.method, u+tt.path)
			if resp.StatusCode != tt.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.code)
			}
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow: %q, want %q", got, tt.allow)
			}
			if tt.body != "" && !strings.Contains(body, tt.body) {
				t.Errorf("body lacks %q:\n%s", tt.body, body)
			}
			if tt.method == "HEAD" && body != "" {
				t.Errorf("HEAD has a body: %q", body)
			}
			for h, want := range map[string]string{
				"Content-Security-Policy": status.Policy,
				"X-Content-Type-Options":  "nosniff",
			} {
				if got := resp.Header.Get(h); got != want {
					t.Errorf("%s: %q, want %q", h, got, want)
				}
			}
			if tt.code == 200 {
				if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
					t.Errorf("Content-Type: %q", ct)
				}
			}
		})
	}
	if !strings.Contains(status.Policy, "default-src 'none'") || strings.Contains(status.Policy, "script-src") {
		t.Errorf("policy %q allows more than inline style", status.Policy)
	}
}

// TestEscapes: list names, descriptions, file paths, problem texts and the
// filter come from files others write and from the URL; each appears as
// text, never as markup.
func TestEscapes(t *testing.T) {
	snap := load(t, map[string]string{
		"<script>alert(1)@example.org": "description = \"<script>alert(2)</script><b>bold</b>\"\n",
		"broken@example.org":           "\"<script>alert(3)</script>\" = 1\n",
		"<img src=x onerror=alert(4)>": "",
	}, nil)
	u := serve(t, status.Options{Lists: lists.Static{S: snap}, Hostname: "mx<script>alert(5)</script>", Version: "<i>v</i>"})
	for _, path := range []string{"/", "/?q=" + url.QueryEscape(`"><script>alert(6)</script>`), "/?q=" + url.QueryEscape("<script>")} {
		_, body := fetch(t, "GET", u+path)
		for _, bad := range []string{"<script", "<img", "<b>bold", "<i>v"} {
			if strings.Contains(body, bad) {
				t.Errorf("GET %s: the page has %q unescaped:\n%s", path, bad, body)
			}
		}
		if path == "/" {
			for _, want := range []string{
				"&lt;script&gt;alert(1)@example.org",
				"&lt;script&gt;alert(2)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;",
				"broken@example.org:1</td><td>unknown key &#34;&lt;script&gt;alert(3)&lt;/script&gt;&#34;",
				"&lt;img src=x onerror=alert(4)&gt;",
				"mx&lt;script&gt;alert(5)&lt;/script&gt;",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("GET /: lacks %q:\n%s", want, body)
				}
			}
		}
	}
}

// TestManyLists: with 100,000 lists the page shows one page of them, says
// how many are not shown, links to the next page, and finds a list by
// filter; it stays small.
func TestManyLists(t *testing.T) {
	const n = 100_000
	ext := &lists.External{Source: "mailman", Settled: true, Domains: []lists.ExternalDomain{{Name: "example.org"}}}
	for i := range n {
		ext.Lists = append(ext.Lists, lists.ExternalList{Address: fmt.Sprintf("l%06d@example.org", i), Origin: fmt.Sprintf("http://mailman.test/lists/l%06d", i)})
	}
	snap := load(t, nil, ext)
	if got := len(snap.Lists()); got != n {
		t.Fatalf("%d lists loaded", got)
	}
	u := serve(t, status.Options{Lists: lists.Static{S: snap}})
	with123 := 0 // lists matching "123"
	for _, l := range snap.Lists() {
		if strings.Contains(l.Address, "123") {
			with123++
		}
	}
	for _, tt := range []struct {
		path      string
		want      []string
		wantNot   []string
		maxLength int
	}{
		{"/", []string{"Showing 1–100 of 100,000 lists; 99,900 not shown.", "l000000@example.org", "l000099@example.org",
			`href="/?page=2"`, "page 1 of 1,000", "Mailman: http://mailman.test/lists/l000000"}, []string{"l000100@example.org", `rel="prev"`}, 100_000},
		{"/?page=2", []string{"Showing 101–200 of 100,000 lists; 99,900 not shown.", "l000100@example.org", `href="/?page=3"`, `href="/?"`}, []string{"l000099@example.org"}, 100_000},
		{"/?page=99999", []string{"Showing 99,901–100,000 of 100,000 lists", "l099999@example.org", "page 1,000 of 1,000"}, []string{`rel="next"`}, 100_000},
		{"/?q=%20123%20", []string{fmt.Sprintf("Showing 1–100 of %d lists matching “123” (100,000 in all); %d not shown.", with123, with123-100),
			"l000123@example.org", `href="/?page=2&amp;q=123"`}, []string{"l000000@"}, 100_000},
		{"/?q=L0999", []string{"Showing 1–100 of 100 lists matching “L0999”", "l099900@example.org"}, []string{"not shown", `rel="next"`}, 100_000},
		{"/?q=l054321%40", []string{"Showing 1–1 of 1 list matching “l054321@”", "l054321@example.org"}, []string{"not shown", `rel="next"`}, 30_000},
		{"/?q=nosuchlist", []string{"No list matches “nosuchlist” (100,000 in all)."}, nil, 30_000},
		{"/?page=x", []string{"Showing 1–100 of 100,000"}, nil, 200_000},
	} {
		t.Run(tt.path, func(t *testing.T) {
			start := time.Now()
			resp, body := fetch(t, "GET", u+tt.path)
			t.Logf("GET %s: %d bytes in %v", tt.path, len(body), time.Since(start))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("lacks %q", w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(body, w) {
					t.Errorf("has %q", w)
				}
			}
			if len(body) > tt.maxLength {
				t.Errorf("%d bytes, want at most %d", len(body), tt.maxLength)
			}
		})
	}
}

// TestProblems: each problem shows its file:line and text; more than
// MaxProblems are cut with a count; the filter finds a file's problem.
func TestProblems(t *testing.T) {
	files := map[string]string{"ok@example.org": ""}
	for i := range status.MaxProblems + 5 {
		files[fmt.Sprintf("b%03d@example.org", i)] = "\n\nmax_message_size = true\n"
	}
	u := serve(t, status.Options{Lists: lists.Static{S: load(t, files, nil)}})
	_, body := fetch(t, "GET", u+"/")
	if !strings.Contains(body, "Problems: 105</h2>") || !strings.Contains(body, "5 more problems not shown") ||
		!strings.Contains(body, "/b000@example.org:3</td>") || strings.Contains(body, "/b104@example.org:3") {
		t.Errorf("page:\n%s", body)
	}
	_, body = fetch(t, "GET", u+"/?q=b104")
	if !strings.Contains(body, "Problems matching “b104”: 1</h2>") || !strings.Contains(body, "/b104@example.org:3</td>") || strings.Contains(body, "not shown;") {
		t.Errorf("filtered page:\n%s", body)
	}
}

// TestReloads: the reloads given show with their reason, generation, what
// changed, and a failure's error.
func TestReloads(t *testing.T) {
	now := time.Now()
	rs := []lists.Reload{
		{Time: now, Duration: 1500 * time.Microsecond, Reason: "change", Generation: 7, Lists: 3, Problems: 1, Added: 1, Changed: 11,
			Changes: []lists.Change{{Name: "new@example.org", What: "added"}, {Name: "a<b>@example.org", What: "changed"}}},
		{Time: now.Add(-time.Minute), Reason: "rescan", Err: "lists: read directory /x: permission denied"},
		{Time: now.Add(-2 * time.Hour), Reason: "periodic", Generation: 5, Lists: 3, Repeated: 4},
	}
	u := serve(t, status.Options{Lists: lists.Static{S: load(t, nil, nil)}, Reloads: func() []lists.Reload { return rs }})
	_, body := fetch(t, "GET", u+"/")
	for _, want := range []string{
		"<td>change</td><td class=\"num\">1.5 ms</td>",
		"1 added 11 changed",
		"new@example.org (added), a&lt;b&gt;@example.org (changed), …",
		"failed, the last snapshot stays: lists: read directory /x: permission denied",
		"1m0s ago", "2h0m ago",
		"and 4 alike before",
		"<span class=\"muted\">nothing</span>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", body)
	}
}

// TestCounts: the doors' verdict counters and the forwarder's gauges are
// read from the registry; a door that is off has no row.
func TestCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	milter := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "listgate_milter_recipients_total", Help: "h"}, []string{"verdict"})
	socketmap := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "listgate_socketmap_lookups_total", Help: "h"}, []string{"map", "result"})
	backlog := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "listgate_forward_backlog", Help: "h"}, []string{"next_hop"})
	quarantined := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "listgate_forward_quarantined", Help: "h"}, []string{"next_hop"})
	failing := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "listgate_forward_failing_seconds", Help: "h"}, []string{"next_hop"})
	forwarded := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "listgate_forward_messages_total", Help: "h"}, []string{"next_hop", "result"})
	reg.MustRegister(milter, socketmap, backlog, quarantined, failing, forwarded)
	milter.WithLabelValues("unknown").Add(1234)
	milter.WithLabelValues("accept").Add(7)
	milter.WithLabelValues("tempfail")
	socketmap.WithLabelValues("recipients", "found").Add(3)
	backlog.WithLabelValues("lmtp:inet:127.0.0.1:8026").Set(12)
	quarantined.WithLabelValues("lmtp:inet:127.0.0.1:8026").Set(2)
	failing.WithLabelValues("lmtp:inet:127.0.0.1:8026").Set(75)
	forwarded.WithLabelValues("exec:/usr/bin/true", "forwarded").Add(5)
	forwarded.WithLabelValues("lmtp:inet:127.0.0.1:8026", "deferred").Add(9)

	u := serve(t, status.Options{Lists: lists.Static{S: load(t, nil, nil)}, Gatherer: reg})
	_, body := fetch(t, "GET", u+"/")
	for _, want := range []string{
		`<tr><td>milter <span class="muted small">recipients</span></td><td class="num">1,241</td>`,
		// The reply table's order, whatever the label's name order.
		`<span class="count">accept <b>7</b></span><span class="count">unknown <b>1,234</b></span><span class="count zero">tempfail <b>0</b></span>`,
		`socketmap <span class="muted small">lookups</span></td><td class="num">3</td>`,
		`recipients found <b>3</b>`,
		`<td class="mono">exec:/usr/bin/true</td><td class="num">0</td>`,
		`<td class="mono">lmtp:inet:127.0.0.1:8026</td><td class="num">12</td>`,
		`<td class="num bad">2</td>`,
		`<span class="bad">1m15s</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %q", want)
		}
	}
	if strings.Contains(body, "lmtp <span") || strings.Contains(body, "policy <span") {
		t.Errorf("a row for a door with no counter")
	}
	if t.Failed() {
		t.Logf("page:\n%s", body)
	}
}

// TestObserveAndReadiness: the page names the domains in observe mode
// (what set it; alias domains with their domain) with the
// listgate_would_refuse_total counts by door, keeps a row for a domain
// enforced since that has counts, and heads the page with /readyz's
// verdict, escaped.
func TestObserveAndReadiness(t *testing.T) {
	reg := prometheus.NewRegistry()
	would := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "listgate_would_refuse_total", Help: "h"}, []string{"door", "domain"})
	reg.MustRegister(would)
	would.WithLabelValues("policy", "obs.test").Add(2)
	would.WithLabelValues("milter", "obs.test").Add(1500)
	would.WithLabelValues("milter", "was.test").Add(7)
	snap := load(t, map[string]string{
		"@obs.test": "mode = \"observe\"\naliases = [\"alias-obs.test\"]\n", "a@obs.test": "",
		"b@enf.test": "", "@was.test": "mode = \"enforce\"\n", "c@was.test": "",
	}, nil)
	var why []string
	u := serve(t, status.Options{Lists: lists.Static{S: snap}, Gatherer: reg, NotReady: func() []string { return why }})

	_, body := fetch(t, "GET", u+"/")
	for _, want := range []string{
		`<p class="readiness ok"><b>Ready</b> (<code>/readyz</code> answers 200)</p>`,
		`<a href="#observe">Observe mode</a>`,
		`<tr><td class="mono">obs.test<br><span class="small muted">alias alias-obs.test</span></td>` + "\n" +
			`<td><b>observe</b><br><span class="mono small muted">` + filepath.Join(filepath.Dir(snap.Lists()[0].File), "@obs.test") + `</span></td>` + "\n" +
			`<td class="num">1,502</td>` + "\n" +
			`<td><span class="count">milter <b>1,500</b></span><span class="count">policy <b>2</b></span></td></tr>`,
		`<tr><td class="mono">was.test</td>` + "\n" + `<td>enforce<br>`,
		`<td class="num">7</td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %q", want)
		}
	}
	if strings.Contains(body, `<td class="mono">enf.test`) || strings.Contains(body, `<td class="mono">alias-obs.test`) {
		t.Errorf("a row for a domain never observed, or for an alias domain of its own")
	}

	why = []string{"canary: smtp inet:127.0.0.1:25 accepted bogus recipient <x@obs.test>", "lmtp door (inet:127.0.0.1:8024): not serving"}
	_, body = fetch(t, "GET", u+"/")
	for _, want := range []string{
		`<div class="readiness bad"><b>Not ready</b> (<code>/readyz</code> answers 503):`,
		`<li>not ready: canary: smtp inet:127.0.0.1:25 accepted bogus recipient &lt;x@obs.test&gt;</li><li>not ready: lmtp door (inet:127.0.0.1:8024): not serving</li>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", body)
	}

	// The observe setting, no counts yet; no NotReady: no readiness line.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a@set.test"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	all, err := lists.Load(dir, lists.Options{Observe: true})
	if err != nil {
		t.Fatal(err)
	}
	_, body = fetch(t, "GET", serve(t, status.Options{Lists: lists.Static{S: all}})+"/")
	if want := `<td><b>observe</b><br><span class="mono small muted">the observe setting</span></td>`; !strings.Contains(body, want) || strings.Contains(body, "readiness") {
		t.Errorf("observe setting: lacks %q, or has a readiness line:\n%s", want, body)
	}
}

// FuzzQuery: whatever the filter and page number, the page is made (200),
// is valid UTF-8, shows at most one page of lists, and has no markup of
// the query's: no <script> however the query spells it.
func FuzzQuery(f *testing.F) {
	for _, seed := range [][2]string{
		{"", ""}, {"announce", "1"}, {"<script>alert(1)</script>", "2"}, {`"><ScRiPt>`, "-1"},
		{"\xff\xfe", "99999999999999999999"}, {"l0\xff", "\x00"}, {"%3Cscript%3E", "0x10"}, {strings.Repeat("a", 500) + "<script>", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	files := map[string]string{"<script>x@example.org": "", "broken@example.org": "descripton = 1\n"}
	for i := range 30 {
		files[fmt.Sprintf("l%02d@example.org", i)] = ""
	}
	h := status.New(status.Options{Lists: lists.Static{S: load(f, files, nil)}, PageSize: 10})
	f.Fuzz(func(t *testing.T, q, pageNo string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/?"+url.Values{"q": {q}, "page": {pageNo}}.Encode(), nil))
		body := rec.Body.String()
		if rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
		if !utf8.ValidString(body) {
			t.Errorf("the page is not valid UTF-8")
		}
		if strings.Contains(strings.ToLower(body), "<script") {
			t.Errorf("the page has <script")
		}
		if n := strings.Count(body, "<tr><td><b class=\"mono\">"); n > 10 {
			t.Errorf("%d lists on a page of 10", n)
		}
	})
}
