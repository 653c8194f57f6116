package lmtp

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/spool"
)

// mountTmpfs mounts a tmpfs with the given options on a fresh directory
// and unmounts it when the test ends (after the server it serves has
// stopped: cleanups run last registered first). It skips the test
// unless it runs as root with the right to mount (CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root: run this test as root to check the spool reserve on a real file system (TestReserveRCPT covers it with an injected statfs)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		t.Skipf("mount -t tmpfs -o %s %s: %v (no CAP_SYS_ADMIN in this container?)", opts, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("umount %s: %v", dir, err)
		}
	})
	return dir
}

// TestReserveTmpfs fills a 4 MiB tmpfs through the LMTP door with
// 200 KB messages, SIZE= given as Postfix's LMTP client gives it, and a
// 1 MiB reserve: deliveries are accepted until the next copy would cut
// into the reserve, then RCPT gets 452 4.3.1 with the reserve still free
// (listgate does not fill the disk to its last block). Once the list's
// reader takes the mail away, the same recipient is accepted and its
// message delivered.
func TestReserveTmpfs(t *testing.T) {
	const reserve = 1 << 20
	dir := mountTmpfs(t, "size=4m,mode=0755")
	h := start(t, config{spool: func(o *spool.Options) {
		o.Dir = dir
		o.Reserve = spool.Reserve{Bytes: reserve}
		o.SpaceTTL = time.Millisecond // see the free space after each delivery
	}})
	body := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu\n", 3000) // 204,000 bytes
	msg := message("Subject: fill\n\n" + body)
	size := sizeOpt(int64(len(msg)))
	c := h.client()
	const rcpt = "mylist@example.com"
	delivered := 0
	for ; ; delivered++ {
		if delivered > 20 {
			t.Fatalf("%d messages of %d bytes accepted on a 4 MiB file system with a 1 MiB reserve", delivered, len(msg))
		}
		rr, dr := transact(t, c, "anne@example.org", size, []string{rcpt}, msg)
		if rr[0] == noSpaceRCPT {
			break
		}
		if rr[0] != "" || dr[rcpt] != ok(rcpt) {
			t.Fatalf("delivery %d: RCPT %q, after DATA %q", delivered+1, rr[0], dr[rcpt])
		}
	}
	sp, err := spool.Statfs(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages of %d bytes delivered, then 452 4.3.1 with %d bytes free (reserve %d)", delivered, len(msg), sp.Free, reserve)
	if delivered < 12 {
		t.Errorf("only %d messages delivered before the reserve: 3 MiB were free above it", delivered)
	}
	// Each copy is the message less its CRs plus the added headers, in
	// whole pages: a few KiB of slack at most.
	if sp.Free < reserve-64<<10 {
		t.Errorf("%d bytes free after the door refused, want about the %d of the reserve", sp.Free, reserve)
	}

	// The list's reader takes the messages away: the retry is delivered.
	files := h.newFiles(rcpt, "post")
	if len(files) != delivered {
		t.Fatalf("new/ holds %d files, want %d", len(files), delivered)
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	r := h.lhlo()
	if got := r.cmd(fmt.Sprintf("MAIL FROM:<anne@example.org> SIZE=%d", len(msg))); !strings.HasPrefix(got, "250") {
		t.Fatalf("MAIL: %q", got)
	}
	testutil.WaitFor(t, 5*time.Second, "RCPT accepted once space was freed", func() bool {
		return strings.HasPrefix(r.cmd("RCPT TO:<"+rcpt+">"), "250 ")
	})
	if got := r.cmd("DATA"); !strings.HasPrefix(got, "354") {
		t.Fatalf("DATA: %q", got)
	}
	r.write(msg + ".\r\n")
	// The refused RCPTs before it are no recipients: one reply.
	if got := r.reply(); got != ok(rcpt) {
		t.Fatalf("after DATA: %q", got)
	}
	if got := h.newFiles(rcpt, "post"); len(got) == 0 {
		t.Fatalf("nothing in new/ after the 250")
	}
}

// TestReserveTmpfsInodes: with inodes running out (a tmpfs with 64 of
// them) while bytes are plenty, the reserve's share of the inodes (2 MiB
// of 8 MiB: a quarter, 16 inodes) is kept free too.
func TestReserveTmpfsInodes(t *testing.T) {
	dir := mountTmpfs(t, "size=8m,nr_inodes=64,mode=0755")
	h := start(t, config{spool: func(o *spool.Options) {
		o.Dir = dir
		o.Reserve = spool.Reserve{Bytes: 2 << 20}
		o.SpaceTTL = time.Millisecond
	}})
	c := h.client()
	const rcpt = "mylist@example.com"
	delivered := 0
	for ; ; delivered++ {
		if delivered > 64 {
			t.Fatalf("%d messages accepted on a file system of 64 inodes", delivered)
		}
		rr, dr := transact(t, c, "anne@example.org", nil, []string{rcpt}, message("Subject: inode\n\nhi\n"))
		if rr[0] == noSpaceRCPT {
			break
		}
		if rr[0] != "" || dr[rcpt] != ok(rcpt) {
			t.Fatalf("delivery %d: RCPT %q, after DATA %q", delivered+1, rr[0], dr[rcpt])
		}
	}
	sp, err := spool.Statfs(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages delivered, then 452 4.3.1 with %d of %d inodes free and %d bytes", delivered, sp.FreeInodes, sp.Inodes, sp.Free)
	if sp.FreeInodes < 16 || sp.Free < 6<<20 {
		t.Errorf("%d inodes and %d bytes free, want at least 16 inodes (the reserve) and plenty of bytes", sp.FreeInodes, sp.Free)
	}
	if delivered < 30 {
		t.Errorf("only %d messages delivered", delivered)
	}
	// The list's reader takes the messages away: deliveries resume.
	files := h.newFiles(rcpt, "post")
	for _, f := range files {
		os.Remove(f)
	}
	testutil.WaitFor(t, 5*time.Second, "a delivery once inodes were freed", func() bool {
		rr, dr := transact(t, c, "anne@example.org", nil, []string{rcpt}, message("Subject: inode\n\nhi\n"))
		return rr[0] == "" && dr[rcpt] == ok(rcpt)
	})
}

// TestSpillFullDisk: a message larger than the free space of the spool's
// file system (a 1 MiB tmpfs, no reserve, no SIZE= to refuse it at RCPT)
// fills the disk while it is spilled: every recipient gets 452 4.3.1
// after DATA, nothing is left in new/ or in the spool root, the space comes
// back at once, and the next message is delivered.
func TestSpillFullDisk(t *testing.T) {
	dir := mountTmpfs(t, "size=1m,mode=0755")
	h := start(t, config{spool: func(o *spool.Options) {
		o.Dir = dir
		o.SpaceTTL = time.Millisecond
	}})
	before, err := spool.Statfs(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := h.client()
	rcpts := []string{"mylist@example.com", "mylist-owner@example.com"}
	big := message("Subject: big\n\n" + strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu\n", 30000)) // 2 MiB
	rr, dr := transact(t, c, "anne@example.org", nil, rcpts, big)
	for i, rcpt := range rcpts {
		if want := "452 4.3.1 <" + rcpt + "> Insufficient system storage"; rr[i] != "" || dr[rcpt] != want {
			t.Errorf("%s: RCPT %q, after DATA %q; want %q", rcpt, rr[i], dr[rcpt], want)
		}
	}
	if files := append(h.newFiles(rcpts[0], "post"), h.newFiles(rcpts[1], "owner")...); len(files) != 0 {
		t.Errorf("new/ holds %q after a 452", files)
	}
	after, err := spool.Statfs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after.Free < before.Free-64<<10 {
		t.Errorf("%d bytes free after the 452, %d before: the spill file was not released", after.Free, before.Free)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), spool.SpillPrefix) {
			t.Errorf("spill file %s left in the spool root", e.Name())
		}
	}
	rr, dr = transact(t, c, "anne@example.org", nil, rcpts[:1], message("Subject: small\n\nhi\n"))
	if rr[0] != "" || dr[rcpts[0]] != ok(rcpts[0]) {
		t.Errorf("next message: RCPT %q, after DATA %q", rr[0], dr[rcpts[0]])
	}
}
