package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/listgate/listgate/internal/mailmantest"
)

// The peers, by the name --peers and the table use.
const (
	peerListgate = "listgate"
	peerDovecot  = "dovecot"
	peerMailman  = "mailman"
	peerSink     = "smtp-sink"
	peerBare     = "bare"
)

// The envelope every run uses: one recipient per transaction, the posting
// address of the one list listgate and Mailman serve (Dovecot keys its
// user on the local part, smtp-sink takes anything).
const (
	benchSender = "sender@example.net"
	benchRcpt   = "bench@example.org"
)

// server is one LMTP server under test, started on 127.0.0.1.
type server struct {
	name string
	addr string // host:port
	cmd  *exec.Cmd
	log  string // where its output goes

	// For a server that a harness starts (Mailman): its main process,
	// and what ends it; cmd is nil then.
	mainPID int
	closer  func() error

	startedAt time.Time // when its process was started

	// stored counts the messages it has stored since the last clear; nil
	// for a server that stores nothing.
	stored func() (int, error)
	// clear removes what it stored, between runs.
	clear func() error
}

// pid is the server's main process: CPU time is summed over it and every
// process under it.
func (s *server) pid() int {
	if s.cmd == nil {
		return s.mainPID
	}
	return s.cmd.Process.Pid
}

// started tells whether there is something to stop.
func (s *server) started() bool {
	return s != nil && (s.closer != nil || s.cmd != nil && s.cmd.Process != nil)
}

// stop ends the server with SIGTERM, then SIGKILL after 10 s.
func (s *server) stop() {
	if s.closer != nil {
		if err := s.closer(); err != nil {
			log.Printf("%s: %v", s.name, err)
		}
		s.closer = nil
		return
	}
	if s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// unprivileged is the user the servers run as: nobody, so that neither
// listgate nor Dovecot's delivery runs with root's rights.
type unprivileged struct {
	uid, gid int
	name     string
}

func lookupUnprivileged() (unprivileged, error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return unprivileged{}, fmt.Errorf("user nobody: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return unprivileged{uid: uid, gid: gid, name: u.Username}, nil
}

// chownAll gives dir and everything under it to the unprivileged user.
func (u unprivileged) chownAll(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, u.uid, u.gid)
	})
}

// freePort returns a 127.0.0.1 port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs cmd with its output in logFile and waits until addr greets
// with a 220 line, for up to 20 s.
func start(ctx context.Context, s *server, logFile string) error {
	// Appended to: a server started again (the forward case) keeps the
	// log of its earlier runs.
	f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	s.log = logFile
	s.cmd.Stdout, s.cmd.Stderr = f, f
	s.startedAt = time.Now()
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", s.name, s.cmd.Path, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if greets(s.addr) {
			return nil
		}
		if exited(s.cmd.Process.Pid) {
			return fmt.Errorf("%s exited at start; its log %s:\n%s", s.name, logFile, tail(logFile))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no 220 greeting on %s after 20 s; its log %s:\n%s", s.name, s.addr, logFile, tail(logFile))
		}
	}
}

// exited tells whether process pid has ended (a zombie not yet waited
// for, or gone).
func exited(pid int) bool {
	st, err := readStat(pid)
	return err != nil || st.state == 'Z'
}

// greets tells whether an LMTP server at addr answers with a 220 line.
func greets(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "220") {
		return false
	}
	fmt.Fprintf(c, "QUIT\r\n")
	return true
}

// tail returns the last lines of a log file, for an error.
func tail(name string) string {
	b, _ := os.ReadFile(name)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// startListgate runs `listgate serve` built from the tree, as the
// unprivileged user: one list, bench@example.org, no next hop (the mail
// stays in the spool), only the LMTP door, defaults otherwise (log level
// info: a line per delivery, as Dovecot's default logging writes).
func startListgate(ctx context.Context, root, bin string, u unprivileged) (*server, error) {
	return startListgateWith(ctx, root, bin, u, listgateOpts{name: peerListgate})
}

// listgateOpts are what the cases set on a listgate of their own.
type listgateOpts struct {
	name  string   // the server's name, and its directory under root
	lists int      // list files besides bench@example.org (the memory case)
	extra []string // more flags for listgate serve (doors, next hop)
}

// startListgateWith runs a listgate as startListgate does, in the
// directory root/o.name (made if missing; a spool already there is kept,
// for the forward case's restart).
func startListgateWith(ctx context.Context, root, bin string, u unprivileged, o listgateOpts) (*server, error) {
	dir := filepath.Join(root, o.name)
	lists, spoolDir := filepath.Join(dir, "lists"), filepath.Join(dir, "spool")
	for _, d := range []string{lists, spoolDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := writeLists(lists, o.lists); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "listgate.toml")
	if err := os.WriteFile(conf, []byte("# listgate bench: defaults except what the command line sets\n"), 0o644); err != nil {
		return nil, err
	}
	if err := u.chownAll(dir); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{name: o.name, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	args := []string{"serve", "--config", conf,
		"--lists", lists, "--spool", spoolDir,
		"--lmtp", "inet:" + s.addr, "--milter", "", "--metrics", "",
		"--hostname", "bench.test"}
	s.cmd = exec.CommandContext(ctx, bin, append(args, o.extra...)...)
	s.cmd.SysProcAttr = credentials(u)
	folder := filepath.Join(spoolDir, "example.org", "bench", "post")
	s.stored = func() (int, error) { return countFiles(filepath.Join(folder, "new"), filepath.Join(folder, "cur")) }
	s.clear = func() error { return removeFiles(filepath.Join(folder, "new"), filepath.Join(folder, "cur")) }
	return s, start(ctx, s, filepath.Join(dir, "listgate.log"))
}

// writeLists writes bench@example.org's list file and n more empty list
// files (each a list with every setting at its default), spread over four
// domains, unless they are there already.
func writeLists(dir string, n int) error {
	names := []string{benchRcpt}
	for i := range n {
		names = append(names, listName(i))
	}
	for _, name := range names {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// listName is the address of the memory case's list i.
func listName(i int) string {
	return fmt.Sprintf("list-%06d@%s", i, []string{"example.org", "example.com", "example.net", "lists.example.org"}[i%4])
}

// startMailman runs a private GNU Mailman 3 (Debian's mailman3) with
// internal/mailmantest: its master and only the rest and lmtp runners, as
// the user list, its var dir under /tmp/mailmantest-NNNN, the REST API and
// the LMTP runner on 127.0.0.1 ports of their own; it creates the list
// bench@example.org through the REST API. No queue runner runs: the LMTP
// runner's 250 comes after it has written (and fsynced) one .pck file per
// recipient into queue/in, where they stay to be counted.
func startMailman(verbose bool) (*server, error) {
	logf := func(string, ...any) {}
	if verbose {
		logf = log.Printf
	}
	m, err := mailmantest.Launch(mailmantest.Options{}, logf)
	if err != nil {
		return nil, err
	}
	s := &server{name: peerMailman, addr: m.LMTPAddr, mainPID: m.PID(), closer: m.Close, log: m.LogFile}
	local, domain, _ := strings.Cut(benchRcpt, "@")
	for _, req := range []struct {
		path string
		form url.Values
	}{
		{"/3.1/domains", url.Values{"mail_host": {domain}}},
		{"/3.1/lists", url.Values{"fqdn_listname": {local + "@" + domain}}},
	} {
		if err := m.PostForm(req.path, req.form); err != nil {
			return s, err
		}
	}
	in := filepath.Join(m.QueueDir, "in")
	s.stored = func() (int, error) { return m.CountQueue("in") }
	s.clear = func() error { return removeFiles(in) }
	return s, nil
}

// startDovecot runs a private Dovecot with only its LMTP service, from a
// config of its own (not /etc/dovecot): Maildir under a home of its own,
// mail_fsync = optimized (Dovecot's default, named), the lmtp processes
// running as the unprivileged user. The master process runs as root, as
// Dovecot's does.
func startDovecot(ctx context.Context, root string, u unprivileged) (*server, error) {
	dir := filepath.Join(root, "dovecot")
	home := filepath.Join(dir, "home")
	for _, d := range []string{filepath.Join(dir, "run"), filepath.Join(dir, "state"), home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := u.chownAll(home); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{name: peerDovecot, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	conf := filepath.Join(dir, "dovecot.conf")
	lmtpUser := ""
	if os.Geteuid() == 0 {
		lmtpUser = "  user = " + u.name + "\n"
	}
	text := fmt.Sprintf(`# listgate bench: a private Dovecot that only speaks LMTP
instance_name = listgate-bench-%[6]d
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
auth_username_format = %%Ln
mail_location = maildir:~/Maildir
mail_fsync = optimized
first_valid_uid = 1
userdb {
  driver = static
  args = uid=%[3]d gid=%[4]d home=%[2]s/%%n
}
passdb {
  driver = static
  args = nopassword=y
}
service lmtp {
%[7]s  inet_listener lmtp {
    address = 127.0.0.1
    port = %[5]d
  }
  unix_listener lmtp {
    mode = 0
  }
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
`, dir, home, u.uid, u.gid, port, os.Getpid(), lmtpUser)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	s.cmd = exec.CommandContext(ctx, "/usr/sbin/dovecot", "-F", "-c", conf)
	maildir := filepath.Join(home, "bench", "Maildir")
	s.stored = func() (int, error) { return countFiles(filepath.Join(maildir, "new"), filepath.Join(maildir, "cur")) }
	// Dovecot makes the Maildir (and its index files) again on the next
	// delivery: each run starts from an empty mailbox, as listgate's does.
	s.clear = func() error { return os.RemoveAll(maildir) }
	if err := start(ctx, s, filepath.Join(dir, "stderr.log")); err != nil {
		return s, fmt.Errorf("%w\n%s:\n%s", err, filepath.Join(dir, "dovecot.log"), tail(filepath.Join(dir, "dovecot.log")))
	}
	s.log = filepath.Join(dir, "dovecot.log")
	return s, nil
}

// startSink runs Postfix's smtp-sink speaking LMTP: it answers every
// command at once and stores nothing, the protocol's ceiling on this
// machine with this client.
func startSink(ctx context.Context, root string) (*server, error) {
	dir := filepath.Join(root, "smtp-sink")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{name: peerSink, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	args := []string{"-L"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	args = append(args, s.addr, "256")
	s.cmd = exec.CommandContext(ctx, "/usr/sbin/smtp-sink", args...)
	return s, start(ctx, s, filepath.Join(dir, "smtp-sink.log"))
}

func credentials(u unprivileged) *syscall.SysProcAttr {
	if os.Geteuid() != 0 {
		return nil
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}}
}

// countFiles counts the files in dirs (a missing directory holds none).
func countFiles(dirs ...string) (int, error) {
	n := 0
	for _, d := range dirs {
		es, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		for _, e := range es {
			if e.Type().IsRegular() {
				n++
			}
		}
	}
	return n, nil
}

// removeFiles removes the files in dirs, keeping the directories.
func removeFiles(dirs ...string) error {
	for _, d := range dirs {
		es, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range es {
			if err := os.Remove(filepath.Join(d, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
