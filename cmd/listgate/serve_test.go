package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/internal/daemontest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	daemontest.Cleanup()
	os.Exit(code)
}

// TestServeDeliverAndStop runs the real binary: a list file added while it
// runs is delivered to over LMTP on a unix socket, SIGHUP rescans, SIGTERM
// stops cleanly and removes the socket.
func TestServeDeliverAndStop(t *testing.T) {
	listsDir, spoolDir := t.TempDir(), t.TempDir()
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	d := daemontest.Start(t, []string{"lmtp"}, "--lists", listsDir, "--spool", spoolDir,
		"--lmtp", "unix:"+sock, "--milter", "", "--hostname", "mx.test")
	if got := d.Addr("lmtp"); got != "unix:"+sock {
		t.Fatalf("lmtp door at %q", got)
	}
	if err := os.WriteFile(filepath.Join(listsDir, "tour@example.org"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d.WaitLog(t, "lists loaded", "reason=change", "lists=1")
	if err := sendLMTP(sock, "anne@example.net", "tour@example.org", "Subject: hi\r\n\r\nhello\r\n"); err != nil {
		t.Fatalf("delivery: %v\n%s", err, d.Log())
	}
	files, _ := filepath.Glob(filepath.Join(spoolDir, "example.org", "tour", "post", "new", "*"))
	if len(files) != 1 {
		t.Fatalf("files in new/: %v", files)
	}
	d.Signal(t, syscall.SIGHUP)
	d.WaitLog(t, "lists loaded", "reason=rescan")
	d.Stop(t)
	for _, want := range []string{"SIGHUP: rescanning the lists directory", "listgate stopped"} {
		if !strings.Contains(d.Log(), want) {
			t.Errorf("log lacks %q:\n%s", want, d.Log())
		}
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

// TestServeMetrics: `listgate serve --config FILE` takes its lists, spool
// and doors from the file (a flag overriding one); the metrics door
// serves Prometheus text with the lists gauges, and the health endpoints
// answer.
func TestServeMetrics(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "lists"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lists", "a@example.org"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "listgate.toml")
	if err := os.WriteFile(conf, []byte("lists = \"lists\"\nspool = \"spool\"\nmilter = \"\"\nmetrics = \"inet:127.0.0.1:0\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := daemontest.Start(t, []string{"lmtp", "metrics"}, "--config", conf, "--lmtp", "inet:127.0.0.1:0")
	base := "http://" + strings.TrimPrefix(d.Addr("metrics"), "inet:")
	for path, want := range map[string]string{
		"/metrics": "listgate_lists 1\n",
		"/healthz": "ok",
		"/readyz":  "ok",
	} {
		body := httpGet(t, base+path)
		if !strings.Contains(body, want) {
			t.Errorf("GET %s: lacks %q:\n%s", path, want, body)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "spool")); err != nil {
		t.Errorf("the spool the file names: %v", err)
	}
}

// sendLMTP delivers one message over LMTP with go-smtp's client and
// returns the first failure, including a non-250 reply after DATA.
func sendLMTP(sock, from, to, msg string) error {
	return sendLMTPOn("unix", sock, from, to, msg)
}

// sendLMTPOn is sendLMTP on a network ("tcp" or "unix").
func sendLMTPOn(network, addr, from, to, msg string) error {
	conn, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return err
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	return c.SendMail(from, []string{to}, strings.NewReader(msg))
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}
