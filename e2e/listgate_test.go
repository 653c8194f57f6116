package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/daemontest"
)

// wait bounds every wait on a condition in this package: generous, since
// the tests share two cores with Postfix; they return as soon as the
// condition holds.
const wait = 15 * time.Second

// TestMain removes the listgate binary built for the run.
func TestMain(m *testing.M) {
	code := m.Run()
	daemontest.Cleanup()
	os.Exit(code)
}

// daemon is a running `listgate serve`.
type daemon = daemontest.Daemon

// startListgate runs `listgate serve` with args and waits until its LMTP
// and milter doors listen.
func startListgate(t testing.TB, args ...string) *daemon {
	t.Helper()
	return daemontest.Start(t, []string{"lmtp", "milter"}, args...)
}

// runListgate runs a one-shot listgate command.
func runListgate(t testing.TB, stdin string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	return daemontest.Run(t, stdin, args...)
}

// writeList creates (or replaces) a file in the lists directory, as an
// admin would: written aside, then renamed into place.
func writeList(t testing.TB, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}
