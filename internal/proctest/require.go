package proctest

import (
	"os"
	"sync"
	"testing"
)

// EnvRequire is the environment variable that turns a missing daemon from a
// skip into a failure, for every harness; .ci/run sets it to "1" and
// installs Postfix and Mailman (docs/design.md, "Tests that need Postfix").
const EnvRequire = "LISTGATE_TEST_POSTFIX"

// Program is a daemon that a harness runs, and how its Require tells
// whether it can run here.
type Program struct {
	// Harness is the package that runs it, which begins every message:
	// "postfixtest".
	Harness string
	// Name is the daemon as the failure names it: "Postfix" fails with
	// "Postfix is required".
	Name string
	// Hint says, in a skip, what the tests need and how to install it:
	// "Tests that drive a real Postfix need it installed (...) and root
	// to start it".
	Hint string
	// Probe returns why the daemon cannot run here ("starting Postfix
	// needs root"), or "" if it can. Require calls it once per test
	// binary, so it may also record what it found for the harness.
	Probe func() (missing string)

	once    sync.Once
	missing string
}

// Require ends the test if the daemon cannot run here (Probe): with a
// failure if EnvRequire is "1", otherwise with a skip that gives the
// reason and the Hint. It returns if the daemon can run.
func (p *Program) Require(t testing.TB) {
	t.Helper()
	if p.Missing() == "" {
		return
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s: %s (%s=1: %s is required)", p.Harness, p.missing, EnvRequire, p.Name)
	}
	t.Skipf("%s: %s. %s; %s=1 makes this a failure", p.Harness, p.missing, p.Hint, EnvRequire)
}

// Missing returns why the daemon cannot run here (Probe, called once), or
// "" if it can: Require's check, for a program that is not a test (the
// bench, docs/performance.md).
func (p *Program) Missing() string {
	p.once.Do(func() { p.missing = p.Probe() })
	return p.missing
}
