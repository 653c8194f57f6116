// Command bench measures listgate's LMTP door side by side with its peers
// on one machine (issue 11): Dovecot's LMTP server (Maildir, mail_fsync =
// optimized), Postfix's smtp-sink (no storage: the protocol's ceiling) and
// a bare durable loop (the disk's own figure: write+fsync, rename,
// directory fsync, with no protocol). Postfix's smtp-source drives every
// server over LMTP on loopback.
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
	keep     bool          // keep the temporary directory
	install  bool          // install missing packages with apt
	verbose  bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "quick", "quick (3 repetitions of runs of about 2 s) or thorough (5 of about 10 s)")
	reps := fs.Int("reps", 0, "repetitions of each case (0: the mode's)")
	dur := fs.Duration("duration", 0, "aimed length of one run (0: the mode's)")
	peers := fs.String("peers", "listgate,dovecot,smtp-sink,bare", "servers to run, comma-separated; listgate is always run (the ratios are to it)")
	keep := fs.Bool("keep", false, "keep the temporary directory (configs, logs, spools) and print its path")
	install := fs.Bool("install", true, "install missing Debian packages with apt-get (as root)")
	verbose := fs.Bool("v", false, "print every run")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./bench [flags]\n\nMeasures listgate's LMTP door beside Dovecot LMTP, smtp-sink and a bare\ndurable loop (docs/performance.md, \"Side by side\").\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() != 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c := config{mode: *mode, keep: *keep, install: *install, verbose: *verbose,
		sizes: []int{2 << 10, 100 << 10}, sessions: []int{1, 10}}
	switch *mode {
	case "quick":
		c.reps, c.duration = 3, 2*time.Second
	case "thorough":
		c.reps, c.duration = 5, 10*time.Second
	default:
		return config{}, fmt.Errorf("--mode %q: want quick or thorough", *mode)
	}
	if *reps > 0 {
		c.reps = *reps
	}
	if *dur > 0 {
		c.duration = *dur
	}
	c.peers = []string{peerListgate}
	for _, p := range splitComma(*peers) {
		switch p {
		case peerListgate:
		case peerDovecot, peerSink, peerBare:
			c.peers = append(c.peers, p)
		default:
			return config{}, fmt.Errorf("--peers: unknown peer %q (listgate, dovecot, smtp-sink, bare)", p)
		}
	}
	return c, nil
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
