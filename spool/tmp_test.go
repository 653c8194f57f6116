package spool

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/testutil"
)

// TestCleanTmp: after a crash, files left in a folder's tmp/ (or spill
// files in the spool root) for longer than the grace period are removed,
// and counted in one log line; fresh ones, files in new/, other files and
// what is not a regular file stay.
func TestCleanTmp(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	s, err := New(Options{Dir: t.TempDir(), Hostname: testHost, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	m := testMessage(t, "Subject: x\r\n\r\nhi\r\n")
	var folders []string
	for _, local := range []string{"a", "b"} {
		env := Envelope{Sender: "s@x", Rcpt: local + "@example.org", Domain: "example.org", Local: local, Kind: "post"}
		path, err := s.Deliver(m, env)
		if err != nil {
			t.Fatal(err)
		}
		folders = append(folders, filepath.Dir(filepath.Dir(path)))
	}
	now := time.Now()
	old := now.Add(-TmpGrace - time.Hour)
	file := func(path string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte("partial"), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	// What a crash leaves: stale files in two folders.
	file(filepath.Join(folders[0], "tmp", "1.M1P1Q1Rx.host,S=7"), old)
	file(filepath.Join(folders[1], "tmp", "2.M1P1Q2Rx.host,S=7"), old)
	file(filepath.Join(folders[1], "tmp", ".dot"), old)
	file(filepath.Join(s.Dir(), SpillPrefix+"123"), old) // a spill file not yet unlinked
	// What stays: a delivery in flight, one just inside the grace period,
	// an old message in new/, an old directory and a symlink in tmp/.
	file(filepath.Join(folders[0], "tmp", "3.M1P1Q3Rx.host"), now)
	file(filepath.Join(folders[0], "tmp", "4.M1P1Q4Rx.host"), now.Add(-TmpGrace+time.Hour))
	file(filepath.Join(folders[0], "new", "5.M1P1Q5Rx.host,S=7"), old)
	file(filepath.Join(s.Dir(), SpillPrefix+"456"), now) // a message being read
	file(filepath.Join(s.Dir(), "other"), old)           // not ours
	if err := os.Mkdir(filepath.Join(folders[1], "tmp", "dir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent", filepath.Join(folders[1], "tmp", "link")); err != nil {
		t.Fatal(err)
	}
	newBefore := names(t, filepath.Join(folders[0], "new"))

	n, err := s.CleanTmp(TmpGrace)
	if err != nil || n != 4 {
		t.Fatalf("CleanTmp = %d, %v; want 4 removed", n, err)
	}
	if got, want := names(t, filepath.Join(folders[0], "tmp")), []string{"3.M1P1Q3Rx.host", "4.M1P1Q4Rx.host"}; !slices.Equal(got, want) {
		t.Errorf("tmp/ of %s: %v, want %v", folders[0], got, want)
	}
	if got, want := names(t, filepath.Join(folders[1], "tmp")), []string{"dir", "link"}; !slices.Equal(got, want) {
		t.Errorf("tmp/ of %s: %v, want %v", folders[1], got, want)
	}
	if got, want := names(t, s.Dir()), []string{SpillPrefix + "456", "example.org", "other"}; !slices.Equal(got, want) {
		t.Errorf("spool root: %v, want %v", got, want)
	}
	if got := names(t, filepath.Join(folders[0], "new")); !slices.Equal(got, newBefore) {
		t.Errorf("new/ changed: %v, was %v", got, newBefore)
	}
	if n := strings.Count(logs.String(), `msg="spool: removed stale files from tmp/" count=4 older_than=36h0m0s`); n != 1 {
		t.Errorf("want one log line with the count:\n%s", logs)
	}

	// Nothing left to remove: nothing logged.
	before := logs.String()
	if n, err := s.CleanTmp(TmpGrace); n != 0 || err != nil {
		t.Errorf("second CleanTmp = %d, %v", n, err)
	}
	if logs.String() != before {
		t.Errorf("a run that removed nothing logged:\n%s", strings.TrimPrefix(logs.String(), before))
	}
}

// TestCleanTmpSparesDeliveryInFlight: a cleaning that runs while a
// delivery has its file in tmp/ (between create and rename) leaves it,
// and the delivery completes.
func TestCleanTmpSparesDeliveryInFlight(t *testing.T) {
	var s *Spool
	ran := false
	s = newTestSpoolNow(t, func(op Op, path string) error {
		if op == OpFsync {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("the file in flight: %v", err)
			}
			n, err := s.CleanTmp(TmpGrace)
			if n != 0 || err != nil {
				t.Errorf("CleanTmp during a delivery = %d, %v", n, err)
			}
			ran = true
		}
		return nil
	})
	path, err := s.Deliver(testMessage(t, "Subject: x\r\n\r\nhi\r\n"), testEnv)
	if err != nil || !ran {
		t.Fatalf("Deliver: %v (cleaned during it: %v)", err, ran)
	}
	if _, err := os.Stat(path); err != nil {
		t.Error(err)
	}
}

// newTestSpoolNow is newTestSpool on the real clock, for the ages of
// files.
func newTestSpoolNow(t testing.TB, fault func(Op, string) error) *Spool {
	t.Helper()
	s, err := New(Options{Dir: t.TempDir(), Hostname: testHost, Fault: fault})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
