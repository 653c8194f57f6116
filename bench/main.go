// Command bench measures listgate's LMTP door side by side with its peers
// on one machine (issue 11): Dovecot's LMTP server (Maildir, mail_fsync =
// optimized), GNU Mailman 3's LMTP runner, Postfix's smtp-sink (no
// storage: the protocol's ceiling) and a bare durable loop (the disk's own
// figure: write+fsync, rename, directory fsync, with no protocol).
// Postfix's smtp-source drives every server over LMTP on loopback. Then,
// each in a table of its own: listgate's forwarder emptying a backlog into
// Mailman's LMTP runner; the fill test (the rate per batch while one folder
// of listgate and of Dovecot grows); smtp-source through a private Postfix
// into listgate, with and without listgate's milter, and the milter's RCPT
// verdict time meanwhile; listgate's memory with 100,000 lists.
//
// Run it as root on a Debian machine, from the repository root:
//
//	go run ./bench --mode quick
//	go run ./bench --mode thorough
//
// It installs what is missing with apt (postfix for smtp-source and
// smtp-sink, dovecot-lmtpd) without starting any system service, builds
// listgate from the tree, and starts private instances under a temporary
// directory, each on its own 127.0.0.1 port. For every case (message
// size × parallel sessions) it runs each server in turn, in a rotating
// order, for several repetitions; it checks after every run that the
// server stored exactly the messages sent, and prints one table: messages
// a second, the server's CPU time per message (utime+stime from
// /proc/PID/stat of the server's processes, before and after the run) and
// each peer's ratio to listgate, the median of the per-repetition ratios.
// docs/performance.md ("Side by side") describes the peers' configuration
// and shows one run.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench: ")
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		log.Print(err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// config is what the command line asks for.
type config struct {
	mode     string
	reps     int           // repetitions of each case
	duration time.Duration // the aimed length of one run
	sizes    []int         // message payload sizes, octets
	sessions []int         // parallel LMTP sessions
	peers    []string      // which servers to run, by name
	forward  int           // backlog forwarded into Mailman per run; 0: no forward case; -1: sized to duration
	fill     int           // messages the fill test grows a folder to; 0: no fill test
	batch    int           // messages per batch of the fill test
	e2e      bool          // run the end-to-end case through a private Postfix
	rssLists int           // lists of the memory case; 0: no memory case
	keep     bool          // keep the temporary directory
	install  bool          // install missing packages with apt
	verbose  bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "quick", "quick (3 repetitions of runs of about 2 s, short fill) or thorough (5 of about 10 s, fill to 100,000)")
	reps := fs.Int("reps", 0, "repetitions of each case (0: the mode's)")
	dur := fs.Duration("duration", 0, "aimed length of one run (0: the mode's)")
	peers := fs.String("peers", "listgate,dovecot,mailman,smtp-sink,bare", "servers to run, comma-separated; listgate is always run (the ratios are to it)")
	sizes := fs.String("sizes", "2,100", "message payload sizes in KiB, comma-separated")
	sessions := fs.String("sessions", "1,10", "parallel sessions, comma-separated")
	forward := fs.Int("forward", -1, "messages listgate's forwarder moves into Mailman's LMTP runner per run (0: no forward case; -1: as many as take about the run length)")
	fill := fs.Int("fill", -1, "grow one folder of listgate and Dovecot to this many messages, printing the rate per batch (0: no fill test; -1: the mode's, 20,000 or 100,000)")
	batch := fs.Int("fill-batch", 5000, "messages per batch of the fill test")
	e2e := fs.Bool("e2e", true, "run the end-to-end case: smtp-source → a private Postfix → listgate, with and without listgate's milter")
	rss := fs.Int("rss-lists", 100000, "lists of the memory case (listgate's VmRSS and VmHWM, idle and under load; 0: none)")
	keep := fs.Bool("keep", false, "keep the temporary directory (configs, logs, spools) and print its path")
	install := fs.Bool("install", true, "install missing Debian packages with apt-get (as root)")
	verbose := fs.Bool("v", false, "print every run")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./bench [flags]\n\nMeasures listgate's LMTP door beside Dovecot LMTP, Mailman's LMTP runner,\nsmtp-sink and a bare durable loop, and listgate's forwarder, folder growth,\npath through Postfix and memory (docs/performance.md, \"Side by side\").\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() != 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c := config{mode: *mode, keep: *keep, install: *install, verbose: *verbose,
		e2e: *e2e, rssLists: *rss, batch: *batch}
	switch *mode {
	case "quick":
		c.reps, c.duration, c.fill = 3, 2*time.Second, 20000
	case "thorough":
		c.reps, c.duration, c.fill = 5, 10*time.Second, 100000
	default:
		return config{}, fmt.Errorf("--mode %q: want quick or thorough", *mode)
	}
	if *reps > 0 {
		c.reps = *reps
	}
	if *dur > 0 {
		c.duration = *dur
	}
	if c.forward = *forward; c.forward < -1 {
		return config{}, fmt.Errorf("--forward %d: want -1, 0 or more", c.forward)
	}
	if *fill >= 0 {
		c.fill = *fill
	}
	if c.batch <= 0 {
		return config{}, fmt.Errorf("--fill-batch %d: want at least 1", c.batch)
	}
	if c.rssLists < 0 {
		return config{}, fmt.Errorf("--rss-lists %d: want 0 or more", c.rssLists)
	}
	var err error
	if c.sizes, err = positiveInts("--sizes", *sizes, 1<<10); err != nil {
		return config{}, err
	}
	if c.sessions, err = positiveInts("--sessions", *sessions, 1); err != nil {
		return config{}, err
	}
	c.peers = []string{peerListgate}
	for _, p := range splitComma(*peers) {
		switch p {
		case peerListgate:
		case peerDovecot, peerMailman, peerSink, peerBare:
			if !contains(c.peers, p) {
				c.peers = append(c.peers, p)
			}
		default:
			return config{}, fmt.Errorf("--peers: unknown peer %q (listgate, dovecot, mailman, smtp-sink, bare)", p)
		}
	}
	return c, nil
}

// positiveInts parses a comma-separated list of whole numbers above 0,
// each multiplied by unit.
func positiveInts(flagName, s string, unit int) ([]int, error) {
	var out []int
	for _, f := range splitComma(s) {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: %q is not a whole number above 0", flagName, f)
		}
		out = append(out, n*unit)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: empty", flagName)
	}
	return out, nil
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
