package status

import (
	"bytes"
	"cmp"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/listgate/listgate/lists"
)

// Defaults and bounds of the page.
const (
	// DefaultPageSize is how many lists a page shows unless
	// Options.PageSize says otherwise.
	DefaultPageSize = 100
	// MaxProblems is how many problems the page shows; it says how many
	// more there are.
	MaxProblems = 100
	// maxQuery bounds the filter, in bytes; a longer one is cut.
	maxQuery = 200
)

// Policy is the Content-Security-Policy of the page: nothing may load or
// run, only the page's own inline style applies, and its filter form
// submits to the page itself.
const Policy = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Options say what the page shows. Every field but Lists may be zero.
type Options struct {
	// Lists gives the current snapshot: its lists, their addresses, its
	// problems (a *lists.Watcher).
	Lists lists.Source
	// Reloads returns the last reloads, newest first
	// (lists.Watcher.Reloads). Nil shows none.
	Reloads func() []lists.Reload
	// Gatherer gives the metrics the page reads: the doors' verdict
	// counters and the forwarder's gauges, from the registry /metrics
	// serves. Nil shows none.
	Gatherer prometheus.Gatherer
	// DefaultNextHop is the default_next_hop setting: the next hop of a
	// list whose list and domain files name none.
	DefaultNextHop lists.NextHop
	// Hostname and Version head the page.
	Hostname, Version string
	// PageSize is how many lists one page shows; 0 means
	// DefaultPageSize.
	PageSize int
	// Logger receives a line when the page cannot be made. Nil discards.
	Logger *slog.Logger
	// NotReady returns what keeps listgate from being ready, one reason
	// a line as /readyz gives them; none when it is ready. Nil shows no
	// readiness line.
	NotReady func() []string
}

// Handler serves the status page. Make it with New.
type Handler struct {
	o Options
}

// New returns the status page's handler, to be mounted at "/".
func New(o Options) *Handler {
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{o: o}
}

// ServeHTTP answers GET and HEAD of "/" with the page (RFC 9110 §9.3.1,
// §9.3.2), any other method with 405 and an Allow header (§15.5.6), any
// other path with 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", Policy)
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed: the status page is read-only (GET, HEAD)", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	p := h.build(q.Get("q"), q.Get("page"))
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		h.o.Logger.Error("status page", "door", "metrics", "err", err)
		http.Error(w, "500 the status page could not be made; see the log", http.StatusInternalServerError)
		return
	}
	out := buf.Bytes()
	if !utf8.Valid(out) {
		// A file name need not be UTF-8; the page says it is.
		out = bytes.ToValidUTF8(out, []byte("\uFFFD"))
	}
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}

// page is what the template shows.
type page struct {
	Hostname, Version string
	Now               time.Time
	Generation        uint64
	Lists, Domains    int // in the snapshot
	ProblemsTotal     int

	Query        string
	Rows         []listRow
	Matching     int // lists the query matches (all without one)
	From, To     int // 1-based range of Rows within Matching
	NotShown     int
	Page, Pages  int
	Prev, Next   string // links to the pages around; "" for none
	Subaddresses string // " -bounces -confirm ..."

	Problems         []problemRow
	ProblemsMatching int
	ProblemsNotShown int

	Reloads      []reloadRow
	ReloadsKnown bool // Options.Reloads is set

	Doors []doorRow
	Hops  []hopRow

	ReadyKnown bool     // Options.NotReady is set
	NotReady   []string // its reasons; none when ready

	Observe []observeRow // domains in observe mode, or with would-refuse counts
}

// observeRow is a served domain in observe mode, or one with
// listgate_would_refuse_total counts (observed earlier, enforced since).
type observeRow struct {
	Domain  string
	Aliases []string // its alias domains, which count under it
	Mode    string   // "observe" or "enforce"
	Where   string   // what set the mode: the domain file, or the observe setting
	Counts  []count  // would-refuse counts by door
	Total   float64
}

// listRow is one list as the page shows it.
type listRow struct {
	Address      string
	Also         []string // aliases and the addresses at alias domains
	Subaddresses string   // "announce-{bounces,confirm,...}@example.org"
	Description  string
	ListID       string
	File         string
	Mailman      bool // from Mailman's REST API: File is its URL
	NextHop      string
	MaxSize      int64
}

// problemRow is one problem: where (file or file:line) and what.
type problemRow struct{ Where, What string }

// reloadRow is one reload as the page shows it.
type reloadRow struct {
	lists.Reload
	Ago string
}

// build gathers the page for the filter query and the page number.
func (h *Handler) build(query, pageNo string) *page {
	now := time.Now()
	snap := h.o.Lists.Snapshot()
	query = strings.TrimSpace(query)
	if len(query) > maxQuery {
		query = query[:maxQuery]
	}
	query = strings.ToValidUTF8(query, "\uFFFD")
	needle := strings.ToLower(query)
	p := &page{
		Hostname: h.o.Hostname, Version: h.o.Version, Now: now,
		Generation: snap.Generation(), Lists: len(snap.Lists()), Domains: len(snap.ServedDomains()),
		ProblemsTotal: len(snap.Problems()), Query: query,
	}
	for _, k := range lists.Kinds[1:] {
		p.Subaddresses += " -" + string(k)
	}

	// Lists: the matching ones, one page of them.
	all := snap.Lists()
	matching := all
	if needle != "" {
		matching = nil
		for _, l := range all {
			if matches(l, needle) {
				matching = append(matching, l)
			}
		}
	}
	size := h.o.PageSize
	p.Matching = len(matching)
	p.Pages = max(1, (len(matching)+size-1)/size)
	p.Page = 1
	if n, err := strconv.Atoi(pageNo); err == nil {
		p.Page = min(max(n, 1), p.Pages)
	}
	start := (p.Page - 1) * size
	end := min(start+size, len(matching))
	p.From, p.To, p.NotShown = start+1, end, len(matching)-(end-start)
	aliasDomains := make(map[string][]string)
	for _, d := range snap.Domains() {
		aliasDomains[d.Name] = d.Aliases
	}
	for _, l := range matching[start:end] {
		p.Rows = append(p.Rows, h.row(snap, l, aliasDomains))
	}
	link := func(n int) string {
		v := url.Values{}
		if query != "" {
			v.Set("q", query)
		}
		if n > 1 {
			v.Set("page", strconv.Itoa(n))
		}
		return "/?" + v.Encode()
	}
	if p.Page > 1 {
		p.Prev = link(p.Page - 1)
	}
	if p.Page < p.Pages {
		p.Next = link(p.Page + 1)
	}

	// Problems: those the query matches, up to MaxProblems.
	for _, fe := range snap.Problems() {
		row := problemRow{Where: fe.File, What: fmt.Sprint(fe.Err)}
		if fe.Line > 0 {
			row.Where = fmt.Sprintf("%s:%d", fe.File, fe.Line)
		}
		if needle != "" && !containsFold(row.Where, needle) && !containsFold(row.What, needle) {
			continue
		}
		p.ProblemsMatching++
		if len(p.Problems) < MaxProblems {
			p.Problems = append(p.Problems, row)
		}
	}
	p.ProblemsNotShown = p.ProblemsMatching - len(p.Problems)

	if h.o.Reloads != nil {
		p.ReloadsKnown = true
		for _, r := range h.o.Reloads() {
			p.Reloads = append(p.Reloads, reloadRow{Reload: r, Ago: ago(now.Sub(r.Time))})
		}
	}
	if h.o.Gatherer != nil {
		mfs, err := h.o.Gatherer.Gather()
		if err != nil {
			// Gather returns what it could gather with the error.
			h.o.Logger.Warn("status page: gathering metrics", "door", "metrics", "err", err)
		}
		p.Doors, p.Hops = doorRows(mfs), hopRows(mfs)
		p.Observe = observeRows(snap, mfs)
	} else {
		p.Observe = observeRows(snap, nil)
	}
	if h.o.NotReady != nil {
		p.ReadyKnown, p.NotReady = true, h.o.NotReady()
	}
	return p
}

// observeRows are the served domains in observe mode, and those that
// listgate_would_refuse_total in mfs counts, sorted by name; an alias
// domain is shown with its domain.
func observeRows(snap *lists.Snapshot, mfs []*dto.MetricFamily) []observeRow {
	byDomain := map[string]*observeRow{}
	get := func(d string) *observeRow {
		r := byDomain[d]
		if r == nil {
			r = &observeRow{Domain: d, Mode: string(lists.ModeEnforce)}
			byDomain[d] = r
		}
		return r
	}
	for _, d := range snap.ObservedDomains() {
		main := snap.MainDomain(d)
		r := get(main)
		r.Mode = string(lists.ModeObserve)
		if main != d {
			r.Aliases = append(r.Aliases, d)
		}
	}
	for _, m := range family(mfs, "listgate_would_refuse_total").GetMetric() {
		r, v := get(label(m, "domain")), m.GetCounter().GetValue()
		r.Counts = append(r.Counts, count{Label: label(m, "door"), Value: v})
		r.Total += v
	}
	rows := make([]observeRow, 0, len(byDomain))
	for _, r := range byDomain {
		switch dom := snap.Domain(r.Domain); {
		case dom != nil && dom.Mode != "":
			r.Where = dom.File
		case r.Mode == string(lists.ModeObserve):
			r.Where = "the observe setting"
		}
		slices.SortFunc(r.Counts, func(a, b count) int { return cmp.Compare(a.Label, b.Label) })
		rows = append(rows, *r)
	}
	slices.SortFunc(rows, func(a, b observeRow) int { return cmp.Compare(a.Domain, b.Domain) })
	return rows
}

// row is list l as the page shows it.
func (h *Handler) row(snap *lists.Snapshot, l *lists.List, aliasDomains map[string][]string) listRow {
	row := listRow{Address: l.Address, Description: l.Description, ListID: l.ListID, File: l.File,
		Mailman: snap.External(l.Address) != nil, MaxSize: l.MaxMessageSize,
		Subaddresses: l.Local + "-{"}
	for i, k := range lists.Kinds[1:] {
		if i > 0 {
			row.Subaddresses += ","
		}
		row.Subaddresses += string(k)
	}
	row.Subaddresses += "}@" + l.Domain
	for _, a := range append([]string{l.Address}, l.Aliases...) {
		local, domain, _ := strings.Cut(a, "@")
		if a != l.Address {
			row.Also = append(row.Also, a)
		}
		for _, d := range aliasDomains[domain] {
			row.Also = append(row.Also, local+"@"+d)
		}
	}
	fw, _ := snap.Forwarding(l.Address)
	hop := fw.Hop
	if hop.Transport == lists.Unset {
		hop = h.o.DefaultNextHop
	}
	row.NextHop = cmp.Or(hop.String(), "none")
	return row
}

// matches reports whether the list l matches the lower-case needle: its
// address or an alias, its file, description or List-Id contains it.
func matches(l *lists.List, needle string) bool {
	if strings.Contains(l.Address, needle) || containsFold(l.File, needle) ||
		containsFold(l.Description, needle) || containsFold(l.ListID, needle) {
		return true
	}
	for _, a := range l.Aliases {
		if strings.Contains(a, needle) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains the lower-case needle, ignoring
// case.
func containsFold(s, needle string) bool {
	return strings.Contains(strings.ToLower(s), needle)
}

// ago says how long ago something happened that is d old: "42s ago",
// "3m12s ago", "5h3m ago", "2d4h ago".
func ago(d time.Duration) string {
	switch d = max(d, 0).Round(time.Second); {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds ago", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh ago", int(d.Hours())/24, int(d.Hours())%24)
}
