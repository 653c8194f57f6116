package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/listgate/listgate/internal/mailmanfake"
	"github.com/listgate/listgate/mailman"
)

// TestCommandsReadMailman: with mailman set, check, lists and postfix
// read Mailman's lists once, beside the list files: lists marks them and
// their next hop and reports a conflict with a file; postfix knows
// Mailman's domains. Mailman down, the daemon's cache stands in, with a
// warning; without a cache the command fails. The password shows nowhere.
func TestCommandsReadMailman(t *testing.T) {
	mm := mailmanfake.New(t)
	mm.CreateList("announce@example.com")
	mm.CreateList("tour@example.org")
	mm.CreateDomain("example.com", "lists.example.com")
	mm.SetMTA("lmtp_port", "8026")
	dir := t.TempDir()
	listsDir, spool := filepath.Join(dir, "lists"), filepath.Join(dir, "spool")
	if err := os.Mkdir(listsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(listsDir, "tour@example.org"), "")
	writeFile(t, filepath.Join(listsDir, "dev@example.net"), "")
	cred := filepath.Join(dir, "mailman.cred")
	writeFile(t, cred, mailmanfake.User+":"+mm.Password()+"\n")
	if err := os.Chmod(cred, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "listgate.toml")
	writeFile(t, cfg, "lists = \"lists\"\nspool = \"spool\"\nmailman = \""+mm.Base()+"\"\nmailman_credentials_file = \"mailman.cred\"\n")
	origin := mm.Base() + "/lists/announce.example.com"

	type result struct {
		status      int
		out, stderr []string
	}
	check := func(t *testing.T, args []string, want result) {
		t.Helper()
		st, out, errOut := runCmd(t, "", args...)
		if st != want.status {
			t.Errorf("%s: exit %d, want %d\n%s%s", args[0], st, want.status, out, errOut)
		}
		for _, w := range want.out {
			if !strings.Contains(out, w) {
				t.Errorf("%s: stdout lacks %q:\n%s", args[0], w, out)
			}
		}
		for _, w := range want.stderr {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", args[0], w, errOut)
			}
		}
		if strings.Contains(out+errOut, mm.Password()) {
			t.Errorf("%s shows the password:\n%s%s", args[0], out, errOut)
		}
	}
	check(t, []string{"lists", "--config", cfg}, result{exitRefused, []string{
		"announce@example.com\n  mailman:     " + origin + "\n  next hop:    lmtp:inet:127.0.0.1:8026\n",
		"  address:     announce@lists.example.com",
		"dev@example.net\n  file:        ",
		"tour@example.org is declared twice",
		"mailman " + mm.Base() + ": 2 lists, 2 domains, read now",
	}, nil})
	check(t, []string{"check", "--config", cfg, "announce-request@lists.example.com", "tour@example.org"}, result{exitRefused, []string{
		"announce-request@lists.example.com  accept", "tour@example.org                    tempfail",
	}, []string{"tour@example.org is declared twice"}})
	check(t, []string{"postfix", "--config", cfg}, result{0, []string{"relay_domains = example.com, example.net, example.org, lists.example.com"}, nil})

	mm.SetDown(true)
	check(t, []string{"check", "--config", cfg, "announce@example.com"}, result{1, nil, []string{
		"listgate check: mailman " + mm.Base() + ": ", "and no cache of its lists (" + filepath.Join(spool, ".listgate", "mailman.json") + ")",
	}})
	// The daemon's cache, as it writes it.
	mm.SetDown(false)
	src, err := mailman.New(mailman.Options{URL: mm.URL(), CacheFile: filepath.Join(spool, ".listgate", "mailman.json")})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	mm.SetDown(true)
	check(t, []string{"check", "--config", cfg, "announce@example.com", "new@example.com"}, result{exitRefused, []string{
		"announce@example.com  accept", "new@example.com       tempfail",
	}, []string{"listgate: warning: mailman " + mm.Base() + ": ", "its lists as cached at "}})
	check(t, []string{"lists", "--config", cfg}, result{exitRefused, []string{
		"mailman " + mm.Base() + ": 2 lists, 2 domains as cached at ",
	}, nil})
	// A wrong password is an error even with a cache: it would never mend.
	mm.SetDown(false)
	badCred := filepath.Join(dir, "bad.cred")
	writeFile(t, badCred, mailmanfake.User+":wrong\n")
	if err := os.Chmod(badCred, 0o600); err != nil {
		t.Fatal(err)
	}
	check(t, []string{"lists", "--config", cfg, "--mailman-credentials-file", badCred}, result{1, nil, []string{
		"401 Unauthorized: Mailman refused the credentials", "(from --mailman-credentials-file " + badCred + ")",
	}})
	check(t, []string{"lists", "--config", cfg, "--mailman", "http://restadmin:" + mm.Password() + "@127.0.0.1:8001"}, result{exitUsage, nil, []string{
		`--mailman "http://127.0.0.1:8001": name the API version`,
	}})
}
