package main

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/postfixtest"
	"github.com/listgate/listgate/postconf"
)

// postconfLists is the lists directory the postconf testdata is judged
// against: example.org, lists.example.net and the IDN bücher.example.
var postconfLists = filepath.Join("testdata", "postconf", "lists")

// runCmd runs a listgate command line with stdin and returns its exit
// status, stdout and stderr.
func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	var st int
	if stdin != "" {
		st = runStdin(args, strings.NewReader(stdin), &out, &errb)
	} else {
		st = run(args, &out, &errb)
	}
	return st, out.String(), errb.String()
}

// runStdin is run with postfix --check reading stdin from r.
func runStdin(args []string, r *strings.Reader, stdout, stderr *bytes.Buffer) int {
	st, err := postfixCmd(args[1:], r, stdout, stderr)
	if err != nil {
		stderr.WriteString(err.Error())
		return 1
	}
	return st
}

// needPostconf returns the path of postconf(1), or skips the test with a
// hint (fails it under LISTGATE_TEST_POSTFIX=1).
func needPostconf(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"postconf", "/usr/sbin/postconf"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv(postfixtest.EnvRequire) == "1" {
		t.Fatalf("postconf is not installed (%s=1 requires it)", postfixtest.EnvRequire)
	}
	t.Skipf("postconf is not installed: apt-get install postfix (%s=1 makes this a failure)", postfixtest.EnvRequire)
	return ""
}

// noPostconf is a --postconf-command that is not there: the built-in
// defaults.
const noPostconf = "/nonexistent/postconf"

// findings returns the finding lines of --check's output.
func findings(out string) []string {
	var fs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "note: ") && !strings.HasPrefix(line, "ok: ") && line != "" {
			fs = append(fs, line)
		}
	}
	return fs
}

// TestPostfixCheckTestdata judges every testdata/postconf/*.txt ("postconf
// -n" output). Each file says in its leading comments which flags to add
// ("# args:"), every finding it must produce ("# want: PARAM: text", in
// order, and no others) and any note ("# note: text"). Each is judged
// twice, with the defaults of the Postfix installed here (postconf -d)
// and with the built-in ones, and both must agree; stderr says which.
func TestPostfixCheckTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "postconf", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	postconfPath := needPostconf(t)
	for _, file := range files {
		for _, src := range []struct{ command, note string }{
			{postconfPath, "note: defaults from this machine's postconf -d (Postfix 3."},
			{noPostconf, "note: Postfix not installed here; built-in defaults of Postfix 3.7\n"},
		} {
			t.Run(strings.TrimSuffix(filepath.Base(file), ".txt")+"/"+filepath.Dir(src.command), func(t *testing.T) {
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				args := []string{"postfix", "--lists", postconfLists, "--postconf-command", src.command}
				var wants, notes []string
				for _, line := range strings.Split(string(b), "\n") {
					switch {
					case strings.HasPrefix(line, "# args:"):
						args = append(args, strings.Fields(strings.TrimPrefix(line, "# args:"))...)
					case strings.HasPrefix(line, "# want: "):
						wants = append(wants, strings.TrimPrefix(line, "# want: "))
					case strings.HasPrefix(line, "# note: "):
						notes = append(notes, strings.TrimPrefix(line, "# note: "))
					}
				}
				st, out, errOut := runCmd(t, "", append(args, "--check", file)...)
				found := findings(out)
				wantStatus := 0
				if len(wants) > 0 {
					wantStatus = exitRefused
				}
				if st != wantStatus {
					t.Errorf("exit %d, want %d; stderr: %s", st, wantStatus, errOut)
				}
				if !strings.Contains(errOut, src.note) {
					t.Errorf("stderr does not say where the defaults come from (%q):\n%s", src.note, errOut)
				}
				if len(found) != len(wants) {
					t.Fatalf("%d findings, want %d:\n%s", len(found), len(wants), out)
				}
				for i, w := range wants {
					param, text, _ := strings.Cut(w, ": ")
					if !strings.HasPrefix(found[i], param+": ") || !strings.Contains(found[i], text) {
						t.Errorf("finding %d:\n  %s\nwant %q with %q", i+1, found[i], param, text)
					}
					if !strings.Contains(found[i], "; fix: ") {
						t.Errorf("finding %d names no fix: %s", i+1, found[i])
					}
				}
				for _, n := range notes {
					if !strings.Contains(out, "note: "+n) {
						t.Errorf("no note %q in:\n%s", n, out)
					}
				}
				if wantStatus == 0 && !strings.Contains(out, "ok: ") {
					t.Errorf("a clean configuration says no ok:\n%s", out)
				}
			})
		}
	}
}

// mainCFValues parses main.cf text into its last values, failing the test on
// a syntax error.
func mainCFValues(t *testing.T, text, name string) map[string]string {
	t.Helper()
	c, err := postconf.Parse(text, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Master) != 0 {
		t.Errorf("%s has master.cf settings: %v", name, c.Master)
	}
	m := map[string]string{}
	for _, p := range c.Main {
		m[p.Name] = p.Value
	}
	return m
}

// TestPostfixSnippet: the printed lines are contrib/postfix's main.cf
// (TCP) or main.cf.unix (--unix), the same keys and values, with the list
// domains in relay_domains and one line more: parent_domain_matches_subdomains
// without relay_domains. Appended to Debian's main.cf (cat >>) they repeat
// two of its parameters, which --check flags; merged, as postconf -e does,
// --check finds nothing wrong.
func TestPostfixSnippet(t *testing.T) {
	for _, tc := range []struct {
		contrib string
		args    []string
	}{
		{"main.cf", nil},
		{"main.cf.unix", []string{"--unix"}},
		{"main.cf.policy", []string{"--door", "policy", "--policy", "inet:127.0.0.1:8026"}},
		{"main.cf.socketmap", []string{"--door", "socketmap", "--socketmap", "inet:127.0.0.1:8027"}},
	} {
		t.Run(tc.contrib, func(t *testing.T) {
			st, out, errOut := runCmd(t, "", append([]string{"postfix", "--lists", postconfLists}, tc.args...)...)
			if st != 0 {
				t.Fatalf("exit %d: %s", st, errOut)
			}
			got := mainCFValues(t, out, "output")
			b, err := os.ReadFile(filepath.Join("..", "..", "contrib", "postfix", tc.contrib))
			if err != nil {
				t.Fatal(err)
			}
			want := mainCFValues(t, string(b), tc.contrib)
			if tc.contrib != "main.cf.socketmap" { // no domain in it: listgate's socketmap answers
				want["relay_domains"] = "example.org, lists.example.net, xn--bcher-kva.example, bücher.example"
				want["parent_domain_matches_subdomains"] = "debug_peer_list, fast_flush_domains, mynetworks, permit_mx_backup_networks, qmqpd_authorized_clients, smtpd_access_maps"
			}
			if !maps.Equal(got, want) {
				t.Errorf("output sets\n%v\nwant\n%v", got, want)
			}

			base, err := os.ReadFile(filepath.Join("testdata", "postconf", "stock-debian.txt"))
			if err != nil {
				t.Fatal(err)
			}
			args := append([]string{"postfix", "--lists", postconfLists, "--check"}, append(withoutDoor(tc.args), "-")...)
			st, checkOut, _ := runCmd(t, string(base)+out, args...)
			found := findings(checkOut)
			if st != exitRefused || len(found) != 2 ||
				!strings.HasPrefix(found[0], `recipient_delimiter: is set 2 times, at stdin:17 ("+"), stdin:`) ||
				!strings.HasPrefix(found[1], `smtpd_relay_restrictions: is set 2 times, at stdin:23 ("permit_mynetworks permit_sasl_authenticated defer_unauth_destination"), stdin:`) ||
				!strings.Contains(found[1], "fix: delete stdin:23: keep one line") {
				t.Errorf("--check of Debian's main.cf with the output appended: exit %d\n%s", st, checkOut)
			}

			// Merged as postconf -e does: Debian's line replaced.
			debian, err := postconf.Parse(string(base), "stock-debian.txt")
			if err != nil {
				t.Fatal(err)
			}
			var merged []string
			for _, p := range debian.Main {
				if _, ok := got[p.Name]; !ok {
					merged = append(merged, p.Name+" = "+p.Value+"\n")
				}
			}
			st, checkOut, errOut = runCmd(t, strings.Join(merged, "")+out, args...)
			if st != 0 || !strings.HasPrefix(checkOut, "ok: stdin") {
				t.Fatalf("--check of the output merged into Debian's main.cf: exit %d\n%s%s", st, checkOut, errOut)
			}
		})
	}
}

// withoutDoor drops --door and its value from args: --check recognises
// the door itself.
func withoutDoor(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--door" {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// contrib/postfix's snippets, as an admin pastes them, pass --check; the
// same snippet without its parent_domain_matches_subdomains line relays
// every subdomain of the list domain to listgate, and --check says so.
func TestPostfixCheckContrib(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "announce@example.org"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, flags := range map[string][]string{
		"main.cf":           nil,
		"main.cf.unix":      {"--unix"},
		"main.cf.policy":    {"--policy", "inet:127.0.0.1:8026", "--milter="},
		"main.cf.socketmap": {"--socketmap", "inet:127.0.0.1:8027", "--milter="},
	} {
		contrib, err := os.ReadFile(filepath.Join("..", "..", "contrib", "postfix", name))
		if err != nil {
			t.Fatal(err)
		}
		args := append(append([]string{"postfix", "--lists", dir}, flags...), "--check", "-")
		// With Debian's mailbox_size_limit = 0: upstream's default is
		// below the snippet's message_size_limit, another finding.
		cf := string(contrib) + "mailbox_size_limit = 0\n"
		if st, out, _ := runCmd(t, cf, args...); st != 0 || !strings.Contains(out, "ok: stdin") {
			t.Errorf("%s: exit %d:\n%s", name, st, out)
		}
		if name == "main.cf.socketmap" {
			continue // no parent_domain_matches_subdomains: a socketmap is asked no parent domain
		}
		i := strings.Index(cf, "parent_domain_matches_subdomains =")
		j := i + strings.Index(cf[i:], "smtpd_access_maps\n") + len("smtpd_access_maps\n")
		if i < 0 || j < i {
			t.Fatalf("%s has no parent_domain_matches_subdomains line", name)
		}
		st, out, _ := runCmd(t, cf[:i]+cf[j:], args...)
		if st != exitRefused || strings.Count(out, "; fix: ") != 1 ||
			!strings.HasPrefix(out, "parent_domain_matches_subdomains: includes relay_domains (Postfix's default), so relay_domains also relays every subdomain of example.org (x@sub.example.org)") {
			t.Errorf("%s without parent_domain_matches_subdomains: exit %d:\n%s", name, st, out)
		}
	}
}

func TestPostfixUsage(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		stderr string
	}{
		{"unix with inet", []string{"--unix", "--lmtp", "inet:127.0.0.1:8024"}, exitUsage, "with --unix, give a unix socket under --queue-directory /var/spool/postfix"},
		{"unix outside the queue", []string{"--unix", "--milter", "unix:/run/listgate/milter"}, exitUsage, "--milter unix:/run/listgate/milter"},
		{"milter off", []string{"--milter", ""}, exitUsage, "--milter is empty"},
		{"file without --check", []string{"main.cf"}, exitUsage, `unexpected argument "main.cf"`},
		{"two files", []string{"--check", "a", "b"}, exitUsage, "--check reads one FILE"},
		{"relative queue directory", []string{"--queue-directory", "spool"}, exitUsage, "--queue-directory"},
		{"no domains", []string{"--lists", empty}, 1, "serves no domain yet"},
		{"no lists directory", []string{"--lists", "/nonexistent/lists"}, 1, "--lists /nonexistent/lists: the directory does not exist"},
		{"missing file", []string{"--check", "/nonexistent/postconf.txt"}, 1, "/nonexistent/postconf.txt"},
		{"not postconf output", []string{"--check", "-"}, 1, "stdin:1: not a main.cf line"},
		{"check and postconf", []string{"--check", "--postconf"}, exitUsage, "give one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"postfix", "--lists", postconfLists}, tc.args...)
			var out, errb bytes.Buffer
			var st int
			if slices.Contains(tc.args, "-") {
				st = runStdin(args, strings.NewReader("this is not main.cf\n"), &out, &errb)
			} else {
				st = run(args, &out, &errb)
			}
			if st != tc.status || !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", st, errb.String(), tc.status, tc.stderr)
			}
		})
	}
}

// TestPostfixPostconfCommands: the commands --postconf prints, run by sh
// against a private configuration directory that holds Debian's stock
// main.cf, make a main.cf that --check finds clean, judged as a FILE and
// as the running configuration (postconf -n, -P and main.cf itself). A
// line appended afterwards with "cat >>" repeats a parameter, and --check
// names both lines.
func TestPostfixPostconfCommands(t *testing.T) {
	postconfPath := needPostconf(t)
	base, err := os.ReadFile(filepath.Join("testdata", "postconf", "stock-debian.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"tcp", nil},
		{"unix", []string{"--unix"}},
		{"quote in the delimiter", []string{"--recipient-delimiter", "+'"}},
		{"policy", []string{"--door", "policy", "--policy", "inet:127.0.0.1:8026"}},
		{"socketmap", []string{"--door", "socketmap", "--socketmap", "inet:127.0.0.1:8027"}},
		{"socketmap unix", []string{"--door", "socketmap", "--unix"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mainCF := filepath.Join(dir, "main.cf")
			writeConfig(t, dir, "main.cf", string(base))
			writeConfig(t, dir, "master.cf", "smtp      inet  n       -       y       -       -       smtpd\n")
			args := append([]string{"postfix", "--lists", postconfLists}, tc.args...)
			st, script, errOut := runCmd(t, "", append(args, "--postconf")...)
			if st != 0 {
				t.Fatalf("exit %d: %s", st, errOut)
			}
			for _, line := range strings.Split(strings.TrimSpace(script), "\n") {
				if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "postconf -e '") {
					t.Errorf("neither a comment nor a postconf -e command: %s", line)
				}
			}
			sh := exec.Command("sh", "-e")
			sh.Stdin = strings.NewReader(script)
			sh.Env = append(os.Environ(), "MAIL_CONFIG="+dir, "PATH="+filepath.Dir(postconfPath)+":"+os.Getenv("PATH"))
			if out, err := sh.CombinedOutput(); err != nil {
				t.Fatalf("sh: %v\n%s", err, out)
			}
			b, err := os.ReadFile(mainCF)
			if err != nil {
				t.Fatal(err)
			}
			writeConfig(t, dir, "main.cf", string(b)) // dated back: see writeConfig
			if st, out, errOut := runCmd(t, "", append(args, "--check", mainCF)...); st != 0 || !strings.HasPrefix(out, "ok: "+mainCF) {
				t.Errorf("--check %s: exit %d\n%s%s\n%s", mainCF, st, out, errOut, b)
			}

			t.Setenv("MAIL_CONFIG", dir)
			st, out, errOut := runCmd(t, "", append(args, "--check")...)
			if st != 0 || !strings.HasPrefix(out, "ok: postconf -n") || !strings.Contains(errOut, "note: defaults from postconf -d (Postfix 3.") {
				t.Errorf("--check of the running configuration: exit %d\n%s%s", st, out, errOut)
			}

			line := 1 + strings.Count(string(b[:strings.Index(string(b), "\nrecipient_delimiter =")+1]), "\n")
			writeConfig(t, dir, "main.cf", string(b)+"recipient_delimiter = +\n")
			st, out, _ = runCmd(t, "", append(args, "--check")...)
			want := fmt.Sprintf("recipient_delimiter: is set 2 times, at %s:%d (", mainCF, line)
			if found := findings(out); st != exitRefused || len(found) == 0 || !strings.HasPrefix(found[0], want) ||
				!strings.Contains(found[0], fmt.Sprintf("%s:%d (\"+\"): Postfix uses the last", mainCF, strings.Count(string(b), "\n")+1)) {
				t.Errorf("--check after cat >>: exit %d\n%s\nwant a first finding %q...", st, out, want)
			}
		})
	}
}

// writeConfig writes a file of a Postfix configuration directory, dated a
// minute ago: Postfix rereads a main.cf younger than a second until it
// settles, 300 ms at a time.
func writeConfig(t *testing.T, dir, name, text string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}
