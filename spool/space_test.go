package spool

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestParseReserve(t *testing.T) {
	tests := []struct {
		in   string
		want Reserve
		str  string // String of the result
	}{
		{"auto", Reserve{Auto: true}, "auto"},
		{" AUTO ", Reserve{Auto: true}, "auto"},
		{"0", Reserve{}, "0"},
		{"0%", Reserve{}, "0"},
		{"512MiB", Reserve{Bytes: 512 << 20}, "536870912"},
		{"1GB", Reserve{Bytes: 1e9}, "1000000000"},
		{"5%", Reserve{Percent: 5}, "5%"},
		{"0.5 %", Reserve{Percent: 0.5}, "0.5%"},
		{"100%", Reserve{Percent: 100}, "100%"},
		{"1%,256MiB", Reserve{Bytes: 256 << 20, Percent: 1}, "1%,268435456"},
		{"256MiB, 1%", Reserve{Bytes: 256 << 20, Percent: 1}, "1%,268435456"},
	}
	for _, tt := range tests {
		got, err := ParseReserve(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseReserve(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if s := got.String(); s != tt.str {
			t.Errorf("ParseReserve(%q).String() = %q, want %q", tt.in, s, tt.str)
		}
	}
	for _, in := range []string{"", "-1", "-1%", "101%", "5%%", "NaN%", "Inf%", "x", "1%,2%", "1MB,2MB", "1%,2MB,3", "10 percent", ",", "1%,"} {
		if got, err := ParseReserve(in); err == nil {
			t.Errorf("ParseReserve(%q) = %+v, want an error", in, got)
		} else if !strings.Contains(err.Error(), "invalid reserve") {
			t.Errorf("ParseReserve(%q): error %q does not say what is wrong", in, err)
		}
	}
}

func TestDefaultReserve(t *testing.T) {
	if got := DefaultReserve(64 << 20); got != (Reserve{Bytes: 128 << 20, Percent: 1}) {
		t.Errorf("DefaultReserve(64 MiB) = %+v", got)
	}
	if got := (Reserve{Auto: true}).Resolve(0); got != DefaultReserve(64<<20) {
		t.Errorf("auto with no size = %+v, want the default for 64 MiB", got)
	}
	if got := (Reserve{Auto: true}).Resolve(10 << 20); got != (Reserve{Bytes: 20 << 20, Percent: 1}) {
		t.Errorf("auto for 10 MiB = %+v", got)
	}
	if got := DefaultReserve(math.MaxInt64); got.Bytes != math.MaxInt64 {
		t.Errorf("DefaultReserve(MaxInt64) = %+v: overflow", got)
	}
	if got := (Reserve{Bytes: 5}).Resolve(1 << 30); got != (Reserve{Bytes: 5}) {
		t.Errorf("Resolve changed an explicit reserve: %+v", got)
	}
}

func TestReserveFor(t *testing.T) {
	const GiB = 1 << 30
	tests := []struct {
		r                  Reserve
		size, inodes       int64
		wantBytes, wantIno int64
	}{
		{Reserve{}, 10 * GiB, 1000, 0, 0},
		{Reserve{Bytes: GiB}, 10 * GiB, 1000, GiB, 100},
		{Reserve{Percent: 5}, 10 * GiB, 1000, GiB / 2, 50},
		{Reserve{Bytes: GiB, Percent: 5}, 10 * GiB, 1000, GiB, 100},      // bytes win
		{Reserve{Bytes: GiB, Percent: 50}, 10 * GiB, 1000, 5 * GiB, 500}, // percent wins
		{Reserve{Bytes: 20 * GiB}, 10 * GiB, 1000, 20 * GiB, 1000},       // more than the file system
		{Reserve{Bytes: GiB}, 10 * GiB, 0, GiB, 0},                       // no fixed inodes (btrfs)
		{DefaultReserve(64 << 20), 1000 * GiB, 1 << 20, 10 * GiB, 10486}, // 1% of a large disk
		{DefaultReserve(64 << 20), 1 * GiB, 65536, 128 << 20, 8192},      // 2 messages on a small one
		{Reserve{Bytes: GiB}, 0, 0, 0, 0},                                // nothing known
	}
	for _, tt := range tests {
		b, i := reserveFor(tt.r, tt.size, tt.inodes)
		if b != tt.wantBytes || i != tt.wantIno {
			t.Errorf("reserveFor(%+v, %d, %d) = %d, %d; want %d, %d", tt.r, tt.size, tt.inodes, b, i, tt.wantBytes, tt.wantIno)
		}
	}
}

func TestSpaceBelow(t *testing.T) {
	sp := Space{Free: 1000, FreeInodes: 10, Inodes: 100, ReserveBytes: 600, ReserveInodes: 5}
	tests := []struct {
		bytes, files int64
		want         bool
	}{
		{0, 0, false},
		{400, 1, false},
		{401, 1, true},
		{0, 5, false},
		{0, 6, true},
		{-5, 0, false},
	}
	for _, tt := range tests {
		if got := sp.Below(tt.bytes, tt.files); got != tt.want {
			t.Errorf("%+v.Below(%d, %d) = %v, want %v", sp, tt.bytes, tt.files, got, tt.want)
		}
	}
	sp.Inodes, sp.FreeInodes = 0, 0 // no fixed number of inodes
	if sp.Below(0, 1000) {
		t.Errorf("Below counts inodes on a file system without a fixed number")
	}
}

// fakeFS is an injected statfs whose answer a test sets, counting calls.
type fakeFS struct {
	mu    sync.Mutex
	sp    Space
	err   error
	calls int
}

func (f *fakeFS) statfs(string) (Space, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.sp, f.err
}

func (f *fakeFS) set(sp Space, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sp, f.err = sp, err
}

func (f *fakeFS) n() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// clock is a settable time for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestRoom drives Room with an injected statfs and clock: the reading is
// reused for the TTL, a delivery is taken off it, ENOSPC drops it, a
// failing statfs lets mail through, and the crossings are logged once.
func TestRoom(t *testing.T) {
	fs := &fakeFS{sp: Space{Free: 100 << 20, Size: 500 << 20, FreeInodes: 5000, Inodes: 10000}}
	clk := &clock{t: testNow}
	var logs bytes.Buffer
	s, err := New(Options{Dir: t.TempDir(), Hostname: testHost, Now: clk.now, Statfs: fs.statfs,
		Reserve: Reserve{Bytes: 50 << 20}, SpaceTTL: time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if fs.n() != 1 {
		t.Fatalf("New read the free space %d times, want once", fs.n())
	}
	if err := s.Room(10<<20, 1); err != nil {
		t.Fatalf("Room with 50 MiB to spare: %v", err)
	}
	if err := s.Room(50<<20+1, 1); !errors.Is(err, ErrBelowReserve) || !IsNoSpace(err) {
		t.Fatalf("Room past the reserve: %v, want ErrBelowReserve", err)
	}
	if err := s.Room(0, 4000); err != nil {
		t.Fatalf("Room for 4000 files: %v", err)
	}
	if fs.n() != 1 {
		t.Errorf("%d statfs calls within the TTL, want 1", fs.n())
	}

	// Inodes run out: 50 MiB of 500 MiB is 10% of the inodes, 1000 of
	// 10000. Seen once the TTL has passed.
	fs.set(Space{Free: 100 << 20, Size: 500 << 20, FreeInodes: 1000, Inodes: 10000}, nil)
	if err := s.Room(0, 1); err != nil {
		t.Fatalf("Room within the TTL: %v", err)
	}
	clk.add(time.Second)
	if err := s.Room(0, 1); !errors.Is(err, ErrBelowReserve) {
		t.Fatalf("Room with the inodes at the reserve: %v", err)
	}

	// Then bytes: logged once for the whole time below.
	fs.set(Space{Free: 40 << 20, Size: 500 << 20, FreeInodes: 5000, Inodes: 10000}, nil)
	clk.add(time.Second)
	if err := s.Room(0, 1); !errors.Is(err, ErrBelowReserve) || !strings.Contains(err.Error(), "41943040 bytes and 5000 inodes free") {
		t.Fatalf("Room below the reserve: %v", err)
	}
	clk.add(time.Second)
	s.Room(0, 1)
	if n := strings.Count(logs.String(), "spool below its reserve"); n != 1 {
		t.Errorf("%d warnings for one crossing:\n%s", n, logs.String())
	}

	// Space is freed.
	fs.set(Space{Free: 500 << 20, Size: 500 << 20, FreeInodes: 5000, Inodes: 10000}, nil)
	clk.add(time.Second)
	if err := s.Room(0, 1); err != nil {
		t.Fatalf("Room after freeing space: %v", err)
	}
	if !strings.Contains(logs.String(), "spool above its reserve again") {
		t.Errorf("no line for the way back:\n%s", logs.String())
	}

	// A delivery is taken off the cached reading.
	env := Envelope{Sender: "a@example.org", Rcpt: "l@example.org", Domain: "example.org", Local: "l", Kind: "post"}
	big := testMessage(t, "Subject: big\r\n\r\n"+strings.Repeat("x", 1<<20)+"\r\n")
	before, _ := s.Space()
	if _, err := s.Deliver(big, env); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Space()
	if d := before.Free - after.Free; d < 1<<20 || after.FreeInodes != before.FreeInodes-1 {
		t.Errorf("a delivery of 1 MiB took %d bytes and %d inodes off the reading", d, before.FreeInodes-after.FreeInodes)
	}

	// ENOSPC from a delivery drops the reading: the next Room reads anew.
	calls := fs.n()
	s.fault = func(op Op, _ string) error {
		if op == OpWrite {
			return syscall.ENOSPC
		}
		return nil
	}
	if _, err := s.Deliver(big, env); !IsNoSpace(err) {
		t.Fatalf("Deliver: %v, want ENOSPC", err)
	}
	s.fault = nil
	s.Room(0, 1)
	if fs.n() != calls+1 {
		t.Errorf("Room after an ENOSPC read the free space %d times, want once", fs.n()-calls)
	}

	// statfs fails: Room lets the mail through, and says so once.
	fs.set(Space{}, syscall.EIO)
	clk.add(time.Second)
	if err := s.Room(1<<40, 1); err != nil {
		t.Errorf("Room with a failing statfs: %v, want nil", err)
	}
	clk.add(time.Second)
	s.Room(0, 1)
	if n := strings.Count(logs.String(), "cannot read the spool's free space"); n != 1 {
		t.Errorf("%d warnings for a failing statfs, want 1:\n%s", n, logs.String())
	}
}

// TestRoomNoReserve: with no reserve Room never reads the file system.
func TestRoomNoReserve(t *testing.T) {
	fs := &fakeFS{}
	s, err := New(Options{Dir: t.TempDir(), Statfs: fs.statfs, SpaceTTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	calls := fs.n()
	for range 10 {
		if err := s.Room(1<<40, 1<<40); err != nil {
			t.Fatalf("Room with no reserve: %v", err)
		}
	}
	if fs.n() != calls {
		t.Errorf("Room read the free space with no reserve")
	}
}

func TestStatfs(t *testing.T) {
	sp, err := Statfs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if sp.Size <= 0 || sp.Free < 0 || sp.Free > sp.Size || sp.FreeInodes < 0 || sp.FreeInodes > sp.Inodes {
		t.Errorf("Statfs: %+v", sp)
	}
	if _, err := Statfs(t.TempDir() + "/missing"); !errors.Is(err, syscall.ENOENT) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Statfs of a missing directory: %v", err)
	}
}

func TestSpaceMetrics(t *testing.T) {
	fs := &fakeFS{sp: Space{Free: 3 << 30, Size: 100 << 30, FreeInodes: 777, Inodes: 1000}}
	reg := prometheus.NewRegistry()
	if _, err := New(Options{Dir: t.TempDir(), Statfs: fs.statfs, Reserve: Reserve{Percent: 2}, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP listgate_spool_free_bytes Space available to unprivileged users on the spool's file system, in bytes (statfs f_bavail × f_bsize).
# TYPE listgate_spool_free_bytes gauge
listgate_spool_free_bytes 3.221225472e+09
# HELP listgate_spool_free_inodes Free inodes on the spool's file system (statfs f_ffree; 0 where the file system has no fixed number).
# TYPE listgate_spool_free_inodes gauge
listgate_spool_free_inodes 777
# HELP listgate_spool_reserve_bytes Free space the LMTP door keeps on the spool's file system (spool_reserve), in bytes; below it, recipients get 452 4.3.1.
# TYPE listgate_spool_reserve_bytes gauge
listgate_spool_reserve_bytes 2.147483648e+09
# HELP listgate_spool_reserve_inodes Free inodes the LMTP door keeps on the spool's file system (spool_reserve); below them, recipients get 452 4.3.1.
# TYPE listgate_spool_reserve_inodes gauge
listgate_spool_reserve_inodes 20
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// FuzzParseReserve: what ParseReserve accepts is in range and reads back
// the same from its String.
func FuzzParseReserve(f *testing.F) {
	for _, s := range []string{"auto", "0", "512MiB", "5%", "0.5%", "1%,256MiB", "101%", "-1", "1e3%", "1%,2%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ParseReserve(in)
		if err != nil {
			return
		}
		if r.Bytes < 0 || r.Percent < 0 || r.Percent > 100 || math.IsNaN(r.Percent) {
			t.Fatalf("ParseReserve(%q) = %+v: out of range", in, r)
		}
		back, err := ParseReserve(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseReserve(%q) = %+v; its String %q reads back as %+v, %v", in, r, r.String(), back, err)
		}
	})
}

// BenchmarkRoom is the cost of the reserve check at each RCPT: a cached
// reading (the common case), and a statfs(2) each time (SpaceTTL 1ns) on
// the real file system, for comparison.
func BenchmarkRoom(b *testing.B) {
	for _, bc := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", DefaultSpaceTTL}, {"statfs", time.Nanosecond}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := New(Options{Dir: b.TempDir(), Reserve: Reserve{Bytes: 1}, SpaceTTL: bc.ttl})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Room(1<<10, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
