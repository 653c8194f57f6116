package lmtp

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/spool"
)

// TestStorageFaults fails each durable step of the spool in turn for one
// recipient of a three-recipient transaction: that recipient gets a
// tempfail (451 4.3.0, or 452 4.3.1 when the disk is full or the quota
// exceeded) and nothing in new/ (nor a leftover in tmp/); the others get
// 250 and their file. Once the fault is gone, the same recipient is
// delivered (the folder is made again where needed).
func TestStorageFaults(t *testing.T) {
	const (
		localError = "451 4.3.0 <mylist-bounces@example.com> Requested action aborted: local error in processing"
		noSpace    = "452 4.3.1 <mylist-bounces@example.com> Insufficient system storage"
	)
	tests := []struct {
		op   spool.Op
		err  error
		want string
	}{
		{spool.OpMkdir, syscall.EACCES, localError},
		{spool.OpCreate, syscall.EIO, localError},
		{spool.OpWrite, syscall.EIO, localError},
		{spool.OpFsync, syscall.EIO, localError},
		{spool.OpRename, syscall.EXDEV, localError},
		{spool.OpDirFsync, syscall.EIO, localError},
		{spool.OpWrite, syscall.ENOSPC, noSpace},
		{spool.OpFsync, syscall.EDQUOT, noSpace},
		{spool.OpCreate, syscall.ENOSPC, noSpace},
		{spool.OpMkdir, syscall.ENOSPC, noSpace},
	}
	rcpts := []string{"mylist@example.com", "mylist-bounces@example.com", "mylist-owner@example.com"}
	for _, tt := range tests {
		t.Run(tt.op.String()+"/"+tt.err.Error(), func(t *testing.T) {
			h := start(t, config{})
			var faults int
			h.setFault(func(op spool.Op, path string) error {
				if op == tt.op && strings.Contains(path, "/mylist/bounces") {
					faults++
					return tt.err
				}
				return nil
			})
			c := h.client()
			rr, dr := transact(t, c, "anne@example.org", nil, rcpts, message("Subject: fault\n\nhi\n"))
			if strings.Join(rr, "") != "" {
				t.Fatalf("RCPT replies %q", rr)
			}
			if faults == 0 {
				t.Fatalf("the %s fault was never injected", tt.op)
			}
			for rcpt, want := range map[string]string{
				"mylist@example.com":         ok("mylist@example.com"),
				"mylist-bounces@example.com": tt.want,
				"mylist-owner@example.com":   ok("mylist-owner@example.com"),
			} {
				if dr[rcpt] != want {
					t.Errorf("%s after DATA: %q, want %q", rcpt, dr[rcpt], want)
				}
			}
			if fs := h.newFiles("mylist@example.com", lists.Bounces); len(fs) != 0 {
				t.Errorf("new/ holds %v for a recipient that got a tempfail", fs)
			}
			if fs := h.spoolFiles("tmp"); len(fs) != 0 {
				t.Errorf("tmp/ holds %v after the failed delivery", fs)
			}
			if got := h.spoolFiles("new"); len(got) != 2 {
				t.Errorf("spool holds %v, want the post and owner files", got)
			}
			failed := h.logLines("delivery failed")
			if len(failed) != 1 || failed[0]["rcpt"] != "mylist-bounces@example.com" || !strings.Contains(failed[0]["err"].(string), tt.err.Error()) {
				t.Errorf("delivery failed log lines: %v", failed)
			}
			result := "error"
			if errors.Is(tt.err, syscall.ENOSPC) || errors.Is(tt.err, syscall.EDQUOT) {
				result = "no-space"
			}
			if n := h.metric("listgate_lmtp_deliveries_total", "result", result); n != 1 {
				t.Errorf("deliveries_total{result=%q} = %v, want 1", result, n)
			}

			// The sender retries; the disk is fine again.
			h.setFault(nil)
			_, dr = transact(t, c, "anne@example.org", nil, rcpts[1:2], message("Subject: retry\n\nhi\n"))
			if dr[rcpts[1]] != ok(rcpts[1]) {
				t.Errorf("retry: %q", dr)
			}
			if fs := h.newFiles("mylist@example.com", lists.Bounces); len(fs) != 1 {
				t.Errorf("after the retry new/ holds %v, want one file", fs)
			}
		})
	}
}
