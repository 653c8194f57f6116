package lists

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// ReloadsKept is how many reloads Watcher.Reloads remembers.
const ReloadsKept = 20

// ReloadNames is how many changed entries a Reload names; the rest are
// only counted.
const ReloadNames = 10

// Reload is one reload of the lists directory, as Watcher.Reloads
// remembers it (for the status page).
type Reload struct {
	// Time is when the reload ended: its snapshot became current, or it
	// failed.
	Time time.Time
	// Duration is how long it took to read the files and build the
	// snapshot.
	Duration time.Duration
	// Reason says why it happened, as the log line and
	// listgate_lists_reloads_total do: start, change, rescan, periodic,
	// retry, or an External's Source ("mailman").
	Reason string
	// Generation is the snapshot it made; Lists and Problems count that
	// snapshot's lists and problems. All three are 0 when it failed.
	Generation      uint64
	Lists, Problems int
	// Added, Changed and Removed count the entries that appeared, changed
	// (their settings or their problem) or went: list and domain files,
	// other names in the directory, an External's lists and domains.
	Added, Changed, Removed int
	// Changes names the first ReloadNames of them, by name.
	Changes []Change
	// Err is why the reload failed: the directory could not be listed,
	// and the last snapshot stayed current. Empty when it succeeded.
	Err string
	// Repeated counts the reloads just before this one that are folded
	// into it: the same reason and nothing changed (or the same failure),
	// as the periodic rescan gives every few minutes. Time is the last
	// one's.
	Repeated int
}

// Change is one entry a reload added, changed or removed.
type Change struct {
	// Name is the directory entry's name ("announce@example.org",
	// "README.txt"), or an External's list or domain address.
	Name string
	// What is "added", "changed" or "removed".
	What string
}

// reloadLog is a Watcher's last ReloadsKept reloads: a ring, oldest
// overwritten first.
type reloadLog struct {
	mu   sync.Mutex
	ring [ReloadsKept]Reload
	next int // where the next reload goes
	n    int // how many are stored
}

// add records r, folding it into the last reload when both changed
// nothing for the same reason (or failed the same way).
func (l *reloadLog) add(r Reload) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n > 0 {
		last := &l.ring[(l.next+ReloadsKept-1)%ReloadsKept]
		if last.Reason == r.Reason && last.Err == r.Err && quiet(*last) && quiet(r) &&
			last.Lists == r.Lists && last.Problems == r.Problems {
			r.Repeated = last.Repeated + 1
			*last = r
			return
		}
	}
	l.ring[l.next] = r
	l.next = (l.next + 1) % ReloadsKept
	l.n = min(l.n+1, ReloadsKept)
}

// quiet reports whether r changed nothing; r may have failed.
func quiet(r Reload) bool { return r.Added+r.Changed+r.Removed == 0 }

// list returns the reloads, newest first.
func (l *reloadLog) list() []Reload {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Reload, 0, l.n)
	for i := 1; i <= l.n; i++ {
		r := l.ring[(l.next+ReloadsKept-i)%ReloadsKept]
		r.Changes = slices.Clone(r.Changes)
		out = append(out, r)
	}
	return out
}

// Reloads returns the last ReloadsKept reloads of the lists directory
// (and of an External), newest first; reloads in a row that changed
// nothing for the same reason are one Reload (Reload.Repeated). It never
// waits for a reload in progress.
func (w *Watcher) Reloads() []Reload { return w.reloads.list() }

// diffEntries returns what changed from old to cur: entries added,
// removed, or with other settings or another problem. It costs one map
// lookup per entry: a full rescan reads every name anyway.
func diffEntries(old, cur map[string]*entry) []change {
	var changes []change
	for name, e := range cur {
		if prev := old[name]; prev == nil || !unchanged(prev, e) {
			changes = append(changes, change{old: prev, new: e})
		}
	}
	for name, e := range old {
		if cur[name] == nil {
			changes = append(changes, change{old: e})
		}
	}
	return changes
}

// summarize fills r's counts and names from changes; a change whose old
// and new entry say the same is not counted.
func summarize(r *Reload, changes []change) {
	for _, c := range changes {
		var ch Change
		switch {
		case c.old == nil && c.new == nil:
			continue
		case c.old == nil:
			r.Added++
			ch = Change{Name: c.new.displayName(), What: "added"}
		case c.new == nil:
			r.Removed++
			ch = Change{Name: c.old.displayName(), What: "removed"}
		case unchanged(c.old, c.new):
			continue
		default:
			r.Changed++
			ch = Change{Name: c.new.displayName(), What: "changed"}
		}
		// Keep the first ReloadNames by name: an insertion into a short
		// sorted slice, so a start with 100,000 lists sorts nothing big.
		i, _ := slices.BinarySearchFunc(r.Changes, ch, func(a, b Change) int { return cmp.Compare(a.Name, b.Name) })
		if i < ReloadNames {
			r.Changes = slices.Insert(r.Changes, i, ch)
			if len(r.Changes) > ReloadNames {
				r.Changes = r.Changes[:ReloadNames]
			}
		}
	}
}

// unchanged reports whether a and b say the same (sameEntry), or are the
// same file read again with the same outcome: a forced rescan (SIGHUP)
// reads every file and makes new entries of them.
func unchanged(a, b *entry) bool {
	if sameEntry(a, b) {
		return true
	}
	return a.id != (fileID{}) && a.id == b.id && a.kind == b.kind && a.addr == b.addr &&
		(a.err == nil) == (b.err == nil) && (a.err == nil || a.err.Error() == b.err.Error())
}

// displayName names e in a Reload: the directory entry's name, or the
// address of an External's list or domain.
func (e *entry) displayName() string {
	if e.ext != nil && e.addr != "" {
		return e.addr
	}
	return e.name
}
