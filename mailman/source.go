package mailman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/postconf"
)

// Defaults of Options.
const (
	// DefaultInterval is the poll interval: a list created in Mailman is
	// accepted at RCPT within it (plus one poll's time), well within the
	// 10 seconds docs/mailman.md promises.
	DefaultInterval = 5 * time.Second
	// DefaultTimeout bounds each REST request.
	DefaultTimeout = 10 * time.Second
	// DefaultPageSize is the number of lists asked for per page.
	DefaultPageSize = 500
)

// SourceName is the External's Source: it names Mailman's lists in the
// lists package's reloads ("reason=mailman").
const SourceName = "mailman"

// Options configure a Source.
type Options struct {
	// URL is Mailman core's REST base with its API version, e.g.
	// http://127.0.0.1:8001/3.1; it may hold the credentials as
	// user:password@. It is never logged with them.
	URL string
	// Credentials, "user:password", are Mailman's [webservice]
	// admin_user and admin_pass; they override the URL's. See
	// ReadCredentials.
	Credentials string
	// Interval is the time between two polls (default DefaultInterval).
	Interval time.Duration
	// Timeout bounds each REST request (default DefaultTimeout).
	Timeout time.Duration
	// PageSize is the number of lists per page (default DefaultPageSize).
	PageSize int
	// LMTP, if set, is the next hop of Mailman's lists, in
	// postconf.Endpoint's syntax (inet:host:port, unix:/path), instead of
	// the LMTP runner Mailman's [mta] lmtp_host and lmtp_port name.
	LMTP string
	// Self is listgate's own LMTP door. A next hop that reaches it would
	// loop, so it is withheld (and logged as an error).
	Self postconf.Endpoint
	// Domains are Mailman's domains as the configuration names them
	// (mailman_domains): served, their unknown addresses tempfailing,
	// until Mailman is reached for the first time.
	Domains []string
	// Delimiters are listgate's recipient delimiters (lists.Options),
	// against which Mailman's verp_delimiter is checked.
	Delimiters string
	// CacheFile, if set, keeps the last set read from Mailman across
	// restarts: it is read by New and written after each poll that
	// found a change, unless ReadOnlyCache.
	CacheFile     string
	ReadOnlyCache bool
	// Logger gets one line per change of the set and per change of
	// reachability. Nil discards.
	Logger *slog.Logger
	// Registerer, if set, gets the listgate_mailman_* metrics.
	Registerer prometheus.Registerer
	// OnChange, if set, is called by Run with the current set when Run
	// starts and after each poll that changed it; *lists.Watcher's
	// SetExternal is made for it.
	OnChange func(*lists.External)
	// OnReachable, if set, is called after a poll that reached Mailman
	// when the one before did not (or none had succeeded yet): the
	// forwarder's RetryNow is made for it, so that mail kept while
	// Mailman was down goes to its LMTP runner at once.
	OnReachable func()
}

// Status is what a Source knows of Mailman.
type Status struct {
	// URL is the REST base, without credentials.
	URL string
	// Started is when the Source was made.
	Started time.Time
	// Reached says whether a poll has succeeded since Started.
	Reached bool
	// LastSuccess is the time of the last successful poll, zero if none
	// since Started.
	LastSuccess time.Time
	// Err is the last poll's error, nil if it succeeded or none ran.
	Err error
	// Cached is the time the cache file's set was read from Mailman, when
	// the current set comes from it (Mailman not reached yet); else zero.
	Cached time.Time
	// NextHop is the next hop of Mailman's lists ("lmtp:inet:...");
	// empty when not known or withheld.
	NextHop string
	// Loop is the next hop withheld because it is listgate's own LMTP
	// door (Mailman's runner left on listgate's port): Mailman's list
	// mail stays in the spool until it is moved. Empty when none.
	Loop string
	// Lists and Domains count the current set.
	Lists, Domains int
}

// Source keeps listgate's copy of the lists GNU Mailman 3 serves: it polls
// Mailman core's REST API (GET /lists, /domains and
// /system/configuration/mta; Mailman sends no change notification) and
// turns what it reads into a lists.External. Create it with New; then
// call Run, or Refresh for one read.
type Source struct {
	opts    Options
	client  *client
	tr      *http.Transport
	log     *slog.Logger
	m       *metrics
	started time.Time

	refresh sync.Mutex // one poll at a time

	mu      sync.Mutex // guards what follows
	data    *Data      // the last good read (or the cache's), nil if none
	cached  *Data      // what the cache file holds
	cur     *lists.External
	status  Status
	up      int8            // 1 reachable, -1 not, 0 not tried: logs each change once
	warned  map[string]bool // warnings already logged, by text
	hopSelf string          // a looping next hop already logged
}

// New checks opts, reads the cache file if there is one and returns a
// Source whose set is the cache's (or, without one, just Options.Domains),
// not settled until Mailman is reached. Errors name what is wrong with
// the URL, never its credentials.
func New(opts Options) (*Source, error) {
	base, user, pass, err := parseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("mailman URL %s: %w", Redact(opts.URL), err)
	}
	if opts.Credentials != "" {
		var ok bool
		user, pass, ok = strings.Cut(opts.Credentials, ":")
		if !ok {
			return nil, errors.New("mailman credentials: want user:password")
		}
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.LMTP != "" {
		if _, ok, err := postconf.ParseEndpoint("mailman-lmtp", opts.LMTP); err != nil || !ok {
			return nil, fmt.Errorf("mailman: LMTP %q: want inet:host:port or unix:/path", opts.LMTP)
		}
	}
	s := &Source{opts: opts, log: opts.Logger, started: time.Now(), warned: make(map[string]bool)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.tr = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: opts.Timeout}).DialContext,
		TLSHandshakeTimeout:   opts.Timeout,
		ResponseHeaderTimeout: opts.Timeout,
		MaxIdleConnsPerHost:   1,
	}
	s.client = &client{base: base, user: user, pass: pass, pageSize: opts.PageSize, http: &http.Client{
		Transport: s.tr,
		Timeout:   opts.Timeout,
		// Mailman does not redirect; a redirect elsewhere is not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	s.status = Status{URL: base.String(), Started: s.started}
	s.m = newMetrics(opts.Registerer)
	if opts.CacheFile != "" {
		c, err := readCache(opts.CacheFile, base.String())
		switch {
		case err != nil:
			s.log.Warn("mailman cache not used", "url", base.String(), "file", opts.CacheFile, "err", err)
		case c != nil:
			s.data, s.cached, s.status.Cached = &c.Data, &c.Data, c.Fetched
			s.log.Info("mailman lists read from the cache until Mailman answers", "url", base.String(),
				"file", opts.CacheFile, "fetched", c.Fetched.Format(time.RFC3339), "lists", len(c.Lists))
		}
	}
	s.cur = s.external(s.data, false)
	s.setGauges()
	return s, nil
}

// parseURL checks a REST base URL and splits off its credentials. Its
// errors say what is wrong, without the URL.
func parseURL(raw string) (base *url.URL, user, pass string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the URL, credentials and all.
		return nil, "", "", errors.New("not a URL")
	}
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, "", "", errors.New("want http:// or https://")
	case u.Host == "":
		return nil, "", "", errors.New("no host")
	case strings.Trim(u.Path, "/") == "":
		return nil, "", "", fmt.Errorf("name the API version, e.g. %s://%s/3.1", u.Scheme, u.Host)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, "", "", errors.New("no query or fragment, please")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, user, pass, nil
}

// CheckURL checks a REST base URL as New does. Its error says what is
// wrong, without the URL (which may hold a password).
func CheckURL(raw string) error {
	_, _, _, err := parseURL(raw)
	return err
}

// HasCredentials reports whether the URL raw holds user information.
func HasCredentials(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.User != nil
}

// Redact returns a Mailman URL without its user information, for logs
// and messages; a string that is not a URL comes back as a placeholder,
// since it may hold a password.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	u.User = nil
	return u.String()
}

// URL returns the REST base without credentials.
func (s *Source) URL() string { return s.status.URL }

// External returns the current set: Mailman's lists as last read, or the
// cache's, never nil.
func (s *Source) External() *lists.External {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Status returns what the Source knows of Mailman now.
func (s *Source) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Run polls Mailman every Interval until ctx ends, handing each changed
// set to OnChange (and the current one when it starts). It returns nil
// when ctx ends; a poll's failure keeps the last good set and is logged
// once per change of reachability.
func (s *Source) Run(ctx context.Context) error {
	var given *lists.External
	give := func() {
		if x := s.External(); x != given && s.opts.OnChange != nil {
			given = x
			s.opts.OnChange(x)
		}
	}
	give()
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.Refresh(ctx); err != nil && ctx.Err() != nil {
			return nil
		}
		give()
	}
}

// Refresh reads Mailman once and, when that works, makes what it read the
// current set, writing the cache file if the set changed. It returns the
// poll's error; the current set then stays as it was.
func (s *Source) Refresh(ctx context.Context) error {
	s.refresh.Lock()
	defer s.refresh.Unlock()
	defer s.tr.CloseIdleConnections() // no connection outlives a poll
	s.mu.Lock()
	prev := s.data
	s.mu.Unlock()
	start := time.Now()
	d, err := s.client.fetch(ctx, prev)
	if err != nil && ctx.Err() != nil {
		return err // shutting down: not Mailman's failure
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.status.Err = err
	if err != nil {
		s.m.polls.WithLabelValues("error").Inc()
		s.m.success.Set(0)
		if s.up >= 0 {
			since := "start"
			if s.status.Reached {
				since = s.status.LastSuccess.Format(time.RFC3339)
			}
			s.log.Warn("mailman not reachable; serving its last good lists", "url", s.status.URL, "since", since, "err", err)
		}
		s.up = -1
		return err
	}
	s.m.polls.WithLabelValues("ok").Inc()
	s.m.success.Set(1)
	s.m.timestamp.Set(float64(now.UnixNano()) / 1e9)
	s.m.duration.Observe(now.Sub(start).Seconds())
	first := !s.status.Reached
	switch {
	case s.up < 0 && !first:
		s.log.Info("mailman reachable again", "url", s.status.URL, "down_s", now.Sub(s.status.LastSuccess).Round(time.Second).Seconds())
	case first:
		s.log.Info("mailman reached", "url", s.status.URL, "lists", len(d.Lists), "domains", len(d.Domains),
			"duration_ms", float64(now.Sub(start).Microseconds())/1000)
	}
	if (s.up < 0 || first) && s.opts.OnReachable != nil {
		s.opts.OnReachable()
	}
	s.up = 1
	s.status.Reached, s.status.LastSuccess, s.status.Cached = true, now, time.Time{}
	changed := !d.Equal(prev)
	if !changed && !first {
		return nil
	}
	if changed && prev != nil {
		added, removed := diff(prev, d)
		s.log.Info("mailman lists changed", "url", s.status.URL, "added", len(added), "removed", len(removed),
			"lists", len(d.Lists), "domains", len(d.Domains))
	}
	s.data = d
	s.cur = s.external(d, true)
	s.setGauges()
	if s.opts.CacheFile != "" && !s.opts.ReadOnlyCache && !d.Equal(s.cached) {
		if err := writeCache(s.opts.CacheFile, &cache{URL: s.status.URL, Fetched: now, Data: *d}); err != nil {
			s.log.Warn("mailman cache not written: after a restart with Mailman down, its lists tempfail until it answers",
				"file", s.opts.CacheFile, "err", err)
		} else {
			s.cached = d
		}
	}
	return nil
}

// diff returns the addresses of the lists b has and a has not, and the
// other way round.
func diff(a, b *Data) (added, removed []string) {
	var was, is []List
	if a != nil {
		was = a.Lists
	}
	if b != nil {
		is = b.Lists
	}
	for _, l := range is {
		if _, ok := slices.BinarySearchFunc(was, l, compareLists); !ok {
			added = append(added, l.Address)
		}
	}
	for _, l := range was {
		if _, ok := slices.BinarySearchFunc(is, l, compareLists); !ok {
			removed = append(removed, l.Address)
		}
	}
	return added, removed
}

// external turns d (nil: nothing known) into the set the lists package
// serves. Until Mailman is reached, the configured domains are served too
// and the set is not settled. Callers hold s.mu (or own s).
func (s *Source) external(d *Data, settled bool) *lists.External {
	x := &lists.External{Source: SourceName, Settled: settled}
	if d == nil {
		d = &Data{}
	}
	hop := s.nextHop(d.MTA)
	s.status.NextHop = hop
	for _, l := range d.Lists {
		id := l.ListID
		if id == "" {
			id = l.Address
		}
		x.Lists = append(x.Lists, lists.ExternalList{Address: l.Address, ListID: l.ListID, Description: l.Description,
			Origin: s.status.URL + "/lists/" + url.PathEscape(id), NextHop: hop})
	}
	known := make(map[string]bool)
	for _, dom := range d.Domains {
		xd := lists.ExternalDomain{Name: dom.Name, Origin: s.status.URL + "/domains/" + url.PathEscape(dom.Name)}
		if dom.AliasDomain != "" {
			xd.Aliases = []string{dom.AliasDomain}
		}
		x.Domains = append(x.Domains, xd)
		if c, err := lists.CanonicalDomain(dom.Name); err == nil {
			known[c] = true
		}
	}
	for _, name := range s.opts.Domains {
		c, err := lists.CanonicalDomain(name)
		if err == nil && known[c] {
			continue
		}
		if settled {
			s.warnOnce(fmt.Sprintf("mailman_domains names %s, which Mailman does not know: not served", name))
			continue
		}
		x.Domains = append(x.Domains, lists.ExternalDomain{Name: name, Origin: "mailman_domains"})
	}
	if settled {
		s.checkVERP(d.MTA.VERPDelimiter)
	}
	s.status.Lists, s.status.Domains = len(x.Lists), len(x.Domains)
	return x
}

// nextHop is the next hop of Mailman's lists: Options.LMTP, else the LMTP
// runner of Mailman's [mta] section (a wildcard lmtp_host is reached on
// loopback); "" when neither is known, or when it would reach listgate's
// own LMTP door.
func (s *Source) nextHop(m MTA) string {
	var ep postconf.Endpoint
	switch {
	case s.opts.LMTP != "":
		ep, _, _ = postconf.ParseEndpoint("mailman-lmtp", s.opts.LMTP)
	case m.LMTPPort != "":
		host := m.LMTPHost
		switch ip := net.ParseIP(host); {
		case host == "", ip != nil && ip.Equal(net.IPv4zero):
			host = "127.0.0.1"
		case ip != nil && ip.IsUnspecified():
			host = "::1"
		}
		ep = postconf.Endpoint{Network: "tcp", Address: net.JoinHostPort(host, m.LMTPPort)}
	default:
		return ""
	}
	hop := "lmtp:" + ep.String()
	if s.opts.Self.Network != "" && postconf.Reaches(ep, s.opts.Self) {
		s.status.Loop = hop
		if s.hopSelf != hop {
			s.hopSelf = hop
			s.log.Error("Mailman's LMTP runner is listgate's own LMTP door: forwarding there would loop, so Mailman's lists "+
				"get no next hop and their mail stays in the spool. Move Mailman's runner ([mta] lmtp_port: 8026 in mailman.cfg) "+
				"or name it with mailman_lmtp", "url", s.status.URL, "next_hop", hop, "lmtp", s.opts.Self.String())
		}
		return ""
	}
	s.hopSelf, s.status.Loop = "", ""
	return hop
}

// checkVERP warns when Mailman's verp_delimiter is not one of listgate's
// recipient delimiters: Mailman's VERP bounces (list-bounces+anne=
// example.net@) and confirmations (list-confirm+token@) would not be cut
// there, and would be unknown (550).
func (s *Source) checkVERP(v string) {
	delims := s.opts.Delimiters
	switch delims {
	case "":
		delims = lists.DefaultDelimiter
	case "none":
		delims = ""
	}
	if v == "" || (len([]rune(v)) == 1 && strings.Contains(delims, v)) {
		return
	}
	s.warnOnce(fmt.Sprintf("Mailman's [mta] verp_delimiter is %q, which is not one of listgate's recipient_delimiter %q: "+
		"Mailman's VERP bounces and confirmations (list-bounces%sanne=example.net@...) get 550; add it to recipient_delimiter "+
		"(and to Postfix's)", v, delims, v))
}

func (s *Source) warnOnce(msg string) {
	if !s.warned[msg] {
		s.warned[msg] = true
		s.log.Warn(msg, "url", s.status.URL)
	}
}

func (s *Source) setGauges() { s.m.lists.Set(float64(s.status.Lists)) }

type metrics struct {
	success, timestamp, lists prometheus.Gauge
	polls                     *prometheus.CounterVec
	duration                  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		success: prometheus.NewGauge(prometheus.GaugeOpts{Name: "listgate_mailman_last_poll_successful",
			Help: "1 if the last poll of Mailman's REST API read every list, 0 if it failed."}),
		timestamp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "listgate_mailman_last_success_timestamp_seconds",
			Help: "Unix time of the last successful poll of Mailman's REST API."}),
		lists: prometheus.NewGauge(prometheus.GaugeOpts{Name: "listgate_mailman_lists",
			Help: "Lists read from Mailman (or its cache) in the current set."}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "listgate_mailman_polls_total",
			Help: "Polls of Mailman's REST API, by result (ok, error)."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "listgate_mailman_poll_duration_seconds",
			Help: "Time a successful poll of Mailman's REST API took.", Buckets: prometheus.ExponentialBuckets(0.005, 4, 8)}),
	}
	if reg != nil {
		reg.MustRegister(m.success, m.timestamp, m.lists, m.polls, m.duration)
	}
	return m
}
