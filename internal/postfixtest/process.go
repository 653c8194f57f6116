package postfixtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/listgate/listgate/internal/proctest"
	"github.com/listgate/listgate/internal/testutil"
)

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
	_, ok := testutil.Poll(timeout, pollTick, func() bool {
		conn, err := net.DialTimeout("tcp", p.SMTPAddr, max(time.Until(deadline), pollTick))
		if err != nil {
			last = err
			return false
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(max(time.Until(deadline), pollTick)))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "220") {
			last = fmt.Errorf("greeting %q: %v", line, err)
			return false
		}
		conn.Write([]byte("QUIT\r\n"))
		return true
	})
	if !ok {
		return fmt.Errorf("postfixtest: smtpd on %s did not greet with 220 within %v: %v", p.SMTPAddr, timeout, last)
	}
	return nil
}

// pollTick is how often the harness looks at Postfix's processes, log and
// queue while it waits for them.
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
	if err := p.end(); err != nil {
		t.Error(err)
	}
	if t.Failed() {
		if log := p.Log(); log != "" {
			t.Logf("postfixtest: maillog of %s:\n%s", p.Dir, log)
		}
	}
	if err := proctest.RemoveInstance(p.Dir, p.lock); err != nil {
		t.Error(err)
	}
}

// Close ends an instance that Launch started as the test's cleanup does:
// it stops master(8), waits until every process of the instance is gone
// (killing them if they linger), and removes Dir. Closing twice does
// nothing.
func (p *Postfix) Close() error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	return errors.Join(p.end(), proctest.RemoveInstance(p.Dir, p.lock))
}

// end stops master(8) and waits until every process of the instance is
// gone, killing them if they linger.
func (p *Postfix) end() error {
	if p.pgid == 0 {
		return nil
	}
	// "postfix stop" and "postfix abort" both send master(8) SIGTERM,
	// upon which it signals its process group and exits; "stop" then
	// polls for it once a second, so abort and wait here instead.
	var errs []error
	if _, _, err := p.run("postfix", "-c", p.ConfigDir, "abort"); err != nil {
		errs = append(errs, err)
	}
	if left := proctest.WaitGone(p.pgid, 10*time.Second, pollTick); len(left) > 0 {
		if err := proctest.KillGroup(p.pgid); err != nil {
			errs = append(errs, err)
		}
		if left2 := proctest.WaitGone(p.pgid, 5*time.Second, pollTick); len(left2) > 0 {
			errs = append(errs, fmt.Errorf("postfixtest: postfix processes %v of %s survive SIGKILL", left2, p.ConfigDir))
		} else {
			errs = append(errs, fmt.Errorf("postfixtest: postfix processes %v of %s outlived \"postfix abort\" and were killed", left, p.ConfigDir))
		}
	}
	return errors.Join(errs...)
}

// PID is the pid of the instance's master(8), which leads its process
// group (every Postfix daemon of the instance is its child); 0 until
// started.
func (p *Postfix) PID() int { return p.pgid }

// run runs a Postfix command from the command directory. A failure names
// the command and carries its output. postfix(1) gets a terminal as its
// stderr (proctest.OpenPTY): it writes its errors to stderr only when that
// is a terminal, otherwise to the log, which does not exist yet when
// main.cf itself is bad (and then to a syslog that may not exist either).
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
		master, slave, err := proctest.OpenPTY()
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

// killAbandoned kills the processes of an instance that a killed test
// binary left behind (proctest.Sweep): the process group of the pid in its
// q/pid/master.pid, if that process is still the instance's master, one
// whose environment has the instance's MAIL_CONFIG.
func killAbandoned(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "q", "pid", "master.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	envb, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if bytes.Contains(envb, []byte("MAIL_CONFIG="+filepath.Join(dir, "etc")+"\x00")) {
		_ = proctest.KillGroup(pid)
	}
}
