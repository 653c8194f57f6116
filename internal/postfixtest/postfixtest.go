package postfixtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvRequire is the environment variable that turns a missing Postfix from
// a skip into a failure; .ci/run sets it to "1" (DESIGN.md, "Tests that
// need Postfix").
const EnvRequire = "LISTGATE_TEST_POSTFIX"

// Options configures a private Postfix.
type Options struct {
	// Snippet is the main.cf snippet pasted into the instance, as an admin
	// appends it to /etc/postfix/main.cf: "" or "main.cf" for
	// contrib/postfix/main.cf, "main.cf.unix" for contrib/postfix/main.cf.unix,
	// or the path of any other file (for example `listgate postfix` output).
	Snippet string
	// MasterSnippet is the master.cf snippet whose non-comment lines are
	// added to the instance's master.cf: "" for contrib/postfix/master.cf, or
	// the path of another file.
	MasterSnippet string

	// LMTP, if set, is the listgate LMTP address in Postfix syntax
	// ("inet:127.0.0.1:41234", "unix:/path", or "unix:listgate/lmtp",
	// relative to QueueDir). It replaces the address in the snippet's
	// "relay_transport = lmtp:ADDRESS". Empty keeps the snippet's.
	LMTP string
	// Milter, if set, replaces the snippet's smtpd_milters value
	// ("inet:127.0.0.1:41235", "unix:listgate/milter"). Empty keeps the
	// snippet's. To run with no milter, put "smtpd_milters =" in MainCF.
	Milter string
	// Domains, if set, replaces the snippet's relay_domains (the list
	// domains). Empty keeps the snippet's (example.org in contrib).
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
	env.once.Do(probe)
	if env.missing == "" {
		return
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("postfixtest: %s (%s=1: Postfix is required)", env.missing, EnvRequire)
	}
	t.Skipf("postfixtest: %s. Tests that drive a real Postfix need it installed (`apt-get install postfix swaks` on Debian and Ubuntu) and root to start it; %s=1 makes this a failure", env.missing, EnvRequire)
}

var env struct {
	once    sync.Once
	missing string // why Postfix can't run here; "" if it can
	bin     string
	compat  string // compatibility_level to use
}

func probe() {
	if runtime.GOOS != "linux" {
		env.missing = "the harness runs Postfix on Linux only"
		return
	}
	path, err := exec.LookPath("postfix")
	if err != nil {
		path = "/usr/sbin/postfix"
		if _, err := os.Stat(path); err != nil {
			env.missing = "postfix is not installed (no postfix in $PATH or /usr/sbin)"
			return
		}
	}
	env.bin = filepath.Dir(path)
	for _, name := range []string{"postconf", "postqueue"} {
		if _, err := os.Stat(filepath.Join(env.bin, name)); err != nil {
			env.missing = fmt.Sprintf("postfix is installed but %s is not: %v", name, err)
			return
		}
	}
	if _, err := user.Lookup("postfix"); err != nil {
		env.missing = fmt.Sprintf("no postfix user (%v)", err)
		return
	}
	if _, err := user.LookupGroup("postdrop"); err != nil {
		env.missing = fmt.Sprintf("no postdrop group (%v)", err)
		return
	}
	if os.Geteuid() != 0 {
		env.missing = "starting Postfix needs root"
		return
	}
	out, err := exec.Command(filepath.Join(env.bin, "postconf"), "-d", "-h", "mail_version").Output()
	if err != nil {
		env.missing = fmt.Sprintf("postconf -d -h mail_version: %v", err)
		return
	}
	env.compat = compatibilityLevel(string(out))
}

// Start starts a private Postfix for the test and stops it when the test
// ends (t.Cleanup), leaving no process behind. Its configuration is built
// from contrib/postfix (see Options.Snippet) with the test's addresses
// substituted; its smtpd(8) listens on a free port of 127.0.0.1. It fails
// the test, naming the command and showing the instance's log, if Postfix
// refuses the configuration or does not come up.
func Start(t testing.TB, opts Options) *Postfix {
	t.Helper()
	Require(t)
	begin := time.Now()
	if err := becomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	sweep()

	dir, err := os.MkdirTemp("/tmp", "postfixtest-")
	if err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	p := &Postfix{
		Dir:       dir,
		ConfigDir: filepath.Join(dir, "etc"),
		QueueDir:  filepath.Join(dir, "q"),
		DataDir:   filepath.Join(dir, "d"),
		LogFile:   filepath.Join(dir, "maillog"),
		t:         t,
		bin:       env.bin,
	}
	t.Cleanup(p.stop)
	if p.lock, err = lockFile(filepath.Join(dir, "lock")); err != nil {
		t.Fatal(err)
	}
	// The instance's directories are root's and world-searchable: the
	// postfix user must reach its queue, and check-warn wants no group or
	// other write bit on them. Postfix makes the queue's subdirectories
	// itself ("postfix start" runs post-install create-missing).
	for _, d := range []string{dir, p.ConfigDir, p.QueueDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("postfixtest: %v", err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("postfixtest: %v", err)
		}
	}
	if opts.Chroot {
		if err := p.populateChroot(); err != nil {
			t.Fatal(err)
		}
	}

	main, err := p.mainCF(opts)
	if err != nil {
		t.Fatal(err)
	}
	masterName, masterText, err := readSnippet(opts.MasterSnippet, "master.cf")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(p.ConfigDir, "main.cf"), main); err != nil {
		t.Fatal(err)
	}

	// The port is free when picked, but another process may take it before
	// master(8) binds it; then try another.
	tConfig := time.Now()
	var tStart time.Time
	var startErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		p.SMTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		master := masterCF(p.SMTPAddr, opts.Chroot, masterText, masterName, opts.MasterCF)
		if err := writeFile(filepath.Join(p.ConfigDir, "master.cf"), master); err != nil {
			t.Fatal(err)
		}
		if attempt == 0 {
			if err := p.checkConfig(); err != nil {
				t.Fatal(err)
			}
		}
		logStart := p.logSize()
		tStart = time.Now()
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
		t.Fatal(startErr)
	}
	tBanner := time.Now()
	if err := p.waitBanner(20 * time.Second); err != nil {
		t.Fatalf("%v\nmaillog:\n%s", err, p.Log())
	}
	p.Started = time.Since(begin)
	t.Logf("postfixtest: %s up in %v (setup %v, postconf %v, postfix start %v, smtpd greeting %v); smtpd on %s",
		p.ConfigDir, p.Started.Round(time.Millisecond), tConfig.Sub(begin).Round(time.Millisecond),
		tStart.Sub(tConfig).Round(time.Millisecond), tBanner.Sub(tStart).Round(time.Millisecond),
		time.Since(tBanner).Round(time.Millisecond), p.SMTPAddr)
	return p
}

// mainCF builds the instance's main.cf: the harness's defaults, the
// snippet with the test's addresses substituted, the settings that keep the
// instance private, then Options.MainCF.
func (p *Postfix) mainCF(opts Options) (string, error) {
	name, text, err := readSnippet(opts.Snippet, "main.cf")
	if err != nil {
		return "", err
	}
	snippet, err := parseMainCF(text, name)
	if err != nil {
		return "", fmt.Errorf("postfixtest: %w", err)
	}
	var m mainCF
	m.add(sectionDefaults, baseParams(env.compat))
	m.add(name, snippet)
	m.add(sectionInstance, instanceParams(p.Dir))

	if len(opts.Domains) > 0 {
		if !m.set("relay_domains", strings.Join(opts.Domains, ", "), "Options.Domains") {
			return "", fmt.Errorf("postfixtest: %s sets no relay_domains for Options.Domains to replace", name)
		}
	}
	if opts.LMTP != "" {
		v, _ := m.lookup("relay_transport")
		if !strings.HasPrefix(v, "lmtp:") {
			return "", fmt.Errorf("postfixtest: %s has no \"relay_transport = lmtp:...\" for Options.LMTP to replace (it has %q)", name, v)
		}
		m.set("relay_transport", "lmtp:"+opts.LMTP, "Options.LMTP")
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

	for _, key := range []string{"relay_transport", "smtpd_milters"} {
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

// checkConfig runs "postconf -n", which warns about unknown parameters (a
// typo in a snippet) and malformed lines; any warning fails the test.
func (p *Postfix) checkConfig() error {
	out, stderr, err := p.run("postconf", "-c", p.ConfigDir, "-n")
	if err != nil {
		return err
	}
	if w := strings.TrimSpace(stderr); w != "" {
		return fmt.Errorf("postfixtest: postconf -c %s -n warns about the configuration:\n%s\nmain.cf as Postfix reads it:\n%s", p.ConfigDir, w, out)
	}
	return nil
}

// start runs "postfix start", which checks the configuration and the queue
// (postfix-script check-fatal, check-warn), creates the queue directories,
// and returns once master(8) has bound its sockets ("master -w").
func (p *Postfix) start() error {
	logStart := p.logSize()
	if _, _, err := p.run("postfix", "-c", p.ConfigDir, "start"); err != nil {
		return err
	}
	pidFile := filepath.Join(p.QueueDir, "pid", "master.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("postfixtest: postfix started but: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("postfixtest: %s: %w", pidFile, err)
	}
	p.pgid = pid // master(8) is a session leader: its pid is its group
	// check-warn only logs; a warning means the instance is not set up as
	// Postfix wants it, so say so now rather than debug it later.
	var warnings []string
	for _, line := range strings.Split(p.logFrom(logStart), "\n") {
		if strings.Contains(line, " warning: ") || strings.Contains(line, " fatal: ") || strings.Contains(line, " panic: ") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) > 0 {
		return fmt.Errorf("postfixtest: postfix -c %s start logged:\n%s", p.ConfigDir, strings.Join(warnings, "\n"))
	}
	return nil
}

// waitBanner connects to smtpd until it greets with 220: master(8) spawns
// an smtpd per connection, so this also proves smtpd accepts its
// configuration.
func (p *Postfix) waitBanner(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", p.SMTPAddr, time.Until(deadline))
		if err == nil {
			conn.SetDeadline(deadline)
			line, rerr := bufio.NewReader(conn).ReadString('\n')
			if rerr == nil && strings.HasPrefix(line, "220") {
				conn.Write([]byte("QUIT\r\n"))
				conn.Close()
				return nil
			}
			conn.Close()
			err = fmt.Errorf("greeting %q: %v", line, rerr)
		}
		last = err
		time.Sleep(pollTick)
	}
	return fmt.Errorf("postfixtest: smtpd on %s did not greet with 220 within %v: %v", p.SMTPAddr, timeout, last)
}

const pollTick = 20 * time.Millisecond

// stop runs at cleanup: stop master(8), then wait until every process of
// the instance is gone (killing them if they linger), then remove Dir. If
// the test failed, it logs the instance's maillog first.
func (p *Postfix) stop() {
	t := p.t
	t.Helper()
	if p.stopped {
		return
	}
	p.stopped = true
	if p.pgid != 0 {
		// "postfix stop" and "postfix abort" both send master(8) SIGTERM,
		// upon which it signals its process group and exits; "stop" then
		// polls for it once a second, so abort and wait here instead.
		if _, _, err := p.run("postfix", "-c", p.ConfigDir, "abort"); err != nil {
			t.Errorf("%v", err)
		}
		if left := p.waitGone(10 * time.Second); len(left) > 0 {
			if err := killGroup(p.pgid); err != nil {
				t.Errorf("%v", err)
			}
			if left2 := p.waitGone(5 * time.Second); len(left2) > 0 {
				t.Errorf("postfixtest: postfix processes %v of %s survive SIGKILL", left2, p.ConfigDir)
			} else {
				t.Errorf("postfixtest: postfix processes %v of %s outlived \"postfix abort\" and were killed", left, p.ConfigDir)
			}
		}
	}
	if t.Failed() {
		if log := p.Log(); log != "" {
			t.Logf("postfixtest: maillog of %s:\n%s", p.Dir, log)
		}
	}
	if err := os.RemoveAll(p.Dir); err != nil {
		t.Errorf("postfixtest: %v", err)
	}
	if p.lock != nil {
		p.lock.Close()
	}
}

// waitGone reaps the instance's processes until none is alive; it returns
// the pids still alive at the deadline.
func (p *Postfix) waitGone(timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		reaped := reap(p.pgid)
		left := livePIDs(p.pgid)
		if len(left) == 0 && reaped {
			return nil
		}
		if time.Now().After(deadline) {
			return left
		}
		time.Sleep(pollTick)
	}
}

// run runs a Postfix command from the command directory. A failure names
// the command and carries its output. postfix(1) gets a terminal as its
// stderr, since that is the only way it reports errors there (see openPTY).
func (p *Postfix) run(name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, name), args...)
	cmd.Env = environ()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	var tty *os.File
	var ttyOut chan []byte
	if name == "postfix" {
		master, slave, err := openPTY()
		if err != nil {
			return "", "", err
		}
		defer master.Close()
		tty, ttyOut = master, make(chan []byte, 1)
		cmd.Stderr = slave
		defer slave.Close()
		go func() {
			b, _ := io.ReadAll(master) // until the deadline set below
			ttyOut <- b
		}()
	}
	err = cmd.Run()
	if tty != nil {
		// Daemons that master(8) starts may hold the terminal open, so the
		// reader never sees its end: take what is there.
		tty.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		e.Write(bytes.ReplaceAll(<-ttyOut, []byte("\r\n"), []byte("\n")))
	}
	if err != nil {
		return o.String(), e.String(), fmt.Errorf("postfixtest: %s %s: %w\n%s%s", name, strings.Join(args, " "), err, o.String(), e.String())
	}
	return o.String(), e.String(), nil
}

// environ is the environment for Postfix commands: ours, without a
// MAIL_CONFIG that would point them at another instance.
func environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAIL_CONFIG=") {
			out = append(out, kv)
		}
	}
	return out
}

// Log returns the instance's log (its maillog_file) so far.
func (p *Postfix) Log() string {
	b, _ := os.ReadFile(p.LogFile)
	return string(b)
}

func (p *Postfix) logSize() int64 {
	fi, err := os.Stat(p.LogFile)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func (p *Postfix) logFrom(off int64) string {
	log := p.Log()
	if off > int64(len(log)) {
		return log
	}
	return log[off:]
}

// WaitLog waits until a line of the log contains substr and returns the
// first such line; at the timeout it fails the test, showing the log.
func (p *Postfix) WaitLog(t testing.TB, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		log := p.Log()
		if i := strings.Index(log, substr); i >= 0 {
			start := strings.LastIndexByte(log[:i], '\n') + 1
			end := strings.IndexByte(log[i:], '\n')
			if end < 0 {
				return log[start:]
			}
			return log[start : i+end]
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfixtest: no line with %q in the log within %v; maillog:\n%s", substr, timeout, log)
		}
		time.Sleep(pollTick)
	}
}

// QueueMessage is one message in the queue, as "postqueue -j" describes it.
type QueueMessage struct {
	Queue      string           `json:"queue_name"` // maildrop, incoming, active, deferred, hold
	ID         string           `json:"queue_id"`
	Sender     string           `json:"sender"`
	Recipients []QueueRecipient `json:"recipients"`
}

// QueueRecipient is a recipient of a queued message still to be delivered.
type QueueRecipient struct {
	Address     string `json:"address"`
	DelayReason string `json:"delay_reason"`
}

// String formats m for a failure message: id, queue, sender, recipients
// and why each is delayed.
func (m QueueMessage) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s) from <%s>", m.ID, m.Queue, m.Sender)
	for _, r := range m.Recipients {
		fmt.Fprintf(&b, "; to <%s>", r.Address)
		if r.DelayReason != "" {
			fmt.Fprintf(&b, ": %s", r.DelayReason)
		}
	}
	return b.String()
}

// Queue returns the messages in the instance's queue ("postqueue -j").
func (p *Postfix) Queue(t testing.TB) []QueueMessage {
	t.Helper()
	out, _, err := p.run("postqueue", "-c", p.ConfigDir, "-j")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []QueueMessage
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var m QueueMessage
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("postfixtest: postqueue -c %s -j: %v\n%s", p.ConfigDir, err, out)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// WaitQueueEmpty waits until the queue is empty (every message delivered
// or refused); at the timeout it fails the test, listing what is queued.
func (p *Postfix) WaitQueueEmpty(t testing.TB, timeout time.Duration) {
	t.Helper()
	p.WaitQueue(t, "an empty queue", timeout, func(q []QueueMessage) bool { return len(q) == 0 })
}

// WaitQueue waits until ok accepts the queue and returns it; at the timeout
// it fails the test, saying what it waited for (want) and what is queued.
// The log runs ahead of the queue: qmgr(8) moves a message to the deferred
// queue a moment after lmtp(8) logs "status=deferred".
func (p *Postfix) WaitQueue(t testing.TB, want string, timeout time.Duration, ok func([]QueueMessage) bool) []QueueMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		q := p.Queue(t)
		if ok(q) {
			return q
		}
		if time.Now().After(deadline) {
			var lines []string
			for _, m := range q {
				lines = append(lines, m.String())
			}
			t.Fatalf("postfixtest: no %s within %v; queue:\n%s\nmaillog:\n%s", want, timeout, strings.Join(lines, "\n"), p.Log())
		}
		time.Sleep(pollTick)
	}
}

// Flush asks Postfix to retry every queued message now ("postqueue -f"),
// e.g. after a deferral while the LMTP peer was down.
func (p *Postfix) Flush(t testing.TB) {
	t.Helper()
	if _, _, err := p.run("postqueue", "-c", p.ConfigDir, "-f"); err != nil {
		t.Fatal(err)
	}
}

// Postconf runs postconf(1) on the instance's configuration with args
// (e.g. "-n", or "-h", "smtpd_milters") and returns its output.
func (p *Postfix) Postconf(t testing.TB, args ...string) string {
	t.Helper()
	out, _, err := p.run("postconf", append([]string{"-c", p.ConfigDir}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ListenUnix listens on a unix-domain socket at name, relative to QueueDir
// (so "listgate/lmtp" is what Postfix's lmtp(8) reaches as
// "unix:listgate/lmtp", chrooted or not). The socket is made connectable
// by the postfix user; the listener is closed at cleanup.
func (p *Postfix) ListenUnix(t testing.TB, name string) net.Listener {
	t.Helper()
	path := filepath.Join(p.QueueDir, name)
	if len(path) > 107 {
		t.Fatalf("postfixtest: socket path %s is %d bytes, longer than sun_path allows (107)", path, len(path))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	// Connecting needs write permission on the socket; Postfix's daemons run
	// as the postfix user. (listgate itself would use a group, see
	// contrib/postfix/README.md.)
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	return ln
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

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("postfixtest: pick a port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// sweep removes instances that a killed test binary left behind (a test
// timeout kills it without running cleanups): their lock file is no longer
// held. Young instances are skipped, so that one being created right now
// by another test binary is never mistaken for an abandoned one.
func sweep() {
	dirs, _ := filepath.Glob("/tmp/postfixtest-*")
	for _, dir := range dirs {
		lockPath := filepath.Join(dir, "lock")
		fi, err := os.Stat(lockPath)
		if err != nil || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		f, err := lockFile(lockPath)
		if err != nil {
			continue // alive
		}
		if b, err := os.ReadFile(filepath.Join(dir, "q", "pid", "master.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				// Only if that pid is still this instance's master.
				envb, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
				if bytes.Contains(envb, []byte("MAIL_CONFIG="+filepath.Join(dir, "etc")+"\x00")) {
					_ = killGroup(pid)
				}
			}
		}
		os.RemoveAll(dir)
		f.Close()
	}
}
