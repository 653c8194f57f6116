package postfixtest_test

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/postfixtest"
	"github.com/listgate/listgate/internal/proctest"
)

// TestSkipsPromptlyWithoutRoot: where Postfix cannot be started (here: not
// root), every test that needs it skips at once with the hint, or fails at
// once under LISTGATE_TEST_POSTFIX=1. `go test ./...` as an unprivileged
// user once hung for ten minutes instead, in the cleanup of an LMTP peer
// started before the skip. As root, the test runs this package's tests
// again as the user nobody; as any other user, it checks Start itself.
func TestSkipsPromptlyWithoutRoot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the harness runs Postfix on Linux only")
	}
	if os.Geteuid() != 0 {
		proctest.GivesUp(t, func(tb testing.TB) {
			postfixtest.Start(tb, postfixtest.Options{LMTP: "unix:listgate/lmtp", Milter: "unix:listgate/milter"})
		}, "Postfix", "apt-get install postfix", "starting Postfix needs root")
		return
	}

	// In the package's directory, from where the tests read contrib/postfix.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	nobody := proctest.AsNobody(t, "postfixtest", wd, "-test.run", ".", "-test.skip", "^TestSkipsPromptlyWithoutRoot$")
	tests := listTests(t, nobody.Bin)

	t.Run("skip", func(t *testing.T) {
		out, took := nobody.Skip(t)
		// Parallel tests interleave their lines: count the skips and the
		// skip messages with the hint.
		skips := strings.Count(out, "--- SKIP: ")
		hints := 0
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "postfixtest: starting Postfix needs root") && strings.Contains(line, "apt-get install postfix") {
				hints++
			}
		}
		if skips == 0 || hints != skips {
			t.Errorf("as nobody, %d tests skipped, %d with the reason and how to install Postfix:\n%s", skips, hints, out)
		}
		if !strings.Contains(out, "--- SKIP: TestContribMainCFOverTCP ") {
			t.Errorf("as nobody, TestContribMainCFOverTCP did not skip:\n%s", out)
		}
		t.Logf("as nobody: %d of %d tests skipped, in %v", skips, len(tests), took.Round(time.Millisecond))
	})
	t.Run(postfixtest.EnvRequire+"=1", func(t *testing.T) {
		nobody.Fail(t, "Postfix is required")
	})
}

// listTests lists the tests of this package but this one.
func listTests(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command(bin, "-test.list", ".").Output()
	if err != nil {
		t.Fatalf("%s -test.list: %v", bin, err)
	}
	var tests []string
	for _, name := range strings.Fields(string(out)) {
		if strings.HasPrefix(name, "Test") && name != "TestSkipsPromptlyWithoutRoot" {
			tests = append(tests, name)
		}
	}
	return tests
}
