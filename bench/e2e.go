package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/listgate/listgate/internal/postfixtest"
)

// e2eName is the end-to-end case's listgate, in root/listgate-e2e.
const e2eName = "listgate-e2e"

// The two paths of the end-to-end case, by the name the log uses.
const (
	pathPlain  = "no milter"
	pathMilter = "milter"
)

// probeEvery is the period of the RCPT probe: 50 verdicts a second, a
// tenth or less of the milter's RCPTs under the load, so that the probe
// hardly adds to what it measures.
const probeEvery = 20 * time.Millisecond

// runE2E is the end-to-end case (issue 11, target 4): smtp-source speaks
// SMTP (10 sessions, 2 KiB, one recipient a message) to the smtpd of a
// private Postfix (internal/postfixtest, configured from
// contrib/postfix/main.cf), which queues each message and hands it to
// listgate's LMTP door with lmtp(8). Two Postfix instances run side by
// side, the same but for smtpd_milters: empty in one, listgate's milter
// door in the other; both deliver to one listgate. A run's clock stops
// when listgate has stored every message; then Postfix's queue must be
// empty. While the milter path runs, a probe session asks listgate's
// milter door for a RCPT verdict every probeEvery and times each answer:
// listgate's /metrics has no histogram of verdict times, so the probe's
// round trip (go-milter's client on loopback, as Postfix's smtpd talks to
// the door) is the figure.
func runE2E(ctx context.Context, env *benchEnv, out io.Writer) error {
	cfg := env.cfg
	if err := postfixtest.Available(); err != nil {
		return err
	}
	milterPort, err := freePort()
	if err != nil {
		return err
	}
	milterAddr := fmt.Sprintf("127.0.0.1:%d", milterPort)
	lg, err := startListgateWith(ctx, env.root, env.bin, env.user, listgateOpts{name: e2eName,
		extra: []string{"--milter", "inet:" + milterAddr}})
	defer lg.stopIfStarted()
	if err != nil {
		return err
	}
	logf := func(string, ...any) {}
	if cfg.verbose {
		logf = log.Printf
	}
	base := postfixtest.Options{LMTP: "inet:" + lg.addr, Domains: []string{"example.org"}}
	plainOpts, milterOpts := base, base
	plainOpts.MainCF = []string{"smtpd_milters ="}
	milterOpts.Milter = "inet:" + milterAddr
	postfixes := map[string]*postfixtest.Postfix{}
	defer func() {
		for path, pf := range postfixes {
			if cfg.keep {
				keepPostfix(env.root, path, pf)
			}
			if err := pf.Close(); err != nil {
				log.Print(err)
			}
		}
	}()
	for path, o := range map[string]postfixtest.Options{pathPlain: plainOpts, pathMilter: milterOpts} {
		pf, err := postfixtest.Launch(o, logf)
		if err != nil {
			return err
		}
		postfixes[path] = pf
	}

	c := benchCase{size: 2 << 10, sessions: 10}
	paths := []string{pathPlain, pathMilter}
	counts := map[string]int{}
	for _, path := range paths {
		warm := roundUp(400, c.sessions)
		r, err := e2eOnce(ctx, postfixes[path], lg, c, warm, nil)
		if err != nil {
			return fmt.Errorf("end to end, %s, warm-up: %w", path, err)
		}
		counts[path] = roundUp(max(warm, int(r.rate()*cfg.duration.Seconds())), c.sessions)
	}
	rs := map[string][]result{}
	var verdicts []time.Duration
	for rep := range cfg.reps {
		for i := range paths {
			path := paths[(i+rep)%len(paths)]
			var pr *rcptProbe
			if path == pathMilter {
				if pr, err = startProbe(milterAddr); err != nil {
					return err
				}
			}
			r, err := e2eOnce(ctx, postfixes[path], lg, c, counts[path], pr)
			if err != nil {
				return fmt.Errorf("end to end, %s, repetition %d: %w", path, rep+1, err)
			}
			if pr != nil {
				verdicts = append(verdicts, pr.latencies...)
			}
			rs[path] = append(rs[path], r)
			if r.elapsed < cfg.duration {
				counts[path] = roundUp(int(float64(counts[path])*cfg.duration.Seconds()/r.elapsed.Seconds()*1.1), c.sessions)
			}
			if cfg.verbose {
				log.Printf("end to end, rep %d: %-9s %6d msgs in %5.2f s: %6.0f msgs/s, Postfix+listgate CPU %.2f ms/msg", rep+1, path, r.msgs, r.elapsed.Seconds(), r.rate(), r.cpuPerMsg())
			}
		}
	}
	printE2E(out, cfg, c, rs, verdicts)
	return nil
}

// e2eOnce sends msgs messages through pf into lg and returns the rate
// from smtp-source's start until lg stored the last, and the CPU time of
// Postfix's processes and listgate's together. pr, if not nil, is stopped
// when the last message is stored.
func e2eOnce(ctx context.Context, pf *postfixtest.Postfix, lg *server, c benchCase, msgs int, pr *rcptProbe) (result, error) {
	if pr != nil {
		defer pr.stop()
	}
	syscall.Sync()
	pfBefore, err1 := treeCPU(pf.PID())
	lgBefore, err2 := treeCPU(lg.pid())
	if err := errors.Join(err1, err2); err != nil {
		return result{}, err
	}
	start := time.Now()
	if err := smtpSource(ctx, pf.SMTPAddr, c, msgs, false); err != nil {
		return result{}, fmt.Errorf("Postfix %s: %w", pf.SMTPAddr, err)
	}
	var n int
	var err error
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if n, err = lg.stored(); err != nil {
			return result{}, err
		}
		if n >= msgs {
			break
		}
		if time.Now().After(deadline) {
			q, _ := pf.Queued()
			return result{}, fmt.Errorf("listgate stored %d of %d messages 2 minutes after smtp-source ended; %d in Postfix's queue (%s; listgate's log %s)", n, msgs, len(q), pf.LogFile, lg.log)
		}
		select {
		case <-ctx.Done():
			return result{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	if pr != nil {
		pr.stop()
		if pr.err != nil {
			return result{}, pr.err
		}
	}
	// qmgr removes a queue file a moment after lmtp(8) reports the
	// delivery: wait for the queue to be empty.
	for wait := time.Now().Add(time.Minute); ; {
		q, err := pf.Queued()
		if err != nil {
			return result{}, err
		}
		if len(q) == 0 {
			break
		}
		if time.Now().After(wait) {
			return result{}, fmt.Errorf("Postfix's queue still holds %d messages a minute after listgate stored them all; the first: %s", len(q), q[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	pfAfter, err1 := treeCPU(pf.PID())
	lgAfter, err2 := treeCPU(lg.pid())
	if err := errors.Join(err1, err2); err != nil {
		return result{}, err
	}
	if err := checkStored(lg, msgs); err != nil {
		return result{}, err
	}
	if err := lg.clear(); err != nil {
		return result{}, err
	}
	return result{msgs: msgs, elapsed: elapsed, cpu: pfAfter - pfBefore + lgAfter - lgBefore}, nil
}

// rcptProbe asks a milter door for RCPT verdicts on one session, one every
// probeEvery, and records how long each took.
type rcptProbe struct {
	quit      chan struct{}
	done      chan struct{}
	latencies []time.Duration
	err       error
}

// startProbe opens a milter session to addr (negotiation, connect, HELO,
// MAIL) and starts asking for verdicts on benchRcpt; the transaction is
// aborted and begun again every 50 recipients, untimed.
func startProbe(addr string) (*rcptProbe, error) {
	s, err := gomilter.NewClient("tcp", addr).Session(nil)
	if err != nil {
		return nil, fmt.Errorf("milter probe: %w", err)
	}
	mail := func() error {
		_, err := s.Mail(benchSender, "")
		return err
	}
	if _, err := s.Conn("mx.example.net", gomilter.FamilyInet, 40000, "192.0.2.1"); err != nil {
		s.Close()
		return nil, fmt.Errorf("milter probe: connect: %w", err)
	}
	if _, err := s.Helo("mx.example.net"); err != nil {
		s.Close()
		return nil, fmt.Errorf("milter probe: HELO: %w", err)
	}
	if err := mail(); err != nil {
		s.Close()
		return nil, fmt.Errorf("milter probe: MAIL: %w", err)
	}
	p := &rcptProbe{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer s.Close()
		tick := time.NewTicker(probeEvery)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-p.quit:
				return
			case <-tick.C:
			}
			if n > 0 && n%50 == 0 {
				if err := s.Abort(nil); err != nil {
					p.err = fmt.Errorf("milter probe: abort: %w", err)
					return
				}
				if err := mail(); err != nil {
					p.err = fmt.Errorf("milter probe: MAIL: %w", err)
					return
				}
			}
			t := time.Now()
			act, err := s.Rcpt(benchRcpt, "")
			d := time.Since(t)
			if err != nil {
				p.err = fmt.Errorf("milter probe: RCPT: %w", err)
				return
			}
			if act.Type != gomilter.ActionContinue {
				p.err = fmt.Errorf("milter probe: RCPT TO:<%s> answered %v, want continue", benchRcpt, act)
				return
			}
			p.latencies = append(p.latencies, d)
		}
	}()
	return p, nil
}

// stop ends the probe and waits for it; stopping twice does nothing.
func (p *rcptProbe) stop() {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	<-p.done
}

// percentile returns the q-quantile (0 < q ≤ 1) of ds by the nearest-rank
// method: the smallest value that at least q of them do not exceed; 0
// for none.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func printE2E(out io.Writer, cfg config, c benchCase, rs map[string][]result, verdicts []time.Duration) {
	fmt.Fprintf(out, "end to end: smtp-source (SMTP) → a private Postfix → lmtp(8) → listgate's LMTP door, with and without listgate's milter in smtpd; %d repetitions, runs of about %s; medians\n\n", cfg.reps, cfg.duration)
	fmt.Fprintln(out, "| case | path | msgs/s | (min–max) | Postfix + listgate CPU ms/msg | ratio to no milter |")
	fmt.Fprintln(out, "| --- | --- | ---: | ---: | ---: | ---: |")
	plain := rs[pathPlain]
	for _, path := range []string{pathPlain, pathMilter} {
		var rates, cpus, ratios []float64
		for i, r := range rs[path] {
			rates = append(rates, r.rate())
			cpus = append(cpus, r.cpuPerMsg())
			ratios = append(ratios, r.rate()/plain[i].rate())
		}
		lo, hi := minMax(rates)
		name, ratio := "Postfix → listgate, no milter", "1"
		if path == pathMilter {
			name, ratio = "Postfix + listgate's milter → listgate", fmt.Sprintf("%.2f", median(ratios))
		}
		fmt.Fprintf(out, "| %s, through Postfix | %s | %s | %s–%s | %.2f | %s |\n", c, name, thousands(median(rates)), thousands(lo), thousands(hi), median(cpus), ratio)
	}
	fmt.Fprintf(out, "\nRCPT verdict of listgate's milter door under the milter path's load (a probe session, one RCPT every %v; listgate has no verdict-time histogram): %s\n",
		probeEvery, verdictSummary(verdicts))
}

func verdictSummary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no verdicts"
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }
	return fmt.Sprintf("p50 %s, p99 %s, max %s over %s verdicts", ms(percentile(ds, 0.5)), ms(percentile(ds, 0.99)), ms(slices.Max(ds)), thousands(float64(len(ds))))
}

// keepPostfix copies an instance's main.cf, master.cf and maillog to
// root/postfix-PATH before Close removes the instance (--keep).
func keepPostfix(root, path string, pf *postfixtest.Postfix) {
	dir := filepath.Join(root, "postfix-"+strings.ReplaceAll(path, " ", "-"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Print(err)
		return
	}
	for _, f := range []string{filepath.Join(pf.ConfigDir, "main.cf"), filepath.Join(pf.ConfigDir, "master.cf"), pf.LogFile} {
		b, err := os.ReadFile(f)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644)
		}
		if err != nil {
			log.Print(err)
		}
	}
}
