package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100
// on every Linux architecture Go supports; proc(5)).
const clockTick = 10 * time.Millisecond

// procStat is what the bench reads from /proc/PID/stat (proc(5)).
type procStat struct {
	state byte
	ppid  int
	// cpu is utime+stime+cutime+cstime, in clock ticks: the process's
	// own time and that of its children it has waited for.
	cpu int64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

// parseStat parses one /proc/PID/stat line. The command name (field 2)
// is in parentheses and may hold spaces and parentheses: the fields
// after it start past the last ')'.
func parseStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc stat %.40q: no command name", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, so f[11].
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc stat %.40q: %d fields", s, len(f)+2)
	}
	st := procStat{state: f[0][0]}
	var err error
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, fmt.Errorf("/proc stat: ppid: %w", err)
	}
	for _, v := range f[11:15] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("/proc stat: cpu time: %w", err)
		}
		st.cpu += n
	}
	return st, nil
}

// treeCPU is the CPU time of process root and every live process under
// it. A child that ends between two readings moves its time into its
// parent's cutime+cstime once reaped, so the sum only grows.
func treeCPU(root int) (time.Duration, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	stats := map[int]procStat{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil {
			stats[pid] = st
		}
	}
	if _, ok := stats[root]; !ok {
		return 0, fmt.Errorf("process %d: gone", root)
	}
	var ticks int64
	for pid, st := range stats {
		for p, hops := pid, 0; p > 0 && hops < 64; hops++ {
			if p == root {
				ticks += st.cpu
				break
			}
			p = stats[p].ppid
		}
	}
	return time.Duration(ticks) * clockTick, nil
}

// median returns the median of xs (the mean of the middle two for an
// even count); NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return nan()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func nan() float64 {
	z := 0.0
	return z / z
}
