package proctest_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/proctest"
	"github.com/listgate/listgate/internal/testutil"
)

// TestRequire: a missing program skips the test with the reason and the
// hint, or fails it with the reason under EnvRequire=1; a present one lets
// it go on.
func TestRequire(t *testing.T) {
	tests := []struct {
		name, env, missing string
		want               proctest.Outcome
	}{
		{"present", "", "", proctest.Outcome{}},
		{"present required", "1", "", proctest.Outcome{}},
		{"missing", "", "foo is not installed", proctest.Outcome{Skipped: true,
			Msg: "footest: foo is not installed. Tests that drive Foo need it (`apt-get install foo`); LISTGATE_TEST_POSTFIX=1 makes this a failure"}},
		{"missing other value", "yes", "foo is not installed", proctest.Outcome{Skipped: true,
			Msg: "footest: foo is not installed. Tests that drive Foo need it (`apt-get install foo`); LISTGATE_TEST_POSTFIX=1 makes this a failure"}},
		{"missing required", "1", "foo is not installed", proctest.Outcome{Failed: true,
			Msg: "footest: foo is not installed (LISTGATE_TEST_POSTFIX=1: Foo is required)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(proctest.EnvRequire, tt.env)
			probes := 0
			p := &proctest.Program{
				Harness: "footest",
				Name:    "Foo",
				Hint:    "Tests that drive Foo need it (`apt-get install foo`)",
				Probe:   func() string { probes++; return tt.missing },
			}
			for range 2 {
				got := proctest.StartOutcome(t, p.Require)
				if got != tt.want {
					t.Errorf("Require with Probe returning %q and %s=%q: %+v, want %+v", tt.missing, proctest.EnvRequire, tt.env, got, tt.want)
				}
			}
			if probes != 1 {
				t.Errorf("Require twice called Probe %d times, want once", probes)
			}
		})
	}
}

// TestProcessGroup: LivePIDs and PIDsUsing find the processes of a group,
// KillGroup ends them all, and WaitGone reaps them and reports none left.
func TestProcessGroup(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	// sh stays to wait for sleep, so the group has two processes; the
	// argument after the script is sh's $0, which PIDsUsing looks for.
	tag := unique("proctest-tag")
	cmd := exec.Command("sh", "-c", "sleep 60; :", tag)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { proctest.KillGroup(pgid); proctest.WaitGone(pgid, 5*time.Second, 10*time.Millisecond) })
	cmd.Process.Release()

	var live []int
	if _, ok := testutil.Poll(5*time.Second, 10*time.Millisecond, func() bool { live = proctest.LivePIDs(pgid); return len(live) == 2 }); !ok {
		t.Fatalf("LivePIDs(%d) = %v, want sh and sleep", pgid, live)
	}
	if !slices.Contains(live, pgid) {
		t.Errorf("LivePIDs(%d) = %v, want sh (%d) among them", pgid, live, pgid)
	}
	if got := proctest.PIDsUsing(tag); !slices.Equal(got, []int{pgid}) {
		t.Errorf("PIDsUsing(%q) = %v, want [%d]", tag, got, pgid)
	}
	if proctest.Reap(pgid) {
		t.Errorf("Reap(%d) = true with the group running", pgid)
	}
	if left := proctest.WaitGone(pgid, 50*time.Millisecond, 10*time.Millisecond); len(left) != 2 {
		t.Errorf("WaitGone(%d) before the kill = %v, want both alive", pgid, left)
	}

	if err := proctest.KillGroup(pgid); err != nil {
		t.Fatal(err)
	}
	if left := proctest.WaitGone(pgid, 5*time.Second, 10*time.Millisecond); left != nil {
		t.Fatalf("WaitGone(%d) after SIGKILL = %v, want none", pgid, left)
	}
	if got := proctest.PIDsUsing(tag); got != nil {
		t.Errorf("PIDsUsing(%q) after the kill = %v, want none", tag, got)
	}
	if err := proctest.KillGroup(pgid); err != nil {
		t.Errorf("KillGroup of a group gone: %v, want no error", err)
	}
	if err := proctest.Kill(pgid); err != nil {
		t.Errorf("Kill of a process gone: %v, want no error", err)
	}
}

// TestSweep: NewInstance's lock keeps a directory from Sweep, and so does its
// youth; a directory older than a minute whose lock nobody holds is
// removed, after kill was called with it.
func TestSweep(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	prefix := unique("proctest-sweep")
	dir, lock, err := proctest.NewInstance(prefix, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proctest.RemoveInstance(dir, lock) })
	if !strings.HasPrefix(dir, "/tmp/"+prefix+"-") {
		t.Errorf("NewInstance(%q) = %s, want /tmp/%s-NNNN", prefix, dir, prefix)
	}
	if f, err := proctest.LockFile(filepath.Join(dir, "lock")); err == nil {
		f.Close()
		t.Fatal("LockFile of a locked file succeeded")
	}
	var killed []string
	kill := func(dir string) { killed = append(killed, dir) }
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(filepath.Join(dir, "lock"), old, old); err != nil {
		t.Fatal(err)
	}

	proctest.Sweep(prefix, kill)
	if _, err := os.Stat(dir); err != nil || killed != nil {
		t.Fatalf("Sweep of a locked instance: stat %v, killed %v; want it kept", err, killed)
	}

	lock.Close()
	young := time.Now()
	if err := os.Chtimes(filepath.Join(dir, "lock"), young, young); err != nil {
		t.Fatal(err)
	}
	proctest.Sweep(prefix, kill)
	if _, err := os.Stat(dir); err != nil || killed != nil {
		t.Fatalf("Sweep of a young instance: stat %v, killed %v; want it kept", err, killed)
	}

	if err := os.Chtimes(filepath.Join(dir, "lock"), old, old); err != nil {
		t.Fatal(err)
	}
	proctest.Sweep(prefix, kill)
	if _, err := os.Stat(dir); !os.IsNotExist(err) || !slices.Equal(killed, []string{dir}) {
		t.Fatalf("Sweep of an abandoned instance: stat %v, killed %v; want it removed after kill(%s)", err, killed, dir)
	}
}

// unique returns prefix with this process's pid and the time, unlike any
// other test's.
func unique(prefix string) string {
	return fmt.Sprintf("%s%d.%d", prefix, os.Getpid(), time.Now().UnixNano())
}

// TestGivesUp: GivesUp accepts a Start that ends the test as Require
// does, and reports one that goes on, or ends it without the reason.
func TestGivesUp(t *testing.T) {
	missing := "starting Foo needs root"
	p := &proctest.Program{Harness: "footest", Name: "Foo", Hint: "install foo", Probe: func() string { return missing }}
	tests := []struct {
		name   string
		start  func(testing.TB)
		errors int
	}{
		{"require", p.Require, 0},
		{"goes on", func(testing.TB) {}, 1},
		{"other reason", func(tb testing.TB) { tb.Skipf("footest: no foo user. install foo") }, 1},
	}
	for _, env := range []string{"", "1"} {
		for _, tt := range tests {
			t.Run(tt.name+" "+proctest.EnvRequire+"="+env, func(t *testing.T) {
				t.Setenv(proctest.EnvRequire, env)
				rec := &errorTB{TB: t}
				proctest.GivesUp(rec, tt.start, "Foo", "install foo", "needs root", "not installed")
				if len(rec.errors) != tt.errors {
					t.Errorf("GivesUp reported %q, want %d errors", rec.errors, tt.errors)
				}
			})
		}
	}
}

// errorTB records what is reported with Errorf.
type errorTB struct {
	testing.TB
	errors []string
}

func (e *errorTB) Helper() {}

func (e *errorTB) Errorf(format string, args ...any) {
	e.errors = append(e.errors, fmt.Sprintf(format, args...))
}
