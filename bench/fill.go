package main

import (
	"context"
	"fmt"
	"io"
	"log"
)

// runFill is the fill test (issue 11, target 3): the rate per batch while
// one folder of listgate and one of Dovecot grow to cfg.fill messages,
// nothing removed between batches. Batches of cfg.batch messages (2 KiB,
// 10 sessions, smtp-source -L as in the main table) alternate between the
// servers, so that both see the machine in the same state; after each,
// the folder must hold every message sent so far.
func runFill(ctx context.Context, env *benchEnv, out io.Writer) error {
	cfg := env.cfg
	c := benchCase{size: 2 << 10, sessions: 10}
	batch := roundUp(cfg.batch, c.sessions)
	batches := (cfg.fill + batch - 1) / batch
	var peers []string
	for _, p := range []string{peerListgate, peerDovecot} {
		if s := env.servers[p]; s != nil {
			peers = append(peers, p)
			if err := s.clear(); err != nil {
				return fmt.Errorf("%s: clear: %w", p, err)
			}
		}
	}
	rs := map[string][]result{}
	for b := range batches {
		for i := range peers {
			p := peers[(i+b)%len(peers)]
			s := env.servers[p]
			r, err := send(ctx, s, c, batch, true)
			if err != nil {
				return fmt.Errorf("fill, batch %d: %w", b+1, err)
			}
			if err := checkStored(s, (b+1)*batch); err != nil {
				return fmt.Errorf("fill, batch %d: %w", b+1, err)
			}
			rs[p] = append(rs[p], r)
			if cfg.verbose {
				log.Printf("fill, batch %d: %-9s folder %7d → %7d: %6.0f msgs/s, server CPU %.2f ms/msg", b+1, p, b*batch, (b+1)*batch, r.rate(), r.cpuPerMsg())
			}
		}
	}
	for _, p := range peers {
		if err := env.servers[p].clear(); err != nil {
			return fmt.Errorf("%s: clear: %w", p, err)
		}
	}
	printFill(out, peers, batch, rs)
	return nil
}

// printFill prints the fill test's table: per server and batch, the
// folder's size before the batch, the rate, the server's CPU time per
// message and the rate over the first batch's (into an empty folder).
func printFill(out io.Writer, peers []string, batch int, rs map[string][]result) {
	fmt.Fprintf(out, "fill: one folder grows in batches of %s messages of 2 KiB, 10 sessions, nothing removed; the batches of the servers alternate\n\n", thousands(float64(batch)))
	fmt.Fprintln(out, "| case | server | folder holds before | msgs/s | server CPU ms/msg | ratio to the first batch |")
	fmt.Fprintln(out, "| --- | --- | ---: | ---: | ---: | ---: |")
	for _, p := range peers {
		for i, r := range rs[p] {
			fmt.Fprintf(out, "| fill, batch %d | %s | %s | %s | %s | %.2f |\n", i+1, describe(p), thousands(float64(i*batch)),
				thousands(r.rate()), cpuCell(r), r.rate()/rs[p][0].rate())
		}
	}
	fmt.Fprintln(out)
	for _, p := range peers {
		fmt.Fprintf(out, "%s: %s\n", describe(p), fillSummary(rs[p], batch))
	}
}

// fillSummary says how the last batch's rate compares with the first's
// (issue 11, target 3: within 10%).
func fillSummary(rs []result, batch int) string {
	if len(rs) < 2 {
		return "one batch only"
	}
	first, last := rs[0].rate(), rs[len(rs)-1].rate()
	return fmt.Sprintf("the batch into a folder of %s messages ran at %.2f of the rate into an empty one (%s against %s msgs/s)",
		thousands(float64((len(rs)-1)*batch)), last/first, thousands(last), thousands(first))
}

// cpuCell formats a result's server CPU per message for a table.
func cpuCell(r result) string {
	if v := r.cpuPerMsg(); v == v {
		return fmt.Sprintf("%.2f", v)
	}
	return "—"
}
