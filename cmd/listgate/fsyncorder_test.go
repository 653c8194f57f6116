package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/internal/daemontest"
)

// TestFsyncOrder runs `listgate serve` under strace while concurrent LMTP
// sessions deliver messages with one to three recipients each, on two
// lists and their sub-addresses (five folders), and then checks in the
// log of its system calls, for every file that ended in new/ and every
// 250 a client got (checkFsyncOrder):
//
//  1. the file's data fsync returned before its rename from tmp/ into new/
//     began;
//  2. an fsync of its new/ directory began after that rename had returned
//     and returned before the 250 for that recipient was written to the
//     client's socket;
//  3. no recipient got a 250 without its file in new/.
//
// Unlike TestKillDuringDeliveries this sees the fsyncs themselves and
// their order across threads, whichever goroutine runs them (a directory
// fsync shared by several deliveries counts for each of them if it began
// after each one's rename). TestCheckFsyncOrder shows the check failing
// on logs that break each rule.
//
// It needs strace (apt-get install strace); it skips without it, or when
// ptrace is not allowed, unless LISTGATE_TEST_POSTFIX=1 (CI), where it
// fails.
func TestFsyncOrder(t *testing.T) {
	strace := requireStrace(t)
	bin := daemontest.Binary(t)
	// strace prints the paths of fds resolved; so must be the paths the
	// daemon is given.
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	listsDir, spoolDir, logFile := filepath.Join(root, "lists"), filepath.Join(root, "spool"), filepath.Join(root, "strace.log")
	if err := os.Mkdir(listsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"alpha@example.org", "beta@example.org"} {
		if err := os.WriteFile(filepath.Join(listsDir, l), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.Command(strace, "-f", "-qq", "--seccomp-bpf", "-ttt", "-T", "-yy", "-s", "65536",
		"-e", "signal=none",
		// Every call that creates, writes, flushes or renames a file, or
		// writes to a socket ("?": not on every architecture).
		"-e", "trace=?open,openat,?creat,write,writev,pwrite64,pwritev,pwritev2,copy_file_range,sendfile,splice,"+
			"sendto,sendmsg,fsync,fdatasync,?rename,?renameat,renameat2",
		"-o", logFile,
		bin, "serve", "--config", os.DevNull, "--hostname", "fsync.test", "--log-level", "info",
		"--lists", listsDir, "--spool", spoolDir, "--lmtp", "inet:127.0.0.1:0", "--milter", "")
	cmd.Env = daemontest.Environ()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addrc := make(chan string, 1)
	var daemonLog strings.Builder // read only after exited
	go func() {
		sc := bufio.NewScanner(stderr)
		listening := regexp.MustCompile(`msg=listening door=lmtp addr=inet:(\S+)`)
		for sc.Scan() {
			daemonLog.WriteString(sc.Text() + "\n")
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	// strace ignores SIGTERM while it runs a command with -o, and a
	// SIGKILL would leave listgate running untraced: signal listgate, its
	// child, which strace outlives only until it has logged its exit.
	childOfStrace := func() (int, error) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		if err != nil {
			return 0, err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return 0, fmt.Errorf("strace's children are %q", b)
		}
		return pid, nil
	}
	stopped := false
	stop := func(sig syscall.Signal) {
		if pid, err := childOfStrace(); err == nil {
			syscall.Kill(pid, sig)
		} else {
			cmd.Process.Kill()
		}
	}
	t.Cleanup(func() {
		if !stopped {
			stop(syscall.SIGKILL)
			<-exited
		}
	})
	var addr string
	select {
	case addr = <-addrc:
	case err := <-exited:
		stopped = true
		t.Fatalf("listgate serve under strace exited before listening: %v\n%s", err, daemonLog.String())
	case <-time.After(30 * time.Second):
		t.Fatal("listgate serve under strace: not listening within 30s")
	}
	if _, err := childOfStrace(); err != nil {
		t.Fatalf("listgate's pid: %v", err)
	}
	_, port, _ := net.SplitHostPort(addr)
	serverPort, _ := strconv.Atoi(port)

	const sessions, perSession = 8, 20
	// Recipients by message: one to three, on two lists, with sub-addresses
	// and an extension (alpha+x@ is another copy in alpha's post/).
	rcptSets := [][]string{
		{"alpha@example.org"},
		{"alpha@example.org", "beta-owner@example.org"},
		{"beta@example.org", "alpha-request@example.org", "alpha+x@example.org"},
		{"beta@example.org", "alpha-bounces@example.org"},
	}
	type result struct {
		conn lmtpConn
		toks []string // per message
		err  error
	}
	results := make(chan result, sessions)
	for s := range sessions {
		go func() {
			var r result
			defer func() { results <- r }()
			r.err = func() error {
				conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					return err
				}
				r.conn.Port = conn.LocalAddr().(*net.TCPAddr).Port
				cl := smtp.NewClientLMTP(conn)
				defer cl.Close()
				if err := cl.Hello("fsync.test"); err != nil {
					return err
				}
				for i := range perSession {
					tok := fmt.Sprintf("tok-%d-%02d", s, i)
					msg := lmtpMsg{Rcpts: rcptSets[(s+i)%len(rcptSets)]}
					if err := cl.Mail("anne@example.net", nil); err != nil {
						return fmt.Errorf("%s: MAIL: %w", tok, err)
					}
					for _, rc := range msg.Rcpts {
						if err := cl.Rcpt(rc, nil); err != nil {
							return fmt.Errorf("%s: RCPT TO:<%s>: %w", tok, rc, err)
						}
					}
					w, err := cl.Data()
					if err != nil {
						return fmt.Errorf("%s: DATA: %w", tok, err)
					}
					fmt.Fprintf(w, "Message-ID: <%s@fsync.test>\r\nSubject: %s\r\n\r\nbody of %s\r\n", tok, tok, tok)
					resp, err := w.CloseWithLMTPResponse()
					var lerr smtp.LMTPDataError
					if err != nil && !errors.As(err, &lerr) {
						return fmt.Errorf("%s: end of DATA: %w", tok, err)
					}
					for _, rc := range msg.Rcpts {
						code := 0
						if resp[rc] != nil {
							code = 250
						} else if lerr[rc] != nil {
							code = lerr[rc].Code
						}
						msg.Codes = append(msg.Codes, code)
					}
					r.conn.Msgs = append(r.conn.Msgs, msg)
					r.toks = append(r.toks, tok)
				}
				return cl.Quit()
			}()
		}()
	}
	var all []result
	for range sessions {
		r := <-results
		if r.err != nil {
			t.Errorf("session from port %d: %v", r.conn.Port, r.err)
		}
		all = append(all, r)
	}

	stop(syscall.SIGTERM)
	select {
	case err = <-exited:
		stopped = true
	case <-time.After(30 * time.Second):
		t.Fatal("listgate serve under strace: not stopped within 30s of SIGTERM")
	}
	if err != nil {
		t.Fatalf("listgate serve under strace: %v\n%s", err, daemonLog.String())
	}
	if t.Failed() {
		t.FailNow()
	}

	// Which file holds which recipient's copy of which message.
	stored := map[string]string{} // token + " " + recipient -> file
	var newFiles []string
	err = filepath.WalkDir(spoolDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(filepath.Dir(p)) != "new" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		key := storedHeader(string(b), "Subject") + " " + storedHeader(string(b), "Delivered-To")
		if stored[key] != "" {
			t.Errorf("%s and %s both hold %s", stored[key], p, key)
		}
		stored[key] = p
		newFiles = append(newFiles, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var conns []lmtpConn
	rcpts := 0
	for _, r := range all {
		for i := range r.conn.Msgs {
			m := &r.conn.Msgs[i]
			for k, rc := range m.Rcpts {
				if m.Codes[k] != 250 {
					t.Errorf("%s to <%s>: reply %d, want 250", r.toks[i], rc, m.Codes[k])
				}
				m.Files = append(m.Files, stored[r.toks[i]+" "+rc])
				rcpts++
			}
		}
		conns = append(conns, r.conn)
	}
	if len(newFiles) != rcpts {
		t.Errorf("%d files in new/ for %d recipients", len(newFiles), rcpts)
	}

	f, err := os.Open(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	calls, err := parseStrace(f)
	if err != nil {
		t.Fatal(err)
	}
	rep, problems := checkFsyncOrder(calls, serverPort, conns, newFiles)
	for _, p := range problems {
		t.Error(p)
	}
	if rep.Files != rcpts || rep.Acks != rcpts {
		t.Errorf("checked %d files and %d 250 replies, want %d each", rep.Files, rep.Acks, rcpts)
	}
	t.Logf("%d sessions, %d messages, %d deliveries; %d system calls logged; %d fsyncs of new/ directories; least time from a new/ fsync's end to its 250: %d µs",
		sessions, sessions*perSession, rcpts, len(calls), rep.DirFsyncs, rep.MinGap)
}

// storedHeader returns the value of the first header field name in a stored
// message, unfolded.
func storedHeader(msg, name string) string {
	head, _, _ := strings.Cut(msg, "\n\n")
	for _, l := range strings.Split(head, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// requireStrace returns the path of strace once it has traced a child
// here. Without strace, or when ptrace is refused (as an unprivileged
// user under kernel.yama.ptrace_scope ≥ 2, or in a container without
// ptrace), the test skips saying why, or fails under
// LISTGATE_TEST_POSTFIX=1 (CI, which installs strace).
func requireStrace(t *testing.T) string {
	t.Helper()
	ci := os.Getenv("LISTGATE_TEST_POSTFIX") == "1"
	path, err := exec.LookPath("strace")
	if err != nil {
		if ci {
			t.Fatal("strace is not installed; CI installs it (.ci/run)")
		}
		t.Skip("strace is not installed: apt-get install strace (Debian, Ubuntu) to run the fsync-order check")
	}
	out, err := exec.Command(path, "-f", "-qq", "--seccomp-bpf", "-e", "trace=fsync", "-o", os.DevNull, "true").CombinedOutput()
	if err != nil {
		why := fmt.Sprintf("strace cannot trace a child here (uid %d): %v: %s", os.Getuid(), err, strings.TrimSpace(string(out)))
		if b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope"); err == nil {
			why += "; kernel.yama.ptrace_scope is " + strings.TrimSpace(string(b)) + " (2: only with CAP_SYS_PTRACE, 3: never)"
		}
		if ci {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	return path
}
