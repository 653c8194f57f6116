package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/config"
	"github.com/listgate/listgate/internal/testutil"
)

// repoRoot is the checkout's root, from this package's directory.
const repoRoot = "../.."

// readmeCommands returns the indented command lines of the README's
// section titled title, comments left out.
func readmeCommands(t *testing.T, title string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", title)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var cmds []string
	for _, line := range strings.Split(sec, "\n") {
		if c, ok := strings.CutPrefix(line, "    "); ok && !strings.HasPrefix(strings.TrimSpace(c), "#") && strings.TrimSpace(c) != "" {
			cmds = append(cmds, strings.TrimSpace(c))
		}
	}
	return cmds
}

// goRunArgs returns the listgate arguments of a README "go run
// ./cmd/listgate ..." command, with a relative --config made relative to
// the checkout's root.
func goRunArgs(t *testing.T, cmd string) []string {
	t.Helper()
	args, ok := strings.CutPrefix(cmd, "go run ./cmd/listgate ")
	if !ok {
		t.Fatalf("README command %q is not go run ./cmd/listgate", cmd)
	}
	f := strings.Fields(args)
	for i := range f {
		if i > 0 && f[i-1] == "--config" && !filepath.IsAbs(f[i]) {
			f[i] = filepath.Join(repoRoot, f[i])
		}
	}
	return f
}

// TestReadmeRunCommand: the README's set-up is two commands, and its run
// command starts the daemon on examples/listgate.toml and delivers. The
// test runs serve's own wiring in-process with the ports moved to :0 and
// the spool to a temporary directory, so it never writes outside it; it
// checks that the example's own spool is outside the checkout.
func TestReadmeRunCommand(t *testing.T) {
	cmds := readmeCommands(t, "Set up")
	if len(cmds) != 2 || cmds[1] != "go test -race ./..." {
		t.Fatalf("README set-up commands %q: want the run command and go test -race ./...", cmds)
	}
	args := goRunArgs(t, cmds[0])
	if len(args) < 3 || args[0] != "serve" || args[1] != "--config" {
		t.Fatalf("README run command %q: want serve --config FILE", cmds[0])
	}
	example, err := config.Load(args[2])
	if err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs(repoRoot)
	if !filepath.IsAbs(example.Spool) || strings.HasPrefix(example.Spool, root+string(filepath.Separator)) {
		t.Errorf("%s: spool %q would put mail into the checkout", args[2], example.Spool)
	}
	if want, _ := filepath.Abs(filepath.Join(repoRoot, "examples", "lists")); example.Lists != filepath.Join(repoRoot, "examples", "lists") && example.Lists != want {
		t.Errorf("%s: lists %q, want examples/lists", args[2], example.Lists)
	}

	spoolDir := t.TempDir()
	var log testutil.SyncBuffer
	d, _, err := newDaemon(append(args[1:], "--lmtp", "inet:127.0.0.1:0", "--milter", "inet:127.0.0.1:0", "--spool", spoolDir), &log)
	if err != nil {
		t.Fatalf("README run command: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("log:\n%s", log.String())
		}
	}()
	testutil.WaitFor(t, 5*time.Second, "listgate started", func() bool { return strings.Contains(log.String(), "listgate started") })
	sock := strings.TrimPrefix(d.Addr("lmtp"), "inet:")
	if err := sendLMTPOn("tcp", sock, "anne@example.net", "announce@example.org", "Subject: hi\r\n\r\nhello\r\n"); err != nil {
		t.Fatalf("delivery: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(spoolDir, "example.org", "announce", "post", "new", "*"))
	if len(files) != 1 {
		t.Fatalf("files in new/: %v", files)
	}
}

// TestReadmeTour: the tour's check command runs as written, and its ls
// looks where the example's spool is.
func TestReadmeTour(t *testing.T) {
	cmds := readmeCommands(t, "A 60-second tour")
	var checked bool
	for _, c := range cmds {
		if strings.HasPrefix(c, "go run ./cmd/listgate check ") && strings.Contains(c, "bogus@example.org") {
			var out, errb bytes.Buffer
			st := run(goRunArgs(t, c), &out, &errb)
			verdicts := map[string]string{}
			for _, line := range strings.Split(out.String(), "\n") {
				if f := strings.Fields(line); len(f) > 1 {
					verdicts[f[0]] = f[1]
				}
			}
			if st != exitRefused || verdicts["announce@example.org"] != "accept" || verdicts["bogus@example.org"] != "unknown" {
				t.Errorf("%s: exit %d\n%s%s", c, st, out.String(), errb.String())
			}
			checked = true
		}
		if p, ok := strings.CutPrefix(c, "ls "); ok && !strings.HasPrefix(p, "/tmp/listgate-example/spool/") {
			t.Errorf("tour: %q does not look in examples/listgate.toml's spool", c)
		}
	}
	if !checked {
		t.Errorf("the tour has no check command with bogus@example.org: %q", cmds)
	}
}
