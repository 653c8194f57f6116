package status

import (
	"cmp"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// doorCounters are the counters the page shows per door, in its order:
// the door, what it counts, and the metric (docs/lmtp.md, "Logs and
// metrics").
var doorCounters = []struct{ door, what, metric string }{
	{"milter", "recipients", "listgate_milter_recipients_total"},
	{"policy", "requests", "listgate_policy_requests_total"},
	{"socketmap", "lookups", "listgate_socketmap_lookups_total"},
	{"lmtp", "recipients", "listgate_lmtp_recipients_total"},
	{"lmtp", "deliveries", "listgate_lmtp_deliveries_total"},
}

// labelOrder ranks the label values the doors count, so that every row
// reads in the same order: the verdicts of the reply table first
// (lists.Status names), then the socketmap's results; others follow by
// name.
var labelOrder = []string{
	"accept", "delivered", "alias", "unknown", "not-served", "tempfail", "too-large", "error", "no-space",
	"too-many-recipients", "unchecked", "ignored", "found", "notfound", "temp", "perm",
}

// doorRow is one door's counter: one count per label value.
type doorRow struct {
	Door, What string
	Counts     []count
	Total      float64
}

// count is one series of a counter: its label values, joined by a space
// ("accept", "recipients found"), and its value.
type count struct {
	Label string
	Value float64
}

// doorRows reads the doors' counters out of mfs; a door that is off has
// none, and no row.
func doorRows(mfs []*dto.MetricFamily) []doorRow {
	var rows []doorRow
	for _, dc := range doorCounters {
		mf := family(mfs, dc.metric)
		if mf == nil {
			continue
		}
		row := doorRow{Door: dc.door, What: dc.what}
		for _, m := range mf.GetMetric() {
			var vals []string
			for _, lp := range m.GetLabel() {
				vals = append(vals, lp.GetValue())
			}
			v := m.GetCounter().GetValue()
			row.Counts = append(row.Counts, count{Label: strings.Join(vals, " "), Value: v})
			row.Total += v
		}
		slices.SortFunc(row.Counts, func(a, b count) int { return compareLabels(a.Label, b.Label) })
		rows = append(rows, row)
	}
	return rows
}

// compareLabels orders label strings by labelOrder word by word, then by
// name.
func compareLabels(a, b string) int {
	aw, bw := strings.Fields(a), strings.Fields(b)
	for i := range min(len(aw), len(bw)) {
		if c := cmp.Compare(rank(aw[i]), rank(bw[i])); c != 0 {
			return c
		}
		if c := cmp.Compare(aw[i], bw[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(aw), len(bw))
}

func rank(v string) int {
	if i := slices.Index(labelOrder, v); i >= 0 {
		return i
	}
	return len(labelOrder)
}

// hopRow is one next hop of the forwarder: what waits for it, what it
// refused, how its attempts went.
type hopRow struct {
	NextHop                          string
	Backlog, Quarantined             float64
	Oldest, Failing                  time.Duration // 0: none waits; not failing
	Forwarded, Deferred, Quarantines float64       // attempts since the start, by result
}

// hopRows reads the forwarder's gauges and counter out of mfs, one row
// per next hop, sorted.
func hopRows(mfs []*dto.MetricFamily) []hopRow {
	byHop := map[string]*hopRow{}
	get := func(m *dto.Metric) *hopRow {
		h := label(m, "next_hop")
		r := byHop[h]
		if r == nil {
			r = &hopRow{NextHop: h}
			byHop[h] = r
		}
		return r
	}
	seconds := func(v float64) time.Duration { return time.Duration(v * float64(time.Second)).Round(time.Second) }
	for _, m := range family(mfs, "listgate_forward_backlog").GetMetric() {
		get(m).Backlog = m.GetGauge().GetValue()
	}
	for _, m := range family(mfs, "listgate_forward_quarantined").GetMetric() {
		get(m).Quarantined = m.GetGauge().GetValue()
	}
	for _, m := range family(mfs, "listgate_forward_oldest_seconds").GetMetric() {
		get(m).Oldest = seconds(m.GetGauge().GetValue())
	}
	for _, m := range family(mfs, "listgate_forward_failing_seconds").GetMetric() {
		get(m).Failing = seconds(m.GetGauge().GetValue())
	}
	for _, m := range family(mfs, "listgate_forward_messages_total").GetMetric() {
		r, v := get(m), m.GetCounter().GetValue()
		switch label(m, "result") {
		case "forwarded":
			r.Forwarded += v
		case "deferred":
			r.Deferred += v
		case "quarantined":
			r.Quarantines += v
		}
	}
	rows := make([]hopRow, 0, len(byHop))
	for _, r := range byHop {
		rows = append(rows, *r)
	}
	slices.SortFunc(rows, func(a, b hopRow) int { return cmp.Compare(a.NextHop, b.NextHop) })
	return rows
}

// family returns the family called name in mfs, or nil.
func family(mfs []*dto.MetricFamily, name string) *dto.MetricFamily {
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

// label returns the value of m's label name, or "".
func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}
