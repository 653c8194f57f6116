// Package proctest holds what the harnesses that run a real daemon
// privately for a test (internal/postfixtest for Postfix,
// internal/mailmantest for GNU Mailman 3) share: the rule for a missing
// daemon, the instance directory and its lock, the processes of an
// instance, and the helpers of the test that checks the rule.
//
// # The rule
//
// A test that needs a daemon calls its harness's Require, which calls
// Program.Require: where the daemon cannot run (not Linux, not installed,
// not root), the test skips with a hint saying what to install, or fails
// when EnvRequire is "1", as in CI, so that CI cannot pass by skipping
// (docs/design.md, "Tests that need Postfix"). Either way it ends before
// anything is started, so a package's tests give up within seconds.
//
// # Instances
//
// An instance lives in a directory /tmp/PREFIX-NNNN of its own: short,
// since unix-domain socket paths are limited to 107 bytes, and reachable
// by the daemon's own user. NewInstance makes it, RemoveInstance removes
// it. Its lock file holds a flock for as long as the test binary lives,
// however it ends; Sweep, which NewInstance calls, removes the
// directories, and ends the processes, of instances whose test binary was
// killed before its cleanups ran (a go test timeout).
//
// # Processes
//
// A daemon runs in a process group of its own. The test binary makes
// itself a child subreaper (BecomeSubreaper), so that daemons orphaned
// when their master exits are reaped by it rather than left as zombies
// where PID 1 does not reap (many containers and CI sandboxes). WaitGone
// reaps a group, by process group only so no other child of the test
// binary is waited for, until /proc shows none of it alive. All of it is
// Linux only: elsewhere the functions fail or find nothing, and the
// harnesses skip before calling them.
//
// # The test of the rule
//
// Each harness has a test, TestSkipsPromptlyWithoutRoot, that proves the
// rule: as root it runs the package's tests again as the user nobody
// (AsNobody), who cannot start the daemon, and checks that they skip with
// the hint, or fail under EnvRequire=1, within Promptly; as any other user
// it checks that Start itself gives up at once (GivesUp).
package proctest
