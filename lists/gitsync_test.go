package lists_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
)

// gitSyncRoot lays out a directory the way a git-sync sidecar publishes a
// repository: each revision checked out in a worktree of its own,
// root/.worktrees/REV, and root/repo a symlink to the current one,
// replaced atomically (a new symlink renamed over it). The lists
// directory listgate is given is root/repo/lists: a path through the
// symlink, whose target changes at every sync.
type gitSyncRoot struct {
	t    *testing.T
	root string
	rev  int
}

// lists is the path listgate watches.
func (g *gitSyncRoot) lists() string { return filepath.Join(g.root, "repo", "lists") }

// publish checks files out as a new revision and swaps the link to it;
// with removeOld, the previous worktree is then removed, as git-sync
// cleans up the worktrees it no longer publishes.
func (g *gitSyncRoot) publish(files map[string]string, removeOld bool) {
	t := g.t
	t.Helper()
	old := g.rev
	g.rev++
	wt := filepath.Join(g.root, ".worktrees", fmt.Sprintf("rev%d", g.rev))
	if err := os.MkdirAll(filepath.Join(wt, "lists"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(wt, "lists", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(g.root, ".repo.tmp")
	if err := os.Symlink(filepath.Join(".worktrees", filepath.Base(wt)), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(g.root, "repo")); err != nil {
		t.Fatal(err)
	}
	if removeOld && old > 0 {
		if err := os.RemoveAll(filepath.Join(g.root, ".worktrees", fmt.Sprintf("rev%d", old))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWatchGitSyncSwap: a lists directory reached through a symlink that
// a git-sync sidecar swaps. The watcher watches the directory the path
// led to when it started; git-sync's removal of that (old) worktree is
// the event that makes the watcher watch the path afresh and rescan it,
// so a list added, changed or removed is live within the debounce. A
// swap whose old worktree stays is not an event in the watched
// directory: the next rescan (rescan_interval, or SIGHUP) reads it, since
// a rescan opens the path afresh.
func TestWatchGitSyncSwap(t *testing.T) {
	g := &gitSyncRoot{t: t, root: t.TempDir()}
	g.publish(map[string]string{
		"@example.org":         "aliases = [\"lists.example.org\"]\n",
		"announce@example.org": "max_message_size = 1000\n",
		"old@example.org":      "",
	}, true)
	w, _ := startWatch(t, g.lists())

	settled := func(want ...string) func() bool { return settledTo(w, want...) }
	testutil.WaitFor(t, time.Second, "initial lists", settled("announce@example.org", "old@example.org"))

	// A sync that adds a list, removes one and changes one, the old
	// worktree removed.
	g.publish(map[string]string{
		"@example.org":         "aliases = [\"lists.example.org\"]\n",
		"announce@example.org": "max_message_size = 2000\n",
		"new@example.org":      "",
	}, true)
	testutil.WaitFor(t, time.Second, "sync 2 live", settled("announce@example.org", "new@example.org"))
	if v := w.Snapshot().Resolve("announce@lists.example.org"); v.Status != lists.Accept || v.MaxMessageSize != 2000 {
		t.Fatalf("after sync 2: announce@lists.example.org: %+v", v)
	}

	// And again: the watcher follows the link after its first re-watch.
	g.publish(map[string]string{
		"@example.org":    "aliases = [\"lists.example.org\"]\n",
		"new@example.org": "",
	}, true)
	testutil.WaitFor(t, time.Second, "sync 3 live", settled("new@example.org"))

	// A swap that keeps the old worktree: read by a rescan.
	g.publish(map[string]string{
		"@example.org":     "aliases = [\"lists.example.org\"]\n",
		"new@example.org":  "",
		"kept@example.org": "",
	}, false)
	w.Rescan()
	testutil.WaitFor(t, time.Second, "sync 4 after a rescan", settled("kept@example.org", "new@example.org"))
}
