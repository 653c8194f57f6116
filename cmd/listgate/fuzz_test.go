package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzPostfixCheck feeds arbitrary "postconf -n" text to `listgate
// postfix --check`. Invariants: no panic; exit 0 with one "ok:" line, exit
// 1 with at least one finding ("param: problem; fix: ..."), or a parse
// error naming the input; notes never change the exit status. The seeds
// are the files of testdata/postconf, so `go test` runs them.
func FuzzPostfixCheck(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "postconf", "*.txt"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("relay_domains = example.org\n  continued\n")
	f.Add(" leading continuation\n")
	f.Add("smtpd_milters = { inet:127.0.0.1:8025, default_action=accept }\n")
	f.Add("relay_domains = $relay_domains\n")
	f.Fuzz(func(t *testing.T, text string) {
		if strings.ContainsAny(text, "\x00") {
			return
		}
		var out, errb bytes.Buffer
		st, err := postfixCmd([]string{"--lists", postconfLists, "--check", "-"}, strings.NewReader(text), &out, &errb)
		switch {
		case err != nil:
			if !strings.Contains(err.Error(), "stdin") {
				t.Errorf("error does not name the input: %v", err)
			}
		case st == 0:
			if !strings.Contains(out.String(), "ok: ") || strings.Contains(out.String(), "; fix: ") {
				t.Errorf("exit 0 with:\n%s", out.String())
			}
		case st == exitRefused:
			if !strings.Contains(out.String(), "; fix: ") {
				t.Errorf("exit 1 without a finding:\n%s", out.String())
			}
		default:
			t.Errorf("exit %d:\n%s%s", st, out.String(), errb.String())
		}
	})
}
