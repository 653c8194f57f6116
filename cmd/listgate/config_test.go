package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/listgate/listgate/internal/corpus"
)

// TestCommandsReadTheConfigFile: check and lists take the lists directory
// (relative to the file) and the delimiter from --config FILE, a flag
// overrides the file, and a bad file stops every command with file:line.
func TestCommandsReadTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	listsDir := filepath.Join(dir, "mylists")
	if err := os.Mkdir(listsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(listsDir, "tour@example.org"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "listgate.toml")
	writeFile(t, good, "lists = \"mylists\"\nrecipient_delimiter = \"=\"\n")
	bad := filepath.Join(dir, "bad.toml")
	writeFile(t, bad, "lists = \"mylists\"\n\nspol = \"/tmp\"\n")
	tests := []struct {
		name   string
		args   []string
		status int
		stdout string // a line of the output
		stderr string
	}{
		{"check: lists from the file", []string{"check", "--config", good, "tour@example.org"}, 0, "tour@example.org  accept", ""},
		{"check: delimiter from the file", []string{"check", "--config", good, "tour=x@example.org"}, 0, "extension=x", ""},
		{"check: a flag overrides the file", []string{"check", "--config", good, "--lists", corpus.ListsDir(), "tour@example.org"}, exitRefused, "tour@example.org  unknown", ""},
		{"lists: lists from the file", []string{"lists", "--config", good}, 0, "  file:        " + filepath.Join(listsDir, "tour@example.org"), ""},
		{"check: bad key", []string{"check", "--config", bad, "a@example.org"}, 1, "", bad + `:3: unknown key "spol"`},
		{"lists: bad key", []string{"lists", "--config", bad}, 1, "", bad + `:3: unknown key "spol"`},
		{"serve: bad key", []string{"serve", "--config", bad}, 1, "", bad + `:3: unknown key "spol"`},
		{"check: missing --config", []string{"check", "--config", filepath.Join(dir, "none.toml"), "a@example.org"}, exitUsage, "", `--config "` + filepath.Join(dir, "none.toml") + `": no such file or directory`},
		{"serve: lists of the file missing", []string{"serve", "--config", writeTemp(t, "lists = \"nope\"\n")}, 1, "", `listgate.toml:1: lists `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if st := run(tt.args, &out, &errb); st != tt.status {
				t.Errorf("exit %d, want %d; stderr: %s", st, tt.status, errb.String())
			}
			if !strings.Contains(out.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, out.String())
			}
			if !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, errb.String())
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeTemp writes content to listgate.toml in a new directory.
func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "listgate.toml")
	writeFile(t, path, content)
	return path
}

// TestPostfixReadsTheConfigFile: `listgate postfix` writes Postfix's
// settings for the daemon the config file describes, and `postfix --check`
// judges a main.cf against that same file — so it gives no false finding
// without serve's flags — while a flag still overrides the file.
func TestPostfixReadsTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "mylists"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "mylists", "tour@example.net"), "")
	cfg := filepath.Join(dir, "listgate.toml")
	writeFile(t, cfg, "lists = \"mylists\"\nlmtp = \"inet:127.0.0.1:9024\"\nmilter = \"inet:127.0.0.1:9025\"\n")

	var out, errb bytes.Buffer
	if st := run([]string{"postfix", "--config", cfg}, &out, &errb); st != 0 {
		t.Fatalf("postfix: exit %d; stderr: %s", st, errb.String())
	}
	for _, want := range []string{"example.net", "lmtp:inet:127.0.0.1:9024", "inet:127.0.0.1:9025"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("postfix --config output lacks %q:\n%s", want, out.String())
		}
	}
	// The settings go into a main.cf that has the rest of a stock one:
	// Debian's sets mailbox_size_limit = 0 (--check would rightly say
	// that Postfix's default 51200000 is below message_size_limit).
	mainCF := filepath.Join(dir, "main.cf")
	writeFile(t, mainCF, "mailbox_size_limit = 0\n"+out.String())

	tests := []struct {
		name   string
		args   []string
		status int
		stdout string
	}{
		{"the file's daemon", []string{"postfix", "--check", "--config", cfg, mainCF}, 0, "ok: "},
		{"a flag overrides the file", []string{"postfix", "--check", "--config", cfg, "--lmtp", "inet:127.0.0.1:8024", mainCF}, exitRefused, "inet:127.0.0.1:8024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if st := run(tt.args, &out, &errb); st != tt.status {
				t.Errorf("exit %d, want %d; stdout: %s; stderr: %s", st, tt.status, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, out.String())
			}
		})
	}
}

// TestListsShowsNextHops: `listgate lists` names each list's next hop
// (its file's, its domain file's or default_next_hop) and counts an exec:
// next hop whose command is not an executable file as a problem: mail for
// it would wait in the spool.
func TestListsShowsNextHops(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "good@example.org"), "next_hop = \"exec:/bin/sh -c true\"\n")
	writeFile(t, filepath.Join(dir, "plain@example.org"), "")
	var out, errb bytes.Buffer
	if st := run([]string{"lists", "--config", "/dev/null", "--lists", dir, "--default-next-hop", "lmtp:inet:127.0.0.1:8026"}, &out, &errb); st != 0 {
		t.Fatalf("exit %d: %s%s", st, out.String(), errb.String())
	}
	for _, want := range []string{"next hop:    exec:/bin/sh -c true", "next hop:    lmtp:inet:127.0.0.1:8026"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	writeFile(t, filepath.Join(dir, "bad@example.org"), "next_hop = \"exec:/nonexistent/receive {local}\"\n")
	out.Reset()
	if st := run([]string{"lists", "--config", "/dev/null", "--lists", dir}, &out, &errb); st != exitRefused {
		t.Errorf("exit %d with a missing command, want %d", st, exitRefused)
	}
	if want := "bad@example.org: next hop exec:/nonexistent/receive {local}: /nonexistent/receive is not an executable file"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
}
