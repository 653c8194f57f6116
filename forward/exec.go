package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/listgate/listgate/lists"
)

// exTempFail is sysexits.h's EX_TEMPFAIL: the command asks to be tried
// again later, as Postfix's pipe(8) and local(8) read it.
const exTempFail = 75

// maxStderr bounds what is kept of a command's standard error for the
// log and the quarantine reason.
const maxStderr = 4 << 10

// delivery is what an exec next hop is told about one message.
type delivery struct {
	list, local, domain, kind string // the list and folder
	extension                 string // the recipient's address extension
}

// environ returns the command's environment: listgate's own, with the
// variables Postfix's local(8) sets for a command (SENDER, RECIPIENT,
// ORIGINAL_RECIPIENT, LOCAL, DOMAIN, EXTENSION: what mlmmj-receive and
// public-inbox-mda read) and listgate's (LISTGATE_*) put over it. SENDER
// is empty for the null sender, as local(8) sets it.
func environ(s *stored, d delivery) []string {
	rlocal, rdomain := s.rcpt, ""
	if at := strings.LastIndexByte(s.rcpt, '@'); at >= 0 {
		rlocal, rdomain = s.rcpt[:at], s.rcpt[at+1:]
	}
	set := [][2]string{
		{"SENDER", s.sender},
		{"RECIPIENT", s.rcpt},
		{"ORIGINAL_RECIPIENT", s.rcpt},
		{"LOCAL", rlocal},
		{"DOMAIN", rdomain},
		{"EXTENSION", d.extension},
		{"LISTGATE_SENDER", s.sender},
		{"LISTGATE_RECIPIENT", s.rcpt},
		{"LISTGATE_LIST", d.list},
		{"LISTGATE_KIND", d.kind},
		{"LISTGATE_EXTENSION", d.extension},
	}
	env := make([]string, 0, len(os.Environ())+len(set))
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		over := false
		for _, s := range set {
			over = over || s[0] == name
		}
		if !over {
			env = append(env, kv)
		}
	}
	for _, s := range set {
		env = append(env, s[0]+"="+s[1])
	}
	return env
}

// runExec runs the command of an exec next hop for one message: its
// arguments with the placeholders filled in, the message on standard
// input (Return-Path and Delivered-To on top, LF line ends, as Postfix's
// local(8) gives it to a command), the environment of environ. Exit
// status 0 means taken, 75 (EX_TEMPFAIL) try again later, any other
// status a permanent refusal. A command that cannot be started, is killed
// by a signal or runs past timeout (it is then killed) is tried again
// later: the command, not the message, is at fault. The start of standard
// error goes into the reply.
func runExec(ctx context.Context, hop lists.NextHop, timeout time.Duration, s *stored, d delivery) result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	argv := hop.Expand(map[string]string{
		"list": d.list, "local": d.local, "domain": d.domain, "kind": d.kind,
		"extension": d.extension, "sender": s.sender, "recipient": s.rcpt,
	})
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = environ(s, d)
	cmd.Dir = "/"
	// Standard error goes to a file and standard input comes from a
	// pipe we feed: both are *os.File, so Wait returns when the command
	// exits even if a process it forked keeps them open.
	errf, err := os.CreateTemp("", "listgate-exec-stderr-*")
	if err != nil {
		return result{temporary: true, reply: "cannot run the command: " + err.Error()}
	}
	defer errf.Close()
	os.Remove(errf.Name())
	cmd.Stderr = errf
	pr, pw, err := os.Pipe()
	if err != nil {
		return result{temporary: true, reply: "cannot run the command: " + err.Error()}
	}
	cmd.Stdin = pr
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return result{temporary: true, reply: "cannot run the command: " + oneLine(err.Error())}
	}
	pr.Close()
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		// A command may exit without reading all of its input; the
		// write error that follows says nothing about the delivery.
		if _, err := pw.Write(s.execHeader()); err == nil {
			io.Copy(pw, s.rest)
		}
		pw.Close()
	}()
	err = cmd.Wait()
	pw.Close() // unblocks the feeder if the command left its input unread
	<-fed
	stderr := readStderr(errf)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return taken(withStderr("exit status 0", stderr))
	case ctx.Err() != nil:
		why := "timed out after " + timeout.String()
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			why = "stopped by the shutdown"
		}
		return result{temporary: true, reply: withStderr("command killed: "+why, stderr)}
	case errors.As(err, &ee) && ee.Exited():
		code := ee.ExitCode()
		return result{temporary: code == exTempFail, reply: withStderr(fmt.Sprintf("exit status %d", code), stderr)}
	}
	return result{temporary: true, reply: withStderr("command failed: "+oneLine(err.Error()), stderr)}
}

func readStderr(f *os.File) string {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, maxStderr))
	return oneLine(string(b))
}

func withStderr(status, stderr string) string {
	if stderr == "" {
		return status
	}
	return status + ": " + stderr
}
