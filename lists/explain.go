package lists

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Step is one step of resolving a recipient, as Explain reports it.
type Step struct {
	// Name says which step it is: one of the Step* constants.
	Name string
	// Text says what the step found, for people; where a file decided,
	// it names the file (and the line, as a problem does).
	Text string
}

// The names of the steps, in the order Resolve takes them (docs/lists.md,
// "Resolving a recipient").
const (
	StepBrackets   = "brackets"    // strip <>
	StepSplit      = "split"       // at the last '@'; a trailing dot dropped
	StepExtension  = "extension"   // cut at the first recipient delimiter
	StepFold       = "fold"        // lower case; a U-label domain to its A-label form
	StepDomain     = "domain"      // served? an alias domain? its mode
	StepList       = "list"        // a list or a list alias?
	StepSubaddress = "sub-address" // a sub-address suffix after the last '-'
	StepRole       = "role"        // postmaster@ or abuse@ by the domain file
	StepUnknown    = "unknown"     // no list: unknown, observed, or a tempfail
)

// Explain resolves rcpt as Resolve does, by the same code, and returns
// each step it took with what it found, and the verdict, which is
// Resolve's. It is for `listgate check --explain`: unlike Resolve it
// allocates, and it looks up the files behind each step.
func (s *Snapshot) Explain(rcpt string) ([]Step, Verdict) {
	tr := &tracer{}
	v := s.resolve(rcpt, tr)
	return tr.steps, v
}

// tracer collects the steps of one resolve.
type tracer struct{ steps []Step }

func (tr *tracer) add(name, text string) { tr.steps = append(tr.steps, Step{name, text}) }

func (tr *tracer) brackets(rcpt, addr string) {
	if rcpt == addr {
		tr.add(StepBrackets, fmt.Sprintf("%q: no <> to strip", rcpt))
		return
	}
	tr.add(StepBrackets, fmt.Sprintf("%q without <>: %q", rcpt, addr))
}

func (tr *tracer) split(local, rawDomain, domain string) {
	text := fmt.Sprintf("at the last \"@\": local part %q, domain %q", local, rawDomain)
	if rawDomain != domain {
		text += fmt.Sprintf(", without its trailing dot %q", domain)
	}
	tr.add(StepSplit, text)
}

func (tr *tracer) extension(delims, delim, local, ext string) {
	switch {
	case delims == "":
		tr.add(StepExtension, "recipient delimiters are off (recipient_delimiter none): no extension")
	case delim == "":
		tr.add(StepExtension, fmt.Sprintf("no recipient delimiter (%q) in the local part: no extension", delims))
	default:
		tr.add(StepExtension, fmt.Sprintf("cut at the first recipient delimiter %q: local part %q, extension %q", delim, local, ext))
	}
}

func (tr *tracer) fold(local, domain, lkey, dkey string) {
	text := fmt.Sprintf("lower case: local part %q, domain %q", lkey, dkey)
	if !isASCII(domain) {
		text += fmt.Sprintf(" (%q in its A-label form, IDNA)", domain)
	}
	tr.add(StepFold, text)
}

// domainFile returns the domain file (or Mailman domain) of the served
// domain name, nil if none parsed.
func (s *Snapshot) domainFile(name string) *Domain {
	i, ok := slices.BinarySearchFunc(s.doms, name, func(d *Domain, n string) int { return cmp.Compare(d.Name, n) })
	if !ok {
		return nil
	}
	return s.doms[i]
}

func (tr *tracer) domain(s *Snapshot, name string, d *domainIndex) {
	if d == nil {
		tr.add(StepDomain, fmt.Sprintf("%s is not served: no list, domain file or Mailman domain names it", name))
		return
	}
	dom := s.domainFile(d.name)
	if name != d.name {
		by := "a domain file"
		if dom != nil {
			by = dom.File
		}
		tr.add(StepDomain, fmt.Sprintf("%s is an alias domain of %s (aliases in %s)", name, d.name, by))
	}
	text := fmt.Sprintf("%s is served by its list files", d.name)
	if dom != nil {
		text = fmt.Sprintf("%s is served (%s)", d.name, dom.File)
	}
	switch {
	case dom != nil && dom.Mode != "":
		text += fmt.Sprintf(", mode %s (%s:%d)", dom.Mode, dom.File, dom.modeLine)
	case d.observe:
		text += ", mode observe (the observe setting; no domain file sets a mode)"
	default:
		text += ", mode enforce (the default)"
	}
	tr.add(StepDomain, text)
}

// brokenBy returns the problems that make target t tempfail: those of its
// file, and those that name its address (declared twice, an alias claimed
// twice).
func (s *Snapshot) brokenBy(t target) string {
	var ps []string
	for _, p := range s.problems {
		if p.File == t.list.File || strings.Contains(p.Err.Error(), t.list.Address) {
			ps = append(ps, p.Error())
		}
	}
	if len(ps) == 0 {
		return "no problem recorded"
	}
	return strings.Join(ps, "; ")
}

func (tr *tracer) list(s *Snapshot, lkey string, d *domainIndex, t target, ok bool) {
	addr := lkey + "@" + d.name
	switch {
	case !ok:
		tr.add(StepList, fmt.Sprintf("%s is no list and no list alias", addr))
	case t.broken:
		tr.add(StepList, fmt.Sprintf("%s tempfails: %s", addr, s.brokenBy(t)))
	case t.list.Address == addr:
		tr.add(StepList, fmt.Sprintf("%s is a list: %s", addr, t.list.File))
	default:
		tr.add(StepList, fmt.Sprintf("%s is an alias of the list %s (aliases in %s)", addr, t.list.Address, t.list.File))
	}
}

func (tr *tracer) subaddress(s *Snapshot, base, suffix string, kind Kind, d *domainIndex, t target, ok bool) {
	addr := base + "@" + d.name
	split := fmt.Sprintf("split at the last \"-\": %q and %q", base, suffix)
	switch {
	case kind == noSuffix:
		tr.add(StepSubaddress, split+", which is no sub-address name (bounces confirm join leave owner request subscribe unsubscribe)")
	case !ok:
		tr.add(StepSubaddress, fmt.Sprintf("%s, the %s sub-address, but %s is no list", split, kind, addr))
	case t.broken:
		tr.add(StepSubaddress, fmt.Sprintf("%s, the %s sub-address of %s, which tempfails: %s", split, kind, addr, s.brokenBy(t)))
	case t.list.Address == addr:
		tr.add(StepSubaddress, fmt.Sprintf("%s: the %s sub-address of the list %s (%s)", split, kind, addr, t.list.File))
	default:
		tr.add(StepSubaddress, fmt.Sprintf("%s: the %s sub-address of %s, an alias of the list %s (aliases in %s)",
			split, kind, addr, t.list.Address, t.list.File))
	}
}

func (tr *tracer) noSubaddress(lkey string, dash int) {
	if dash <= 0 {
		tr.add(StepSubaddress, fmt.Sprintf("no \"-\" in %q after its first character: no sub-address", lkey))
		return
	}
	tr.add(StepSubaddress, fmt.Sprintf("%q after the last \"-\" is longer than any sub-address name", lkey[dash+1:]))
}

func (tr *tracer) role(s *Snapshot, local, target string, d *domainIndex) {
	where := "its domain file"
	if dom := s.domainFile(d.name); dom != nil {
		line := dom.postmasterLine
		if local == "abuse" {
			line = dom.abuseLine
		}
		where = fmt.Sprintf("%s:%d", dom.File, line)
	}
	tr.add(StepRole, fmt.Sprintf("%s@%s goes to %s (key %s, %s): Postfix's virtual_alias_maps rewrites it", local, d.name, target, local, where))
}

func (tr *tracer) unknown(s *Snapshot, d *domainIndex) {
	switch {
	case d.unsettled > 0:
		tr.add(StepUnknown, fmt.Sprintf("no list has this address, but a file of %s has never parsed, and it may declare it (an alias, or the domain's mode): tempfail until it parses: %s",
			d.name, s.unsettledBy(d)))
	case d.observe:
		tr.add(StepUnknown, fmt.Sprintf("no list has this address; %s is in observe mode: enforce would refuse it, the doors at RCPT let it through and count it", d.name))
	default:
		tr.add(StepUnknown, "no list has this address")
	}
}

// unsettledBy returns the problems of the files that make domain d's
// unknown addresses tempfail: its list files and domain file that never
// parsed or are declared twice, an External that was never reached.
func (s *Snapshot) unsettledBy(d *domainIndex) string {
	files := make(map[string]bool)
	var ps []string
	for _, e := range s.entries {
		at := strings.LastIndexByte(e.addr, '@')
		if at < 0 || e.addr[at+1:] != d.name {
			continue
		}
		switch {
		case e.ext != nil:
			if e.kind == nameDomain && !e.ext.settled {
				ps = append(ps, e.path+": not reached since listgate started")
			}
		case e.kind == nameDomain, e.kind == nameList && e.list == nil:
			files[e.path] = true
		}
	}
	for _, p := range s.problems {
		if files[p.File] {
			ps = append(ps, p.Error())
		}
	}
	slices.Sort(ps)
	if len(ps) == 0 {
		return "no problem recorded"
	}
	return strings.Join(ps, "; ")
}
