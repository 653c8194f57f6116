package mailmantest_test

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/listgate/listgate/internal/mailmantest"
	"github.com/listgate/listgate/internal/proctest"
)

// TestSkipsPromptlyWithoutRoot: where Mailman cannot be run (here: not
// root), the tests that need it skip at once with a hint, or fail at once
// under LISTGATE_TEST_POSTFIX=1. As root, the test runs them again as the
// user nobody; as any other user, it checks Start itself.
func TestSkipsPromptlyWithoutRoot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the harness runs Mailman on Linux only")
	}
	if os.Geteuid() != 0 {
		proctest.GivesUp(t, func(tb testing.TB) { mailmantest.Start(tb, mailmantest.Options{}) },
			"Mailman", "mailman3", "needs root", "not installed", "no user")
		return
	}

	mailmantest.Require(t) // as root: the reason to skip must be the user alone
	nobody := proctest.AsNobody(t, "mailmantest", "", "-test.run", "^(TestMailman|TestTwoInstances)$")
	t.Run("skip", func(t *testing.T) {
		out, _ := nobody.Skip(t)
		for _, name := range []string{"TestMailman", "TestTwoInstances"} {
			if !strings.Contains(out, "--- SKIP: "+name+" ") {
				t.Errorf("as nobody, %s did not skip:\n%s", name, out)
			}
		}
		if !strings.Contains(out, "mailmantest: running Mailman as the user list needs root") || !strings.Contains(out, "mailman3") {
			t.Errorf("as nobody, the skips do not say why and what to install:\n%s", out)
		}
	})
	t.Run(mailmantest.EnvRequire+"=1", func(t *testing.T) {
		nobody.Fail(t, "Mailman is required")
	})
}
