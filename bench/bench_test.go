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
	c, err := parseFlags([]string{"--mode", "thorough", "--peers", "bare,dovecot"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if c.reps != 5 || c.duration != 10*time.Second || !slices.Equal(c.peers, []string{"listgate", "bare", "dovecot"}) {
		t.Errorf("thorough: %+v", c)
	}
	for _, args := range [][]string{{"--mode", "slow"}, {"--peers", "mailman"}, {"extra"}} {
		if _, err := parseFlags(args, new(nopWriter)); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}

type nopWriter struct{}

func (*nopWriter) Write(b []byte) (int, error) { return len(b), nil }
