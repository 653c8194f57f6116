package postfixtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/proctest"
)

// EnvRequire is the environment variable that turns a missing Postfix from
// a skip into a failure; .ci/run sets it to "1" (docs/design.md, "Tests
// that need Postfix"). It is proctest.EnvRequire, the same for every
// harness.
const EnvRequire = proctest.EnvRequire

// Options configures a private Postfix.
type Options struct {
	// Snippet is the main.cf snippet pasted into the instance, as an admin
	// appends it to /etc/postfix/main.cf: "" or "main.cf" for
	// contrib/postfix/main.cf, another name of Snippets for that file of
	// contrib/postfix ("main.cf.unix", "main.cf.policy",
	// "main.cf.socketmap"), or the path of any other file (for example
	// `listgate postfix --door socketmap` output).
	Snippet string
	// MasterSnippet is the master.cf snippet whose non-comment lines are
	// added to the instance's master.cf: "" for contrib/postfix/master.cf, or
	// the path of another file.
	MasterSnippet string

	// LMTP, if set, is the listgate LMTP address in Postfix syntax
	// ("inet:127.0.0.1:41234", "unix:/path", or "unix:listgate/lmtp",
	// relative to QueueDir). It replaces the address in the snippet's
	// "relay_transport = lmtp:ADDRESS". Empty keeps the snippet's.
	// main.cf.socketmap has no relay_transport: listgate's socketmap
	// transport map answers its LMTP door, so LMTP is an error there.
	LMTP string
	// Milter, if set, replaces the snippet's smtpd_milters value
	// ("inet:127.0.0.1:41235", "unix:listgate/milter"). Empty keeps the
	// snippet's. To run with no milter, put "smtpd_milters =" in MainCF.
	Milter string
	// Policy, if set, is listgate's policy service in Postfix syntax
	// ("inet:127.0.0.1:41236", "unix:listgate/policy"). It replaces the
	// server of every check_policy_service in the snippet's
	// smtpd_recipient_restrictions and smtpd_relay_restrictions
	// (main.cf.policy). Empty keeps the snippet's.
	Policy string
	// Socketmap, if set, is listgate's socketmap in Postfix syntax
	// ("inet:127.0.0.1:41237", "unix:listgate/socketmap"). It replaces the
	// server of every socketmap:SERVER:MAP table in the snippet's
	// relay_domains, relay_recipient_maps, transport_maps and
	// virtual_alias_maps, keeping each MAP (main.cf.socketmap; a
	// `listgate postfix --door milter` output with its aliases map).
	// Empty keeps the snippet's.
	Socketmap string
	// Domains, if set, replaces the snippet's relay_domains (the list
	// domains). Empty keeps the snippet's (example.org in contrib). A
	// snippet whose relay_domains asks listgate's socketmap
	// (main.cf.socketmap) has no list to replace: Domains is an error
	// there.
	Domains []string

	// MainCF are more main.cf lines ("key = value"), applied last. They
	// may not move the instance's directories or log.
	MainCF []string
	// MasterCF are more master.cf lines, added last.
	MasterCF []string

	// Chroot runs the daemons chrooted to QueueDir where Debian's master.cf
	// does (smtpd, cleanup, lmtp, ...), as on a stock Debian or Ubuntu
	// host. Pair it with Snippet "main.cf.unix".
	Chroot bool
}

// Postfix is a running private Postfix instance. Its fields are read-only.
type Postfix struct {
	// SMTPAddr is the host:port of its smtpd(8), on 127.0.0.1.
	SMTPAddr string
	// Dir holds everything of the instance (under /tmp, with a short name
	// because unix-domain socket paths are limited to 107 bytes).
	Dir string
	// ConfigDir is its config_directory: main.cf and master.cf.
	ConfigDir string
	// QueueDir is its queue_directory, and the chroot of chrooted daemons.
	QueueDir string
	// DataDir is its data_directory.
	DataDir string
	// LogFile is its maillog_file, written by its postlogd(8).
	LogFile string
	// Started is how long Start took to bring it up.
	Started time.Duration

	t       testing.TB
	bin     string // directory of postfix, postconf, postqueue
	lock    *os.File
	pgid    int // master(8)'s process group; 0 until started
	stopped bool
}

// Require skips the test unless a Postfix that this harness can run is
// installed (Linux, the postfix binaries, the postfix user and postdrop
// group, and root to start it). With LISTGATE_TEST_POSTFIX=1 a missing
// Postfix fails the test instead, so CI cannot pass by skipping.
func Require(t testing.TB) {
	t.Helper()
	program.Require(t)
}

// program is Postfix as Require reports it missing.
var program = proctest.Program{
	Harness: "postfixtest",
	Name:    "Postfix",
	Hint:    "Tests that drive a real Postfix need it installed (`apt-get install postfix swaks` on Debian and Ubuntu) and root to start it",
	Probe:   probe,
}

// env is what probe found, for Start once Require has returned.
var env struct {
	bin    string
	compat string // compatibility_level to use
}

// probe returns why Postfix cannot run here, or "" if it can; it records
// what Start needs in env.
func probe() string {
	if runtime.GOOS != "linux" {
		return "the harness runs Postfix on Linux only"
	}
	path, err := exec.LookPath("postfix")
	if err != nil {
		path = "/usr/sbin/postfix"
		if _, err := os.Stat(path); err != nil {
			return "postfix is not installed (no postfix in $PATH or /usr/sbin)"
		}
	}
	env.bin = filepath.Dir(path)
	for _, name := range []string{"postconf", "postqueue"} {
		if _, err := os.Stat(filepath.Join(env.bin, name)); err != nil {
			return fmt.Sprintf("postfix is installed but %s is not: %v", name, err)
		}
	}
	if _, err := user.Lookup("postfix"); err != nil {
		return fmt.Sprintf("no postfix user (%v)", err)
	}
	if _, err := user.LookupGroup("postdrop"); err != nil {
		return fmt.Sprintf("no postdrop group (%v)", err)
	}
	if os.Geteuid() != 0 {
		return "starting Postfix needs root"
	}
	out, err := exec.Command(filepath.Join(env.bin, "postconf"), "-d", "-h", "mail_version").Output()
	if err != nil {
		return fmt.Sprintf("postconf -d -h mail_version: %v", err)
	}
	env.compat = compatibilityLevel(string(out))
	return ""
}

// Start starts a private Postfix for the test and stops it when the test
// ends (t.Cleanup), leaving no process behind. Its configuration is built
// from contrib/postfix (see Options.Snippet) with the test's addresses
// substituted; its smtpd(8) listens on a free port of 127.0.0.1. It fails
// the test, naming the command and showing the instance's log, if Postfix
// refuses the configuration or does not come up. It is Launch for a test.
func Start(t testing.TB, opts Options) *Postfix {
	t.Helper()
	Require(t)
	p, err := launch(opts, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	p.t = t
	t.Cleanup(p.stop)
	return p
}

// Available returns why Postfix cannot run here (not Linux, not installed,
// not root), or nil: Require's check, for a program that is not a test.
func Available() error {
	if missing := program.Missing(); missing != "" {
		return fmt.Errorf("postfixtest: %s. %s", missing, program.Hint)
	}
	return nil
}

// Launch starts a private Postfix as Start does, for a program that is not
// a test (the bench, docs/performance.md): the caller ends it with Close.
// A snippet named without a path is read from contrib/postfix of the
// module above the working directory. logf, if not nil, gets one line when
// it is up. On error nothing of the instance is left.
func Launch(opts Options, logf func(format string, args ...any)) (*Postfix, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return launch(opts, logf)
}

// launch starts the instance once probe has succeeded.
func launch(opts Options, logf func(format string, args ...any)) (*Postfix, error) {
	begin := time.Now()
	dir, lock, err := proctest.NewInstance("postfixtest", killAbandoned)
	if err != nil {
		return nil, err
	}
	p := &Postfix{
		Dir:       dir,
		ConfigDir: filepath.Join(dir, "etc"),
		QueueDir:  filepath.Join(dir, "q"),
		DataDir:   filepath.Join(dir, "d"),
		LogFile:   filepath.Join(dir, "maillog"),
		bin:       env.bin,
		lock:      lock,
	}
	times, err := p.setUp(opts)
	if err != nil {
		return nil, errors.Join(err, p.Close())
	}
	p.Started = time.Since(begin)
	logf("postfixtest: %s up in %v (setup %v, postconf %v, postfix start %v, smtpd greeting %v); smtpd on %s",
		p.ConfigDir, p.Started.Round(time.Millisecond), times[0].Sub(begin).Round(time.Millisecond),
		times[1].Sub(times[0]).Round(time.Millisecond), times[2].Sub(times[1]).Round(time.Millisecond),
		time.Since(times[2]).Round(time.Millisecond), p.SMTPAddr)
	return p, nil
}

// setUp writes the instance's configuration, starts it and waits for
// smtpd's greeting. It returns when the configuration was written, when
// "postfix start" began, and when it returned.
func (p *Postfix) setUp(opts Options) ([3]time.Time, error) {
	var times [3]time.Time
	// The instance's directories are root's and world-searchable: the
	// postfix user must reach its queue, and check-warn wants no group or
	// other write bit on them. Postfix makes the queue's subdirectories
	// itself ("postfix start" runs post-install create-missing).
	for _, d := range []string{p.Dir, p.ConfigDir, p.QueueDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return times, fmt.Errorf("postfixtest: %w", err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return times, fmt.Errorf("postfixtest: %w", err)
		}
	}
	if opts.Chroot {
		if err := p.populateChroot(); err != nil {
			return times, err
		}
	}

	main, err := p.mainCF(opts, env.compat)
	if err != nil {
		return times, err
	}
	masterName, masterText, err := readSnippet(opts.MasterSnippet, "master.cf")
	if err != nil {
		return times, err
	}
	if err := writeFile(filepath.Join(p.ConfigDir, "main.cf"), main); err != nil {
		return times, err
	}

	// The port is free when picked, but another process may take it before
	// master(8) binds it; then try another.
	times[0] = time.Now()
	var startErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := proctest.FreePort()
		if err != nil {
			return times, err
		}
		p.SMTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		master := masterCF(p.SMTPAddr, opts.Chroot, masterText, masterName, opts.MasterCF)
		if err := writeFile(filepath.Join(p.ConfigDir, "master.cf"), master); err != nil {
			return times, err
		}
		if attempt == 0 {
			if err := p.checkConfig(); err != nil {
				return times, err
			}
		}
		logStart := p.logSize()
		times[1] = time.Now()
		startErr = p.start()
		if startErr == nil {
			break
		}
		startErr = fmt.Errorf("%w\nmaillog:\n%s", startErr, p.logFrom(logStart))
		if p.pgid != 0 || !strings.Contains(p.logFrom(logStart), "Address already in use") {
			break
		}
	}
	if startErr != nil {
		return times, startErr
	}
	times[2] = time.Now()
	if err := p.waitBanner(20 * time.Second); err != nil {
		return times, fmt.Errorf("%w\nmaillog:\n%s", err, p.Log())
	}
	return times, nil
}

// CheckOptions reports what Start would refuse in opts before starting
// anything (an Options field the snippet has no place for, an address of
// a listgate the host runs, a snippet that does not parse), without
// Postfix; the error says why.
func CheckOptions(opts Options) error {
	p := &Postfix{Dir: filepath.Join(os.TempDir(), "postfixtest-check")}
	_, err := p.mainCF(opts, "3.6") // the level Start picks for Postfix 3.6 and later; no Postfix asked
	return err
}

// mainCF builds the instance's main.cf: the harness's defaults, the
// snippet with the test's addresses substituted, the settings that keep the
// instance private, then Options.MainCF.
func (p *Postfix) mainCF(opts Options, compat string) (string, error) {
	name, text, err := readSnippet(opts.Snippet, "main.cf")
	if err != nil {
		return "", err
	}
	snippet, err := parseMainCF(text, name)
	if err != nil {
		return "", fmt.Errorf("postfixtest: %w", err)
	}
	var m mainCF
	m.add(sectionDefaults, baseParams(compat))
	m.add(name, snippet)
	m.add(sectionInstance, instanceParams(p.Dir))

	if len(opts.Domains) > 0 {
		if v, _ := m.lookup("relay_domains"); strings.Contains(v, "socketmap:") {
			return "", fmt.Errorf("postfixtest: %s asks listgate's socketmap for relay_domains (%s): there is no list for Options.Domains to replace; listgate's lists directory decides", name, v)
		}
		if !m.set("relay_domains", strings.Join(opts.Domains, ", "), "Options.Domains") {
			return "", fmt.Errorf("postfixtest: %s sets no relay_domains for Options.Domains to replace", name)
		}
	}
	if opts.LMTP != "" {
		v, _ := m.lookup("relay_transport")
		if t, _ := m.lookup("transport_maps"); !strings.HasPrefix(v, "lmtp:") && strings.Contains(t, "socketmap:") {
			return "", fmt.Errorf("postfixtest: %s routes through listgate's socketmap transport map (transport_maps = %s), which answers listgate's own LMTP door: leave Options.LMTP empty", name, t)
		}
		if !strings.HasPrefix(v, "lmtp:") {
			return "", fmt.Errorf("postfixtest: %s has no \"relay_transport = lmtp:...\" for Options.LMTP to replace (it has %q)", name, v)
		}
		m.set("relay_transport", "lmtp:"+opts.LMTP, "Options.LMTP")
	}
	if opts.Policy != "" {
		n := 0
		for _, key := range []string{"smtpd_recipient_restrictions", "smtpd_relay_restrictions"} {
			if v, ok := m.lookup(key); ok {
				nv, k := replacePolicy(v, opts.Policy)
				if k > 0 {
					m.set(key, nv, "Options.Policy")
					n += k
				}
			}
		}
		if n == 0 {
			return "", fmt.Errorf("postfixtest: %s has no check_policy_service for Options.Policy to replace", name)
		}
	}
	if opts.Socketmap != "" {
		n := 0
		for _, key := range socketmapParams {
			if v, ok := m.lookup(key); ok {
				nv, k := replaceSocketmap(v, opts.Socketmap)
				if k > 0 {
					m.set(key, nv, "Options.Socketmap")
					n += k
				}
			}
		}
		if n == 0 {
			return "", fmt.Errorf("postfixtest: %s has no socketmap:SERVER:MAP table for Options.Socketmap to replace", name)
		}
	}
	if opts.Milter != "" {
		if !m.set("smtpd_milters", opts.Milter, "Options.Milter") {
			return "", fmt.Errorf("postfixtest: %s sets no smtpd_milters for Options.Milter to replace", name)
		}
	}

	extra, err := parseMainCF(strings.Join(opts.MainCF, "\n"), "Options.MainCF")
	if err != nil {
		return "", fmt.Errorf("postfixtest: %w", err)
	}
	for _, e := range extra {
		for _, q := range instanceParams(p.Dir) {
			if e.key == q.key {
				return "", fmt.Errorf("postfixtest: Options.MainCF may not set %s: it keeps the instance private", e.key)
			}
		}
	}
	m.add("Options.MainCF", extra)

	for _, key := range append([]string{"relay_transport", "smtpd_milters", "smtpd_recipient_restrictions", "smtpd_relay_restrictions"}, socketmapParams...) {
		if v, ok := m.lookup(key); ok {
			if err := checkNotHostListgate(key, v); err != nil {
				return "", fmt.Errorf("postfixtest: %w", err)
			}
		}
	}
	return "# Written by internal/postfixtest for one test; never the system's main.cf.\n" + m.String(), nil
}

// readSnippet returns the display name and text of a snippet: def or a
// bare name from contrib/postfix, or a path.
func readSnippet(name, def string) (string, string, error) {
	if name == "" {
		name = def
	}
	path := name
	display := name
	if !strings.ContainsRune(name, filepath.Separator) {
		display = "contrib/postfix/" + name
		var err error
		if path, err = repoFile(display); err != nil {
			return "", "", err
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("postfixtest: read snippet: %w", err)
	}
	return display, string(b), nil
}

// populateChroot copies the files a chrooted daemon reads from /etc into
// the queue directory, as Debian's configure-instance.sh does for the
// system instance.
func (p *Postfix) populateChroot() error {
	etc := filepath.Join(p.QueueDir, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return fmt.Errorf("postfixtest: chroot: %w", err)
	}
	for _, name := range []string{"localtime", "services", "resolv.conf", "hosts", "host.conf", "nsswitch.conf"} {
		b, err := os.ReadFile(filepath.Join("/etc", name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("postfixtest: chroot: %w", err)
		}
		if err := os.WriteFile(filepath.Join(etc, name), b, 0o644); err != nil {
			return fmt.Errorf("postfixtest: chroot: %w", err)
		}
	}
	return nil
}

// writeFile writes a configuration file dated a minute ago: Postfix
// distrusts a main.cf or master.cf modified within the last second (it may
// still be being edited) and re-reads it every 300ms until it is older,
// which would add about two seconds to every Start.
func writeFile(path, text string) error {
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("postfixtest: %w", err)
	}
	past := time.Now().Add(-time.Minute)
	if err := os.Chtimes(path, past, past); err != nil {
		return fmt.Errorf("postfixtest: %w", err)
	}
	return nil
}
