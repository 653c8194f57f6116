package daemon

import (
	"image/png"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/chromiumtest"
	"github.com/listgate/listgate/internal/testutil"
)

// statusDaemon runs a daemon whose status page has something in each
// section: lists with aliases and an alias domain, a broken list file
// (line 2), markup in a list's name and description, a reload after the
// start, the LMTP door's verdicts, and a next hop that is down with a
// message waiting for it. It returns the daemon and the broken file's
// path.
func statusDaemon(t *testing.T) (*running, string, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	s := settings(t)
	files := map[string]string{
		"tour@example.org":             "description = \"The tour\"\nnext_hop = \"lmtp:inet:" + down + "\"\n",
		"announce@example.org":         "description = \"Announcements\"\naliases = [\"news@example.org\"]\n",
		"@example.org":                 "aliases = [\"lists.example.com\"]\n",
		"broken@example.net":           "description = \"x\"\ndescripton = \"y\"\n",
		"<script>alert(1)@example.org": "description = \"<script>alert(2)</script>\"\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(s.Lists, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := start(t, s)
	gen := r.watcher.Generation()
	if err := os.WriteFile(filepath.Join(s.Lists, "late@example.org"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the reload of late@example.org", func() bool { return r.watcher.Generation() > gen })

	c := lmtpClient(t, "tcp", r.hostPort("lmtp"))
	if err := c.SendMail("anne@example.net", []string{"tour@example.org"}, strings.NewReader("Subject: hi\r\n\r\nhello\r\n")); err != nil {
		t.Fatalf("delivery to tour@: %v", err)
	}
	err = c.SendMail("anne@example.net", []string{"bogus@example.org"}, strings.NewReader("Subject: hi\r\n\r\nhello\r\n"))
	if err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("delivery to bogus@: %v, want 550", err)
	}
	c.Close()
	metrics := "http://" + r.hostPort("metrics") + "/metrics"
	testutil.WaitFor(t, 10*time.Second, "the forwarder to defer tour@'s message", func() bool {
		_, body := get(t, metrics)
		return strings.Contains(body, `listgate_forward_messages_total{next_hop="lmtp:inet:`+down+`",result="deferred"}`)
	})
	return r, filepath.Join(s.Lists, "broken@example.net"), down
}

// TestStatusPageWired: the metrics door serves the status page at / next
// to /metrics, /healthz and /readyz, and 404 for other paths.
func TestStatusPageWired(t *testing.T) {
	r := start(t, settings(t))
	base := "http://" + r.hostPort("metrics")
	for _, tt := range []struct {
		path string
		code int
		want string
	}{
		{"/", 200, "tour@example.org"},
		{"/?q=tour", 200, "Showing 1–1 of 1 list matching"},
		{"/metrics", 200, "listgate_lists 1\n"},
		{"/healthz", 200, "ok\n"},
		{"/readyz", 200, "ok\n"},
		{"/favicon.ico", 404, "not found"},
	} {
		if st, body := get(t, base+tt.path); st != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s: %d, want %d with %q:\n%s", tt.path, st, tt.code, tt.want, body)
		}
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Post(base+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST /: %d, want 405", resp.StatusCode)
	}
}

// TestStatusPageInChromium (issue 12, must show 4): the status page as
// headless Chromium renders it shows a person the lists and their
// addresses, a broken file's file:line, the last reloads, the verdicts
// of the LMTP door and the message waiting for a next hop that is down;
// markup from list files shows as text, and the page has no script. A
// screenshot is written where the test log says.
func TestStatusPageInChromium(t *testing.T) {
	chromiumtest.Require(t)
	r, broken, down := statusDaemon(t)
	url := "http://" + r.hostPort("metrics") + "/"

	dom := chromiumtest.DumpDOM(t, url)
	text := chromiumtest.Text(t, dom)
	for _, want := range []string{
		"listgate on mx.test",
		// The lists and their addresses.
		"announce@example.org Announcements announce@lists.example.com news@example.org news@lists.example.com " +
			"announce-{bounces,confirm,join,leave,owner,request}@example.org",
		"tour@example.org The tour",
		"late@example.org",
		// The broken file's file:line and what is wrong there.
		broken + ":2 unknown key \"descripton\"",
		// Markup in a name and a description is text.
		"<script>alert(1)@example.org <script>alert(2)</script>",
		// The last reloads.
		"change", "late@example.org (added)",
		"start", "broken@example.net (added)",
		// The LMTP door's verdicts.
		"lmtp recipients 2 accept 1", "unknown 1",
		// The next hop that is down, with one message waiting.
		"lmtp:inet:" + down + " 1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	for _, tag := range []string{"script", "img", "link", "iframe", "object"} {
		if n := len(chromiumtest.Elements(t, dom, tag)); n > 0 {
			t.Errorf("the rendered page has %d <%s> elements", n, tag)
		}
	}
	if t.Failed() {
		t.Logf("rendered text:\n%s", text)
	}

	path := chromiumtest.Screenshot(t, url, "status", 1200, 900)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	if cfg.Width != 1200 || cfg.Height != 900 {
		t.Errorf("screenshot %s is %dx%d, want 1200x900", path, cfg.Width, cfg.Height)
	}
}
