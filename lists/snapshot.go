package lists

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// DefaultDelimiter is the recipient delimiter Resolve cuts extensions at
// unless told otherwise, as Postfix's recipient_delimiter is usually set.
const DefaultDelimiter = "+"

// Snapshot is one consistent, immutable view of the lists directory. All of
// its methods are safe for concurrent use; a reload builds a new Snapshot
// and never changes one in use.
type Snapshot struct {
	gen      uint64
	delims   string
	domains  map[string]*domainIndex // served and alias domains, A-label
	lists    []*List                 // sorted by Address
	doms     []*Domain               // domain files that parsed, sorted
	problems []*FileError            // sorted by file
	entries  map[string]*entry       // by directory entry name
	claims   map[string]bool         // every address a list claims as an alias
	// blind is set while an External has never been reached and declares
	// no domain: which domains it serves is unknown (ServesDomain).
	blind bool
	// observe is Options.Observe: the mode of a domain whose domain file
	// sets none.
	observe bool
}

// domainIndex holds the addresses of one served domain. An alias domain
// maps to the same domainIndex as its domain.
type domainIndex struct {
	name   string
	locals map[string]target
	// unsettled counts the domain's list files that have never parsed.
	// Their aliases are unknown, so while there is one, an unknown
	// address of the domain tempfails instead of getting a 550: it may be
	// an alias the broken file declares (after a restart, say).
	unsettled int
	// postmaster and abuse are the domain file's settings of the same
	// name: where postmaster@ and abuse@ go when no list has that name.
	postmaster, abuse string
	// observe is set when the domain is in observe mode: an unknown
	// address is Observed, not Unknown.
	observe bool
}

// target is what a canonical local part names: a list, or a list that
// tempfails because its file never parsed or is claimed twice.
type target struct {
	list   *List
	broken bool
	owner  *entry // the one list file that decides it; nil for aliases and duplicates
}

// Source gives the current snapshot. A Watcher is a Source; so is a fixed
// snapshot (Static). Doors hold a Source and call Snapshot once per
// command, so a reload is seen at the next command.
type Source interface {
	Snapshot() *Snapshot
}

// Static is a Source that always gives the same snapshot.
type Static struct{ S *Snapshot }

// Snapshot returns s.S.
func (s Static) Snapshot() *Snapshot { return s.S }

// Generation counts the reloads that produced this snapshot: the first
// load is 1, and each reload adds one, whether or not anything changed.
func (s *Snapshot) Generation() uint64 { return s.gen }

// Lists returns every list whose file has parsed at least once, sorted by
// address. The caller must not modify the result.
func (s *Snapshot) Lists() []*List { return s.lists }

// Domains returns every domain file that has parsed at least once.
func (s *Snapshot) Domains() []*Domain { return s.doms }

// Problems returns every current problem of the lists directory, one per
// file, sorted by file: names that are not lists, files that cannot be
// read or parsed, addresses claimed twice. The caller must not modify it.
func (s *Snapshot) Problems() []*FileError { return s.problems }

// ServedDomains returns every served domain (A-label), alias domains
// included, sorted.
func (s *Snapshot) ServedDomains() []string {
	ds := make([]string, 0, len(s.domains))
	for d := range s.domains {
		ds = append(ds, d)
	}
	slices.Sort(ds)
	return ds
}

// ObservedDomains returns every served domain (A-label) in observe mode,
// alias domains included, sorted: their unknown addresses are Observed.
func (s *Snapshot) ObservedDomains() []string {
	var ds []string
	for name, d := range s.domains {
		if d.observe {
			ds = append(ds, name)
		}
	}
	slices.Sort(ds)
	return ds
}

// MainDomain returns the served domain whose domain file makes domain
// (A-label) an alias domain, and domain itself for any other: its
// settings (mode, postmaster, abuse) are that domain file's.
func (s *Snapshot) MainDomain(domain string) string {
	if d := s.domains[domain]; d != nil {
		return d.name
	}
	return domain
}

// Delimiters returns the recipient delimiter characters in force.
func (s *Snapshot) Delimiters() string { return s.delims }

// build turns directory entries into a snapshot. It never fails: every
// conflict becomes a problem and, where it decides a recipient, a tempfail.
// observe is Options.Observe.
func build(entries map[string]*entry, delims string, observe bool, gen uint64) *Snapshot {
	s := &Snapshot{gen: gen, delims: delims, domains: make(map[string]*domainIndex), entries: entries,
		claims: make(map[string]bool), observe: observe}
	byAddr := make(map[string][]*entry, len(entries))
	var extDomains []*entry
	for _, e := range entries {
		if e.err != nil {
			s.problems = append(s.problems, e.err)
		}
		if e.ext != nil && e.ext.list == nil && e.ext.dom == nil {
			s.blind = true // an External that knows no domain yet
		}
		if e.kind == nameDomain && e.ext != nil {
			extDomains = append(extDomains, e) // no conflict with a domain file: merged below
		} else if e.kind == nameList || e.kind == nameDomain {
			byAddr[e.addr] = append(byAddr[e.addr], e)
		}
	}
	index := func(domain string) *domainIndex {
		d := s.domains[domain]
		if d == nil {
			d = &domainIndex{name: domain, locals: make(map[string]target), observe: observe}
			s.domains[domain] = d
		}
		return d
	}
	var aliased []*List
	var domainAliases []*Domain
	for addr, es := range byAddr {
		if len(es) > 1 {
			slices.SortFunc(es, func(a, b *entry) int { return cmp.Compare(a.name, b.name) })
			names := make([]string, len(es))
			for i, e := range es {
				names[i] = e.path
			}
			for _, e := range es[1:] {
				s.problems = append(s.problems, &FileError{File: e.path,
					Err: fmt.Errorf("%s is declared twice (%s): it tempfails until one of them is removed", addr, strings.Join(names, ", "))})
			}
		}
		e := es[0]
		if e.kind == nameDomain {
			d := index(addr[1:])
			if len(es) == 1 && e.dom != nil {
				s.doms = append(s.doms, e.dom)
				domainAliases = append(domainAliases, e.dom)
			} else {
				// Its mode is unknown: it may say observe, and a 550
				// would refuse what an observed domain lets through.
				d.unsettled++
			}
			continue
		}
		at := strings.LastIndexByte(addr, '@')
		d := index(addr[at+1:])
		l := e.list
		if len(es) > 1 {
			pl := &List{Address: addr, Local: addr[:at], Domain: addr[at+1:], File: e.path}
			d.locals[addr[:at]] = target{list: pl, broken: true}
			continue
		}
		d.locals[addr[:at]] = e.target()
		if l == nil {
			d.unsettled++
			continue
		}
		s.lists = append(s.lists, l)
		if len(l.Aliases) > 0 {
			aliased = append(aliased, l)
		}
	}
	domainAliases = externalDomains(extDomains, domainAliases, index)
	slices.SortFunc(s.lists, func(a, b *List) int { return cmp.Compare(a.Address, b.Address) })
	// List aliases: another name for the list; a real list always wins,
	// and an alias two lists claim tempfails.
	slices.SortFunc(aliased, func(a, b *List) int { return cmp.Compare(a.Address, b.Address) })
	claimedBy := make(map[string]*List) // alias → the first list to claim it
	for _, l := range aliased {
		for _, a := range l.Aliases {
			s.claims[a] = true
			at := strings.LastIndexByte(a, '@')
			d := index(a[at+1:])
			if first, ok := claimedBy[a]; ok {
				s.problems = append(s.problems, &FileError{File: l.File,
					Err: fmt.Errorf("alias %s is also claimed by %s: it tempfails until one claim is removed", a, first.File)})
				d.locals[a[:at]] = target{list: &List{Address: a, Local: a[:at], Domain: a[at+1:], File: l.File}, broken: true}
				continue
			}
			if t, taken := d.locals[a[:at]]; taken {
				s.problems = append(s.problems, &FileError{File: l.File,
					Err: fmt.Errorf("alias %s is ignored: %s is a list of its own", a, t.list.File)})
				continue
			}
			claimedBy[a] = l
			d.locals[a[:at]] = target{list: l}
		}
	}
	// Alias domains share their domain's index; a served domain wins.
	slices.SortFunc(domainAliases, func(a, b *Domain) int { return cmp.Compare(a.Name, b.Name) })
	s.doms = domainAliases
	claimed := make(map[string]string)
	for _, dom := range domainAliases {
		for _, a := range dom.Aliases {
			if other, ok := claimed[a]; ok {
				s.problems = append(s.problems, &FileError{File: dom.File,
					Err: fmt.Errorf("alias domain %s is also claimed by %s", a, other)})
				continue
			}
			if _, ok := s.domains[a]; ok {
				s.problems = append(s.problems, &FileError{File: dom.File,
					Err: fmt.Errorf("alias domain %s is ignored: it is served on its own", a)})
				continue
			}
			claimed[a] = dom.File
		}
	}
	for _, dom := range domainAliases {
		d := s.domains[dom.Name]
		if dom.Mode != "" {
			d.observe = dom.Mode == ModeObserve
		}
		for _, a := range dom.Aliases {
			if claimed[a] == dom.File {
				s.domains[a] = d
			}
		}
	}
	// postmaster and abuse of a domain file: a list of that name (or a
	// list's alias) wins.
	for _, dom := range domainAliases {
		d := s.domains[dom.Name]
		for _, k := range []struct {
			local, target string
			line          int
			dst           *string
		}{
			{"postmaster", dom.Postmaster, dom.postmasterLine, &d.postmaster},
			{"abuse", dom.Abuse, dom.abuseLine, &d.abuse},
		} {
			if k.target == "" {
				continue
			}
			if t, ok := d.locals[k.local]; ok {
				s.problems = append(s.problems, &FileError{File: dom.File, Line: k.line,
					Err: fmt.Errorf("%s = %q is ignored: %s@%s is a list (%s), and the list wins", k.local, k.target, k.local, dom.Name, t.list.File)})
				continue
			}
			*k.dst = k.target
		}
	}
	sortProblems(s.problems)
	return s
}

// target is what a list entry that is the only one for its address
// decides: its list, or a tempfail while its file has never parsed.
func (e *entry) target() target {
	if e.list == nil {
		at := strings.LastIndexByte(e.addr, '@')
		pl := &List{Address: e.addr, Local: e.addr[:at], Domain: e.addr[at+1:], File: e.path}
		return target{list: pl, broken: true, owner: e}
	}
	return target{list: e.list, owner: e}
}

// change is one directory entry re-read by a reload: what it was and what
// it is now (nil when absent or ignored).
type change struct{ old, new *entry }

// maxIncremental bounds the changes update applies one by one; a larger
// batch is cheaper to build afresh.
const maxIncremental = 256

// update returns the snapshot that build(entries, s.delims, gen) would
// return, where entries are s's entries with changes applied, at a cost
// that does not grow with the number of lists: it copies s and patches
// the addresses the changes touch. That is only done where no other file
// has a say in those addresses: list files without aliases, whose address
// no other file declares or claims as an alias, in a domain that stays
// served on its own; and names that are not lists (problems only). For
// anything else (domain files, aliases, duplicates, a domain appearing or
// disappearing) it returns nil and the caller builds afresh.
func (s *Snapshot) update(entries map[string]*entry, changes []change, gen uint64) *Snapshot {
	if len(changes) > maxIncremental {
		return nil
	}
	simple := func(e *entry) bool {
		// A never-parsed list file changes its domain's unsettled count:
		// built afresh.
		return e == nil || e.kind == nameInvalid || e.kind == nameList && e.list != nil && len(e.list.Aliases) == 0
	}
	seen := make(map[string]bool, len(changes))
	removed := make(map[string]int) // domain → locals removed
	for _, c := range changes {
		if !simple(c.old) || !simple(c.new) {
			return nil
		}
		e := c.new
		if e == nil || e.kind != nameList {
			e = c.old
		}
		if e == nil || e.kind != nameList {
			continue // a problem at most
		}
		addr := e.addr
		at := strings.LastIndexByte(addr, '@')
		local, domain := addr[:at], addr[at+1:]
		d := s.domains[domain]
		if seen[addr] || s.claims[addr] || d == nil || d.name != domain ||
			local == "postmaster" || local == "abuse" {
			// (a list of these names decides whether a domain file's
			// postmaster or abuse setting holds: built afresh)
			return nil
		}
		seen[addr] = true
		t, taken := d.locals[local]
		switch {
		case c.old != nil && c.old.kind == nameList:
			if !taken || t.owner != c.old {
				return nil // declared twice
			}
			if c.new == nil || c.new.kind != nameList {
				if removed[domain]++; removed[domain] >= len(d.locals) {
					return nil // the domain may no longer be served
				}
			}
		case taken:
			return nil // a new file for an address already decided
		}
	}

	n := *s
	n.gen, n.entries = gen, entries
	// The domains and each index a change touches are copied on first
	// write; s stays as it was.
	cloned := make(map[*domainIndex]*domainIndex)
	index := func(domain string) *domainIndex {
		d := s.domains[domain]
		if c := cloned[d]; c != nil {
			return c
		}
		if len(cloned) == 0 {
			n.domains = maps.Clone(s.domains)
		}
		c := new(domainIndex)
		*c = *d
		c.locals = maps.Clone(d.locals)
		cloned[d] = c
		for name, x := range n.domains { // alias domains share the index
			if x == d {
				n.domains[name] = c
			}
		}
		return c
	}
	n.lists = slices.Clone(s.lists)
	byAddress := func(l *List, addr string) int { return cmp.Compare(l.Address, addr) }
	var gone []*FileError
	for _, c := range changes {
		if c.old != nil && c.old.err != nil {
			gone = append(gone, c.old.err)
		}
		if c.old != nil && c.old.kind == nameList && c.old.list != nil {
			if i, ok := slices.BinarySearchFunc(n.lists, c.old.addr, byAddress); ok {
				n.lists = slices.Delete(n.lists, i, i+1)
			}
		}
		e := c.new
		if e == nil || e.kind != nameList {
			e = c.old
		}
		if e == nil || e.kind != nameList {
			continue
		}
		at := strings.LastIndexByte(e.addr, '@')
		d := index(e.addr[at+1:])
		if c.new == nil || c.new.kind != nameList {
			delete(d.locals, e.addr[:at])
			continue
		}
		d.locals[e.addr[:at]] = c.new.target()
		if l := c.new.list; l != nil {
			i, _ := slices.BinarySearchFunc(n.lists, l.Address, byAddress)
			n.lists = slices.Insert(n.lists, i, l)
		}
	}
	n.problems = slices.DeleteFunc(slices.Clone(s.problems), func(p *FileError) bool { return slices.Contains(gone, p) })
	for _, c := range changes {
		if c.new != nil && c.new.err != nil {
			n.problems = append(n.problems, c.new.err)
		}
	}
	sortProblems(n.problems)
	return &n
}

func sortProblems(ps []*FileError) {
	slices.SortFunc(ps, func(a, b *FileError) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Error(), b.Error()))
	})
}

// Resolve turns a recipient, exactly as a door received it, into a
// verdict. It is the one place that decides; every door calls it. The
// steps (docs/design.md, "Resolving a recipient"):
//
//  1. Strip <>; split at the last @; fold local part and domain to lower
//     case (A- and U-label domains compare equal); drop a trailing dot in
//     the domain; map an alias domain to its domain.
//  2. Cut the extension at the first recipient delimiter, keeping it.
//  3. local@domain is a list or list alias: the posting address.
//  4. Else split local at its last '-': a sub-address name after it and a
//     list before it: that list's sub-address.
//  5. Else, for postmaster or abuse whose domain file says where it goes
//     (and no list has the name): Alias, with Verdict.Target.
//  6. Else unknown (or not served, when the domain is not served);
//     Observed instead of Unknown when the domain is in observe mode,
//     and Broken while a list file or the domain file of the domain has
//     never parsed.
//
// Explain reports each of these steps; it runs the same code.
//
// For an all-ASCII recipient whose local part (up to the delimiter) and
// domain fit in 255 octets together, as RFC 5321 §4.5.3.1.3 paths do,
// Resolve does not allocate; longer or non-ASCII ones allocate the folded
// key.
func (s *Snapshot) Resolve(rcpt string) Verdict { return s.resolve(rcpt, nil) }

// resolve is Resolve, reporting each step to tr when tr is not nil
// (Explain). Every call of tr is behind a nil check and takes strings
// only, so that Resolve's key buffer stays on the stack.
func (s *Snapshot) resolve(rcpt string, tr *tracer) Verdict {
	addr := strings.TrimPrefix(strings.TrimSuffix(rcpt, ">"), "<")
	if tr != nil {
		tr.brackets(rcpt, addr)
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		if tr != nil {
			tr.add(StepSplit, "no \"@\": not an address, so no domain of listgate's")
		}
		return Verdict{Status: NotServed}
	}
	local, domain := addr[:at], strings.TrimSuffix(addr[at+1:], ".")
	if tr != nil {
		tr.split(addr[:at], addr[at+1:], domain)
	}
	var ext string
	if i := strings.IndexAny(local, s.delims); i >= 0 && s.delims != "" {
		_, size := utf8.DecodeRuneInString(local[i:]) // a delimiter may be any character
		if tr != nil {
			tr.extension(s.delims, local[i:i+size], local[:i], local[i+size:])
		}
		local, ext = local[:i], local[i+size:]
	} else if tr != nil {
		tr.extension(s.delims, "", local, "")
	}
	var buf [256]byte
	var key []byte // lower-case local, '@', lower-case domain
	if len(local)+len(domain)+1 <= len(buf) && isASCII(local) && isASCII(domain) {
		key = buf[:0]
		key = appendLower(key, local)
		key = append(key, '@')
		key = appendLower(key, domain)
	} else {
		key = slowKey(local, domain)
		if key == nil {
			if tr != nil {
				tr.add(StepFold, fmt.Sprintf("domain %q is not a valid IDNA name, so no domain of listgate's", domain))
			}
			return Verdict{Status: NotServed}
		}
	}
	at = bytes.LastIndexByte(key, '@') + 1
	if tr != nil {
		tr.fold(local, domain, string(key[:at-1]), string(key[at:]))
	}
	d := s.domains[string(key[at:])]
	if tr != nil {
		tr.domain(s, string(key[at:]), d)
	}
	if d == nil {
		return Verdict{Status: NotServed}
	}
	lkey := key[:at-1]
	t, ok := d.locals[string(lkey)]
	if tr != nil {
		tr.list(s, string(lkey), d, t, ok)
	}
	if ok {
		return t.verdict(Post, ext)
	}
	// A suffix longer than any sub-address name is not one; checking first
	// keeps string(suffix) from allocating (beyond 32 bytes it would).
	if dash := lastDash(lkey); dash > 0 && len(lkey)-dash-1 <= len("unsubscribe") {
		if kind := subaddress(string(lkey[dash+1:])); kind != noSuffix {
			t, ok := d.locals[string(lkey[:dash])]
			if tr != nil {
				tr.subaddress(s, string(lkey[:dash]), string(lkey[dash+1:]), kind, d, t, ok)
			}
			if ok {
				return t.verdict(kind, ext)
			}
		} else if tr != nil {
			tr.subaddress(s, string(lkey[:dash]), string(lkey[dash+1:]), kind, d, target{}, false)
		}
	} else if tr != nil {
		tr.noSubaddress(string(lkey), dash)
	}
	if local, t := d.aliasOf(lkey); t != "" {
		if tr != nil {
			tr.role(s, local, t, d)
		}
		return Verdict{Status: Alias, Target: t, Local: local, Domain: d.name, Extension: ext}
	}
	if tr != nil {
		tr.unknown(s, d)
	}
	if d.unsettled > 0 {
		return Verdict{Status: Broken, Extension: ext}
	}
	if d.observe {
		return Verdict{Status: Observed, Domain: d.name, Extension: ext}
	}
	return Verdict{Status: Unknown, Extension: ext}
}

// aliasOf returns, for the canonical local part "postmaster" or "abuse",
// that name and the address it goes to by the domain file's setting;
// target is "" when there is none.
func (d *domainIndex) aliasOf(local []byte) (name, target string) {
	if len(local) > len("postmaster") {
		return "", ""
	}
	switch string(local) {
	case "postmaster":
		return "postmaster", d.postmaster
	case "abuse":
		return "abuse", d.abuse
	}
	return "", ""
}

// ServesDomain says whether listgate serves domain, as Postfix gives it
// to a table lookup (relay_domains, socketmap_table(5)): in any case, with
// or without a trailing dot, in U-label or A-label form. It returns
// Accept for a served domain (a list's or a domain file's domain, an
// alias domain, an External's domain), NotServed for any other (and for
// a key starting with ".", Postfix's parent-domain form, and one that is
// no IDNA name at all), and Broken while an External (GNU Mailman) has
// never been reached and declares no domain: nothing can be said of a
// domain not otherwise served. An ASCII domain of up to 255 octets is
// looked up without allocating.
func (s *Snapshot) ServesDomain(domain string) Status {
	domain = strings.TrimSuffix(domain, ".")
	if domain == "" || domain[0] == '.' {
		return NotServed
	}
	var d *domainIndex
	var buf [256]byte
	if len(domain) <= len(buf) && isASCII(domain) {
		d = s.domains[string(appendLower(buf[:0], domain))]
	} else if key := slowKey("", domain); key != nil {
		d = s.domains[string(key[1:])]
	} else {
		return NotServed // not a domain name at all
	}
	switch {
	case d != nil:
		return Accept
	case s.blind:
		return Broken
	}
	return NotServed
}

func (t target) verdict(kind Kind, ext string) Verdict {
	l := t.list
	v := Verdict{List: l.Address, Local: l.Local, Domain: l.Domain, Extension: ext}
	if t.broken {
		v.Status = Broken
		return v
	}
	v.Status, v.Kind = Accept, kind
	if kind == Post {
		v.MaxMessageSize = l.MaxMessageSize
	}
	return v
}

// slowKey folds a recipient with non-ASCII characters (SMTPUTF8) or a very
// long local part. A U-label domain becomes its A-label form. It returns
// nil when the domain is not a valid IDNA name.
func slowKey(local, domain string) []byte {
	if utf8.ValidString(local) {
		local = strings.ToLower(local)
	} else {
		// strings.ToLower would turn each invalid byte into U+FFFD and
		// so reach a list named "\ufffd@…". No list name is invalid
		// UTF-8: fold only ASCII, and the lookup misses.
		local = string(appendLower(nil, local))
	}
	if isASCII(domain) {
		domain = strings.ToLower(domain)
	} else {
		if !utf8.ValidString(domain) {
			return nil
		}
		a, err := idna.Lookup.ToASCII(domain)
		if err != nil {
			return nil
		}
		domain = strings.ToLower(a)
	}
	key := make([]byte, 0, len(local)+1+len(domain))
	key = append(key, local...)
	key = append(key, '@')
	return append(key, domain...)
}

func lastDash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '-' {
			return i
		}
	}
	return -1
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// errNotRegular is the problem of a list name that is a directory, a
// device or a dangling symlink.
var errNotRegular = errors.New("not a regular file")
