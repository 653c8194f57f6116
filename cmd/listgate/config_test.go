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
