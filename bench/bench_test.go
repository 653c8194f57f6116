package main

import (
	"os"
	"slices"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with a space and a parenthesis, as proc(5) allows.
	line := "4242 (lmtp (x) y) S 17 4242 4242 0 -1 4194560 1200 0 0 0 31 7 5 3 20 0 1 0 1000 10000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.state != 'S' || st.ppid != 17 || st.cpu != 31+7+5+3 {
		t.Errorf("parseStat = %+v, want state S, ppid 17, cpu 46", st)
	}
	for _, bad := range []string{"", "1 (x S 1", "1 (x) S 1 2 3"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestTreeCPUSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	d, err := treeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d < 0 || d > time.Hour {
		t.Errorf("treeCPU(self) = %v", d)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := slices.Clone(tc.in)
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("median reordered its argument: %v", tc.in)
		}
	}
	if m := median(nil); m == m {
		t.Errorf("median(nil) = %v, want NaN", m)
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999.4: "999", 1000: "1,000", 33259: "33,259", 1234567: "1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestFlags(t *testing.T) {
	c, err := parseFlags([]string{"--mode", "thorough", "--peers", "bare,dovecot,mailman,bare"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if c.reps != 5 || c.duration != 10*time.Second || !slices.Equal(c.peers, []string{"listgate", "bare", "dovecot", "mailman"}) {
		t.Errorf("thorough: %+v", c)
	}
	if c.fill != 100000 || c.batch != 5000 || c.forward != -1 || !c.e2e || c.rssLists != 100000 ||
		!slices.Equal(c.sizes, []int{2 << 10, 100 << 10}) || !slices.Equal(c.sessions, []int{1, 10}) {
		t.Errorf("thorough: every case at its default: %+v", c)
	}
	c, err = parseFlags(nil, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if c.reps != 3 || c.fill != 20000 || !slices.Equal(c.peers, []string{"listgate", "dovecot", "mailman", "smtp-sink", "bare"}) {
		t.Errorf("quick: %+v", c)
	}
	c, err = parseFlags([]string{"--sizes", "2", "--sessions", "10,1", "--fill", "0", "--forward", "300", "--e2e=false", "--rss-lists", "0", "--fill-batch", "1000"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.sizes, []int{2048}) || !slices.Equal(c.sessions, []int{10, 1}) || c.fill != 0 || c.forward != 300 || c.e2e || c.rssLists != 0 || c.batch != 1000 {
		t.Errorf("narrowed: %+v", c)
	}
	for _, args := range [][]string{
		{"--mode", "slow"}, {"--peers", "postfix"}, {"extra"},
		{"--sizes", "0"}, {"--sizes", "2,x"}, {"--sizes", ""}, {"--sessions", "-1"},
		{"--fill-batch", "0"}, {"--forward", "-2"}, {"--rss-lists", "-1"},
	} {
		if _, err := parseFlags(args, new(nopWriter)); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100 … 1, unsorted
	}
	for _, tc := range []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.99, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(hundred...), 0.99, 99 * time.Millisecond},
		{ms(hundred...), 0.5, 50 * time.Millisecond},
		{ms(hundred...), 1, 100 * time.Millisecond},
		{ms(3, 1, 2), 0.5, 2 * time.Millisecond},
		{ms(3, 1, 2), 0.01, 1 * time.Millisecond},
	} {
		in := slices.Clone(tc.in)
		if got := percentile(tc.in, tc.q); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", in, tc.q, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("percentile reordered its argument: %v", tc.in)
		}
	}
}

func TestParseMemory(t *testing.T) {
	status := "Name:\tlistgate\nVmPeak:\t 1300000 kB\nVmHWM:\t   98765 kB\nVmRSS:\t   54321 kB\nThreads:\t9\n"
	m, err := parseMemory(status)
	if err != nil {
		t.Fatal(err)
	}
	if m != (memory{rss: 54321, hwm: 98765}) {
		t.Errorf("parseMemory = %+v, want rss 54321, hwm 98765", m)
	}
	for _, bad := range []string{"", "Name:\tkthreadd\nThreads:\t1\n", "VmHWM:\t 1 kB\nVmRSS:\t x kB\n", "VmHWM:\t 1 MB\nVmRSS:\t 1 kB\n"} {
		if _, err := parseMemory(bad); err == nil {
			t.Errorf("parseMemory(%q): no error", bad)
		}
	}
	if _, err := os.Stat("/proc/self/status"); err == nil {
		m, err := readMemory(os.Getpid())
		if err != nil || m.rss <= 0 || m.hwm < m.rss {
			t.Errorf("readMemory(self) = %+v, %v", m, err)
		}
	}
	if got := megabytes(97657); got < 99.9 || got > 100.1 {
		t.Errorf("megabytes(97657 KiB) = %v, want about 100", got)
	}
}

func TestFillSummary(t *testing.T) {
	rs := []result{{msgs: 500, elapsed: time.Second}, {msgs: 500, elapsed: time.Second}, {msgs: 500, elapsed: 2 * time.Second}}
	got := fillSummary(rs, 500)
	if want := "the batch into a folder of 1,000 messages ran at 0.50 of the rate into an empty one (250 against 500 msgs/s)"; got != want {
		t.Errorf("fillSummary = %q, want %q", got, want)
	}
	if got := fillSummary(rs[:1], 500); got != "one batch only" {
		t.Errorf("fillSummary of one batch = %q", got)
	}
}

func TestListNames(t *testing.T) {
	seen := map[string]bool{benchRcpt: true}
	for i := range 1000 {
		n := listName(i)
		if seen[n] {
			t.Fatalf("listName(%d) = %q twice (or the bench list's)", i, n)
		}
		seen[n] = true
	}
	dir := t.TempDir()
	if err := writeLists(dir, 10); err != nil {
		t.Fatal(err)
	}
	if err := writeLists(dir, 10); err != nil { // again: the files are there
		t.Fatal(err)
	}
	if n, err := countFiles(dir); err != nil || n != 11 {
		t.Errorf("writeLists(10): %d files, %v; want 11", n, err)
	}
}

func TestWarmCount(t *testing.T) {
	for _, tc := range []struct {
		peer     string
		sessions int
		want     int
	}{
		{peerListgate, 1, 200}, {peerListgate, 10, 400}, {peerListgate, 7, 280},
		{peerMailman, 1, 20}, {peerMailman, 10, 40}, {peerMailman, 3, 21},
	} {
		if got := warmCount(tc.peer, tc.sessions); got != tc.want {
			t.Errorf("warmCount(%s, %d) = %d, want %d", tc.peer, tc.sessions, got, tc.want)
		}
	}
}

type nopWriter struct{}

func (*nopWriter) Write(b []byte) (int, error) { return len(b), nil }
