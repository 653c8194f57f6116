package lists

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
)

// External is a set of lists and domains that come from somewhere other
// than the lists directory: GNU Mailman 3's REST API (package mailman).
// Its lists are served exactly as if a list file declared each: the same
// snapshot, the same Resolve, the same sub-addresses, extensions and alias
// domains (docs/mailman.md). The same address from a list file and from
// the External is a problem, as two files for one address are, and
// tempfails until one of them goes.
//
// Give the first set in Options.External (Load, Watch) and later ones to
// Watcher.SetExternal. An External must not be changed once given.
type External struct {
	// Source names where the set comes from ("mailman"); it keys the
	// set's entries and labels the reloads it causes.
	Source string
	// Lists are the source's lists.
	Lists []ExternalList
	// Domains are the source's domains. Each is served, even with no
	// lists, as a domain file's domain is.
	Domains []ExternalDomain
	// Settled is false while the source has not been reached since the
	// process started (the set comes from a cache, or names only the
	// domains configured for it). Its lists are served, but an address of
	// its domains that names no list tempfails (451 4.3.0) instead of
	// getting 550: the list may have been created since.
	Settled bool
}

// ExternalList is one list of an External.
type ExternalList struct {
	// Address is the posting address as the source spells it (Mailman's
	// fqdn_listname). It obeys a list file name's rules; one that does
	// not is a problem, never a list.
	Address string
	// ListID is the List-Id (Mailman's list_id); "" means local.domain.
	ListID string
	// Description is free text.
	Description string
	// Origin names the list in problems and in `listgate lists`, as a
	// file's path names a list file: for Mailman, the list's REST URL,
	// without credentials.
	Origin string
	// NextHop is where the list's accepted mail goes, in a next hop's
	// syntax ("lmtp:inet:127.0.0.1:8026"); "" when the source does not
	// say.
	NextHop string
}

// ExternalDomain is one domain of an External.
type ExternalDomain struct {
	// Name is the domain (Mailman's mail_host).
	Name string
	// Aliases are alias domains, as a domain file's aliases: every list of
	// the domain also answers in each (Mailman's alias_domain).
	Aliases []string
	// Origin names the domain in problems.
	Origin string
}

// externalItem is what an entry that stands for part of an External was
// made from: at most one of list and dom is set. With neither, the entry
// only marks an External that has never been reached and declares no
// domain (Snapshot.ServesDomain cannot say no).
type externalItem struct {
	source  string
	list    *ExternalList
	dom     *ExternalDomain
	settled bool
}

// same reports whether a and b would make the same entry.
func (a *externalItem) same(b *externalItem) bool {
	switch {
	case a.source != b.source || (a.list == nil) != (b.list == nil):
		return false
	case a.list != nil:
		return *a.list == *b.list
	case a.dom == nil || b.dom == nil:
		return a.dom == b.dom && a.settled == b.settled
	}
	return a.settled == b.settled && a.dom.Name == b.dom.Name && a.dom.Origin == b.dom.Origin &&
		slices.Equal(a.dom.Aliases, b.dom.Aliases)
}

// externalKey is the entry name of an external list or domain. A directory
// entry's name never holds a '/', so the two cannot collide.
func externalKey(source, what, name string) string {
	return cmp.Or(source, "external") + "/" + what + "/" + name
}

// entries turns x into entries keyed by externalKey. An entry of prev
// made from the same item is reused, so that an unchanged list is the
// very same entry and no change.
func (x *External) entries(delims string, prev map[string]*entry) map[string]*entry {
	out := make(map[string]*entry)
	if x == nil {
		return out
	}
	for i := range x.Lists {
		it := &externalItem{source: x.Source, list: &x.Lists[i]}
		key := externalKey(x.Source, "list", it.list.Address)
		if p := prev[key]; p != nil && p.ext != nil && p.ext.same(it) {
			out[key] = p
			continue
		}
		out[key] = externalList(key, it, delims)
	}
	for i := range x.Domains {
		it := &externalItem{source: x.Source, dom: &x.Domains[i], settled: x.Settled}
		key := externalKey(x.Source, "domain", it.dom.Name)
		if p := prev[key]; p != nil && p.ext != nil && p.ext.same(it) {
			out[key] = p
			continue
		}
		out[key] = externalDomain(key, it)
	}
	if !x.Settled && len(x.Domains) == 0 {
		it := &externalItem{source: x.Source}
		key := externalKey(x.Source, "unsettled", "")
		if p := prev[key]; p != nil && p.ext != nil && p.ext.same(it) {
			out[key] = p
		} else {
			out[key] = &entry{name: key, path: cmp.Or(x.Source, "external"), kind: nameIgnored, ext: it}
		}
	}
	return out
}

func externalList(key string, it *externalItem, delims string) *entry {
	xl := it.list
	path := cmp.Or(xl.Origin, it.source+": "+xl.Address)
	e := &entry{name: key, path: path, ext: it}
	local, domain, err := canonicalAddress(xl.Address, delims)
	if err != nil {
		e.kind = nameInvalid
		e.err = &FileError{File: path, Err: fmt.Errorf("ignored: %w", err)}
		return e
	}
	hop, err := ParseNextHop(xl.NextHop)
	if err != nil {
		e.kind = nameInvalid
		e.err = &FileError{File: path, Err: fmt.Errorf("next hop %q: %w", xl.NextHop, err)}
		return e
	}
	e.kind, e.addr = nameList, local+"@"+domain
	e.list = &List{
		Address:     e.addr,
		Local:       local,
		Domain:      domain,
		File:        path,
		Description: xl.Description,
		ListID:      cmp.Or(xl.ListID, local+"."+domain),
		NextHop:     hop,
	}
	return e
}

func externalDomain(key string, it *externalItem) *entry {
	xd := it.dom
	path := cmp.Or(xd.Origin, it.source+": "+xd.Name)
	e := &entry{name: key, path: path, ext: it}
	name, err := canonicalDomain(xd.Name)
	if err != nil {
		e.kind = nameInvalid
		e.err = &FileError{File: path, Err: fmt.Errorf("ignored: %w", err)}
		return e
	}
	e.kind, e.addr = nameDomain, "@"+name
	e.dom = &Domain{Name: name, File: path}
	for _, a := range xd.Aliases {
		c, err := canonicalDomain(strings.TrimPrefix(a, "@"))
		if err != nil {
			// The domain stays served; only the alias is dropped.
			e.err = &FileError{File: path, Err: fmt.Errorf("alias domain ignored: %w", err)}
			continue
		}
		if c != name && !slices.Contains(e.dom.Aliases, c) {
			e.dom.Aliases = append(e.dom.Aliases, c)
		}
	}
	return e
}

// withExternal returns entries with x's entries added. prev, the entries
// of the snapshot before, supplies entries to reuse.
func withExternal(entries map[string]*entry, x *External, delims string, prev map[string]*entry) map[string]*entry {
	maps.Copy(entries, x.entries(delims, prev))
	return entries
}

// keepExternal copies the external entries of prev into entries: a
// rescan of the directory reads only the directory.
func keepExternal(entries, prev map[string]*entry) {
	for name, e := range prev {
		if e.ext != nil {
			entries[name] = e
		}
	}
}

// externalDomains serves the domains of the external entries among es
// (index makes a domain served) and returns domains, the domain files
// that parsed, with theirs merged in: a domain both a domain file and the
// External declare is no conflict, and gets the alias domains of both.
// While the External is not settled, each of its domains counts as
// unsettled, so that an unknown address there tempfails.
func externalDomains(es []*entry, domains []*Domain, index func(string) *domainIndex) []*Domain {
	slices.SortFunc(es, func(a, b *entry) int { return cmp.Compare(a.name, b.name) })
	for _, e := range es {
		d := index(e.dom.Name)
		if !e.ext.settled {
			d.unsettled++
		}
		i := slices.IndexFunc(domains, func(x *Domain) bool { return x.Name == e.dom.Name })
		if i < 0 {
			domains = append(domains, e.dom)
			continue
		}
		merged := *domains[i]
		merged.Aliases = slices.Clone(merged.Aliases)
		for _, a := range e.dom.Aliases {
			if !slices.Contains(merged.Aliases, a) {
				merged.Aliases = append(merged.Aliases, a)
			}
		}
		domains[i] = &merged
	}
	return domains
}

// SetExternal makes x the external set of every snapshot from now on,
// replacing the one before (nil removes it). It returns once the new
// snapshot is current, or at once when x changes nothing. Lists x adds
// or removes are applied incrementally where a list file's change would
// be; a change of domains builds the snapshot afresh.
func (w *Watcher) SetExternal(x *External) {
	w.mu.Lock()
	defer w.mu.Unlock()
	start := time.Now()
	old := w.snap.Load()
	next := x.entries(w.delims, old.entries)
	entries := maps.Clone(old.entries)
	var changes []change
	for name, e := range old.entries {
		if e.ext != nil && next[name] == nil {
			delete(entries, name)
			changes = append(changes, change{old: e})
		}
	}
	for name, e := range next {
		if prev := old.entries[name]; prev != e {
			entries[name] = e
			changes = append(changes, change{old: prev, new: e})
		}
	}
	if len(changes) == 0 {
		return
	}
	s := old.update(entries, changes, old.gen+1)
	if s == nil {
		s = build(entries, w.delims, w.opts.Observe, old.gen+1)
	}
	why := "external"
	if x != nil && x.Source != "" {
		why = x.Source
	}
	w.publish(s, why, start, slog.LevelInfo, changes)
}

// External returns the external list (from GNU Mailman, say) whose
// canonical posting address is addr, or nil when addr is a list file's
// list, no list, or an address a list file and the External both declare.
func (s *Snapshot) External(addr string) *ExternalList {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return nil
	}
	d := s.domains[addr[at+1:]]
	if d == nil || d.name != addr[at+1:] {
		return nil
	}
	t, ok := d.locals[addr[:at]]
	if !ok || t.broken || t.owner == nil || t.owner.ext == nil || t.list.Address != addr {
		return nil
	}
	return t.owner.ext.list
}

// CanonicalDomain checks that d is a DNS name (IDNA U-labels allowed, one
// trailing dot dropped) and returns it in the form listgate names domains
// by: lower case, A-labels. Errors say what is wrong with d.
func CanonicalDomain(d string) (string, error) { return canonicalDomain(d) }
