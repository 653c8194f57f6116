package mailmantest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/proctest"
	"github.com/listgate/listgate/internal/testutil"
)

// EnvRequire is the environment variable that turns a missing Mailman from
// a skip into a failure. It is proctest.EnvRequire, the variable that does
// the same for Postfix (internal/postfixtest): .ci/run sets it to "1" and
// installs both (docs/design.md, "Tests that need Postfix").
const EnvRequire = proctest.EnvRequire

// Paths of Debian's mailman3 package: the master and runner scripts live
// outside $PATH, and Mailman runs as the user list.
const (
	debianBinDir = "/usr/lib/mailman3/bin"
	mailmanUser  = "list"
)

// Runners are the names of Mailman 3.3's runners that Options.Runners may
// start besides rest and lmtp, which always run. Each queue runner takes
// the files of its queue directory (queue/NAME) away.
var Runners = []string{"archive", "bounces", "command", "digest", "in", "nntp", "out", "pipeline", "retry", "task", "virgin"}

// Options configures a private Mailman.
type Options struct {
	// Runners are started besides rest and lmtp (see Runners). By default
	// none is, so what the LMTP runner accepts stays in queue/in,
	// queue/command and queue/bounces, where Queue reads it.
	Runners []string
	// SMTP is the host:port Mailman's out runner would send mail to (its
	// [mta] smtp_host and smtp_port). Empty means 127.0.0.1:9, where
	// nothing should listen: never the host's port 25. It matters only if
	// Runners start the out runner.
	SMTP string
	// Settings are more mailman.cfg settings, section to key to value, for
	// example {"mta": {"incoming": "mailman.mta.postfix.LMTP"}}; they are
	// written last. They may not set what keeps the instance private: its
	// paths, database, REST and LMTP addresses and credentials.
	Settings map[string]map[string]string
}

// Mailman is a private GNU Mailman 3 core: its master and the rest and lmtp
// runners, running as the user list. Its fields are read-only.
type Mailman struct {
	// REST is the REST API's root with its credentials,
	// "http://restadmin:PASSWORD@127.0.0.1:PORT", as Postorius or
	// listgate's --mailman take it; API paths start with "/3.1/".
	REST string
	// RESTAddr is the REST API's host:port, on 127.0.0.1.
	RESTAddr string
	// RESTUser and RESTPassword are the REST API's HTTP Basic credentials
	// ([webservice] admin_user, admin_pass), random per instance.
	RESTUser, RESTPassword string
	// LMTP is the LMTP runner's address in Postfix syntax,
	// "inet:127.0.0.1:PORT".
	LMTP string
	// LMTPAddr is the LMTP runner's host:port, on 127.0.0.1.
	LMTPAddr string

	// Dir holds everything of the instance: /tmp/mailmantest-NNNN.
	Dir string
	// ConfigFile is its mailman.cfg, given to every command with -C.
	ConfigFile string
	// VarDir is its var_dir, owned by list: data/ (the SQLite database),
	// queue/, logs/, locks/ and so on.
	VarDir string
	// QueueDir is VarDir/queue; Queue reads its subdirectories.
	QueueDir string
	// LogFile is VarDir/logs/mailman.log, where every runner logs.
	LogFile string
	// Started is how long the last Start or Restart took, until the REST
	// API and the LMTP runner both answered.
	Started time.Duration

	t        testing.TB
	uid, gid uint32
	lock     *os.File
	pgid     int // master's pid, which leads its process group; 0 when stopped
	closed   bool
}

// Require skips the test unless a Mailman that this harness can run is
// installed (Linux, Debian's mailman3 package, the user list, and root to
// run Mailman as list). With LISTGATE_TEST_POSTFIX=1 a missing Mailman
// fails the test instead, so CI cannot pass by skipping.
func Require(t testing.TB) {
	t.Helper()
	program.Require(t)
}

// program is Mailman as Require reports it missing.
var program = proctest.Program{
	Harness: "mailmantest",
	Name:    "Mailman",
	Hint:    "Tests that drive a real GNU Mailman 3 need Debian's mailman3 package (`apt-get install mailman3`, as .ci/mailman-deps does) and root to run it as the user list",
	Probe:   probe,
}

// env is what probe found, for Start once Require has returned.
var env struct {
	mailman  string // the mailman command
	python   string // the interpreter Mailman runs on (its #! line)
	uid, gid uint32
}

// probe returns why Mailman cannot run here, or "" if it can; it records
// what Start needs in env.
func probe() string {
	if runtime.GOOS != "linux" {
		return "the harness runs Mailman on Linux only"
	}
	path, err := exec.LookPath("mailman")
	if err != nil {
		path = "/usr/bin/mailman"
		if _, err := os.Stat(path); err != nil {
			return "mailman3 is not installed (no mailman in $PATH or /usr/bin)"
		}
	}
	env.mailman = path
	for _, name := range []string{"master", "runner"} {
		if _, err := os.Stat(filepath.Join(debianBinDir, name)); err != nil {
			return fmt.Sprintf("%s is not Debian's mailman3 package: %v", path, err)
		}
	}
	// The interpreter that has Mailman's modules: not whichever python3
	// comes first in $PATH (a pyenv shim, say).
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("read %s: %v", path, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if f := strings.Fields(strings.TrimPrefix(line, "#!")); strings.HasPrefix(line, "#!") && len(f) > 0 {
		env.python = f[0]
	} else {
		return fmt.Sprintf("%s does not start with a #! line naming its Python", path)
	}
	u, err := user.Lookup(mailmanUser)
	if err != nil {
		return fmt.Sprintf("no user %s to run Mailman as (%v)", mailmanUser, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Sprintf("user %s: %v", mailmanUser, err)
	}
	env.uid, env.gid = uint32(uid), uint32(gid)
	if os.Geteuid() != 0 {
		return "running Mailman as the user " + mailmanUser + " needs root"
	}
	return ""
}

// startTimeout bounds a start of Mailman until its REST API and LMTP runner
// answer: about 5s on an idle 2-core machine, mostly Python importing
// Mailman in the master and again in each runner.
const startTimeout = 90 * time.Second

// stopTimeout bounds a graceful stop (SIGTERM); gunicorn, which serves the
// REST API, and the LMTP runner take a few seconds to exit on an idle
// machine, but 30 s and more on a loaded one (24 s from the master's
// "caught SIGTERM" to "Master stopped" was seen with the suite and builds
// sharing 2 cores): a stop that would have finished must not fail a test.
const stopTimeout = 90 * time.Second

// pollTick is how often the harness looks at Mailman's ports, processes
// and queues while it waits for them.
const pollTick = 50 * time.Millisecond

// Start starts a private Mailman for the test and stops it when the test
// ends (t.Cleanup), leaving no process behind. Its REST API and LMTP runner
// listen on free ports of 127.0.0.1; its database, queues and logs are in
// Dir. It fails the test, showing Mailman's log, if Mailman does not come
// up within startTimeout. It is Launch for a test.
func Start(t testing.TB, opts Options) *Mailman {
	t.Helper()
	Require(t)
	m, err := launch(opts, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	m.t = t
	t.Cleanup(m.cleanup)
	return m
}

// Available returns why Mailman cannot run here (not Linux, Debian's
// mailman3 not installed, no user list, not root), or nil: Require's check,
// for a program that is not a test.
func Available() error {
	if missing := program.Missing(); missing != "" {
		return fmt.Errorf("mailmantest: %s. %s", missing, program.Hint)
	}
	return nil
}

// Launch starts a private Mailman as Start does, for a program that is not
// a test (the bench, docs/performance.md): the caller ends it with Close.
// logf, if not nil, gets one line when it is up. On error nothing of the
// instance is left, and the error holds Mailman's log.
func Launch(opts Options, logf func(format string, args ...any)) (*Mailman, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return launch(opts, logf)
}

// launch starts the instance once probe has succeeded.
func launch(opts Options, logf func(format string, args ...any)) (*Mailman, error) {
	begin := time.Now()
	dir, lock, err := proctest.NewInstance("mailmantest", killAbandoned)
	if err != nil {
		return nil, err
	}
	m := &Mailman{
		Dir:          dir,
		ConfigFile:   filepath.Join(dir, "mailman.cfg"),
		VarDir:       filepath.Join(dir, "var"),
		RESTUser:     "restadmin",
		RESTPassword: randomHex(16),
		uid:          env.uid,
		gid:          env.gid,
		lock:         lock,
	}
	m.QueueDir = filepath.Join(m.VarDir, "queue")
	m.LogFile = filepath.Join(m.VarDir, "logs", "mailman.log")
	if err := m.setUp(opts); err != nil {
		err = fmt.Errorf("%w\n%s", err, m.Log())
		return nil, errors.Join(err, m.Close())
	}
	m.Started = time.Since(begin)
	logf("mailmantest: %s up in %v; REST on %s, LMTP on %s", m.ConfigFile, m.Started.Round(time.Millisecond), m.RESTAddr, m.LMTPAddr)
	return m, nil
}

// setUp makes the instance's var directory and configuration and starts
// it.
func (m *Mailman) setUp(opts Options) error {
	// Dir is root's and world-searchable; var/ and the configuration (it
	// holds the REST password) are list's.
	if err := os.Chmod(m.Dir, 0o755); err != nil {
		return fmt.Errorf("mailmantest: %w", err)
	}
	if err := os.Mkdir(m.VarDir, 0o750); err != nil {
		return fmt.Errorf("mailmantest: %w", err)
	}
	if err := os.Chown(m.VarDir, int(m.uid), int(m.gid)); err != nil {
		return fmt.Errorf("mailmantest: %w", err)
	}

	// The ports are free when picked, but another process may take them
	// before the runners bind them; then try others.
	var startErr error
	for attempt := 0; attempt < 3; attempt++ {
		rest, err1 := proctest.FreePort()
		lmtp, err2 := proctest.FreePort()
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if rest == lmtp {
			continue
		}
		m.setPorts(rest, lmtp)
		cfg, err := m.config(opts)
		if err != nil {
			return err
		}
		if err := m.writeConfig(cfg); err != nil {
			return err
		}
		startErr = m.start()
		if startErr == nil || !errors.Is(startErr, errPortTaken) {
			break
		}
		m.kill()
	}
	return startErr
}

func (m *Mailman) setPorts(rest, lmtp int) {
	m.RESTAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(rest))
	m.LMTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lmtp))
	m.LMTP = "inet:" + m.LMTPAddr
	m.REST = "http://" + m.RESTUser + ":" + m.RESTPassword + "@" + m.RESTAddr
}

// config builds the instance's mailman.cfg. Mailman reads it over its
// built-in schema (never /etc/mailman3/mailman.cfg: -C replaces the
// search for a configuration file).
func (m *Mailman) config(opts Options) (string, error) {
	smtpHost, smtpPort := "127.0.0.1", "9"
	if opts.SMTP != "" {
		var err error
		if smtpHost, smtpPort, err = net.SplitHostPort(opts.SMTP); err != nil {
			return "", fmt.Errorf("mailmantest: Options.SMTP: %w", err)
		}
	}
	_, restPort, _ := net.SplitHostPort(m.RESTAddr)
	_, lmtpPort, _ := net.SplitHostPort(m.LMTPAddr)
	var c cfg
	c.set("mailman", "layout", "mailmantest")
	c.set("mailman", "site_owner", "postmaster@mailmantest.invalid")
	c.set("paths.mailmantest", "var_dir", m.VarDir)
	c.set("paths.mailmantest", "bin_dir", debianBinDir)
	c.set("paths.mailmantest", "etc_dir", "$var_dir/etc")
	c.set("paths.mailmantest", "template_dir", "$var_dir/templates")
	c.set("paths.mailmantest", "pid_file", "$var_dir/master.pid")
	c.set("database", "class", "mailman.database.sqlite.SQLiteDatabase")
	c.set("database", "url", "sqlite:///$DATA_DIR/mailman.db")
	c.set("webservice", "hostname", "127.0.0.1")
	c.set("webservice", "port", restPort)
	c.set("webservice", "admin_user", m.RESTUser)
	c.set("webservice", "admin_pass", m.RESTPassword)
	c.set("webservice", "workers", "1")
	c.set("mta", "incoming", "mailman.mta.null.NullMTA")
	c.set("mta", "lmtp_host", "127.0.0.1")
	c.set("mta", "lmtp_port", lmtpPort)
	c.set("mta", "smtp_host", smtpHost)
	c.set("mta", "smtp_port", smtpPort)
	c.set("runner.rest", "start", "yes")
	c.set("runner.lmtp", "start", "yes")
	for _, name := range Runners {
		c.set("runner."+name, "start", "no")
	}
	for _, name := range opts.Runners {
		if !slices.Contains(Runners, name) {
			return "", fmt.Errorf("mailmantest: Options.Runners: unknown runner %q (known: %s)", name, strings.Join(Runners, ", "))
		}
		c.set("runner."+name, "start", "yes")
	}
	for _, section := range slices.Sorted(maps.Keys(opts.Settings)) {
		for _, key := range slices.Sorted(maps.Keys(opts.Settings[section])) {
			if reservedSetting(section, key) {
				return "", fmt.Errorf("mailmantest: Options.Settings may not set [%s] %s: it keeps the instance private", section, key)
			}
			c.set(section, key, opts.Settings[section][key])
		}
	}
	return "# Written by internal/mailmantest for one test; never the system's mailman.cfg.\n" + c.String(), nil
}

// reservedSetting reports whether Options.Settings may not set key in
// section: it would move the instance's files or database, or its REST API
// or LMTP runner, or stop one of them.
func reservedSetting(section, key string) bool {
	switch section {
	case "database", "runner.rest", "runner.lmtp":
		return true
	case "mailman":
		return key == "layout"
	case "webservice":
		return key == "hostname" || key == "port" || key == "admin_user" || key == "admin_pass"
	case "mta":
		return key == "lmtp_host" || key == "lmtp_port"
	}
	return strings.HasPrefix(section, "paths.")
}

// writeConfig writes mailman.cfg for the user list alone.
func (m *Mailman) writeConfig(text string) error {
	if err := os.WriteFile(m.ConfigFile, []byte(text), 0o600); err != nil {
		return fmt.Errorf("mailmantest: %w", err)
	}
	if err := os.Chown(m.ConfigFile, int(m.uid), int(m.gid)); err != nil {
		return fmt.Errorf("mailmantest: %w", err)
	}
	return nil
}

// errPortTaken marks a start that failed because a runner's port was taken.
var errPortTaken = errors.New("port taken")

// start runs Mailman's master as the user list in a process group of its
// own, as "mailman start" does but in the foreground, then waits until the
// REST API and the LMTP runner answer.
func (m *Mailman) start() error {
	logStart := fileSize(m.LogFile)
	out, err := os.OpenFile(filepath.Join(m.Dir, "master.out"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("mailmantest: %w", err)
	}
	defer out.Close()
	// --force: a master lock left by a master that was killed (the
	// cleanup's SIGKILL) is broken if its process is gone.
	cmd := exec.Command(filepath.Join(debianBinDir, "master"), "-C", m.ConfigFile, "--force")
	cmd.Dir = m.VarDir
	cmd.Env = m.environ()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = proctest.SysProcAttr(m.uid, m.gid, true)
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mailmantest: start %s: %w", cmd.Path, err)
	}
	m.pgid = cmd.Process.Pid
	// The group is reaped by proctest.Reap (wait4 on the group), never by
	// cmd.Wait: the runners, orphaned if master dies first, are in it too.
	cmd.Process.Release()

	var restOK, lmtpOK bool
	var failure error
	_, ok := testutil.Poll(startTimeout, pollTick, func() bool {
		if log := m.logFrom(logStart); strings.Contains(log, "Address already in use") || strings.Contains(log, "Connection in use") {
			failure = fmt.Errorf("mailmantest: %w: a runner of %s could not bind its port (REST %s, LMTP %s)", errPortTaken, m.ConfigFile, m.RESTAddr, m.LMTPAddr)
			return true
		}
		if proctest.Reap(m.pgid) || len(proctest.LivePIDs(m.pgid)) == 0 {
			failure = fmt.Errorf("mailmantest: mailman master -C %s exited during start", m.ConfigFile)
			return true
		}
		if !restOK {
			restOK = m.restAnswers()
		}
		if !lmtpOK {
			lmtpOK = m.lmtpAnswers()
		}
		return restOK && lmtpOK
	})
	if failure != nil {
		return failure
	}
	if !ok {
		return fmt.Errorf("mailmantest: mailman master -C %s: within %v, REST on %s answered: %v, LMTP runner on %s greeted: %v",
			m.ConfigFile, startTimeout, m.RESTAddr, restOK, m.LMTPAddr, lmtpOK)
	}
	m.Started = time.Since(begin)
	return nil
}

// Stop stops Mailman as "mailman stop" does, by sending its master SIGTERM,
// which passes it on to the runners and exits once they have; Stop returns
// when no process of the instance is left. Its files stay: Restart starts
// it again with the same configuration, lists and queues. It fails the
// test if a process outlives stopTimeout (it is then killed).
func (m *Mailman) Stop(t testing.TB) {
	t.Helper()
	if m.pgid == 0 {
		t.Fatalf("mailmantest: Stop: %s is not running", m.ConfigFile)
	}
	begin := time.Now()
	if err := proctest.Terminate(m.pgid); err != nil {
		t.Fatal(err)
	}
	if left := proctest.WaitGone(m.pgid, stopTimeout, pollTick); len(left) > 0 {
		m.kill()
		t.Fatalf("mailmantest: processes %v of %s outlived SIGTERM by %v and were killed\n%s", left, m.ConfigFile, stopTimeout, m.Log())
	}
	m.pgid = 0
	t.Logf("mailmantest: %s stopped in %v", m.ConfigFile, time.Since(begin).Round(time.Millisecond))
}

// Kill ends every process of Mailman at once with SIGKILL, as a crash or
// an OOM kill would, and returns when they are gone. Its files stay, with
// its master lock: Restart breaks a lock whose process is gone.
func (m *Mailman) Kill(t testing.TB) {
	t.Helper()
	if m.pgid == 0 {
		t.Fatalf("mailmantest: Kill: %s is not running", m.ConfigFile)
	}
	if left := m.kill(); len(left) > 0 {
		t.Fatalf("mailmantest: processes %v of %s survive SIGKILL", left, m.ConfigFile)
	}
}

// Restart starts Mailman again on the same ports, with the same database
// and queues, after Stop or Kill (or stops it first if it runs). It fails the test
// if Mailman does not come up, or if another process took one of its
// ports in the meantime.
func (m *Mailman) Restart(t testing.TB) {
	t.Helper()
	if m.pgid != 0 {
		m.Stop(t)
	}
	if err := m.start(); err != nil {
		m.kill()
		t.Fatalf("%v\n%s", err, m.Log())
	}
	t.Logf("mailmantest: %s up again in %v", m.ConfigFile, m.Started.Round(time.Millisecond))
}

// Running reports whether the instance's master is running (started, and
// not stopped since).
func (m *Mailman) Running() bool { return m.pgid != 0 }

// Run runs "mailman -C ConfigFile ARGS..." as the user list and returns its
// standard output; it fails the test, showing what the command said, if it
// exits with an error. Mailman need not be running.
func (m *Mailman) Run(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.mailman, append([]string{"-C", m.ConfigFile}, args...)...)
	cmd.Dir = m.VarDir
	cmd.Env = m.environ()
	cmd.SysProcAttr = proctest.SysProcAttr(m.uid, m.gid, false)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mailmantest: mailman -C %s %s: %v\n%s%s", m.ConfigFile, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// CreateList creates the list fqdn ("announce@example.org") with
// "mailman create", which also creates its domain if Mailman does not know
// it yet. It fails the test if the list exists or the name is refused.
func (m *Mailman) CreateList(t testing.TB, fqdn string) {
	t.Helper()
	if out := m.Run(t, "create", fqdn); !strings.Contains(out, "Created mailing list: "+fqdn) {
		t.Fatalf("mailmantest: mailman create %s said %q", fqdn, out)
	}
}

// RemoveList removes the list fqdn with "mailman remove". It fails the test
// if there is no such list (which "mailman remove" itself only prints).
func (m *Mailman) RemoveList(t testing.TB, fqdn string) {
	t.Helper()
	if out := m.Run(t, "remove", fqdn); !strings.Contains(out, "Removed list: "+fqdn) {
		t.Fatalf("mailmantest: mailman remove %s said %q", fqdn, out)
	}
}

// environ is the environment of every Mailman process: a fixed one, so
// that no MAILMAN_CONFIG_FILE or MAILMAN_VAR_DIR of the test's environment
// points it elsewhere.
func (m *Mailman) environ() []string {
	return []string{
		"HOME=" + m.VarDir,
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
	}
}

// kill ends every process of the instance at once (SIGKILL to its process
// group) and reaps them.
func (m *Mailman) kill() []int {
	if m.pgid == 0 {
		return nil
	}
	proctest.KillGroup(m.pgid)
	left := proctest.WaitGone(m.pgid, 10*time.Second, pollTick)
	m.pgid = 0
	return left
}

// cleanup runs at the end of the test: it kills the instance (a graceful
// stop takes seconds, and nothing of the instance is kept), checks that no
// process uses its configuration any more, and removes Dir. If the test
// failed, it logs Mailman's log first.
func (m *Mailman) cleanup() {
	t := m.t
	t.Helper()
	if m.closed {
		return
	}
	m.closed = true
	if err := m.end(); err != nil {
		t.Error(err)
	}
	if t.Failed() {
		t.Logf("mailmantest: log of %s:\n%s", m.Dir, m.Log())
	}
	if err := proctest.RemoveInstance(m.Dir, m.lock); err != nil {
		t.Error(err)
	}
}

// Close ends an instance that Launch started as the test's cleanup does:
// it kills every process of the instance, checks that none still uses its
// configuration, and removes Dir. Closing twice does nothing.
func (m *Mailman) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	return errors.Join(m.end(), proctest.RemoveInstance(m.Dir, m.lock))
}

// end kills the instance's processes and any other process that still
// uses its configuration.
func (m *Mailman) end() error {
	var errs []error
	if left := m.kill(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("mailmantest: processes %v of %s survive SIGKILL", left, m.ConfigFile))
	}
	if left := proctest.PIDsUsing(m.ConfigFile); len(left) > 0 {
		errs = append(errs, fmt.Errorf("mailmantest: processes %v still use %s after cleanup", left, m.ConfigFile))
		for _, pid := range left {
			proctest.Kill(pid)
		}
	}
	return errors.Join(errs...)
}

// PID is the pid of the instance's master process, which leads its process
// group (the runners are its children); 0 when it is not running.
func (m *Mailman) PID() int { return m.pgid }

// Log returns what Mailman logged (mailman.log, where the runners and the
// REST API's gunicorn log) and what its master wrote to stdout and stderr.
func (m *Mailman) Log() string {
	var b strings.Builder
	if log, err := os.ReadFile(m.LogFile); err == nil {
		fmt.Fprintf(&b, "%s:\n%s", m.LogFile, log)
	}
	if out, err := os.ReadFile(filepath.Join(m.Dir, "master.out")); err == nil && len(out) > 0 {
		fmt.Fprintf(&b, "master's output:\n%s", out)
	}
	return b.String()
}

func (m *Mailman) logFrom(offset int64) string {
	b, err := os.ReadFile(m.LogFile)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// killAbandoned kills the processes of an instance that a killed test
// binary left behind (proctest.Sweep): every process that still runs with
// its mailman.cfg.
func killAbandoned(dir string) {
	for _, pid := range proctest.PIDsUsing(filepath.Join(dir, "mailman.cfg")) {
		proctest.Kill(pid)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// cfg is a mailman.cfg being built: sections in the order first set, keys
// in each in the order first set; setting a key again replaces its value.
type cfg struct {
	sections []string
	keysOf   map[string][]string
	values   map[string]string // "section.key"
}

func (c *cfg) set(section, key, value string) {
	if c.keysOf == nil {
		c.keysOf, c.values = map[string][]string{}, map[string]string{}
	}
	if _, ok := c.keysOf[section]; !ok {
		c.sections = append(c.sections, section)
	}
	if _, ok := c.values[section+"."+key]; !ok {
		c.keysOf[section] = append(c.keysOf[section], key)
	}
	c.values[section+"."+key] = value
}

func (c *cfg) String() string {
	var b strings.Builder
	for _, s := range c.sections {
		fmt.Fprintf(&b, "\n[%s]\n", s)
		for _, k := range c.keysOf[s] {
			fmt.Fprintf(&b, "%s: %s\n", k, c.values[s+"."+k])
		}
	}
	return b.String()
}
