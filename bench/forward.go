package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"syscall"
	"time"
)

// forwardName is the forward case's listgate, in root/listgate-forward.
const forwardName = "listgate-forward"

// forwardWarm is the backlog of the forward case's first run, which warms
// Mailman up and sizes the backlog of the others (--forward -1).
const forwardWarm = 100

// runForward measures listgate's forwarder emptying a backlog into
// Mailman's LMTP runner (issue 11: "the forwarder's rate into Mailman's
// LMTP runner"). The backlog is cfg.forward messages, or (-1) as many as
// the forwarder moves in about the mode's run length. Each repetition: a listgate whose list has no next hop
// (--default-next-hop none) takes the backlog, messages of 2 KiB from
// smtp-source (10 sessions) and is stopped; then the same listgate, same
// spool, starts again with Mailman's LMTP runner as the next hop, and the
// clock runs from its start until Mailman's queue/in holds every message
// and listgate's folder is empty. The forwarder runs at its defaults
// (forward_concurrency 4: four LMTP transactions in flight, a new
// connection for each).
func runForward(ctx context.Context, env *benchEnv, out io.Writer) error {
	cfg := env.cfg
	mm := env.servers[peerMailman]
	if mm == nil {
		var err error
		if mm, err = startMailman(cfg.verbose); mm.started() {
			env.mailman = mm
			defer func() { mm.stop(); env.mailman = nil }()
		}
		if err != nil {
			return err
		}
	}
	c := benchCase{size: 2 << 10, sessions: 10}
	n := roundUp(cfg.forward, c.sessions)
	if cfg.forward < 0 {
		// Sized by a first backlog of forwardWarm: about the mode's run
		// length at the rate it showed.
		r, err := forwardOnce(ctx, env, mm, c, forwardWarm)
		if err != nil {
			return fmt.Errorf("forward, warm-up: %w", err)
		}
		n = roundUp(max(forwardWarm, int(r.rate()*cfg.duration.Seconds())), c.sessions)
		if cfg.verbose {
			log.Printf("forward, warm-up: %d msgs in %5.2f s: %6.0f msgs/s; backlog of the runs: %d", forwardWarm, r.elapsed.Seconds(), r.rate(), n)
		}
	}
	var rs []forwardResult
	for rep := range cfg.reps {
		r, err := forwardOnce(ctx, env, mm, c, n)
		if err != nil {
			return fmt.Errorf("forward, repetition %d: %w", rep+1, err)
		}
		rs = append(rs, r)
		if cfg.verbose {
			log.Printf("forward, rep %d: %d msgs in %5.2f s: %6.0f msgs/s, listgate CPU %.2f ms/msg, Mailman CPU %.2f ms/msg",
				rep+1, n, r.elapsed.Seconds(), r.rate(), r.cpuPerMsg(), msPerMsg(r.nextHopCPU, n))
		}
	}
	printForward(out, cfg, n, c, rs)
	return nil
}

// forwardResult is one run of the forward case: cpu is listgate's,
// nextHopCPU Mailman's.
type forwardResult struct {
	result
	nextHopCPU time.Duration
}

func msPerMsg(d time.Duration, n int) float64 {
	return float64(d) / float64(time.Millisecond) / float64(n)
}

func forwardOnce(ctx context.Context, env *benchEnv, mm *server, c benchCase, n int) (forwardResult, error) {
	// The backlog: n messages held in the spool.
	held, err := startListgateWith(ctx, env.root, env.bin, env.user, listgateOpts{name: forwardName,
		extra: []string{"--default-next-hop", "none"}})
	if err != nil {
		held.stopIfStarted()
		return forwardResult{}, err
	}
	err = smtpSource(ctx, held.addr, c, n, true)
	if err == nil {
		err = checkStored(held, n)
	}
	held.stop()
	if err != nil {
		return forwardResult{}, err
	}
	if err := mm.clear(); err != nil {
		return forwardResult{}, err
	}
	syscall.Sync()

	before, err := treeCPU(mm.pid())
	if err != nil {
		return forwardResult{}, err
	}
	fwd, err := startListgateWith(ctx, env.root, env.bin, env.user, listgateOpts{name: forwardName,
		extra: []string{"--default-next-hop", "lmtp:inet:" + mm.addr}})
	defer fwd.stopIfStarted()
	if err != nil {
		return forwardResult{}, err
	}
	var done time.Time
	var left, arrived int
	deadline := time.Now().Add(max(2*time.Minute, time.Duration(n)*100*time.Millisecond))
	for {
		if left, err = fwd.stored(); err != nil {
			return forwardResult{}, err
		}
		if arrived, err = mm.stored(); err != nil {
			return forwardResult{}, err
		}
		if left == 0 && arrived >= n {
			done = time.Now()
			break
		}
		if time.Now().After(deadline) {
			return forwardResult{}, fmt.Errorf("forward: after %v, %d of %d messages still in listgate's folder, %d in Mailman's queue/in (logs %s, %s)",
				time.Since(fwd.startedAt).Round(time.Second), left, n, arrived, fwd.log, mm.log)
		}
		select {
		case <-ctx.Done():
			return forwardResult{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	lgCPU, err := treeCPU(fwd.pid())
	if err != nil {
		return forwardResult{}, err
	}
	after, err := treeCPU(mm.pid())
	if err != nil {
		return forwardResult{}, err
	}
	fwd.stop()
	if err := checkStored(mm, n); err != nil {
		return forwardResult{}, err
	}
	if err := mm.clear(); err != nil {
		return forwardResult{}, err
	}
	return forwardResult{result: result{msgs: n, elapsed: done.Sub(fwd.startedAt), cpu: lgCPU}, nextHopCPU: after - before}, nil
}

// stopIfStarted stops s if it was started at all.
func (s *server) stopIfStarted() {
	if s.started() {
		s.stop()
	}
}

func printForward(out io.Writer, cfg config, n int, c benchCase, rs []forwardResult) {
	fmt.Fprintf(out, "forward: listgate's forwarder empties a backlog of %s messages of %d KiB into Mailman's LMTP runner (forward_concurrency 4); %d repetitions; medians\n\n",
		thousands(float64(n)), c.size>>10, len(rs))
	fmt.Fprintln(out, "| case | path | msgs/s | (min–max) | listgate CPU ms/msg | Mailman CPU ms/msg |")
	fmt.Fprintln(out, "| --- | --- | ---: | ---: | ---: | ---: |")
	var rates, cpus, mcpus []float64
	for _, r := range rs {
		rates = append(rates, r.rate())
		cpus = append(cpus, r.cpuPerMsg())
		mcpus = append(mcpus, msPerMsg(r.nextHopCPU, r.msgs))
	}
	lo, hi := minMax(rates)
	fmt.Fprintf(out, "| backlog of %s × %d KiB | listgate forwarder → Mailman 3 LMTP runner | %s | %s–%s | %.2f | %.2f |\n",
		thousands(float64(n)), c.size>>10, thousands(median(rates)), thousands(lo), thousands(hi), median(cpus), median(mcpus))
}
