package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// benchCase is one load: message payload size and parallel sessions.
type benchCase struct {
	size     int // octets of payload (smtp-source -l), headers not counted
	sessions int
}

func (c benchCase) String() string {
	return fmt.Sprintf("%d KiB, %d session%s", c.size>>10, c.sessions, plural(c.sessions))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// result is one run of one peer.
type result struct {
	msgs    int
	elapsed time.Duration
	cpu     time.Duration // the server's; -1 when not measured
}

func (r result) rate() float64 { return float64(r.msgs) / r.elapsed.Seconds() }

// cpuPerMsg is in milliseconds; NaN when not measured.
func (r result) cpuPerMsg() float64 {
	if r.cpu < 0 {
		return nan()
	}
	return float64(r.cpu) / float64(time.Millisecond) / float64(r.msgs)
}

// packages are the Debian packages the bench needs, by a file each
// provides.
var packages = []struct{ file, pkg string }{
	{"/usr/sbin/smtp-source", "postfix"},
	{"/usr/sbin/smtp-sink", "postfix"},
	{"/usr/sbin/dovecot", "dovecot-core"},
	{"/usr/lib/dovecot/lmtp", "dovecot-lmtpd"},
	{"/usr/lib/mailman3/bin/master", "mailman3"},
}

// install installs the missing packages with apt-get, forbidding every
// service start while they are configured (policy-rc.d, as
// .ci/mailman-deps does): the system's own Postfix and Dovecot are
// neither started nor configured by the bench.
// Mailman's package is wanted for the mailman peer and for the forward
// case, whose next hop it is: peers names it then.
func install(ctx context.Context, peers []string) error {
	var missing []string
	for _, p := range packages {
		if strings.Contains(p.pkg, "dovecot") && !contains(peers, peerDovecot) {
			continue
		}
		if p.pkg == "mailman3" && !contains(peers, peerMailman) {
			continue
		}
		if _, err := os.Stat(p.file); err != nil && !contains(missing, p.pkg) {
			missing = append(missing, p.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("missing %s: run as root, or install them (apt-get install %s)", strings.Join(missing, ", "), strings.Join(missing, " "))
	}
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\n# listgate bench: no service starts during apt-get install\nexit 101\n"), 0o755); err != nil {
			return err
		}
		defer os.Remove(policy)
	}
	log.Printf("installing %s (no service is started)", strings.Join(missing, " "))
	for _, args := range [][]string{{"update"}, append([]string{"install", "-y", "--no-install-recommends"}, missing...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", args[0], err, out)
		}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// moduleRoot is the directory of listgate's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the bench from listgate's source tree (go run ./bench)")
	}
	return filepath.Dir(mod), nil
}

func run(ctx context.Context, cfg config, out io.Writer) error {
	if cfg.install {
		pkgs := cfg.peers
		if cfg.forward != 0 {
			pkgs = append(slices.Clone(pkgs), peerMailman)
		}
		if err := install(ctx, pkgs); err != nil {
			return err
		}
	}
	src, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "listgate-bench-")
	if err != nil {
		return err
	}
	if cfg.keep {
		log.Printf("keeping %s", root)
	} else {
		defer os.RemoveAll(root)
	}
	// The unprivileged servers must reach their directories.
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	u, err := lookupUnprivileged()
	if err != nil {
		return err
	}
	bin := filepath.Join(root, "listgate.bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/listgate")
	build.Dir = src
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/listgate: %w\n%s", err, b)
	}

	servers := map[string]*server{}
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for _, p := range cfg.peers {
		var s *server
		switch p {
		case peerListgate:
			s, err = startListgate(ctx, root, bin, u)
		case peerDovecot:
			s, err = startDovecot(ctx, root, u)
		case peerMailman:
			s, err = startMailman(cfg.verbose)
		case peerSink:
			s, err = startSink(ctx, root)
		default:
			continue
		}
		if s.started() {
			servers[p] = s
		}
		if err != nil {
			return err
		}
	}
	env := &benchEnv{cfg: cfg, root: root, bin: bin, user: u, servers: servers}
	bareDir := filepath.Join(root, "bare")

	fmt.Fprintf(out, "%s\n\n", machine(root))
	var cases []benchCase
	for _, size := range cfg.sizes {
		for _, n := range cfg.sessions {
			cases = append(cases, benchCase{size: size, sessions: n})
		}
	}
	runOne := func(p string, c benchCase, msgs int) (result, error) {
		if p == peerBare {
			return bareLoop(ctx, bareDir, c, msgs)
		}
		return drive(ctx, servers[p], c, msgs)
	}
	table := map[benchCase]map[string][]result{}
	for _, c := range cases {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// One short run of each peer warms it up and sizes the runs:
		// about cfg.duration each. A run that ends sooner makes the
		// peer's later runs longer.
		counts := map[string]int{}
		for _, p := range cfg.peers {
			warm := warmCount(p, c.sessions)
			r, err := runOne(p, c, warm)
			if err != nil {
				return err
			}
			counts[p] = roundUp(max(warm, int(r.rate()*cfg.duration.Seconds())), c.sessions)
		}
		table[c] = map[string][]result{}
		for rep := range cfg.reps {
			// Rotate the order, so that no peer always runs first or
			// right after the disk was busiest.
			for i := range cfg.peers {
				p := cfg.peers[(i+rep)%len(cfg.peers)]
				r, err := runOne(p, c, counts[p])
				if err != nil {
					return fmt.Errorf("%s, repetition %d: %w", c, rep+1, err)
				}
				table[c][p] = append(table[c][p], r)
				if r.elapsed < cfg.duration {
					// Faster than the warm-up: the next runs send more.
					counts[p] = roundUp(int(float64(counts[p])*cfg.duration.Seconds()/r.elapsed.Seconds()*1.1), c.sessions)
				}
				if cfg.verbose {
					cpu := "—"
					if v := r.cpuPerMsg(); v == v {
						cpu = fmt.Sprintf("%.2f ms", v)
					}
					log.Printf("%s, rep %d: %-9s %6d msgs in %5.2f s: %6.0f msgs/s, server CPU %s/msg", c, rep+1, p, r.msgs, r.elapsed.Seconds(), r.rate(), cpu)
				}
			}
		}
	}
	printTable(out, cfg, cases, table)
	for _, part := range []struct {
		on  bool
		run func(context.Context, *benchEnv, io.Writer) error
	}{
		{cfg.forward != 0, runForward},
		{cfg.fill > 0, runFill},
		{cfg.e2e, runE2E},
		{cfg.rssLists > 0, runRSS},
	} {
		if !part.on {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fmt.Fprintln(out)
		if err := part.run(ctx, env, out); err != nil {
			return err
		}
	}
	return nil
}

// benchEnv is what the cases after the main table share: the
// configuration, the temporary directory, listgate's binary, the
// unprivileged user and the servers already running, by peer name (the
// cases start what else they need and stop it themselves).
type benchEnv struct {
	cfg     config
	root    string
	bin     string
	user    unprivileged
	servers map[string]*server
	mailman *server // the forward case's Mailman when the mailman peer did not run
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// warmCount is the number of messages of the run that warms a peer up and
// sizes its later runs: well under a second at each one's rate (Mailman's
// LMTP runner, in Python, takes some tens of messages a second; the others
// hundreds or more).
func warmCount(peer string, sessions int) int {
	if peer == peerMailman {
		return roundUp(max(20, 4*sessions), sessions)
	}
	return roundUp(max(200, 40*sessions), sessions)
}

// drive sends msgs messages to s with smtp-source over sessions parallel
// LMTP connections, each reused for message after message (-d), one
// recipient a message, and checks that s stored them all, then removes
// them.
func drive(ctx context.Context, s *server, c benchCase, msgs int) (result, error) {
	r, err := send(ctx, s, c, msgs, true)
	if err != nil {
		return result{}, err
	}
	if s.stored != nil {
		if err := checkStored(s, msgs); err != nil {
			return result{}, err
		}
		if err := s.clear(); err != nil {
			return result{}, fmt.Errorf("%s: clear: %w", s.name, err)
		}
	}
	return r, nil
}

// send runs smtp-source against s (over LMTP if lmtp, else SMTP) and
// measures the server's CPU time meanwhile; it does not look at what s
// stored.
func send(ctx context.Context, s *server, c benchCase, msgs int, lmtp bool) (result, error) {
	syscall.Sync() // the previous run's writes and removals are not this one's
	before, err := treeCPU(s.pid())
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", s.name, err)
	}
	start := time.Now()
	if err := smtpSource(ctx, s.addr, c, msgs, lmtp); err != nil {
		return result{}, fmt.Errorf("%s: %w", s.name, err)
	}
	elapsed := time.Since(start)
	after, err := treeCPU(s.pid())
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", s.name, err)
	}
	return result{msgs: msgs, elapsed: elapsed, cpu: after - before}, nil
}

// smtpSource runs Postfix's smtp-source: sessions parallel connections to
// addr, each reused for message after message (-d), msgs messages of
// c.size octets of payload, one recipient each; LMTP (-L) or SMTP. Its
// exit status is not 0 on an unexpected reply.
func smtpSource(ctx context.Context, addr string, c benchCase, msgs int, lmtp bool) error {
	args := []string{"-d", "-s", fmt.Sprint(c.sessions), "-m", fmt.Sprint(msgs), "-l", fmt.Sprint(c.size),
		"-M", "client.test", "-f", benchSender, "-t", benchRcpt, "-S", "listgate bench", addr}
	if lmtp {
		args = append([]string{"-L"}, args...)
	}
	cmd := exec.CommandContext(ctx, "/usr/sbin/smtp-source", args...)
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("smtp-source: %w\n%s", err, outb.Bytes())
	}
	return nil
}

// checkStored checks that s holds want messages.
func checkStored(s *server, want int) error {
	n, err := s.stored()
	if err != nil {
		return fmt.Errorf("%s: count stored: %w", s.name, err)
	}
	if n != want {
		return fmt.Errorf("%s: %d messages stored, want %d (log %s)", s.name, n, want, s.log)
	}
	return nil
}

// machine describes where the bench runs, for the table's head.
func machine(root string) string {
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	var uts syscall.Utsname
	syscall.Uname(&uts)
	kernel := utsString(uts.Release[:])
	fsType := fsTypeOf(root)
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("machine: %d CPUs (%s), Linux %s, %s, files on %s (%s); load average at start %s; %s",
		runtime.NumCPU(), cpu, kernel, runtime.Version(), root, fsType, load, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
}

// fsTypeOf returns the type of the file system dir is on: that of the
// longest mount point over it in /proc/self/mounts.
func fsTypeOf(dir string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "?"
	}
	best, typ := "", "?"
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, typ = mp, f[0]+" "+f[2]
		}
	}
	return typ
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// printTable prints one Markdown table: per case and peer, the median
// rate, the median server CPU time per message, and the median of the
// per-repetition ratios of the peer's rate to listgate's.
func printTable(out io.Writer, cfg config, cases []benchCase, table map[benchCase]map[string][]result) {
	fmt.Fprintf(out, "mode %s: %d repetitions per case, runs of about %s, one recipient a message; medians\n\n", cfg.mode, cfg.reps, cfg.duration)
	fmt.Fprintln(out, "| case | server | msgs/s | (min–max) | server CPU ms/msg | ratio to listgate |")
	fmt.Fprintln(out, "| --- | --- | ---: | ---: | ---: | ---: |")
	for _, c := range cases {
		lg := table[c][peerListgate]
		for _, p := range cfg.peers {
			rs := table[c][p]
			var rates, cpus, ratios []float64
			for i, r := range rs {
				rates = append(rates, r.rate())
				if v := r.cpuPerMsg(); v == v {
					cpus = append(cpus, v)
				}
				ratios = append(ratios, r.rate()/lg[i].rate())
			}
			lo, hi := minMax(rates)
			cpu := "—"
			if len(cpus) > 0 {
				cpu = fmt.Sprintf("%.2f", median(cpus))
			}
			ratio := "1"
			if p != peerListgate {
				ratio = fmt.Sprintf("%.2f", median(ratios))
			}
			fmt.Fprintf(out, "| %s | %s | %s | %s–%s | %s | %s |\n", c, describe(p), thousands(median(rates)), thousands(lo), thousands(hi), cpu, ratio)
		}
	}
}

func describe(p string) string {
	switch p {
	case peerListgate:
		return "listgate (this tree)"
	case peerDovecot:
		return "Dovecot LMTP"
	case peerMailman:
		return "Mailman 3 LMTP runner"
	case peerSink:
		return "smtp-sink (no storage)"
	case peerBare:
		return "bare durable loop"
	}
	return p
}

func minMax(xs []float64) (lo, hi float64) {
	if len(xs) == 0 {
		return nan(), nan()
	}
	lo, hi = xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// thousands formats a rate as a whole number with comma separators.
func thousands(x float64) string {
	if x != x {
		return "—"
	}
	s := fmt.Sprintf("%.0f", x)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
