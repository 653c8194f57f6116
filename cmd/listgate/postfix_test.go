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
	"unicode/utf8"

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
		{"unknown door", []string{"--door", "lmtp"}, exitUsage, `--door: unknown door "lmtp": want milter, policy or socketmap`},
		{"policy door off", []string{"--door", "policy"}, exitUsage, "--policy is empty: Postfix needs listgate's policy door (it is off by default: run listgate serve --policy inet:127.0.0.1:8026"},
		{"socketmap door off", []string{"--door", "socketmap"}, exitUsage, "--socketmap is empty"},
		{"unix socketmap outside the queue", []string{"--door", "socketmap", "--unix", "--socketmap", "unix:/run/listgate/socketmap"}, exitUsage, "--socketmap unix:/run/listgate/socketmap: with --unix"},
		{"check with every RCPT door off", []string{"--check", "--milter=", "/dev/null"}, exitUsage, "are all empty: Postfix needs one of listgate's doors"},
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
			checkScript(t, script)
			runScript(t, postconfPath, dir, script)
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

// checkScript fails the test unless every line of a --postconf script is
// a comment, a postconf -e command, postconf.LeftoverFunc (once) or a
// call of it.
func checkScript(t *testing.T, script string) {
	t.Helper()
	if n := strings.Count(script, postconf.LeftoverFunc+"\n"); n != 1 {
		t.Errorf("the script has listgate_unset's definition %d times, want once", n)
	}
	cont := false
	for _, line := range strings.Split(strings.TrimSpace(strings.Replace(script, postconf.LeftoverFunc, "", 1)), "\n") {
		if line != "" && !cont && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "postconf -e '") && !strings.HasPrefix(line, "listgate_unset ") {
			t.Errorf("neither a comment nor a postconf -e command nor listgate_unset: %s", line)
		}
		cont = strings.HasSuffix(line, "\\")
	}
}

// runScript runs a --postconf script with sh -e against the Postfix
// configuration directory dir, and returns what it says on stderr.
func runScript(t *testing.T, postconfPath, dir, script string) string {
	t.Helper()
	sh := exec.Command("sh", "-e")
	sh.Stdin = strings.NewReader(script)
	sh.Env = append(os.Environ(), "MAIL_CONFIG="+dir, "PATH="+filepath.Dir(postconfPath)+":"+os.Getenv("PATH"))
	var stderr bytes.Buffer
	sh.Stderr = &stderr
	if out, err := sh.Output(); err != nil {
		t.Fatalf("sh: %v\n%s%s", err, out, stderr.String())
	}
	return stderr.String()
}

// TestPostfixSwitchDoors: the --postconf commands of one door, run after
// another door's (or over main.cf lines an admin wrote), remove the
// parameters only the other door's setup sets where they name listgate
// alone, leave the admin's own tables and services alone, and name the
// ones that mix both; the result passes --check for the new door.
func TestPostfixSwitchDoors(t *testing.T) {
	postconfPath := needPostconf(t)
	base, err := os.ReadFile(filepath.Join("testdata", "postconf", "stock-debian.txt"))
	if err != nil {
		t.Fatal(err)
	}
	milter := []string{"--door", "milter"}
	policy := []string{"--door", "policy", "--policy", "inet:127.0.0.1:8026"}
	socketmap := []string{"--door", "socketmap", "--socketmap", "inet:127.0.0.1:8027"}
	for _, tc := range []struct {
		name     string
		from     []string          // the door set up first, or nil
		extra    string            // main.cf lines added before the switch
		to       []string          // the door switched to
		gone     []string          // parameters removed
		kept     map[string]string // parameters left as they were
		says     string            // on stderr ("" for nothing)
		checkArg []string          // --check's flags, if not to's
	}{
		{name: "socketmap to policy", from: socketmap, to: policy,
			gone: []string{"relay_recipient_maps", "transport_maps", "virtual_alias_maps"}, says: "listgate: removed relay_recipient_maps"},
		{name: "socketmap to milter, socketmap door still on", from: socketmap, to: append(slices.Clone(milter), "--socketmap", "inet:127.0.0.1:8027"),
			gone: []string{"relay_recipient_maps", "transport_maps"},
			kept: map[string]string{"virtual_alias_maps": "socketmap:inet:127.0.0.1:8027:aliases"}},
		{name: "milter to socketmap", from: milter, to: socketmap, gone: []string{"smtpd_milters"}},
		{name: "policy to milter", from: policy, to: milter, gone: []string{"smtpd_recipient_restrictions"}},
		{name: "policy to socketmap", from: policy, to: socketmap, gone: []string{"smtpd_recipient_restrictions"}},
		{name: "socketmap at another port to milter", to: milter,
			extra: "relay_recipient_maps = socketmap:inet:127.0.0.1:18027:recipients\ntransport_maps = socketmap:inet:localhost:18027:transport\nvirtual_alias_maps = socketmap:unix:/run/listgate/socketmap:aliases\n",
			gone:  []string{"relay_recipient_maps", "transport_maps", "virtual_alias_maps"}},
		{name: "the admin's own", to: milter,
			extra: "relay_recipient_maps = hash:/etc/postfix/relay_recipients\ntransport_maps = socketmap:inet:192.0.2.7:8027:transport\n" +
				"smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:10023\nvirtual_alias_maps = socketmap:unix:/run/other/socketmap:aliases\n",
			kept: map[string]string{"relay_recipient_maps": "hash:/etc/postfix/relay_recipients", "transport_maps": "socketmap:inet:192.0.2.7:8027:transport",
				"smtpd_recipient_restrictions": "check_policy_service inet:127.0.0.1:10023", "virtual_alias_maps": "socketmap:unix:/run/other/socketmap:aliases"},
			checkArg: []string{}},
		{name: "mixed", to: policy,
			extra: "smtpd_milters = inet:127.0.0.1:11332, inet:127.0.0.1:8025\nvirtual_alias_maps = hash:/etc/postfix/virtual socketmap:inet:127.0.0.1:8027:aliases\n",
			kept: map[string]string{"smtpd_milters": "inet:127.0.0.1:11332, inet:127.0.0.1:8025",
				"virtual_alias_maps": "hash:/etc/postfix/virtual socketmap:inet:127.0.0.1:8027:aliases"},
			says: "listgate: smtpd_milters names listgate's and other entries: remove listgate's by hand", checkArg: []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // postconf -e waits for a young main.cf to settle
			dir := t.TempDir()
			writeConfig(t, dir, "main.cf", string(base)+tc.extra)
			writeConfig(t, dir, "master.cf", "smtp      inet  n       -       y       -       -       smtpd\n")
			script := func(args []string) string {
				st, script, errOut := runCmd(t, "", append(append([]string{"postfix", "--lists", postconfLists}, args...), "--postconf")...)
				if st != 0 {
					t.Fatalf("exit %d: %s", st, errOut)
				}
				checkScript(t, script)
				return script
			}
			if tc.from != nil {
				runScript(t, postconfPath, dir, script(tc.from))
			}
			said := runScript(t, postconfPath, dir, script(tc.to))
			if tc.says != "" && !strings.Contains(said, tc.says) || tc.says == "" && len(tc.gone) == 0 && said != "" {
				t.Errorf("the script says %q, want %q", said, tc.says)
			}
			b, err := os.ReadFile(filepath.Join(dir, "main.cf"))
			if err != nil {
				t.Fatal(err)
			}
			got := mainCFValues(t, string(b), "main.cf")
			for _, p := range tc.gone {
				if v, ok := got[p]; ok {
					t.Errorf("%s = %q left in main.cf", p, v)
				}
			}
			for p, want := range tc.kept {
				if got[p] != want {
					t.Errorf("%s = %q, want %q kept", p, got[p], want)
				}
			}
			if tc.checkArg != nil {
				return // the admin's tables are not there to judge
			}
			writeConfig(t, dir, "main.cf", string(b))
			args := append([]string{"postfix", "--lists", postconfLists}, withoutDoor(tc.to)...)
			if st, out, errOut := runCmd(t, "", append(args, "--check", filepath.Join(dir, "main.cf"))...); st != 0 {
				t.Errorf("--check after the switch: exit %d\n%s%s\n%s", st, out, errOut, b)
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

// TestPostfixComments: every comment line listgate postfix prints fits
// in 78 columns, but for indented ones (commands and entries to copy,
// left whole); with postmaster@ sent elsewhere by a domain file and the
// socketmap door off, the milter and policy lines say what that needs
// and pass --check with a note, no finding.
func TestPostfixComments(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // in the comments
		note string   // in --check's output
	}{
		{name: "milter", args: []string{"--lists", postconfLists}},
		{name: "milter unix", args: []string{"--lists", postconfLists, "--unix"}},
		{name: "milter outside the queue directory", args: []string{"--lists", postconfLists, "--milter", "unix:/run/listgate/milter", "--lmtp", "unix:/run/listgate/lmtp"}},
		{name: "policy", args: []string{"--lists", postconfLists, "--door", "policy", "--policy", "inet:127.0.0.1:8026"}},
		{name: "socketmap", args: []string{"--lists", postconfLists, "--door", "socketmap", "--socketmap", "inet:127.0.0.1:8027"},
			want: []string{"# file at once (a Mailman list at its next poll). Nor does a list in a new\n# domain, nor the removal of a domain's last list: Postfix asks listgate's\n"}},
		{name: "postmaster milter", args: []string{"--lists", filepath.Join("testdata", "postconf", "lists-postmaster")},
			want: []string{"# door is off: run listgate with --socketmap (e.g. inet:127.0.0.1:8027) and\n# give this command the same, or add your own virtual_alias_maps entries:\n#   postmaster@example.org hostmaster@example.net\n#   abuse@example.org abuse@example.net\n"},
			note: "note: virtual_alias_maps does not rewrite postmaster@example.org"},
		{name: "postmaster policy", args: []string{"--lists", filepath.Join("testdata", "postconf", "lists-postmaster"), "--door", "policy", "--policy", "inet:127.0.0.1:8026", "--milter="},
			want: []string{"#   postmaster@example.org hostmaster@example.net\n"},
			note: "note: virtual_alias_maps does not rewrite postmaster@example.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []string{"", "--postconf"} {
				args := append([]string{"postfix", "--postconf-command", noPostconf}, tc.args...)
				if mode != "" {
					args = append(args, mode)
				}
				st, out, errOut := runCmd(t, "", args...)
				if st != 0 {
					t.Fatalf("exit %d: %s", st, errOut)
				}
				for _, line := range strings.Split(out, "\n") {
					if strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "#   ") && utf8.RuneCountInString(line) > 78 {
						t.Errorf("%s: a comment line of %d columns: %s", mode, utf8.RuneCountInString(line), line)
					}
				}
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Errorf("%s: no %q in:\n%s", mode, w, out)
					}
				}
				if mode != "" {
					continue
				}
				// The lines alone, merged into Debian's main.cf: clean.
				st, checkOut, errOut := runCmd(t, withDebian(t, out), append(append(args, "--check"), "-")...)
				if st != 0 || !strings.HasPrefix(checkOut, "ok: stdin") || !strings.Contains(checkOut, tc.note) {
					t.Errorf("--check of the lines: exit %d, want 0 and %q\n%s%s", st, tc.note, checkOut, errOut)
				}
			}
		})
	}
}

// TestPostfixCheckObserve: --check claims ok only for the enforced
// domains, notes the observed ones (a domain file's mode, the observe
// setting), and sends an alias domain's postmaster@ to its main domain's
// file, never to a file of the alias's own.
func TestPostfixCheckObserve(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"@obs.test":            "mode = \"observe\"\naliases = [\"alias-obs.test\"]\n",
		"announce@obs.test":    "",
		"news@enforced.test":   "",
		"other@unset.test":     "",
		"@enforced.test":       "mode = \"enforce\"\n",
		"unrelated@other.test": "",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		flags []string
		ok    string // the ok line, up to its doors
		noted string // the observe note, up to its reason
	}{
		{name: "domain file", ok: "ok: stdin refuses bogus addresses of enforced.test, other.test, unset.test at RCPT TO",
			noted: "note: alias-obs.test, obs.test are in observe mode"},
		{name: "observe setting", flags: []string{"--observe"}, ok: "ok: stdin refuses bogus addresses of enforced.test at RCPT TO",
			noted: "note: alias-obs.test, obs.test, other.test, unset.test are in observe mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"postfix", "--postconf-command", noPostconf, "--lists", dir}, tc.flags...)
			st, lines, errOut := runCmd(t, "", args...)
			if st != 0 {
				t.Fatalf("exit %d: %s", st, errOut)
			}
			st, out, errOut := runCmd(t, withDebian(t, lines), append(args, "--check", "-")...)
			if st != 0 {
				t.Fatalf("--check: exit %d\n%s%s", st, out, errOut)
			}
			if !strings.Contains(out, tc.ok+" (") {
				t.Errorf("no %q in:\n%s", tc.ok, out)
			}
			if !strings.Contains(out, tc.noted+" (") || !strings.Contains(out, "not refused") {
				t.Errorf("no %q in:\n%s", tc.noted, out)
			}
			if strings.Contains(out, "@alias-obs.test") {
				t.Errorf("advises a domain file for the alias domain:\n%s", out)
			}
			// postmaster@alias-obs.test comes first; its file is @obs.test.
			if !strings.Contains(out, "e.g. "+filepath.Join(dir, "@obs.test")+" ") {
				t.Errorf("does not name the main domain's file for postmaster@:\n%s", out)
			}
		})
	}
}

// withDebian returns main.cf lines merged into Debian's stock main.cf,
// as in TestPostfixComments: Debian's lines the lines do not set, then
// the lines.
func withDebian(t *testing.T, lines string) string {
	t.Helper()
	base, err := os.ReadFile(filepath.Join("testdata", "postconf", "stock-debian.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got := mainCFValues(t, lines, "output")
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
	return strings.Join(merged, "") + lines
}

// TestPostfixCheckObserveRollout: with every domain in observe mode and
// its mail still routed to the old list manager (relay_transport left
// alone), as docs/postfix.md's roll-out has it, --check is clean: no ok
// claim that anything is refused, a note that the mail is not listgate's
// yet.
func TestPostfixCheckObserveRollout(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{"@obs.test": "mode = \"observe\"\n", "announce@obs.test": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"postfix", "--postconf-command", noPostconf, "--lists", dir}
	st, lines, errOut := runCmd(t, "", args...)
	if st != 0 {
		t.Fatalf("exit %d: %s", st, errOut)
	}
	var kept []string
	for _, l := range strings.Split(lines, "\n") {
		if !strings.HasPrefix(l, "relay_transport ") {
			kept = append(kept, l)
		}
	}
	st, out, errOut := runCmd(t, withDebian(t, strings.Join(kept, "\n")), append(args, "--check", "-")...)
	if st != 0 {
		t.Fatalf("--check: exit %d\n%s%s", st, out, errOut)
	}
	for _, want := range []string{
		"ok: stdin asks listgate's milter inet:127.0.0.1:8025 at RCPT TO about every recipient of obs.test (",
		"note: obs.test is in observe mode (",
		"note: mail for the observed domains obs.test is not delivered to listgate (",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "refuses bogus") {
		t.Errorf("claims to refuse bogus addresses of an observed domain:\n%s", out)
	}
}
