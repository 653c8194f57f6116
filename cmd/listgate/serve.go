package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/listgate/listgate/config"
	"github.com/listgate/listgate/daemon"
	"github.com/listgate/listgate/milter"
)

// serve runs the daemon until SIGTERM or SIGINT, then shuts it down
// gracefully (daemon.Run). SIGHUP rescans the lists directory.
func serve(args []string, stderr io.Writer) error {
	// Catch the signals first: a SIGHUP while the lists load must not
	// kill the daemon (its default action), and a SIGTERM is kept for
	// Run.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	d, log, err := newDaemon(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case sig := <-sigs:
				if sig == syscall.SIGHUP {
					log.Info("SIGHUP: rescanning the lists directory")
					d.Rescan()
					continue
				}
				cancel(fmt.Errorf("signal %v", sig))
				return
			case <-done:
				return
			}
		}
	}()
	return d.Run(ctx)
}

// newDaemon builds the daemon `listgate serve` runs from its command line
// and config file, with its logger.
func newDaemon(args []string, stderr io.Writer) (*daemon.Daemon, *slog.Logger, error) {
	fs := newFlagSet("serve", stderr)
	cf := config.AddFlags(fs, config.Keys()...)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: listgate serve [flags]\n\nRuns every door in one process. Addresses use Postfix's syntax\n"+
			"(inet:host:port or unix:/path) and paste into main.cf unchanged.\n"+
			"Flags override the config file's settings (docs/config.md).\n\nflags:\n")
		fs.PrintDefaults()
	}
	s, err := settings(cf, args)
	if err != nil {
		return nil, nil, err
	}
	if fs.NArg() != 0 {
		return nil, nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	log := s.NewLogger(stderr)
	// go-milter logs through a process-wide hook: the one place to set it
	// is here, once, before any door serves.
	milter.LogLibraryWarnings(log)
	d, err := daemon.New(daemon.Config{Settings: s, Logger: log, Version: versionString()})
	return d, log, err
}
