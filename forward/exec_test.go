package forward

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/listgate/listgate/spool"
)

// intake writes a shell script that stores its standard input, its
// arguments and its environment in out/<n>.{msg,args,env} and exits with
// the status in the file status (0 if missing), writing "trouble" to
// standard error when it fails. It returns the script's path and out.
func intake(t *testing.T) (script, out, status string) {
	t.Helper()
	dir := t.TempDir()
	out, status = filepath.Join(dir, "out"), filepath.Join(dir, "status")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	script = filepath.Join(dir, "intake.sh")
	body := `#!/bin/sh
out=` + out + `
n=$(ls "$out" | grep -c "\\.msg$")
code=0
[ -f ` + status + ` ] && code=$(cat ` + status + `)
if [ "$code" != 0 ]; then cat >/dev/null; echo "trouble $code" >&2; exit "$code"; fi
cat > "$out/$n.msg"
printf '%s\n' "$@" > "$out/$n.args"
env > "$out/$n.env"
exit 0
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, out, status
}

func setStatus(t *testing.T, file string, code int) {
	t.Helper()
	if err := os.WriteFile(file, []byte(fmt.Sprint(code)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestExecNextHop: a command next hop gets the message on standard
// input with Return-Path and Delivered-To on top (as local(8) gives it)
// and without Mailman's fields; the placeholders in its arguments and
// the environment say who it is for (SENDER empty for the null sender,
// EXTENSION, LISTGATE_*). Exit 75 is tried again, exit 1 quarantines
// with the status and the start of standard error, 0 takes it.
func TestExecNextHop(t *testing.T) {
	script, out, status := intake(t)
	e := newEnv(t, map[string]string{
		"a@example.org": fmt.Sprintf("next_hop = \"exec:%s {list} {local} {domain} {kind} {extension} x{sender}x {recipient}\"\n", script),
	}, nil)
	setStatus(t, status, 75)
	e.deliver("", "a-request+tok@example.org", post)
	waitFor(t, "two deferrals", func() bool { return strings.Count(e.log.String(), "exit status 75: trouble 75") >= 2 })
	if e.count("a@example.org", "request", "new") != 1 {
		t.Fatal("a deferred message left new/")
	}
	setStatus(t, status, 0)
	waitFor(t, "taken", func() bool { return e.count("a@example.org", "request", "new") == 0 })
	msg, err := os.ReadFile(filepath.Join(out, "0.msg"))
	if err != nil {
		t.Fatal(err)
	}
	m := string(msg)
	if !strings.HasPrefix(m, "Return-Path: <>\nDelivered-To: a-request+tok@example.org\nReceived: from mx.test") ||
		!strings.HasSuffix(m, "\n"+strings.ReplaceAll(post, "\r\n", "\n")) {
		t.Errorf("standard input:\n%s", m)
	}
	for _, h := range []string{"X-MailFrom", "Message-ID-Hash"} {
		if strings.Contains(m, h) {
			t.Errorf("the command got %s", h)
		}
	}
	args, _ := os.ReadFile(filepath.Join(out, "0.args"))
	if want := "a@example.org\na\nexample.org\nrequest\ntok\nxx\na-request+tok@example.org\n"; string(args) != want {
		t.Errorf("arguments %q, want %q", args, want)
	}
	envb, _ := os.ReadFile(filepath.Join(out, "0.env"))
	for _, want := range []string{"SENDER=\n", "RECIPIENT=a-request+tok@example.org\n", "ORIGINAL_RECIPIENT=a-request+tok@example.org\n",
		"EXTENSION=tok\n", "LOCAL=a-request+tok\n", "DOMAIN=example.org\n", "LISTGATE_LIST=a@example.org\n",
		"LISTGATE_KIND=request\n", "LISTGATE_EXTENSION=tok\n", "LISTGATE_RECIPIENT=a-request+tok@example.org\n", "LISTGATE_SENDER=\n"} {
		if !strings.Contains("\n"+string(envb), "\n"+want) {
			t.Errorf("environment lacks %q", want)
		}
	}

	setStatus(t, status, 1)
	e.deliver("anne@example.net", "a@example.org", post)
	waitFor(t, "quarantined", func() bool { return e.count("a@example.org", "post", spool.QuarantineDir) == 1 })
	st, _ := Status(e.root, e.w.Snapshot(), e.opts.Default)
	var reply string
	for _, s := range st {
		if s.Kind == "post" && len(s.Quarantine) == 1 {
			reply = s.Quarantine[0].Reason.Reply
		}
	}
	if reply != "exit status 1: trouble 1" {
		t.Errorf("quarantine reason %q", reply)
	}
	setStatus(t, status, 0)
	if n, err := Retry(e.root, "all"); n != 1 || err != nil {
		t.Fatalf("Retry = %d, %v", n, err)
	}
	e.f.scan()
	waitFor(t, "the retried message taken", func() bool { return e.count("a@example.org", "post", "new") == 0 })
	if _, err := os.Stat(filepath.Join(out, "1.msg")); err != nil {
		t.Errorf("the retried message did not reach the command: %v", err)
	}
}

// TestExecTimeout: a command that outruns the timeout is killed and
// tried again later; the message stays in new/.
func TestExecTimeout(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "slow.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, map[string]string{"a@example.org": "next_hop = \"exec:" + script + "\"\n"},
		func(o *Options) { o.Timeout = 100 * 1e6 })
	e.deliver("anne@example.net", "a@example.org", post)
	waitFor(t, "a timeout", func() bool { return strings.Contains(e.log.String(), "command killed: timed out after 100ms") })
	if e.count("a@example.org", "post", "new") != 1 {
		t.Errorf("the message left new/")
	}
}
