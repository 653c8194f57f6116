// Package daemon is the running listgate: the lists watcher, the spool and
// every door (LMTP, milter, Postfix's policy delegation and socketmap, and
// the HTTP door with /metrics, /healthz, /readyz and the status page at /,
// package status) in one value that `listgate serve` and tests start
// alike.
//
// New checks the settings and opens every listener before any door
// serves, so a busy port fails the start and no door is left half up. Run
// serves until its context ends or a door fails, then shuts down
// gracefully: every listener closes, each transaction in flight finishes
// (up to Settings.ShutdownTimeout), idle sessions are closed. With the
// LMTP door on, a forwarder (package forward) hands the spool's mail to
// each list's next hop; a shutdown lets its forwards in flight finish
// within the same timeout. With canary_smtp set, a canary (package
// canary) probes Postfix's own smtpd every canary_interval, and /readyz
// answers 503 unless its latest probe found the gate shut. Signals stay
// with the caller: `listgate serve` turns SIGHUP into Rescan and SIGTERM
// into the end of Run's context.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/listgate/listgate/canary"
	"github.com/listgate/listgate/config"
	"github.com/listgate/listgate/forward"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/lmtp"
	"github.com/listgate/listgate/mailman"
	"github.com/listgate/listgate/milter"
	"github.com/listgate/listgate/postconf"
	"github.com/listgate/listgate/postfix"
	"github.com/listgate/listgate/spool"
	"github.com/listgate/listgate/status"
)

// Config configures a Daemon: the settings (config file and flags) and
// what only a program can give.
type Config struct {
	config.Settings
	// Logger receives the daemon's lines and every door's. Nil discards.
	Logger *slog.Logger
	// Version is logged at the start ("listgate started version=...").
	Version string
}

// Daemon is a running listgate. Create it with New, then call Run once; a
// Daemon that will not Run must be Closed.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	watcher *lists.Watcher
	spool   *spool.Spool       // nil when the LMTP door is off
	fwd     *forward.Forwarder // hands the spool's mail on; nil with the spool
	mailman *mailman.Source    // nil without the mailman setting
	canary  *canary.Canary     // nil without the canary_smtp setting
	doors   []*door
	probe   probe

	ran      atomic.Bool
	stopping atomic.Bool
	close    sync.Once
}

// door is one listening server.
type door struct {
	name     string // the setting's key; the log's door= value
	ep       postconf.Endpoint
	ln       net.Listener
	serve    func(net.Listener) error
	shutdown func(context.Context) error
	serving  atomic.Bool // between the start of serve and its return
}

// New checks cfg, loads the lists directory, opens the spool and every
// listener, and returns a Daemon ready to Run. On error nothing is left
// open. Errors name the setting at fault as cfg.Origin does ("--spool",
// "listgate.toml:4: lmtp").
func New(cfg Config) (*Daemon, error) {
	s := &cfg.Settings
	if !config.On(s.LMTP) && !config.On(s.Milter) && !config.On(s.Policy) && !config.On(s.Socketmap) && !config.On(s.Metrics) {
		return nil, errors.New("every door is off (lmtp, milter, policy, socketmap and metrics are all empty)")
	}
	if s.ShutdownTimeout <= 0 {
		return nil, fmt.Errorf("%s %v: must be positive", s.Origin("shutdown_timeout"), s.ShutdownTimeout)
	}
	if s.Hostname == "" {
		h, err := os.Hostname()
		if err == nil && h == "" {
			err = errors.New("empty")
		}
		if err != nil {
			return nil, fmt.Errorf("the system's host name: %w; set %s", err, s.Origin("hostname"))
		}
		s.Hostname = h
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{cfg: cfg, log: log}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	rescan := s.RescanInterval
	if rescan == 0 {
		rescan = -1 // lists.WatchOptions: negative is off, 0 the default
	}
	if err := d.newMailman(reg); err != nil {
		return nil, err
	}
	var err error
	d.watcher, err = lists.Watch(s.Lists, lists.WatchOptions{
		Options: d.listsOptions(), Logger: log, Registerer: reg, Rescan: rescan, LiveDomains: config.On(s.Socketmap),
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s %s: the directory does not exist; create it (one file per list) or name another", s.Origin("lists"), s.Lists)
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Origin("lists"), err)
	}
	if d.canary, err = d.newCanary(reg); err != nil {
		d.watcher.Close()
		return nil, err
	}
	if config.On(s.LMTP) {
		d.fwd, err = forward.New(forward.Options{
			Spool: filepath.Clean(s.Spool), Lists: d.watcher, Default: s.DefaultNextHop, Hostname: s.Hostname,
			Concurrency: s.ForwardConcurrency, Timeout: s.ForwardTimeout, ScanInterval: s.ForwardScanInterval,
			UnreadyAfter: unready(s.ForwardUnreadyAfter), Logger: log, Registerer: reg,
		})
		if err == nil {
			d.spool, err = spool.New(spool.Options{Dir: s.Spool, Hostname: s.Hostname, Logger: log, Delivered: d.fwd.Notify,
				Reserve: s.SpoolReserve.Resolve(s.MaxMessageSize), Registerer: reg})
		}
		if err != nil {
			d.watcher.Close()
			return nil, fmt.Errorf("%s: %w", s.Origin("spool"), err)
		}
		d.probe.dir = d.spool.Dir()
		srv := lmtp.New(lmtp.Options{
			Lists: d.watcher, Spool: d.spool, Logger: log, Registerer: reg,
			Hostname: s.Hostname, MaxMessageSize: s.MaxMessageSize, MaxRecipients: s.MaxRecipients,
			ReadTimeout: s.CommandTimeout, MinDataRate: s.MinDataRate,
			MaxConnections: s.MaxConnections, MaxConnectionsPerClient: s.MaxConnectionsPerClient,
		})
		d.doors = append(d.doors, &door{name: "lmtp", ep: s.LMTP, serve: srv.Serve, shutdown: srv.Shutdown})
	}
	if config.On(s.Milter) {
		srv := milter.New(milter.Options{
			Lists: d.watcher, Logger: log, Registerer: reg, MaxMessageSize: s.MaxMessageSize,
			IdleTimeout: s.MilterIdleTimeout, MaxConnections: s.MaxConnections, MaxConnectionsPerClient: s.MaxConnectionsPerClient,
		})
		d.doors = append(d.doors, &door{name: "milter", ep: s.Milter, serve: srv.Serve, shutdown: srv.Shutdown})
	}
	if config.On(s.Policy) {
		srv := postfix.NewPolicy(postfix.Options{
			Lists: d.watcher, MaxMessageSize: s.MaxMessageSize, Logger: log, Registerer: reg,
			MaxConnections: s.MaxConnections, MaxConnectionsPerClient: s.MaxConnectionsPerClient,
		})
		d.doors = append(d.doors, &door{name: "policy", ep: s.Policy, serve: srv.Serve, shutdown: srv.Shutdown})
	}
	if config.On(s.Socketmap) {
		// Made once the LMTP door listens: its transport map answers
		// that door's address, port 0 resolved.
		d.doors = append(d.doors, &door{name: "socketmap", ep: s.Socketmap})
	}
	if config.On(s.Metrics) {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
		mux.HandleFunc("/readyz", d.readyz)
		mux.Handle("/", status.New(status.Options{Lists: d.watcher, Reloads: d.watcher.Reloads, Gatherer: reg,
			DefaultNextHop: s.DefaultNextHop, Hostname: s.Hostname, Version: cfg.Version, Logger: log, NotReady: d.notReady}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.With("door", "metrics").Handler(), slog.LevelWarn)}
		d.doors = append(d.doors, &door{name: "metrics", ep: s.Metrics, serve: hs.Serve, shutdown: hs.Shutdown})
	}
	for _, dr := range d.doors {
		if dr.ln, err = listen(s.Origin(dr.name), dr.ep); err != nil {
			d.Close()
			return nil, err
		}
	}
	for _, dr := range d.doors {
		if dr.name == "socketmap" {
			srv := postfix.NewSocketmap(postfix.Options{
				Lists: d.watcher, MaxMessageSize: s.MaxMessageSize, LMTP: d.transportLMTP(), Logger: log, Registerer: reg,
				MaxConnections: s.MaxConnections, MaxConnectionsPerClient: s.MaxConnectionsPerClient,
			})
			dr.serve, dr.shutdown = srv.Serve, srv.Shutdown
		}
	}
	return d, nil
}

// transportLMTP is the LMTP door as Postfix's lmtp(8) reaches it, which
// the socketmap's transport map answers: the port chosen for a port 0, a
// wildcard host as loopback, a unix socket under Postfix's default queue
// directory relative to it, as a chrooted lmtp needs
// (postconf.Endpoint.Client). Zero when the LMTP door is off: the
// transport map then answers NOTFOUND.
func (d *Daemon) transportLMTP() postconf.Endpoint {
	for _, dr := range d.doors {
		if dr.name != "lmtp" {
			continue
		}
		ep := dr.ep
		if ep.Network == "tcp" {
			ep.Address = dr.ln.Addr().String()
		}
		return ep.Client(postconf.DefaultQueueDirectory)
	}
	return postconf.Endpoint{}
}

// Addr returns the address the door ("lmtp", "milter", "policy",
// "socketmap" or "metrics") listens on, in Postfix's syntax, with the port chosen for a port 0; ""
// if the door is off.
func (d *Daemon) Addr(name string) string {
	for _, dr := range d.doors {
		if dr.name == name {
			if dr.ep.Network == "unix" {
				return dr.ep.String()
			}
			return "inet:" + dr.ln.Addr().String()
		}
	}
	return ""
}

// Rescan re-reads every file of the lists directory in the background and
// ends the forwarder's backoff waits (mail deferred for a next hop is
// tried again now), as SIGHUP asks.
func (d *Daemon) Rescan() {
	d.watcher.Rescan()
	if d.fwd != nil {
		d.fwd.RetryNow()
	}
}

// Run serves every door until ctx ends or a door fails, then shuts the
// daemon down gracefully: listeners close at once, transactions in flight
// get up to ShutdownTimeout to finish, idle sessions are closed, unix
// sockets are removed. It returns nil after a shutdown that ctx asked for,
// or the error of the door that failed. Run may be called once.
func (d *Daemon) Run(ctx context.Context) error {
	if d.ran.Swap(true) {
		return errors.New("daemon: Run called twice")
	}
	errc := make(chan error, len(d.doors))
	for _, dr := range d.doors {
		d.log.Info("listening", "door", dr.name, "addr", d.Addr(dr.name))
		dr.serving.Store(true)
		go func() {
			err := dr.serve(dr.ln)
			dr.serving.Store(false)
			if err == nil || isClosed(err) {
				err = errors.New("stopped")
			}
			errc <- fmt.Errorf("%s door: %w", dr.name, err)
		}()
	}
	if d.fwd != nil {
		d.fwd.Start()
	}
	stopMailman := d.runMailman()
	stopCleaner := d.runTmpCleaner()
	stopCanary := d.runCanary()
	d.log.Info("listgate started", "version", d.cfg.Version, "lists", d.cfg.Lists, "spool", d.cfg.Spool,
		"lists_count", len(d.watcher.Snapshot().Lists()))

	var runErr error
	pending := len(d.doors)
	select {
	case <-ctx.Done():
		d.log.Info("shutting down", "reason", context.Cause(ctx).Error(), "timeout", d.cfg.ShutdownTimeout.String())
	case runErr = <-errc:
		pending--
		d.log.Error("door failed; shutting down", "err", runErr)
	}
	d.stopping.Store(true)
	stopCanary() // before the doors close: its probes would see them gone
	sctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, dr := range d.doors {
		wg.Go(func() {
			if err := dr.shutdown(sctx); err != nil && !isClosed(err) {
				d.log.Error("shutdown", "door", dr.name, "err", err)
			}
			if dr.ep.Network == "unix" {
				os.Remove(dr.ep.Address)
			}
		})
	}
	if d.fwd != nil {
		wg.Go(func() {
			if err := d.fwd.Shutdown(sctx); err != nil {
				d.log.Error("shutdown: forwards still in flight were interrupted; they go again at the next start", "door", "forward", "err", err)
			}
		})
	}
	wg.Wait()
	stopMailman()
	stopCleaner()
	for ; pending > 0; pending-- {
		<-errc // every Serve has returned: no goroutine outlives Run
	}
	d.Close()
	d.log.Info("listgate stopped")
	return runErr
}

// runTmpCleaner removes what crashes left in the spool's tmp/ folders
// (files older than spool.TmpGrace) now and every spool.TmpCleanInterval,
// until the returned stop is called. Without a spool it does nothing.
func (d *Daemon) runTmpCleaner() (stop func()) {
	if d.spool == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.spool.CleanTmpEvery(ctx, spool.TmpCleanInterval, spool.TmpGrace)
	}()
	return func() {
		cancel()
		<-done
	}
}

// Close releases what New opened: the listeners and the lists watcher.
// Run calls it; call it yourself only for a Daemon that will not Run. It
// is safe to call more than once.
func (d *Daemon) Close() {
	d.close.Do(func() {
		for _, dr := range d.doors {
			if dr.ln != nil {
				dr.ln.Close()
			}
		}
		if d.watcher != nil {
			d.watcher.Close()
		}
	})
}

// unready turns forward_unready_after (0: never) into
// forward.Options.UnreadyAfter (negative: never).
func unready(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// isClosed reports whether err only says that a door was shut down.
func isClosed(err error) bool {
	return errors.Is(err, lmtp.ErrServerClosed) || errors.Is(err, milter.ErrServerClosed) || errors.Is(err, postfix.ErrServerClosed) ||
		errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed)
}
