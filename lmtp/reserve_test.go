package lmtp

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/spool"
)

// fakeDisk is a spool file system whose free space a test sets
// (spool.Options.Statfs).
type fakeDisk struct {
	mu sync.Mutex
	sp spool.Space
}

func (d *fakeDisk) set(free, freeInodes int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sp.Free, d.sp.FreeInodes = free, freeInodes
}

func (d *fakeDisk) statfs(string) (spool.Space, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sp, nil
}

const noSpaceRCPT = "452 4.3.1 Insufficient system storage"

// TestReserveRCPT: a recipient that would be accepted gets 452 4.3.1 at
// RCPT when its copy of the message (SIZE= times the recipients accepted
// so far) would leave less than the spool's reserve free, in bytes or in
// inodes; other verdicts keep their reply; once space is freed the same
// recipient is accepted and delivered.
func TestReserveRCPT(t *testing.T) {
	const (
		MiB    = 1 << 20
		size   = 100 * MiB // the file system
		inodes = 1000
	)
	tests := []struct {
		name        string
		reserve     spool.Reserve
		free, files int64 // free bytes and inodes
		size        int64 // MAIL FROM's SIZE=, 0: none
		rcpts       []string
		want        []string // RCPT replies, "" accepted
	}{
		{"above", spool.Reserve{Bytes: 10 * MiB}, 11 * MiB, 500, 0,
			[]string{"mylist@example.com"}, []string{""}},
		{"below bytes", spool.Reserve{Bytes: 10 * MiB}, 10*MiB - 1, 500, 0,
			[]string{"mylist@example.com", "mylist-owner@example.com"}, []string{noSpaceRCPT, noSpaceRCPT}},
		{"below percent", spool.Reserve{Percent: 5}, 5*MiB - 1, 500, 0,
			[]string{"mylist@example.com"}, []string{noSpaceRCPT}},
		// 10 MiB of 100 MiB is 10% of the inodes: 100.
		{"below inodes", spool.Reserve{Bytes: 10 * MiB}, 50 * MiB, 100, 0,
			[]string{"mylist@example.com"}, []string{noSpaceRCPT}},
		{"inodes for one more", spool.Reserve{Bytes: 10 * MiB}, 50 * MiB, 101, 0,
			[]string{"mylist@example.com", "mylist-owner@example.com"}, []string{"", noSpaceRCPT}},
		// Each accepted recipient's copy counts: room for one more
		// 1 MiB message above the reserve, not two.
		{"SIZE per recipient", spool.Reserve{Bytes: 10 * MiB}, 11*MiB + MiB/2, 500, MiB,
			[]string{"mylist@example.com", "mylist-owner@example.com"}, []string{"", noSpaceRCPT}},
		{"refusals keep their reply", spool.Reserve{Bytes: 10 * MiB}, 0, 0, 0,
			[]string{"nosuchlist@example.com", "someone@elsewhere.example", "mylist@example.com"},
			[]string{unavailable, unavailable, noSpaceRCPT}},
		{"no reserve", spool.Reserve{}, 0, 0, 0,
			[]string{"mylist@example.com"}, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			disk := &fakeDisk{sp: spool.Space{Size: size, Inodes: inodes}}
			disk.set(tt.free, tt.files)
			h := start(t, config{spool: func(o *spool.Options) {
				o.Reserve, o.Statfs, o.SpaceTTL = tt.reserve, disk.statfs, time.Nanosecond
			}})
			c := h.client()
			var opts = sizeOpt(tt.size)
			if tt.size == 0 {
				opts = nil
			}
			rr, dr := transact(t, c, "anne@example.org", opts, tt.rcpts, message("Subject: reserve\n\nhi\n"))
			if strings.Join(rr, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("RCPT replies %q, want %q", rr, tt.want)
			}
			refused, accepted := 0, 0
			for i, r := range tt.rcpts {
				if tt.want[i] == "" {
					accepted++
					if dr[r] != ok(r) {
						t.Errorf("%s after DATA: %q", r, dr[r])
					}
				}
				if tt.want[i] == noSpaceRCPT {
					refused++
				}
			}
			if n := h.metric("listgate_lmtp_recipients_total", "verdict", "no-space"); n != float64(refused) {
				t.Errorf("recipients_total{verdict=no-space} = %v, want %d", n, refused)
			}
			if refused == 0 {
				return
			}
			if got := h.spoolFiles("new"); len(got) != accepted {
				t.Errorf("spool holds %v, want the %d files of the recipients accepted", got, accepted)
			}
			lines := h.logLines("rcpt")
			if v := lines[len(lines)-1]["verdict"]; v != "no-space" {
				t.Errorf("last rcpt log line has verdict %v, want no-space", v)
			}

			// Space is freed: the retry is accepted and delivered.
			disk.set(size, inodes)
			_, dr = transact(t, c, "anne@example.org", opts, []string{"mylist@example.com"}, message("Subject: retry\n\nhi\n"))
			if dr["mylist@example.com"] != ok("mylist@example.com") {
				t.Errorf("after freeing space: %q", dr)
			}
			if fs := h.newFiles("mylist@example.com", lists.Post); len(fs) == 0 {
				t.Errorf("nothing delivered after freeing space")
			}
		})
	}
}

// TestReserveCache: the free space is read at most once per SpaceTTL,
// however many recipients ask; a delivery's file is taken off the cached
// reading, so recipients after it are judged on what is left.
func TestReserveCache(t *testing.T) {
	disk := &fakeDisk{sp: spool.Space{Size: 1 << 30, Inodes: 1 << 20}}
	disk.set(1<<30, 1<<20)
	var calls atomic.Int64
	h := start(t, config{spool: func(o *spool.Options) {
		o.Reserve = spool.Reserve{Bytes: 1 << 20}
		o.SpaceTTL = time.Hour
		o.Statfs = func(p string) (spool.Space, error) {
			calls.Add(1)
			return disk.statfs(p)
		}
	}})
	c := h.client()
	before := calls.Load()
	for range 5 {
		rr, _ := transact(t, c, "anne@example.org", nil, []string{"mylist@example.com", "mylist-owner@example.com"}, message("Subject: c\n\nhi\n"))
		if strings.Join(rr, "") != "" {
			t.Fatalf("RCPT replies %q", rr)
		}
	}
	if n := calls.Load() - before; n != 0 {
		t.Errorf("%d statfs calls for 10 recipients within the TTL, want 0 after the start", n)
	}
	// The disk is full now, but the cached reading (less the ten files)
	// still says otherwise until the TTL ends: the check is a cheap
	// early warning, the delivery's own ENOSPC stays the last word.
	disk.set(0, 0)
	rr, _ := transact(t, c, "anne@example.org", nil, []string{"mylist@example.com"}, message("Subject: c\n\nhi\n"))
	if rr[0] != "" {
		t.Errorf("RCPT within the TTL: %q", rr[0])
	}
}

// TestReserveAfterDATA: a client that sends no SIZE= passes the RCPT
// check with a size of 0; after DATA each copy is checked against the
// reserve with the message's real size, on the cached reading that loses
// each file delivered before it: the copies that fit get 250, the rest
// 452 4.3.1, and the file system is never filled past the reserve.
func TestReserveAfterDATA(t *testing.T) {
	const MiB = 1 << 20
	disk := &fakeDisk{sp: spool.Space{Size: 1 << 30, Inodes: 1 << 20}}
	disk.set(10*MiB+MiB+MiB/2, 1<<19) // room above the reserve for one 1 MiB copy, not two
	h := start(t, config{spool: func(o *spool.Options) {
		o.Reserve, o.Statfs, o.SpaceTTL = spool.Reserve{Bytes: 10 * MiB}, disk.statfs, time.Hour
	}})
	rcpts := []string{"mylist@example.com", "mylist-owner@example.com", "mylist-request@example.com"}
	body := message("Subject: no SIZE=\n\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", MiB/64))
	rr, dr := transact(t, h.client(), "anne@example.org", nil, rcpts, body)
	if strings.Join(rr, "|") != "||" {
		t.Fatalf("RCPT replies %q: without SIZE= every recipient passes RCPT", rr)
	}
	want := map[string]string{rcpts[0]: ok(rcpts[0]), rcpts[1]: "452 4.3.1 ", rcpts[2]: "452 4.3.1 "}
	for _, r := range rcpts {
		if !strings.HasPrefix(dr[r], want[r]) {
			t.Errorf("%s after DATA: %q, want %q", r, dr[r], want[r])
		}
	}
	if got := h.spoolFiles("new"); len(got) != 1 {
		t.Errorf("spool holds %v, want the one copy that fit", got)
	}
	if n := h.metric("listgate_lmtp_deliveries_total", "result", "no-space"); n != 2 {
		t.Errorf("deliveries_total{result=no-space} = %v, want 2", n)
	}
}
