package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/listgate/listgate/postconf"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/lmtp"
	"github.com/listgate/listgate/milter"
	"github.com/listgate/listgate/spool"
)

// serveFlags are `listgate serve`'s flags.
type serveFlags struct {
	lists           listsFlags
	spool           string
	lmtp, milter    string
	policy, sockmap string
	metrics         string
	maxSize         sizeFlag
	hostname        string
	logLevel        string
	logFormat       string
	shutdownTimeout time.Duration
	rescan          time.Duration
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	f.lists.register(fs)
	fs.StringVar(&f.spool, "spool", "./spool", "the spool `directory`: one Maildir per list and sub-address")
	fs.StringVar(&f.lmtp, "lmtp", "inet:127.0.0.1:8024", "LMTP sink `address` (inet:host:port or unix:/path; empty: off)")
	fs.StringVar(&f.milter, "milter", "inet:127.0.0.1:8025", "milter `address` (inet:host:port or unix:/path; empty: off)")
	fs.StringVar(&f.policy, "policy", "", "Postfix policy delegation `address` (empty: off)")
	fs.StringVar(&f.sockmap, "socketmap", "", "Postfix socketmap table `address` (empty: off)")
	fs.StringVar(&f.metrics, "metrics", "", "HTTP `address` (host:port) for /metrics, /healthz and /readyz (empty: off)")
	f.maxSize = defaultMaxMessageSize
	fs.Var(&f.maxSize, "max-message-size", "largest message in `bytes` for any address (units: MB, MiB, ...); keep Postfix's message_size_limit at or below it")
	fs.StringVar(&f.hostname, "hostname", "", "host `name` for LHLO's greeting, Received headers and Maildir names (default: the system's)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log `format`: text or json")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long SIGTERM waits for transactions in flight")
	fs.DurationVar(&f.rescan, "rescan-interval", 5*time.Minute, "period of the safety-net full rescan of the lists directory (NFS gives no events); 0 turns it off")
}

// door is one listening server of `listgate serve`.
type door struct {
	name     string // flag name, also the log key's value
	ep       postconf.Endpoint
	ln       net.Listener
	serve    func(net.Listener) error
	shutdown func(context.Context) error
}

// newLogger builds the process logger from --log-level and --log-format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, format)
}

// serve runs every door until SIGTERM or SIGINT, then shuts them down
// gracefully: stop accepting, let transactions in flight finish (up to
// --shutdown-timeout), close idle sessions. SIGHUP rescans the lists
// directory.
func serve(args []string, stderr io.Writer) error {
	fset := newFlagSet("serve", stderr)
	var f serveFlags
	f.register(fset)
	fset.Usage = func() {
		fmt.Fprintf(fset.Output(), "usage: listgate serve [flags]\n\nRuns every door in one process. Addresses use Postfix's syntax\n(inet:host:port or unix:/path) and paste into main.cf unchanged.\n\nflags:\n")
		fset.PrintDefaults()
	}
	// Catch the signals first: a SIGHUP while the lists load must not
	// kill the daemon (its default action), and a SIGTERM is kept for the
	// wait loop below.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	if fset.NArg() != 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fset.Arg(0))
	}
	if f.shutdownTimeout <= 0 {
		return fmt.Errorf("%w: --shutdown-timeout %v: must be positive", errUsage, f.shutdownTimeout)
	}
	if f.rescan < 0 {
		return fmt.Errorf("%w: --rescan-interval %v: must not be negative (0 turns the rescan off)", errUsage, f.rescan)
	}
	rescan := f.rescan
	if rescan == 0 {
		rescan = -1 // lists.WatchOptions: negative is off, 0 the default
	}
	log, err := newLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	// Libraries that log through the standard log package (go-milter)
	// end up in the same structured log.
	slog.SetDefault(log)
	lopts, err := f.lists.options()
	if err != nil {
		return err
	}
	eps := make(map[string]postconf.Endpoint)
	for _, d := range []struct{ flag, value string }{
		{"lmtp", f.lmtp}, {"milter", f.milter}, {"policy", f.policy}, {"socketmap", f.sockmap},
	} {
		ep, on, err := postconf.ParseEndpoint(d.flag, d.value)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if on {
			eps[d.flag] = ep
		}
	}
	for _, name := range []string{"policy", "socketmap"} {
		if _, on := eps[name]; on {
			return fmt.Errorf("%w: --%s: this door is not built yet; leave it empty", errUsage, name)
		}
	}
	if f.metrics != "" {
		if _, _, err := net.SplitHostPort(f.metrics); err != nil {
			return fmt.Errorf("%w: --metrics %q: want host:port", errUsage, f.metrics)
		}
	}
	if f.hostname == "" {
		if f.hostname, err = os.Hostname(); err != nil {
			return fmt.Errorf("hostname: %w; set --hostname", err)
		}
	}
	if f.hostname == "" || strings.ContainsFunc(f.hostname, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%w: --hostname %q: want a host name without blanks or control characters", errUsage, f.hostname)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	watcher, err := lists.Watch(f.lists.dir, lists.WatchOptions{
		Options: lopts, Logger: log, Registerer: reg, Rescan: rescan,
	})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--lists %s: the directory does not exist; create it (one file per list) or point --lists at one", f.lists.dir)
		}
		return fmt.Errorf("--lists: %w", err)
	}
	defer watcher.Close()

	var doors []*door
	if ep, on := eps["lmtp"]; on {
		sp, err := spool.New(spool.Options{Dir: f.spool, Hostname: f.hostname, Logger: log})
		if err != nil {
			return fmt.Errorf("--spool: %w", err)
		}
		srv := lmtp.New(lmtp.Options{
			Lists: watcher, Spool: sp, Logger: log, Registerer: reg,
			Hostname: f.hostname, MaxMessageSize: int64(f.maxSize),
		})
		doors = append(doors, &door{name: "lmtp", ep: ep, serve: srv.Serve, shutdown: srv.Shutdown})
	}
	if ep, on := eps["milter"]; on {
		srv := milter.New(milter.Options{
			Lists: watcher, Logger: log, Registerer: reg, MaxMessageSize: int64(f.maxSize),
		})
		doors = append(doors, &door{name: "milter", ep: ep, serve: srv.Serve, shutdown: srv.Shutdown})
	}

	if f.metrics != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if ps := watcher.Snapshot().Problems(); len(ps) > 0 {
				fmt.Fprintf(w, "ok (%d list file problems: see listgate lists)\n", len(ps))
				return
			}
			io.WriteString(w, "ok\n")
		})
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		doors = append(doors, &door{name: "metrics", ep: postconf.Endpoint{Network: "tcp", Address: f.metrics},
			serve: hs.Serve, shutdown: hs.Shutdown})
	}
	if len(doors) == 0 {
		return fmt.Errorf("%w: every door is off (--lmtp, --milter, --metrics are all empty)", errUsage)
	}
	// Open every listener before serving any, so a busy port fails the
	// start instead of leaving half the doors up.
	for _, d := range doors {
		if d.ln, err = listen(d.name, d.ep); err != nil {
			for _, o := range doors {
				if o.ln != nil {
					o.ln.Close()
				}
			}
			return err
		}
	}

	errc := make(chan error, len(doors))
	for _, d := range doors {
		addr := d.ep
		if addr.Network != "unix" {
			addr.Address = d.ln.Addr().String() // the port chosen for :0
		}
		log.Info("listening", "door", d.name, "addr", addr.String())
		go func() {
			if err := d.serve(d.ln); err != nil && !isClosed(err) {
				errc <- fmt.Errorf("%s door: %w", d.name, err)
				return
			}
			errc <- nil
		}()
	}
	log.Info("listgate started", "version", versionString(), "lists", f.lists.dir, "spool", f.spool,
		"lists_count", len(watcher.Snapshot().Lists()))

	var runErr error
wait:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				log.Info("SIGHUP: rescanning the lists directory", "file", f.lists.dir)
				watcher.Rescan()
				continue
			}
			log.Info("shutting down", "signal", sig.String(), "timeout", f.shutdownTimeout)
			break wait
		case err := <-errc:
			runErr = err
			if err != nil {
				log.Error("door failed; shutting down", "err", err)
			}
			break wait
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, d := range doors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.shutdown(ctx); err != nil && !isClosed(err) {
				log.Error("shutdown", "door", d.name, "err", err)
			}
			if d.ep.Network == "unix" {
				os.Remove(d.ep.Address)
			}
		}()
	}
	wg.Wait()
	log.Info("listgate stopped")
	return runErr
}

// isClosed reports whether err only says that a server was shut down.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) ||
		strings.Contains(err.Error(), "server closed")
}
