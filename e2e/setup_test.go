package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/listgate/listgate/internal/postfixtest"
)

// setup is one way of putting Postfix in front of listgate.
type setup struct {
	name string
	// generated: main.cf is `listgate postfix` output, pasted unchanged;
	// otherwise contrib/postfix's snippet with the test's addresses and
	// domains put in by postfixtest.
	generated bool
	// unix: listgate on unix-domain sockets in Postfix's queue directory,
	// smtpd and lmtp chrooted there (main.cf.unix, `listgate postfix
	// --unix`); otherwise TCP on loopback (main.cf).
	unix bool
}

var setups = []setup{
	{"contrib-tcp", false, false},
	{"contrib-unix-chroot", false, true},
	{"generated-tcp", true, false},
	{"generated-unix-chroot", true, true},
}

// env is a private Postfix in front of a running listgate binary.
type env struct {
	setup
	pf       *postfixtest.Postfix
	lg       *daemon
	lists    string // the lists directory
	spool    string
	snippet  string   // the main.cf snippet pasted (a path, or contrib's name)
	lgFlags  []string // listgate's flags that Postfix's configuration depends on
	addrLMTP string   // listgate's addresses, in its own (absolute) spelling
	addrMilt string

	door      string // issue 9's setups: the door Postfix asks at RCPT TO
	bogusText string // issue 9's setups: Postfix's text after "550 5.1.1 <rcpt>: "
}

// start brings up listgate and Postfix as s says, with the list files
// (name -> content) in a new lists directory, and stops both when the test
// ends. With contrib's snippets, relay_domains is every domain listgate
// serves, as `listgate lists` prints them; mainCF are more main.cf lines,
// applied after the snippet.
func start(t *testing.T, s setup, files map[string]string, mainCF ...string) *env {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		writeList(t, dir, name, content)
	}
	return startDir(t, s, dir, mainCF...)
}

// startDir is start with an existing lists directory.
func startDir(t *testing.T, s setup, lists string, mainCF ...string) *env {
	t.Helper()
	postfixtest.Require(t)
	e := &env{setup: s, lists: lists, spool: t.TempDir()}
	e.lgFlags = []string{"--lists", e.lists}
	serve := func(lmtp, milter string) {
		e.lg = startListgate(t, "--lists", e.lists, "--spool", e.spool, "--lmtp", lmtp, "--milter", milter)
		e.addrLMTP, e.addrMilt = e.lg.Addr("lmtp"), e.lg.Addr("milter")
		e.lgFlags = append(e.lgFlags, "--lmtp", e.addrLMTP, "--milter", e.addrMilt)
	}
	opts := postfixtest.Options{Chroot: s.unix, MainCF: mainCF}
	switch {
	case !s.generated && !s.unix:
		serve("inet:127.0.0.1:0", "inet:127.0.0.1:0")
		opts.LMTP, opts.Milter, opts.Domains = e.addrLMTP, e.addrMilt, servedDomains(t, e.lists)
		e.snippet = "main.cf"
	case !s.generated && s.unix:
		opts.Snippet, opts.Domains = "main.cf.unix", servedDomains(t, e.lists)
		e.snippet = opts.Snippet
	case s.generated && !s.unix:
		serve("inet:127.0.0.1:0", "inet:127.0.0.1:0")
		e.snippet = e.generate(t, e.lgFlags...)
		opts.Snippet = e.snippet
	case s.generated && s.unix:
		// As an admin runs it on the host: sockets in
		// /var/spool/postfix/listgate, named relative to the queue
		// directory, which is all a chrooted daemon sees. The private
		// instance's queue directory is elsewhere; the relative names
		// are the same.
		e.snippet = e.generate(t, "--lists", e.lists, "--unix")
		opts.Snippet = e.snippet
	}
	e.pf = postfixtest.Start(t, opts)
	if s.unix {
		dir := filepath.Join(e.pf.QueueDir, "listgate")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		serve("unix:"+filepath.Join(dir, "lmtp"), "unix:"+filepath.Join(dir, "milter"))
	}
	return e
}

// generate runs `listgate postfix` with args and writes its output to a
// file, the snippet an admin appends to main.cf.
func (e *env) generate(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, exit := runListgate(t, "", append([]string{"postfix"}, args...)...)
	if exit != 0 {
		t.Fatalf("listgate postfix %s: exit %d\n%s", strings.Join(args, " "), exit, stderr)
	}
	path := filepath.Join(t.TempDir(), "main.cf.listgate")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("listgate postfix %s:\n%s", strings.Join(args, " "), out)
	return path
}

// check runs `listgate postfix --check` for this listgate on the instance's
// own "postconf -n" output.
func (e *env) check(t *testing.T) (out string, exit int) {
	t.Helper()
	args := append([]string{"postfix", "--check"}, e.lgFlags...)
	out, _, exit = runListgate(t, e.pf.Postconf(t, "-n"), append(args, "-")...)
	return out, exit
}

// servedDomains is what `listgate lists` says the directory serves.
func servedDomains(t *testing.T, dir string) []string {
	t.Helper()
	out, stderr, exit := runListgate(t, "", "lists", "--lists", dir)
	if exit != 0 {
		t.Fatalf("listgate lists: exit %d: %s", exit, stderr)
	}
	_, ds, ok := strings.Cut(out, "served domains: ")
	if !ok {
		t.Fatalf("listgate lists names no served domains:\n%s", out)
	}
	return strings.Fields(ds)
}

// tool finds an SMTP client the tests drive; without it they skip, or fail
// under LISTGATE_TEST_POSTFIX=1, as for Postfix itself.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv(postfixtest.EnvRequire) == "1" {
		t.Fatalf("%s is not installed (%v); %s=1 requires it", name, err, postfixtest.EnvRequire)
	}
	t.Skipf("%s is not installed (%v): apt-get install %s", name, err, pkg)
	return ""
}
