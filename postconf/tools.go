package postconf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrNotInstalled is wrapped by the errors of Tools when the command is
// not installed here.
var ErrNotInstalled = errors.New("not installed")

// DefaultTimeout bounds each command Tools runs when Tools.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// Tools runs the commands of one Postfix installation: postconf(1) and
// postmap(1). The zero value finds them in $PATH or /usr/sbin and reads
// Postfix's default configuration directory (or $MAIL_CONFIG).
type Tools struct {
	// Postconf is postconf(1): a path, or a name looked up in $PATH and
	// then /usr/sbin. Empty means "postconf".
	Postconf string
	// Postmap is postmap(1), found the same way. Empty means the
	// postmap beside Postconf when that is a path, else "postmap".
	Postmap string
	// ConfigDir is given to both as -c: the configuration directory of
	// another instance. Empty means Postfix's default.
	ConfigDir string
	// Timeout bounds each command; 0 means DefaultTimeout.
	Timeout time.Duration
}

func (t Tools) find(name string) (string, error) {
	if strings.ContainsRune(name, '/') {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("%s %w here (%v)", filepath.Base(name), ErrNotInstalled, err)
		}
		return name, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath(filepath.Join("/usr/sbin", name)); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s %w here (not in $PATH nor /usr/sbin)", name, ErrNotInstalled)
}

func (t Tools) postconf() string {
	if t.Postconf == "" {
		return "postconf"
	}
	return t.Postconf
}

func (t Tools) postmap() string {
	switch {
	case t.Postmap != "":
		return t.Postmap
	case strings.ContainsRune(t.Postconf, '/'):
		return filepath.Join(filepath.Dir(t.Postconf), "postmap")
	}
	return "postmap"
}

// run runs a command with -c ConfigDir first, and returns its standard
// output. An error names the command and carries the first line of its
// standard error.
func (t Tools) run(ctx context.Context, name string, args ...string) (string, error) {
	path, err := t.find(name)
	if err != nil {
		return "", err
	}
	if t.ConfigDir != "" {
		args = append([]string{"-c", t.ConfigDir}, args...)
	}
	timeout := t.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		return "", fmt.Errorf("%s %s: no answer within %v", filepath.Base(path), strings.Join(args, " "), timeout)
	}
	if err != nil {
		msg, _, _ := strings.Cut(strings.TrimSpace(errb.String()), "\n")
		return out.String(), &cmdError{cmd: filepath.Base(path) + " " + strings.Join(args, " "), err: err, stderr: msg}
	}
	return out.String(), nil
}

// cmdError is a command that failed, with the first line it printed on
// standard error.
type cmdError struct {
	cmd, stderr string
	err         error
}

func (e *cmdError) Error() string {
	if e.stderr == "" {
		return e.cmd + ": " + e.err.Error()
	}
	return e.cmd + ": " + e.stderr
}

func (e *cmdError) Unwrap() error { return e.err }

// Defaults runs "postconf -d": the defaults of the Postfix installed here.
// The error wraps ErrNotInstalled when postconf is not.
func (t Tools) Defaults(ctx context.Context) (*Defaults, error) {
	out, err := t.run(ctx, t.postconf(), "-d")
	if err != nil {
		return nil, err
	}
	c, err := Parse(out, "postconf -d")
	if err != nil {
		return nil, err
	}
	d := newDefaults(c, "", false)
	d.Source = "postconf -d (Postfix " + d.Version + ")"
	return d, nil
}

// Running reads the configuration this Postfix runs with: "postconf -n"
// (main.cf's settings), "postconf -P" (master.cf's per-service overrides)
// and main.cf itself, in $config_directory, so that a parameter set twice
// is seen (postconf -n shows only the last) and settings name their
// main.cf line. notes says what could not be read.
func (t Tools) Running(ctx context.Context) (c *Config, notes []string, err error) {
	n, err := t.run(ctx, t.postconf(), "-n")
	if err != nil {
		return nil, nil, err
	}
	if c, err = Parse(n, "postconf -n"); err != nil {
		return nil, nil, err
	}
	p, err := t.run(ctx, t.postconf(), "-P")
	if err == nil {
		var master *Config
		if master, err = Parse(p, "postconf -P"); err == nil {
			c.Master = append(master.Master, master.Main...)
		}
	}
	if err != nil {
		notes = append(notes, fmt.Sprintf("%v: master.cf's overrides are not checked", err))
	}
	dir, err := t.run(ctx, t.postconf(), "-h", "config_directory")
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(strings.TrimSpace(dir), "main.cf")
	b, err := os.ReadFile(path)
	if err != nil {
		return c, append(notes, fmt.Sprintf("cannot read %v: parameters set twice are not checked", err)), nil
	}
	file, err := Parse(string(b), path)
	if err != nil {
		return c, append(notes, fmt.Sprintf("%v: parameters set twice are not checked", err)), nil
	}
	// main.cf's settings, with postconf's word on each value.
	for _, p := range c.Main {
		i := lastIndex(file.Main, p.Name)
		if i < 0 {
			file.Main = append(file.Main, p) // e.g. config_directory, with -c
			continue
		}
		file.Main[i].Value = p.Value
	}
	c.Main = file.Main
	return c, notes, nil
}

func lastIndex(ps []Param, name string) int {
	for i := len(ps) - 1; i >= 0; i-- {
		if ps[i].Name == name {
			return i
		}
	}
	return -1
}

// Query looks key up in a table ("type:name") with "postmap -q", as
// Postfix's daemons would. found is false when the table has no such key.
func (t Tools) Query(ctx context.Context, table, key string) (value string, found bool, err error) {
	out, err := t.run(ctx, t.postmap(), "-q", key, table)
	var ce *cmdError
	var ee *exec.ExitError
	if errors.As(err, &ce) && ce.stderr == "" && errors.As(err, &ee) && ee.ExitCode() == 1 {
		return "", false, nil // postmap(1): exit status 1 is "not found"
	}
	if err != nil {
		return "", false, err
	}
	return strings.TrimSpace(out), true, nil
}

// DefaultsOrBuiltin returns the defaults of the Postfix installed here,
// or BuiltinDefaults when postconf -d cannot be run, and a note saying
// which for a reader. file is the configuration judged, "" for this
// Postfix's own: the defaults of this machine may not be those of the
// Postfix a file comes from.
func (t Tools) DefaultsOrBuiltin(ctx context.Context, file string) (*Defaults, string) {
	d, err := t.Defaults(ctx)
	switch {
	case err == nil && file == "":
		return d, "defaults from " + d.Source
	case err == nil:
		return d, fmt.Sprintf("defaults from this machine's %s; if %s comes from another Postfix, its own may differ", d.Source, file)
	case errors.Is(err, ErrNotInstalled):
		d = BuiltinDefaults()
		return d, "Postfix not installed here; " + d.Source
	}
	d = BuiltinDefaults()
	return d, fmt.Sprintf("%v; %s", err, d.Source)
}
