// Package status is the status page at / of the metrics door: one HTML
// page, read-only, for a person to see what listgate serves and decides.
//
// It shows the lists and the addresses that reach each (posting address,
// aliases, alias domains, sub-addresses), every problem of the lists
// directory as file:line, the last reloads (lists.Watcher.Reloads), the
// verdicts each door has given, the domains in observe mode with what
// they would have refused (listgate_would_refuse_total, by door), and the
// forwarder's backlog and quarantine per next hop; above them, whether
// listgate is ready, with /readyz's reasons (Options.NotReady). The counts are read from the Prometheus registry that
// /metrics serves (a prometheus.Gatherer), so the page adds no state to the
// doors and says what /metrics says.
//
// A lists directory may hold 100,000 lists: the page shows PageSize of
// them at a time, says how many are not shown, and filters them by a
// substring (`/?q=announce`) of their addresses, file, description or
// List-Id; `/?q=announce&page=2` is the next page. Problems are capped
// alike (MaxProblems); `listgate lists` prints everything.
//
// List names, descriptions, file paths and problem texts come from files
// that admins, and possibly others, write. The page is an html/template,
// which escapes each of them for where it appears; it loads nothing from
// elsewhere (inline CSS, no scripts, no images), and its
// Content-Security-Policy forbids anything else, so text that looks like
// markup stays text. It answers GET and HEAD at / only: 405 for any other
// method, 404 for any other path.
package status
