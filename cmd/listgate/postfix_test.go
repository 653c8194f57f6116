package main

import (
	"bytes"
	"github.com/listgate/listgate/postconf"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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

// TestPostfixCheckTestdata judges every testdata/postconf/*.txt ("postconf
// -n" output). Each file says in its leading comments which flags to add
// ("# args:"), every finding it must produce ("# want: PARAM: text", in
// order, and no others) and any note ("# note: text").
func TestPostfixCheckTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "postconf", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"postfix", "--lists", postconfLists}
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
			var findings []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.HasPrefix(line, "note: ") && !strings.HasPrefix(line, "ok: ") && line != "" {
					findings = append(findings, line)
				}
			}
			wantStatus := 0
			if len(wants) > 0 {
				wantStatus = exitRefused
			}
			if st != wantStatus {
				t.Errorf("exit %d, want %d; stderr: %s", st, wantStatus, errOut)
			}
			if len(findings) != len(wants) {
				t.Fatalf("%d findings, want %d:\n%s", len(findings), len(wants), out)
			}
			for i, w := range wants {
				param, text, _ := strings.Cut(w, ": ")
				if !strings.HasPrefix(findings[i], param+": ") || !strings.Contains(findings[i], text) {
					t.Errorf("finding %d:\n  %s\nwant %q with %q", i+1, findings[i], param, text)
				}
				if !strings.Contains(findings[i], "; fix: ") {
					t.Errorf("finding %d names no fix: %s", i+1, findings[i])
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

// TestPostfixSnippet: the printed lines are contrib/postfix's main.cf
// (TCP) or main.cf.unix (--unix), the same keys and values, with the list
// domains in relay_domains and one line more: parent_domain_matches_subdomains
// without relay_domains. And --check finds nothing wrong with them.
func TestPostfixSnippet(t *testing.T) {
	for _, tc := range []struct {
		contrib string
		args    []string
	}{
		{"main.cf", nil},
		{"main.cf.unix", []string{"--unix"}},
	} {
		t.Run(tc.contrib, func(t *testing.T) {
			st, out, errOut := runCmd(t, "", append([]string{"postfix", "--lists", postconfLists}, tc.args...)...)
			if st != 0 {
				t.Fatalf("exit %d: %s", st, errOut)
			}
			got, err := parsePostconf(out, "output")
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join("..", "..", "contrib", "postfix", tc.contrib))
			if err != nil {
				t.Fatal(err)
			}
			want, err := parsePostconf(string(b), tc.contrib)
			if err != nil {
				t.Fatal(err)
			}
			want.main["relay_domains"] = "example.org, lists.example.net, xn--bcher-kva.example, bücher.example"
			want.main["parent_domain_matches_subdomains"] = pdmsWithoutRelay
			for k, v := range want.main {
				if got.main[k] != v {
					t.Errorf("%s = %q, want %q", k, got.main[k], v)
				}
			}
			for k := range got.main {
				if _, ok := want.main[k]; !ok {
					t.Errorf("output sets %s, which %s does not", k, tc.contrib)
				}
			}
			if len(got.master) != 0 {
				t.Errorf("output has master.cf lines: %v", got.master)
			}

			// Appended to Debian's main.cf, the lines pass --check.
			base, err := os.ReadFile(filepath.Join("testdata", "postconf", "stock-debian.txt"))
			if err != nil {
				t.Fatal(err)
			}
			st, checkOut, errOut := runCmd(t, string(base)+out, append([]string{"postfix", "--lists", postconfLists, "--check"}, append(tc.args, "-")...)...)
			if st != 0 || !strings.HasPrefix(checkOut, "ok: stdin") {
				t.Fatalf("--check of the output: exit %d\n%s%s", st, checkOut, errOut)
			}
		})
	}
}

// contrib/postfix's snippets, as an admin pastes them, pass --check; the
// same snippet without its parent_domain_matches_subdomains line relays
// every subdomain of the list domain to listgate, and --check says so.
func TestPostfixCheckContrib(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "announce@example.org"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"main.cf", "main.cf.unix"} {
		contrib, err := os.ReadFile(filepath.Join("..", "..", "contrib", "postfix", name))
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"postfix", "--lists", dir, "--check", "-"}
		if name == "main.cf.unix" {
			args = []string{"postfix", "--lists", dir, "--unix", "--check", "-"}
		}
		// With Debian's mailbox_size_limit = 0: upstream's default is
		// below the snippet's message_size_limit, another finding.
		cf := string(contrib) + "mailbox_size_limit = 0\n"
		if st, out, _ := runCmd(t, cf, args...); st != 0 {
			t.Errorf("%s: exit %d:\n%s", name, st, out)
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
		{"not postconf output", []string{"--check", "-"}, 1, "stdin:1: not a postconf line"},
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

func TestPostfixName(t *testing.T) {
	for _, tc := range []struct {
		in   postconf.Endpoint
		want string
	}{
		{postconf.Endpoint{Network: "tcp", Address: "127.0.0.1:8024"}, "inet:127.0.0.1:8024"},
		{postconf.Endpoint{Network: "tcp", Address: "0.0.0.0:8025"}, "inet:127.0.0.1:8025"},
		{postconf.Endpoint{Network: "tcp", Address: "[::]:8025"}, "inet:[::1]:8025"},
		{postconf.Endpoint{Network: "tcp", Address: "[::1]:8025"}, "inet:[::1]:8025"},
		{postconf.Endpoint{Network: "unix", Address: "/var/spool/postfix/listgate/lmtp"}, "unix:listgate/lmtp"},
		{postconf.Endpoint{Network: "unix", Address: "/run/listgate/lmtp"}, "unix:/run/listgate/lmtp"},
		{postconf.Endpoint{Network: "unix", Address: "/var/spool/postfix-other/lmtp"}, "unix:/var/spool/postfix-other/lmtp"},
	} {
		if got := postfixName(tc.in, "/var/spool/postfix"); got != tc.want {
			t.Errorf("postfixName(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The addresses main.cf may name listgate by, and whether each reaches a
// listgate listening on 127.0.0.1:8024 or /var/spool/postfix/listgate/lmtp.
func TestReaches(t *testing.T) {
	tcp, sock := postconf.Endpoint{Network: "tcp", Address: "127.0.0.1:8024"}, postconf.Endpoint{Network: "unix", Address: "/var/spool/postfix/listgate/lmtp"}
	for _, tc := range []struct {
		addr  string
		lmtp  bool
		lg    postconf.Endpoint
		reach bool
	}{
		{"inet:127.0.0.1:8024", false, tcp, true},
		{"inet:[127.0.0.1]:8024", true, tcp, true},
		{"inet:localhost:8024", false, tcp, true},
		{"127.0.0.1:8024", true, tcp, true},
		{"[127.0.0.1]:8024", true, tcp, true},
		{"127.0.0.1:8024", false, tcp, false}, // a milter needs inet:
		{"inet:127.0.0.1", true, tcp, false},  // LMTP's port 24
		{"inet:127.0.0.2:8024", false, tcp, false},
		{"inet:127.0.0.1:8025", false, tcp, false},
		{"unix:listgate/lmtp", true, sock, true},
		{"unix:/var/spool/postfix/listgate/lmtp", true, sock, true},
		{"local:listgate/lmtp", false, sock, true},
		{"unix:listgate/milter", true, sock, false},
		{"inet:127.0.0.1:8024", true, postconf.Endpoint{Network: "tcp", Address: "0.0.0.0:8024"}, true},
	} {
		ep, ok := postconf.ParseClientAddr(tc.addr, "/var/spool/postfix", tc.lmtp)
		if got := ok && postconf.Reaches(ep, tc.lg); got != tc.reach {
			t.Errorf("%q (lmtp %v) reaches %v: %v, want %v", tc.addr, tc.lmtp, tc.lg, got, tc.reach)
		}
	}
}

func TestPostconfExpand(t *testing.T) {
	pc, err := parsePostconf("myhostname = mx.example.com\nmydomain = example.com\nempty =\nlong = a,\n    b\n", "t")
	if err != nil {
		t.Fatal(err)
	}
	c := &checker{pc: pc, lg: &setup{queueDir: "/var/spool/postfix"}}
	for in, want := range map[string]string{
		"$myhostname, localhost.$mydomain":                 "mx.example.com, localhost.example.com",
		"${myhostname}x $(mydomain)":                       "mx.example.comx example.com",
		"${mydomain?yes} ${empty?no}":                      "yes ",
		"${empty:fallback} ${mydomain:no}":                 "fallback ",
		"$$literal $unknown_param ${nosuch}":               "$literal $unknown_param ${nosuch}",
		"$long":                                            "a, b",
		"$mydestination":                                   "mx.example.com, localhost.example.com, localhost", // Postfix's default
		"${{$compatibility_level} <level {2} ? {x} : {y}}": "${{$compatibility_level} <level {2} ? {x} : {y}}",
	} {
		if got := c.expand(in, 0); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitList(t *testing.T) {
	got := splitList("a, b\tc,,{ inet:x:1, default_action = accept } inline:{ k=v, l=w }")
	want := []string{"a", "b", "c", "{ inet:x:1, default_action = accept }", "inline:{ k=v, l=w }"}
	if !slices.Equal(got, want) {
		t.Errorf("splitList = %q, want %q", got, want)
	}
}
