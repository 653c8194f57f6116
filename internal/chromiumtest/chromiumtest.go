// Package chromiumtest renders a web page in headless Chromium for a
// test, to check what a person sees: the DOM after the page loaded
// (DumpDOM, with Text for its visible text) and a screenshot (Screenshot).
//
// Chromium is Debian's chromium package (apt-get install -y chromium).
// Where it is not installed, Require skips the test with that hint, or
// fails it when LISTGATE_TEST_POSTFIX=1, as .ci/run sets: the same rule as
// the daemons' harnesses (internal/proctest), so that CI cannot pass by
// skipping.
//
// Each run is a process group of its own with a fresh profile, home and
// XDG directories under a temporary directory (the suite also runs as the
// user nobody, whose home may not be writable), bounded by Timeout; the
// group is killed and gone before the function returns. Chromium runs
// with --no-sandbox: the sandbox needs root's setuid helper or user
// namespaces, which containers and CI often lack, and the pages are the
// test's own, from loopback.
package chromiumtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/listgate/listgate/internal/proctest"
	"github.com/listgate/listgate/internal/testutil"
)

// Timeout bounds one Chromium run. A run takes a few seconds; a busy
// machine under -race takes longer.
const Timeout = 90 * time.Second

// EnvScreenshots names the directory screenshots are written to; by
// default listgate-screenshots-UID under os.TempDir(). The files are kept
// after the test (t.TempDir would remove them) for a person to look at;
// the test logs each path.
const EnvScreenshots = "LISTGATE_SCREENSHOT_DIR"

var chromium = &proctest.Program{
	Harness: "chromiumtest",
	Name:    "Chromium",
	Hint:    "Tests that render the status page need headless Chromium (as root: apt-get install -y chromium)",
	Probe:   probe,
}

var binary string // found by probe

func probe() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			binary = p
			return ""
		}
	}
	return "chromium is not installed (not in $PATH)"
}

// Require ends the test unless Chromium can run here: with a skip, or a
// failure when LISTGATE_TEST_POSTFIX=1.
func Require(t testing.TB) {
	t.Helper()
	chromium.Require(t)
}

// DumpDOM loads url in headless Chromium and returns the document as
// Chromium holds it once loaded (--dump-dom): what the browser parsed, not
// the bytes the server sent.
func DumpDOM(t testing.TB, url string) string {
	t.Helper()
	return string(run(t, "--dump-dom", url))
}

// Screenshot loads url in headless Chromium with a window of width×height
// CSS pixels and writes what it shows as a PNG to a file named for the
// test and name in the screenshot directory (EnvScreenshots), which it
// logs and returns.
func Screenshot(t testing.TB, url, name string, width, height int) string {
	t.Helper()
	dir := os.Getenv(EnvScreenshots)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "listgate-screenshots-"+strconv.Itoa(os.Getuid()))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("chromiumtest: screenshot directory: %v", err)
	}
	base := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name()+"-"+name, "_")
	path, err := filepath.Abs(filepath.Join(dir, base+".png"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path) // a stale one must not pass for this run's
	run(t, "--screenshot="+path, fmt.Sprintf("--window-size=%d,%d", width, height), "--hide-scrollbars", url)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("chromiumtest: no screenshot written: %v", err)
	}
	t.Logf("screenshot of %s: %s", url, path)
	return path
}

// run runs Chromium headless with args and returns its standard output.
func run(t testing.TB, args ...string) []byte {
	t.Helper()
	Require(t)
	tmp := t.TempDir()
	for _, d := range []string{"home", "config", "cache", "data", "runtime", "profile"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(tmp, "profile"),
	}, args...)...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		"TMPDIR=" + tmp,
		"HOME=" + filepath.Join(tmp, "home"),
		"XDG_CONFIG_HOME=" + filepath.Join(tmp, "config"),
		"XDG_CACHE_HOME=" + filepath.Join(tmp, "cache"),
		"XDG_DATA_HOME=" + filepath.Join(tmp, "data"),
		"XDG_RUNTIME_DIR=" + filepath.Join(tmp, "runtime"),
	}
	cmd.Dir = tmp
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Start()
	if err != nil {
		t.Fatalf("chromiumtest: %s: %v", binary, err)
	}
	pgid := cmd.Process.Pid
	err = cmd.Wait()
	// Helpers Chromium left behind (a crash handler) go with the group,
	// before t.TempDir's cleanup removes their directories.
	proctest.KillGroup(pgid)
	if _, gone := testutil.Poll(5*time.Second, 10*time.Millisecond, func() bool { return len(proctest.LivePIDs(pgid)) == 0 }); !gone {
		t.Errorf("chromiumtest: processes of group %d still alive: %v", pgid, proctest.LivePIDs(pgid))
	}
	if ctx.Err() != nil {
		t.Fatalf("chromiumtest: %s %s: no result within %v; stderr:\n%s", binary, strings.Join(args, " "), Timeout, tail(stderr.String()))
	}
	if err != nil {
		t.Fatalf("chromiumtest: %s %s: %v; stderr:\n%s", binary, strings.Join(args, " "), err, tail(stderr.String()))
	}
	return stdout.Bytes()
}

// tail is the end of Chromium's standard error, for a failure message.
func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// Text returns the text a person reads in the body of the document dom:
// its text nodes in order, outside <script>, <style> and <template>, with
// each run of white space made one space. Markup in the text (an escaped
// "<script>") is text here, as on the screen.
func Text(t testing.TB, dom string) string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatalf("chromiumtest: parse the DOM: %v", err)
	}
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "style", "template", "head", "title":
				return
			}
		}
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return strings.Join(strings.Fields(b.String()), " ")
}

// Elements returns the elements named tag ("script", "img") in the
// document dom.
func Elements(t testing.TB, dom, tag string) []*html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatalf("chromiumtest: parse the DOM: %v", err)
	}
	var out []*html.Node
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
	}
	return out
}
