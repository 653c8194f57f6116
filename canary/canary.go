package canary

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/internal/promreg"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/postconf"
)

// Defaults of Options.
const (
	// DefaultInterval is the time from one probe's start to the next's:
	// a Postfix change that opens the gate is seen within two of them.
	DefaultInterval = time.Minute
	// DefaultTimeout bounds one probe, connect included. It is above
	// Postfix's milter_command_timeout (30s), so a milter that does not
	// answer shows as Postfix's milter_default_action reply rather than
	// as the canary's timeout.
	DefaultTimeout = 45 * time.Second
	// BogusPrefix starts the local part of every bogus address a probe
	// sends, so the canary's RCPTs are easy to tell apart in logs.
	BogusPrefix = "listgate-canary-"
)

// Result is what one probe found; it is the result label of
// listgate_canary_probes_total.
type Result string

// The results, in the order of Results.
const (
	OK            Result = "ok"             // list accepted, bogus address refused (5xx)
	GateOpen      Result = "gate-open"      // bogus address accepted: nothing checks recipients
	ListRefused   Result = "list-refused"   // the known list refused or deferred
	BogusDeferred Result = "bogus-deferred" // bogus address deferred (4xx): not proven shut
	Unreachable   Result = "unreachable"    // no connection to Postfix's smtpd
	Error         Result = "error"          // the dialogue failed before the recipients
	NoList        Result = "no-list"        // no list to probe with
	// Observe: every domain to probe is in observe mode, where a bogus
	// address is let through by design; list and bogus address both
	// accepted. Ready, but the gate is not proven shut.
	Observe Result = "observe"
)

// Results lists every Result.
var Results = []Result{OK, GateOpen, ListRefused, BogusDeferred, Unreachable, Error, NoList, Observe}

// Ready reports whether r lets the daemon be ready: OK, and Observe (an
// observe roll-out must not keep listgate unready; docs/reliability.md,
// "The canary").
func (r Result) Ready() bool { return r == OK || r == Observe }

// Options configure a Canary.
type Options struct {
	// SMTP is Postfix's smtpd to probe, in Postfix's syntax
	// (postconf.Endpoint): the port the Internet's mail arrives on,
	// e.g. inet:127.0.0.1:25. Required.
	SMTP postconf.Endpoint
	// Lists gives the current snapshot, from which each probe picks its
	// addresses and checks them with Resolve. Required.
	Lists lists.Source
	// List is the address to probe as the known list, as Postfix would
	// receive it (key canary_list); "" picks the first list of the
	// snapshot, by address, whose posting address is accepted. The
	// bogus address is in its domain.
	List string
	// Sender is the MAIL FROM address (key canary_sender); "" is the
	// null sender <>, which no probe's reply can bounce to.
	Sender string
	// Hostname is the EHLO name. Give a fully qualified name:
	// reject_non_fqdn_helo_hostname refuses "localhost", the default.
	Hostname string
	// Interval is the time from one probe's start to the next's
	// (default DefaultInterval). A probe that takes longer delays the
	// next; probes never overlap.
	Interval time.Duration
	// Timeout bounds one probe, connect included (default
	// DefaultTimeout).
	Timeout time.Duration
	// Logger gets a line whenever the result changes (and, at debug
	// level, one per probe). Nil discards.
	Logger *slog.Logger
	// Registerer, if set, gets the listgate_canary_* metrics.
	Registerer prometheus.Registerer
}

// Status is the outcome of a probe.
type Status struct {
	Result Result // "" before the first probe ends
	// Time is when the probe ended; Duration how long it took.
	Time     time.Time
	Duration time.Duration
	// List and Bogus are the two recipients sent (either may be "" if
	// the probe ended before it).
	List, Bogus string
	// Observed is set when Bogus is in a domain in observe mode
	// (listgate lets it through): no domain with a list was enforced, or
	// Options.List is in an observed one.
	Observed bool
	// Reply is the SMTP reply that decided the result ("550 5.1.1
	// <...>: Recipient address rejected: ..."; "250" for an accepted
	// recipient, whose text go-smtp does not keep), or "".
	Reply string
	// Step names the command that failed for Error ("EHLO", "MAIL
	// FROM", "RSET"), "" otherwise.
	Step string
	// Err says why for Unreachable, Error and NoList.
	Err error
	// LastSuccess is when a probe last had the result OK; zero if none
	// has since the start.
	LastSuccess time.Time
}

// Canary probes Postfix's smtpd. Create it with New, then Run it.
type Canary struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics

	mu     sync.Mutex
	status Status
}

// New checks opts and returns a Canary that has not probed yet.
func New(opts Options) (*Canary, error) {
	if opts.SMTP.Network != "tcp" && opts.SMTP.Network != "unix" {
		return nil, errors.New("canary: no SMTP address to probe")
	}
	if opts.Lists == nil {
		return nil, errors.New("canary: no lists")
	}
	if opts.List != "" && !strings.Contains(opts.List, "@") {
		return nil, fmt.Errorf("canary: list %q: want a list address, local@domain", opts.List)
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Hostname == "" {
		opts.Hostname = "localhost"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Canary{opts: opts, log: log.With("door", "canary"), metrics: newMetrics(opts.Registerer)}, nil
}

// Addr is the probed smtpd in Postfix's syntax ("inet:127.0.0.1:25").
func (c *Canary) Addr() string { return c.opts.SMTP.String() }

// Run probes at once and then every Interval until ctx ends. A probe cut
// short by ctx is not recorded.
func (c *Canary) Run(ctx context.Context) {
	c.log.Info("canary started", "smtp", c.Addr(), "interval", c.opts.Interval.String())
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		c.Probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Status returns the latest probe's outcome.
func (c *Canary) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// NotReady says why the latest probe makes listgate unready, naming what
// it saw; "" when its result is OK or Observe (Result.Ready).
func (c *Canary) NotReady() string {
	st := c.Status()
	addr := "smtp " + c.Addr()
	var why string
	switch st.Result {
	case OK, Observe:
		return ""
	case "":
		return "canary: " + addr + ": no probe has finished yet"
	case GateOpen:
		// Only for a domain in enforce mode: in an observed one, accepting
		// it is Observe.
		why = fmt.Sprintf("%s accepted bogus recipient %s: the RCPT check is not active "+
			"(milter/policy missing from main.cf?); mail to any address of %s is accepted and bounced later",
			addr, st.Bogus, domainOf(st.Bogus))
	case ListRefused:
		why = fmt.Sprintf("%s refused list %s: %s: the lists get no mail (listgate's door down, "+
			"domain not in relay_domains, or a restriction refusing the canary?)", addr, st.List, st.Reply)
	case BogusDeferred:
		why = fmt.Sprintf("%s deferred bogus recipient %s: %s: the gate is not proven shut "+
			"(greylisting or a rate limit on the canary's client, or a list file problem?)", addr, st.Bogus, st.Reply)
	case Unreachable:
		why = fmt.Sprintf("%s unreachable: %v", addr, st.Err)
	case Error:
		if st.Reply != "" {
			why = fmt.Sprintf("%s: %s: %s", addr, st.Step, st.Reply)
		} else {
			why = fmt.Sprintf("%s: %s: %v", addr, st.Step, st.Err)
		}
	case NoList:
		why = fmt.Sprintf("%s not probed: %v", addr, st.Err)
	}
	if st.LastSuccess.IsZero() {
		return "canary: " + why + " (no success since the start)"
	}
	return "canary: " + why + " (last success " + st.LastSuccess.UTC().Format(time.RFC3339) + ")"
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}

// Probe runs one probe now, records it and returns it. A probe that ctx
// ends is returned but not recorded (a shutdown is not Postfix's fault).
func (c *Canary) Probe(ctx context.Context) Status {
	begin := time.Now()
	st := c.probe(ctx)
	st.Time = time.Now()
	st.Duration = st.Time.Sub(begin)
	if ctx.Err() != nil {
		return st
	}
	c.mu.Lock()
	prev := c.status
	st.LastSuccess = prev.LastSuccess
	if st.Result == OK {
		st.LastSuccess = st.Time
	}
	c.status = st
	c.mu.Unlock()
	c.metrics.record(st)
	c.logChange(prev, st)
	return st
}

// logChange logs st at info (OK), warn or error (GateOpen) when its result
// differs from prev's, else at debug.
func (c *Canary) logChange(prev, st Status) {
	attrs := []any{"result", string(st.Result), "smtp", c.Addr(), "list", st.List, "rcpt", st.Bogus,
		"duration", st.Duration.Round(time.Millisecond).String()}
	if st.Reply != "" {
		attrs = append(attrs, "reply", st.Reply)
	}
	if st.Step != "" {
		attrs = append(attrs, "step", st.Step)
	}
	if st.Err != nil {
		attrs = append(attrs, "err", st.Err)
	}
	level := slog.LevelDebug
	switch {
	case st.Result == prev.Result:
	case st.Result == OK, st.Result == Observe:
		level = slog.LevelInfo
	case st.Result == GateOpen:
		level = slog.LevelError
	default:
		level = slog.LevelWarn
	}
	c.log.Log(context.Background(), level, "canary probe", attrs...)
}

// probe runs the dialogue and classifies it.
func (c *Canary) probe(parent context.Context) Status {
	list, bogus, observed, err := c.targets()
	if err != nil {
		return Status{Result: NoList, List: list, Err: err}
	}
	ctx, cancel := context.WithTimeout(parent, c.opts.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.opts.SMTP.Network, c.opts.SMTP.Address)
	if err != nil {
		return Status{Result: Unreachable, List: list, Bogus: bogus, Err: c.timedOut(ctx, err)}
	}
	// The timeout covers the whole dialogue: go-smtp's deadlines are per
	// command.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	cl := smtp.NewClient(conn)
	defer cl.Close()
	cl.CommandTimeout = c.opts.Timeout

	failed := func(step string, err error) Status {
		st := Status{Result: Error, List: list, Bogus: bogus, Step: step, Err: c.timedOut(ctx, err)}
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			st.Reply = replyText(se)
		}
		return st
	}
	// RFC 5321 §4.3.1: Hello reads the 220 greeting, then says EHLO.
	if err := cl.Hello(c.opts.Hostname); err != nil {
		return failed("greeting and EHLO", err)
	}
	if err := cl.Mail(c.opts.Sender, nil); err != nil {
		return failed("MAIL FROM", err)
	}
	listErr := cl.Rcpt(list, nil)
	if isNetErr(listErr) {
		return failed("RCPT TO list", listErr)
	}
	// A transaction of its own for the bogus address (RFC 5321 §4.1.1.5):
	// with the null sender, Postfix's reject_multi_recipient_bounce
	// refuses any second recipient, which would look like the gate
	// shutting; and a refusal of the list cannot hide the bogus answer.
	if err := cl.Reset(); err != nil {
		return failed("RSET", err)
	}
	if err := cl.Mail(c.opts.Sender, nil); err != nil {
		return failed("MAIL FROM", err)
	}
	bogusErr := cl.Rcpt(bogus, nil)
	if isNetErr(bogusErr) {
		return failed("RCPT TO bogus", bogusErr)
	}
	cl.Quit() // never DATA: nothing is queued; a failed QUIT changes nothing

	st := Status{List: list, Bogus: bogus, Observed: observed}
	var se *smtp.SMTPError
	switch {
	case bogusErr == nil && listErr == nil && observed:
		// Let through by design: listgate counts it as would-refuse.
		st.Result, st.Reply = Observe, "250"
	case bogusErr == nil && !observed:
		st.Result, st.Reply = GateOpen, "250"
	case bogusErr == nil:
		// Observed, and the list refused: the lists get no mail.
		errors.As(listErr, &se)
		st.Result, st.Reply = ListRefused, replyText(se)
	case listErr != nil:
		errors.As(listErr, &se)
		st.Result, st.Reply = ListRefused, replyText(se)
	case errors.As(bogusErr, &se) && se.Code/100 == 4:
		st.Result, st.Reply = BogusDeferred, replyText(se)
	default:
		errors.As(bogusErr, &se)
		st.Result, st.Reply = OK, replyText(se)
	}
	return st
}

// isNetErr reports whether err from a command is something other than an
// SMTP reply: the connection failed, or the probe timed out.
func isNetErr(err error) bool {
	var se *smtp.SMTPError
	return err != nil && !errors.As(err, &se)
}

// timedOut turns the error of a probe that ran out of time (ctx's
// timeout closed the connection, or go-smtp's per-command deadline, the
// same length, passed first) into one that says so.
func (c *Canary) timedOut(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("no answer within %v (canary_timeout): %w", c.opts.Timeout, err)
	}
	return err
}

// replyText renders an SMTP reply as it was on the wire: "550 5.1.1
// <x@example.org>: Recipient address rejected: ...".
func replyText(se *smtp.SMTPError) string {
	if se == nil {
		return ""
	}
	msg := strings.ReplaceAll(se.Message, "\n", " ")
	if se.EnhancedCode == (smtp.EnhancedCode{}) || se.EnhancedCode == smtp.NoEnhancedCode {
		return fmt.Sprintf("%d %s", se.Code, msg)
	}
	e := se.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d %s", se.Code, e[0], e[1], e[2], msg)
}

// targets picks the known list and a fresh bogus address in its domain
// from the current snapshot. The bogus address must resolve as unknown
// (a refusal of it then proves the recipient check, not a list file's
// tempfail) or, failing that, as observed: then observed is set, and
// Postfix is expected to accept it. A list in a domain in enforce mode is
// preferred to one in observe mode.
func (c *Canary) targets() (list, bogus string, observed bool, err error) {
	snap := c.opts.Lists.Snapshot()
	if snap == nil {
		return "", "", false, errors.New("the lists are not loaded yet")
	}
	random, err := randomLocal()
	if err != nil {
		return "", "", false, err
	}
	if c.opts.List != "" {
		list = c.opts.List
		if v := snap.Resolve(list); v.Status != lists.Accept {
			return list, "", false, fmt.Errorf("canary_list %s resolves to %s, not to a list", list, v.Status)
		}
		bogus = random + "@" + domainOf(list)
		switch v := snap.Resolve(bogus); v.Status {
		case lists.Unknown:
			return list, bogus, false, nil
		case lists.Observed:
			return list, bogus, true, nil
		default:
			return list, "", false, fmt.Errorf("canary_list %s: a bogus address in its domain, %s, resolves to %s, not unknown or observed (a broken file of the domain?)", list, bogus, v.Status)
		}
	}
	var first string // the first list in an observed domain
	for _, l := range snap.Lists() {
		if snap.Resolve(l.Address).Status != lists.Accept {
			continue
		}
		switch b := random + "@" + l.Domain; snap.Resolve(b).Status {
		case lists.Unknown:
			return l.Address, b, false, nil
		case lists.Observed:
			if first == "" {
				first = l.Address
			}
		}
	}
	if first != "" {
		return first, random + "@" + domainOf(first), true, nil
	}
	return "", "", false, fmt.Errorf("no list in the lists directory has an accepted posting address in a domain "+
		"whose unknown addresses are refused or observed (%d lists; a domain with a file that does not parse tempfails them): "+
		"fix the files listgate lists names, or set canary_list", len(snap.Lists()))
}

// randomLocal returns a bogus local part, random per probe so that no
// cache (Postfix's verify(8), a policy's) can answer for it.
func randomLocal() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random bogus address: %w", err)
	}
	return BogusPrefix + hex.EncodeToString(b[:]), nil
}

// metrics are the canary's Prometheus collectors, listgate_canary_*.
type metrics struct {
	ok, gateOpen, observe prometheus.Gauge
	probes                *prometheus.CounterVec
	lastSuccess, lastTime prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		ok: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "listgate_canary_ok",
			Help: "1 if the latest canary probe found the gate shut (a list accepted, a bogus address refused by Postfix's smtpd), else 0.",
		}),
		gateOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "listgate_canary_gate_open",
			Help: "1 if Postfix's smtpd accepted the latest canary probe's bogus recipient: nothing checks recipients at RCPT time.",
		}),
		observe: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "listgate_canary_observe",
			Help: "1 if the latest canary probe's bogus recipient was in a domain in observe mode (no enforced domain to probe), which Postfix let through as expected; listgate_canary_ok is 0 then: the gate is not proven shut.",
		}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "listgate_canary_probes_total",
			Help: "Canary probes of Postfix's smtpd, by result (ok, gate-open, list-refused, bogus-deferred, unreachable, error, no-list, observe).",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "listgate_canary_last_success_timestamp_seconds",
			Help: "Unix time of the end of the last canary probe with result ok; 0 if none since the start.",
		}),
		lastTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "listgate_canary_last_probe_timestamp_seconds",
			Help: "Unix time of the end of the latest canary probe.",
		}),
	}
	for _, r := range Results {
		m.probes.WithLabelValues(string(r))
	}
	if reg != nil {
		m.ok = promreg.Register(reg, m.ok)
		m.gateOpen = promreg.Register(reg, m.gateOpen)
		m.observe = promreg.Register(reg, m.observe)
		m.probes = promreg.Register(reg, m.probes)
		m.lastSuccess = promreg.Register(reg, m.lastSuccess)
		m.lastTime = promreg.Register(reg, m.lastTime)
	}
	return m
}

func (m *metrics) record(st Status) {
	m.probes.WithLabelValues(string(st.Result)).Inc()
	m.ok.Set(b2f(st.Result == OK))
	m.gateOpen.Set(b2f(st.Result == GateOpen))
	m.observe.Set(b2f(st.Observed))
	m.lastTime.Set(float64(st.Time.UnixNano()) / 1e9)
	if st.Result == OK {
		m.lastSuccess.Set(float64(st.Time.UnixNano()) / 1e9)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
