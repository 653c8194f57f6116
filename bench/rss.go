package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"time"
)

// rssName is the memory case's listgate, in root/listgate-rss.
const rssName = "listgate-rss"

// memory is a process's resident set as /proc/PID/status gives it
// (proc(5)): VmRSS now, VmHWM its peak since it started; in KiB.
type memory struct {
	rss, hwm int64
}

func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	return parseMemory(string(b))
}

// parseMemory reads VmRSS and VmHWM from the text of /proc/PID/status
// ("VmHWM:\t  12345 kB").
func parseMemory(status string) (memory, error) {
	var m memory
	var seen int
	for _, line := range strings.Split(status, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || key != "VmRSS" && key != "VmHWM" {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return memory{}, fmt.Errorf("/proc status: %s: %q", key, val)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("/proc status: %s: %w", key, err)
		}
		if key == "VmRSS" {
			m.rss = n
		} else {
			m.hwm = n
		}
		seen++
	}
	if seen != 2 {
		return memory{}, fmt.Errorf("/proc status: no VmRSS and VmHWM (a kernel thread, or not Linux?)")
	}
	return m, nil
}

// rssRow is one line of the memory table.
type rssRow struct {
	what   string
	lists  int
	mem    memory
	target string
}

// runRSS is the memory case (issue 11, target 5): a listgate of its own
// with cfg.rssLists empty list files besides bench@example.org (over four
// domains), its VmRSS and VmHWM once it greets (every list loaded: the
// daemon loads the lists before its doors listen), then after a run of
// 10 sessions × 2 KiB and one of 10 sessions × 100 KiB of about the
// mode's run length each. The first row is the main table's listgate
// (one list) after every run above.
func runRSS(ctx context.Context, env *benchEnv, out io.Writer) error {
	cfg := env.cfg
	var rows []rssRow
	if s := env.servers[peerListgate]; s != nil {
		m, err := readMemory(s.pid())
		if err != nil {
			return err
		}
		rows = append(rows, rssRow{"after every run above (main table, fill)", 1, m, "—"})
	}
	if cfg.verbose {
		log.Printf("memory: writing %d list files", cfg.rssLists)
	}
	lg, err := startListgateWith(ctx, env.root, env.bin, env.user, listgateOpts{name: rssName, lists: cfg.rssLists})
	defer lg.stopIfStarted()
	if err != nil {
		return err
	}
	m, err := readMemory(lg.pid())
	if err != nil {
		return err
	}
	rows = append(rows, rssRow{fmt.Sprintf("idle, %s after its start", time.Since(lg.startedAt).Round(100*time.Millisecond)), cfg.rssLists + 1, m, "under 100 MB"})
	for _, c := range []benchCase{{size: 2 << 10, sessions: 10}, {size: 100 << 10, sessions: 10}} {
		warm := warmCount(peerListgate, c.sessions)
		r, err := drive(ctx, lg, c, warm)
		if err != nil {
			return fmt.Errorf("memory, %s: %w", c, err)
		}
		n := roundUp(max(warm, int(r.rate()*cfg.duration.Seconds())), c.sessions)
		if r, err = drive(ctx, lg, c, n); err != nil {
			return fmt.Errorf("memory, %s: %w", c, err)
		}
		if m, err = readMemory(lg.pid()); err != nil {
			return err
		}
		if cfg.verbose {
			log.Printf("memory, %s: %d msgs in %.2f s; VmRSS %d KiB, VmHWM %d KiB", c, n, r.elapsed.Seconds(), m.rss, m.hwm)
		}
		rows = append(rows, rssRow{fmt.Sprintf("after %s msgs, %s (%.0f s)", thousands(float64(warm+n)), c, r.elapsed.Seconds()), cfg.rssLists + 1, m, "under 150 MB"})
	}
	printRSS(out, rows)
	return nil
}

func printRSS(out io.Writer, rows []rssRow) {
	fmt.Fprintln(out, "memory: listgate's resident set from /proc/PID/status (VmRSS now, VmHWM the peak since it started); 1 MB = 10⁶ octets")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| case | lists | VmRSS MB | VmHWM MB | target (VmHWM) |")
	fmt.Fprintln(out, "| --- | ---: | ---: | ---: | --- |")
	for _, r := range rows {
		fmt.Fprintf(out, "| %s | %s | %.1f | %.1f | %s |\n", r.what, thousands(float64(r.lists)), megabytes(r.mem.rss), megabytes(r.mem.hwm), r.target)
	}
}

// megabytes converts KiB to MB (10⁶ octets), the unit of issue 11's
// targets.
func megabytes(kib int64) float64 { return float64(kib) * 1024 / 1e6 }
