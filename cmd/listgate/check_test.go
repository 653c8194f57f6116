package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/listgate/listgate/internal/corpus"
	"github.com/listgate/listgate/lists"
)

// TestCheckCorpus runs the verdict corpus through `listgate check`: each
// address alone, for its exit status, and all at once, for the output.
func TestCheckCorpus(t *testing.T) {
	cases, err := corpus.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Rcpt, func(t *testing.T) {
			var out, errb bytes.Buffer
			st := run([]string{"check", "--lists", corpus.ListsDir(), "--", c.Rcpt}, &out, &errb)
			wantStatus := 0
			if c.Code != 250 && c.Status != lists.Alias {
				wantStatus = exitRefused
			}
			if !strings.Contains(c.Rcpt, "@") {
				// Not an address: check says so (a usage error).
				if st := run([]string{"check", "--lists", corpus.ListsDir(), "--", c.Rcpt}, &out, &errb); st != exitUsage ||
					!strings.Contains(errb.String(), "is not an address: want local@domain") {
					t.Errorf("verdicts.txt:%d: exit %d, want %d; stderr: %s", c.Line, st, exitUsage, errb.String())
				}
				return
			}
			if st != wantStatus {
				t.Errorf("verdicts.txt:%d: exit %d, want %d; stderr: %s", c.Line, st, wantStatus, errb.String())
			}
			fields := strings.Fields(out.String())
			if len(fields) < 4 {
				t.Fatalf("output %q", out.String())
			}
			if got, want := strings.Join(fields[:4], " "), fmt.Sprintf("%s %s %d %s", c.Rcpt, c.Status, c.Code, c.Enhanced); got != want {
				t.Errorf("verdicts.txt:%d: got %q, want %q", c.Line, got, want)
			}
			// The LMTP door refuses at RCPT and accepts only after DATA
			// (RFC 2033 §4.2): check says which stage its reply is.
			stage := "(LMTP door, at RCPT"
			if c.Code == 250 {
				stage = "(LMTP door, at end of DATA"
			}
			if !strings.Contains(out.String(), stage) {
				t.Errorf("verdicts.txt:%d: output %q does not say %q", c.Line, out.String(), stage)
			}
			for _, kv := range []struct{ k, v string }{{"list=", c.List}, {"kind=", string(c.Kind)}, {"extension=", c.Extension}, {"target=", c.Target}} {
				if kv.v != "" && !strings.Contains(out.String(), " "+kv.k+kv.v) {
					t.Errorf("verdicts.txt:%d: output %q lacks %s%s", c.Line, out.String(), kv.k, kv.v)
				}
			}
		})
	}
}

func TestCheckUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		status int
		stderr string
	}{
		{"no address", []string{"check", "--lists", corpus.ListsDir()}, exitUsage, "give at least one ADDRESS"},
		{"missing dir", []string{"check", "--lists", "/nonexistent/lists", "a@b.example"}, 1, "/nonexistent/lists"},
		{"not an address", []string{"check", "--lists", corpus.ListsDir(), "mylist@example.com", "not an address"}, exitUsage,
			`listgate check: usage: "not an address" is not an address: it has a blank or a control character`},
		{"no @", []string{"check", "--lists", corpus.ListsDir(), "--explain", "mylist"}, exitUsage, `"mylist" is not an address: want local@domain`},
		{"no domain", []string{"check", "--lists", corpus.ListsDir(), "<mylist@.>"}, exitUsage, `"<mylist@.>" is not an address: no domain after the @`},
		{"bad flag", []string{"check", "--nosuch", "a@b.example"}, exitUsage, "nosuch"},
		{"empty delimiter", []string{"check", "--recipient-delimiter", "", "a@b.example"}, exitUsage, "--recipient-delimiter"},
		{"dash delimiter", []string{"check", "--recipient-delimiter", "+-", "a@b.example"}, exitUsage, "'-' separates a list from its sub-address"},
		{"serve: zero shutdown timeout", []string{"serve", "--shutdown-timeout", "0"}, exitUsage, `--shutdown-timeout "0": must be positive`},
		{"serve: negative rescan", []string{"serve", "--rescan-interval", "-1s"}, exitUsage, `--rescan-interval "-1s": must not be negative`},
		{"serve: bad hostname", []string{"serve", "--lists", corpus.ListsDir(), "--hostname", "a\r\nX: y"}, exitUsage, "--hostname"},
		{"serve: bad address", []string{"serve", "--lmtp", "tcp:127.0.0.1:1"}, exitUsage, `--lmtp "tcp:127.0.0.1:1"`},
		{"serve: all doors off", []string{"serve", "--lists", corpus.ListsDir(), "--lmtp", "", "--milter", ""}, 1, "every door is off"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if st := run(tt.args, &out, &errb); st != tt.status {
				t.Errorf("exit %d, want %d", st, tt.status)
			}
			if !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tt.stderr)
			}
			if n := strings.Count(errb.String(), tt.stderr); n > 1 {
				t.Errorf("stderr says %q %d times:\n%s", tt.stderr, n, errb.String())
			}
		})
	}
}

// TestCheckSomeNotAddresses: an ADDRESS that is no address is named on
// stderr and skipped; the others still get their verdicts; the exit
// status is exitUsage.
func TestCheckSomeNotAddresses(t *testing.T) {
	for _, explain := range []bool{false, true} {
		args := []string{"check", "--config", os.DevNull, "--lists", corpus.ListsDir()}
		if explain {
			args = append(args, "--explain")
		}
		var out, errb bytes.Buffer
		st := run(append(args, "--", "mylist@example.com", "not an address", "nosuchlist@example.com", "nodomain@"), &out, &errb)
		if st != exitUsage {
			t.Errorf("explain %v: exit %d, want %d", explain, st, exitUsage)
		}
		for _, want := range []string{`"not an address" is not an address`, `"nodomain@" is not an address: no domain after the @`} {
			if !strings.Contains(errb.String(), want) {
				t.Errorf("explain %v: stderr lacks %q:\n%s", explain, want, errb.String())
			}
		}
		for _, want := range []string{"mylist@example.com", "nosuchlist@example.com"} {
			if !strings.Contains(out.String(), want) || strings.Contains(out.String(), "not an address") {
				t.Errorf("explain %v: stdout lacks %s, or names the bad one:\n%s", explain, want, out.String())
			}
		}
	}
}

// TestListsOneProblem: one problem is "1 problem:", and a list file's
// mode key is sent to the domain file.
func TestListsOneProblem(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{"a@example.org": "", "b@example.org": "mode = \"observe\"\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb bytes.Buffer
	if st := run([]string{"lists", "--config", os.DevNull, "--lists", dir}, &out, &errb); st != exitRefused {
		t.Fatalf("exit %d: %s", st, errb.String())
	}
	want := "\n1 problem:\n  " + filepath.Join(dir, "b@example.org") + `:1: unknown key "mode": mode belongs in the domain file ` + filepath.Join(dir, "@example.org")
	if !strings.Contains(out.String(), want) {
		t.Errorf("no %q in:\n%s", want, out.String())
	}
}

// TestListsCommand: `listgate lists` shows lists, their addresses and
// every problem of the corpus directory.
func TestListsCommand(t *testing.T) {
	var out, errb bytes.Buffer
	// The corpus directory has problems on purpose: exit 1.
	if st := run([]string{"lists", "--lists", corpus.ListsDir()}, &out, &errb); st != exitRefused {
		t.Fatalf("exit %d: %s", st, errb.String())
	}
	for _, want := range []string{
		"announce@example.org\n",
		"  address:     news@example.org",
		"  address:     mylist@lists.example.com",
		"  address:     straße@xn--bcher-kva.example",
		"broken@broken.example:1: unknown key \"descripton\"",
		"README.txt: ignored: not a list name",
		"dup@example.org is declared twice",
		"postmaster@example.com -> hostmaster@example.net (alias, file " + corpus.ListsDir() + "/@example.com; also at lists.example.com)\n",
		"\nobserve mode (unknown addresses let through and counted): observed.example watch.example\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
