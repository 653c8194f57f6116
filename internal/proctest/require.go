package proctest

import (
	"os"
	"testing"
)

// EnvRequire is the environment variable that turns a missing daemon from a
// skip into a failure, for every harness; .ci/run sets it to "1" and
// installs Postfix and Mailman (docs/design.md, "Tests that need Postfix").
const EnvRequire = "LISTGATE_TEST_POSTFIX"

// Program is a daemon that a harness runs, as Require reports it missing.
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
}

// Require ends the test if missing, why the program cannot run here, is
// not empty: with a failure if EnvRequire is "1", otherwise with a skip
// that gives the reason and p.Hint. It returns if missing is empty.
func (p Program) Require(t testing.TB, missing string) {
	t.Helper()
	if missing == "" {
		return
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s: %s (%s=1: %s is required)", p.Harness, missing, EnvRequire, p.Name)
	}
	t.Skipf("%s: %s. %s; %s=1 makes this a failure", p.Harness, missing, p.Hint, EnvRequire)
}
