package postconf

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// Listgate is what Postfix must know of a listgate: its domains, its
// doors and its limits.
type Listgate struct {
	// ListsDir is the lists directory, named in notes.
	ListsDir string
	// Domains are the served domains, as A-labels.
	Domains []string
	// Lists are the lists' posting addresses, "local@domain" with the
	// domain as an A-label.
	Lists []string
	// LMTP, Milter, Policy and Socketmap are the addresses listgate
	// listens on; a zero Endpoint is a door that is off.
	LMTP, Milter, Policy, Socketmap Endpoint
	// Roles are the postmaster@ and abuse@ addresses of the served
	// domains (RFC 5321 §4.5.1, RFC 2142) and what listgate does with
	// them.
	Roles []Role
	// Delimiter is listgate's --recipient-delimiter; "" for none.
	Delimiter string
	// MaxMessageSize is listgate's --max-message-size, in bytes.
	MaxMessageSize int64
	// Observed are the served domains (A-labels, alias domains
	// included) in observe mode: listgate's doors let their unknown
	// addresses through at RCPT TO (docs/lists.md, "Observe mode"), so
	// no main.cf refuses them.
	Observed []string
}

// Role is a postmaster@ or abuse@ address of a served domain.
type Role struct {
	// Addr is the address, "postmaster@example.org" (domain as an
	// A-label).
	Addr string
	// List is set when a list of that name takes it.
	List bool
	// Target is where the domain file sends it (its postmaster or abuse
	// key): Postfix's virtual_alias_maps must rewrite it there, through
	// listgate's socketmap aliases map. "" when the domain file says
	// nothing.
	Target string
	// File names the domain file, for messages ("lists/@example.org").
	File string
}

// Forms returns every spelling of the domains that Postfix must list:
// the A-labels, then the U-labels of internationalised ones. Postfix
// compares relay_domains byte for byte, so an SMTPUTF8 client's
// RCPT TO:<x@bücher.example> matches only the U-label.
func (lg Listgate) Forms() []string { return forms(lg.Domains) }

// EnforcedForms returns Forms of the domains not in observe mode: those
// whose bogus addresses a good main.cf refuses at RCPT TO.
func (lg Listgate) EnforcedForms() []string {
	var ds []string
	for _, d := range lg.Domains {
		if !slices.Contains(lg.Observed, d) {
			ds = append(ds, d)
		}
	}
	return forms(ds)
}

// ObservedForms returns Forms of the domains in observe mode.
func (lg Listgate) ObservedForms() []string { return forms(lg.Observed) }

// forms returns the A-labels ds, then the U-labels of internationalised
// ones.
func forms(ds []string) []string {
	out := slices.Clone(ds)
	for _, d := range ds {
		if u, err := idna.Lookup.ToUnicode(d); err == nil && u != d {
			out = append(out, u)
		}
	}
	return out
}

// Finding is one setting that makes Postfix bounce a bogus list address
// (backscatter), accept mail unchecked, or lose mail: the parameter, what
// is wrong, and the fix.
type Finding struct {
	Param, Problem, Fix string
}

// String returns "param: problem; fix: fix".
func (f Finding) String() string { return f.Param + ": " + f.Problem + "; fix: " + f.Fix }

// Report is what Lint found: findings, and notes on what it could not
// check.
type Report struct {
	Findings []Finding
	Notes    []string
	// Asked are listgate's doors that Postfix asks about each recipient
	// at RCPT TO: its milter in smtpd_milters, its policy service in a
	// restriction list, its socketmap recipients map in
	// relay_recipient_maps. Empty: none.
	Asked []Door
}

// Lint judges the configuration s against listgate lg. It names every
// setting that lets Postfix accept a bogus list address and bounce it
// later, accept mail unchecked, relay for anyone, or lose mail while
// listgate is down, and every parameter main.cf sets twice.
func Lint(s *Settings, lg Listgate) Report {
	// Lookups in lg's own socketmap tables are answered as its socketmap
	// door would; forget what an earlier Lint looked up.
	s.own = &lg
	clear(s.cache)
	clear(s.classes)
	c := &checker{s: s, lg: lg, forms: lg.Forms()}
	c.run()
	return Report{Findings: c.findings, Notes: s.Notes(), Asked: c.asked}
}

// checker judges a configuration against a listgate.
type checker struct {
	s        *Settings
	lg       Listgate
	forms    []string
	findings []Finding
	// policyAsked: a check_policy_service asks listgate's policy door.
	policyAsked bool
	// policyNamedElsewhere: the check_policy_service servers that are not
	// listgate's policy door.
	policyNamedElsewhere []string
	asked                []Door
	// offSocketmap: the parameters that ask a local socketmap for maps
	// named like listgate's while its socketmap door is off (one finding
	// says so, first; the others it explains are left out).
	offSocketmap map[string]bool
}

func (c *checker) find(param, fix, format string, args ...any) {
	c.findings = append(c.findings, Finding{param, fmt.Sprintf(format, args...), fix})
}

// run makes every check.
func (c *checker) run() {
	c.checkSocketmapOff()
	c.checkDuplicates()
	if len(c.lg.Domains) == 0 {
		c.s.note("--lists %s serves no domain: the list domains are not checked", c.lg.ListsDir)
	}
	policy := c.checkPolicy()
	c.policyAsked = policy
	table := c.socketmapRecipients()
	// A socketmap setup whose socketmap is off here: not the milter's
	// setup, whatever the milter door is.
	milter := c.checkMilter(policy || table || c.offSocketmap["relay_recipient_maps"])
	for d, on := range map[Door]bool{DoorMilter: milter, DoorPolicy: policy, DoorSocketmap: table} {
		if on {
			c.asked = append(c.asked, d)
		}
	}
	slices.SortFunc(c.asked, func(a, b Door) int { return slices.Index(Doors, a) - slices.Index(Doors, b) })
	c.checkDomains(milter || policy)
	c.checkSocketmapRefs()
	c.checkUnlisted(milter || policy)
	c.checkRoles()
	c.checkDelimiter()
	c.checkSizes()
	c.checkRelay()
}

// checkDuplicates: a parameter set twice is set by its last line, which
// an admin editing the first does not expect ("cat >> main.cf" repeats
// Debian's smtpd_relay_restrictions and recipient_delimiter).
func (c *checker) checkDuplicates() {
	for _, ps := range c.s.cfg.Duplicates() {
		var at []string
		for _, p := range ps {
			at = append(at, fmt.Sprintf("%s (%q)", p.Pos(), p.Value))
		}
		last := ps[len(ps)-1]
		c.find(last.Name, "delete "+earlier(ps)+": keep one line, and edit that one",
			"is set %d times, at %s: Postfix uses the last (%s) and warns \"overriding earlier entry\", and an edit of an earlier line has no effect (appending to main.cf with cat >> repeats what it already sets)",
			len(ps), strings.Join(at, ", "), last.Pos())
	}
}

// earlier names the settings before the last.
func earlier(ps []Param) string {
	var at []string
	for _, p := range ps[:len(ps)-1] {
		at = append(at, p.Pos())
	}
	return strings.Join(at, ", ")
}

// toListgate reports whether a route delivers to listgate's LMTP sink, and
// if not, why.
func (c *checker) toListgate(r Route) (bool, string) {
	qdir := c.s.Value("queue_directory")
	for _, nh := range splitList(r.Nexthop) {
		ep, ok := ParseClientAddr(nh, qdir, true)
		if !ok || !Reaches(ep, c.lg.LMTP) {
			continue
		}
		if r.Transport == "smtp" || r.Transport == "relay" {
			return false, fmt.Sprintf("%s (%s) speaks SMTP to listgate's LMTP %s, which refuses EHLO", r.By, r, c.lg.LMTP)
		}
		return true, ""
	}
	return false, fmt.Sprintf("%s sends it to %s, not to listgate's LMTP %s", r.By, r, c.lg.LMTP)
}

// milterEntry is one element of smtpd_milters: an address and its
// per-milter settings ("{ inet:host:port, default_action = accept }").
type milterEntry struct {
	addr     string
	settings map[string]string
}

func parseMilters(v string) []milterEntry {
	var out []milterEntry
	for _, tok := range splitList(v) {
		e := milterEntry{addr: tok, settings: map[string]string{}}
		if strings.HasPrefix(tok, "{") && strings.HasSuffix(tok, "}") {
			inner := tok[1 : len(tok)-1]
			for strings.Contains(inner, " =") || strings.Contains(inner, "= ") {
				inner = strings.NewReplacer(" =", "=", "= ", "=").Replace(inner)
			}
			parts := splitList(inner)
			if len(parts) == 0 {
				continue
			}
			e.addr = parts[0]
			for _, p := range parts[1:] {
				if k, v, ok := strings.Cut(p, "="); ok {
					e.settings[k] = v
				}
			}
		}
		out = append(out, e)
	}
	return out
}

// findMilter returns listgate's entry in a milter list, or nil.
func (c *checker) findMilter(entries []milterEntry) *milterEntry {
	qdir := c.s.Value("queue_directory")
	for i := range entries {
		if ep, ok := ParseClientAddr(entries[i].addr, qdir, false); ok && Reaches(ep, c.lg.Milter) {
			return &entries[i]
		}
	}
	return nil
}

// checkMilter: listgate's milter must be in smtpd_milters, with tempfail
// as its default action, and not switched off, unless another door
// checks the recipients (others: listgate's policy service or its
// socketmap recipients map). It reports whether smtpd asks listgate's
// milter at RCPT TO.
func (c *checker) checkMilter(others bool) bool {
	if c.lg.Milter.Network == "" {
		c.checkNonSMTPDMilters()
		if !others {
			c.nothingAsks()
		}
		return false
	}
	want := c.lg.Milter.MainCFName(c.s.Value("queue_directory"))
	milters, mparam := c.s.smtpd("smtpd_milters")
	entries := parseMilters(milters)
	ours := c.findMilter(entries)
	switch {
	case ours == nil && others:
		// The policy service or the socketmap checks the recipients.
		if opts, _ := c.s.smtpd("receive_override_options"); slices.Contains(splitList(opts), "no_milters") {
			return false
		}
		c.checkNonSMTPDMilters()
		return false
	case ours == nil && len(entries) == 0:
		c.find(mparam, "smtpd_milters = "+want,
			"is empty: nothing asks listgate at RCPT TO, so Postfix accepts every address of the list domains and bounces the bogus ones when listgate's LMTP refuses them (backscatter)")
	case ours == nil:
		c.find(mparam, "smtpd_milters = "+milters+", "+want+" (drop any entry left from an old listgate address: an entry nothing answers makes every client get 451)",
			"names %s but not listgate's milter %s: nothing asks listgate at RCPT TO, so Postfix accepts every address of the list domains and bounces the bogus ones when listgate's LMTP refuses them (backscatter)",
			milters, c.lg.Milter)
	}
	if ours != nil {
		if da, ok := ours.settings["default_action"]; ok {
			c.defaultAction(mparam+" (default_action of "+ours.addr+")", da,
				"remove default_action from listgate's entry (milter_default_action = tempfail applies)")
		} else {
			action, aparam := c.s.smtpd("milter_default_action")
			c.defaultAction(aparam, action, "milter_default_action = tempfail")
		}
	} else if action, aparam := c.s.smtpd("milter_default_action"); action != "tempfail" {
		c.defaultAction(aparam, action, "milter_default_action = tempfail")
	}
	if opts, param := c.s.smtpd("receive_override_options"); slices.Contains(splitList(opts), "no_milters") {
		c.find(param, "remove no_milters from it",
			"has no_milters: smtpd never asks listgate (nor any milter), so Postfix accepts every address of the list domains and bounces the bogus ones later (backscatter)")
		ours = nil
	}
	c.checkNonSMTPDMilters()
	if c.s.Value("smtpd_milter_maps") != "" {
		c.s.note("smtpd_milter_maps is set: it replaces smtpd_milters for the clients it matches; make sure none of them gets DISABLE or a milter list without listgate's %s", want)
	}
	return ours != nil
}

// checkNonSMTPDMilters: listgate's milter must not be a non-SMTP milter.
func (c *checker) checkNonSMTPDMilters() {
	if c.lg.Milter.Network == "" {
		return
	}
	if nm := c.findMilter(parseMilters(c.s.Value("non_smtpd_milters"))); nm != nil {
		c.find("non_smtpd_milters", "remove listgate's milter from non_smtpd_milters (keep it in smtpd_milters)",
			"names listgate's milter %s: Postfix does not let a non-SMTP milter refuse a recipient; mail submitted with sendmail(1) to a bogus list address stays in the queue with a configuration error instead", nm.addr)
	}
}

// defaultAction judges what Postfix does when it cannot ask listgate.
func (c *checker) defaultAction(param, action, fix string) {
	switch action {
	case "tempfail":
	case "accept":
		c.find(param, fix, "is accept: while listgate is down or slow, Postfix accepts every recipient unchecked, and bounces the bogus ones when listgate's LMTP refuses them (backscatter)")
	case "reject":
		c.find(param, fix, "is reject: while listgate is down, Postfix refuses all mail with a 5xx, so senders give up and the mail is lost")
	case "quarantine":
		c.find(param, fix, "is quarantine: while listgate is down, Postfix accepts all mail unchecked into the hold queue")
	default:
		c.find(param, fix, "is %q, not one of Postfix's actions (tempfail, accept, reject, quarantine)", action)
	}
}

// checkDomains: every spelling of every list domain must be in
// relay_domains (or virtual_mailbox_domains) and delivered to listgate's
// LMTP; their subdomains, and relay domains listgate does not serve, must
// not be.
func (c *checker) checkDomains(asked bool) {
	group := func(m map[string][]string, key, d string) {
		if !slices.Contains(m[key], d) {
			m[key] = append(m[key], d)
		}
	}
	local, alias, missing := []string{}, []string{}, []string{}
	misrouted := map[string][]string{} // why -> domains
	unchecked := map[string][]string{} // param -> domains without a recipient check
	tableMisses := map[string][]string{}
	lmtpName := "lmtp:" + c.lg.LMTP.MainCFName(c.s.Value("queue_directory"))
	for _, d := range c.forms {
		switch cls := c.s.Class(d); cls {
		case "local":
			local = append(local, d)
		case "virtual_alias":
			alias = append(alias, d)
		case "default":
			missing = append(missing, d)
		default:
			if ok, why := c.toListgate(c.s.Route(d, cls)); !ok {
				group(misrouted, why, d)
			}
			table := map[Class]string{ClassRelay: "relay_recipient_maps", ClassVirtualMailbox: "virtual_mailbox_maps"}[cls]
			if !asked && c.s.Value(table) == "" {
				group(unchecked, table, d)
			}
			if c.s.Value(table) != "" {
				c.checkRecipientTable(table, d, tableMisses)
			}
		}
	}
	if len(local) > 0 {
		c.find("mydestination", "remove "+strings.Join(local, ", ")+" from mydestination",
			"has the list domains %s: Postfix delivers their mail itself (local(8)), never to listgate", strings.Join(local, ", "))
	}
	if len(alias) > 0 {
		c.find("virtual_alias_domains", "remove "+strings.Join(alias, ", ")+" from virtual_alias_domains (and virtual_alias_maps)",
			"has the list domains %s: Postfix refuses every address of them that virtual_alias_maps does not rewrite, and delivers the rest elsewhere", strings.Join(alias, ", "))
	}
	if len(missing) > 0 && !c.offSocketmap["relay_domains"] {
		rd := c.s.Value("relay_domains")
		fix := "relay_domains = " + strings.Join(missing, ", ")
		switch t := c.domainsSocketmap(); {
		case t != "" && c.lg.Socketmap.Network != "":
			// Not a static list next to a socketmap: listgate's answers.
			fix = "replace " + t + " with " + c.lg.SocketmapTable(c.s.Value("queue_directory"), "domains") + " (listgate's socketmap answers for every list domain)"
		case rd != "":
			fix = "relay_domains = " + rd + ", " + strings.Join(missing, ", ")
		}
		c.find("relay_domains", fix, "lacks the list domains %s: Postfix refuses mail for them (554 5.7.1 Relay access denied)", strings.Join(missing, ", "))
	}
	observed := c.lg.ObservedForms()
	for _, why := range sortedKeys(misrouted) {
		var ds, watched []string
		for _, d := range misrouted[why] {
			if slices.Contains(observed, d) {
				watched = append(watched, d)
			} else {
				ds = append(ds, d)
			}
		}
		if len(watched) > 0 {
			// The observe roll-out: the old list manager keeps the mail
			// while listgate only watches at RCPT TO.
			c.s.note("mail for the observed domains %s is not delivered to listgate (%s): right while they are in observe mode, with their mail still going to the old list manager; after mode = \"enforce\", route them to %s (docs/postfix.md, \"Observe first\")",
				strings.Join(watched, ", "), why, lmtpName)
		}
		if len(ds) == 0 {
			continue
		}
		param, _, _ := strings.Cut(why, " ")
		fix := "relay_transport = " + lmtpName
		if param != "relay_transport" {
			fix = "route " + strings.Join(ds, ", ") + " to " + lmtpName
		}
		c.find(param, fix, "mail for the list domains %s is not delivered to listgate: %s", strings.Join(ds, ", "), why)
	}
	for _, table := range sortedKeys(unchecked) {
		ds := unchecked[table]
		c.find(table, c.recipientCheckFix(table),
			"is empty and listgate's milter is not asked: Postfix accepts every address of %s unchecked, and bounces the bogus ones when listgate's LMTP refuses them (backscatter)", strings.Join(ds, ", "))
	}
	for _, table := range sortedKeys(tableMisses) {
		fix := "leave " + table + " empty (listgate's milter is the recipient check), or list the list domains as @domain"
		if c.lg.Socketmap.Network != "" && table == "relay_recipient_maps" {
			fix = table + " = " + c.lg.SocketmapTable(c.s.Value("queue_directory"), "recipients") + " (listgate's socketmap), or leave it empty (listgate's milter is the recipient check)"
		}
		c.find(table, fix,
			"does not list %s: Postfix refuses those list addresses (550 5.1.1 User unknown) before listgate is asked", strings.Join(tableMisses[table], ", "))
	}
	c.checkSubdomains()
	c.checkUnservedRelay()
}

// checkRecipientTable notes the list addresses of domain d that a
// recipient table (relay_recipient_maps, virtual_mailbox_maps) lacks:
// Postfix refuses them before the milter is asked.
func (c *checker) checkRecipientTable(param, d string, misses map[string][]string) {
	ascii, _ := idna.Lookup.ToASCII(d)
	for _, l := range c.lg.Lists {
		local, domain, _ := strings.Cut(l, "@")
		if domain != ascii {
			continue
		}
		for _, addr := range []string{local + "@" + d, local + "-request@" + d} {
			found := false
			for _, table := range splitList(c.s.Value(param)) {
				for _, key := range []string{addr, "@" + d} {
					_, ok, err := c.s.Lookup(table, key)
					if err != nil {
						c.s.note("%s: %v: not checked", param, err)
						return
					}
					found = found || ok
				}
			}
			if !found && !slices.Contains(misses[param], addr) {
				misses[param] = append(misses[param], addr)
			}
		}
	}
}

// checkSubdomains: a subdomain of a list domain that Postfix relays to
// listgate is accepted for any address, passed by listgate's milter as not
// its own, refused by its LMTP: a bounce.
func (c *checker) checkSubdomains() {
	var viaParent, viaDot []string
	for _, d := range c.lg.Domains {
		sub := "sub." + d
		if slices.Contains(c.lg.Domains, sub) {
			continue
		}
		cls := c.s.Class(sub)
		if cls != "relay" && cls != "virtual" {
			continue
		}
		if ok, _ := c.toListgate(c.s.Route(sub, cls)); !ok {
			continue
		}
		param := map[Class]string{ClassRelay: "relay_domains", ClassVirtualMailbox: "virtual_mailbox_domains"}[cls]
		if c.s.parentMatches(param) && c.s.inListExact(param, d) {
			viaParent = append(viaParent, d)
		} else {
			viaDot = append(viaDot, d)
		}
	}
	if len(viaParent) > 0 {
		var keep []string
		for _, p := range splitList(c.s.Value("parent_domain_matches_subdomains")) {
			if p != "relay_domains" && p != "virtual_mailbox_domains" {
				keep = append(keep, p)
			}
		}
		c.find("parent_domain_matches_subdomains", "parent_domain_matches_subdomains = "+strings.Join(keep, ", ")+" (write .domain in relay_domains for any other domain whose subdomains you relay)",
			"includes relay_domains (Postfix's default), so relay_domains also relays every subdomain of %s (x@sub.%s), which listgate does not serve: Postfix accepts such mail, listgate's milter lets it pass as not its own, and its LMTP refusal becomes a bounce (backscatter)",
			strings.Join(viaParent, ", "), viaParent[0])
	}
	if len(viaDot) > 0 {
		c.find("relay_domains", "list only the list domains themselves, not .domain patterns or tables that match their subdomains",
			"matches subdomains of %s (x@sub.%s), which listgate does not serve, and delivers them to listgate: Postfix accepts such mail and bounces it when listgate's LMTP refuses it (backscatter)",
			strings.Join(viaDot, ", "), viaDot[0])
	}
}

// checkUnservedRelay: relay_transport applies to every relay domain, so a
// relay domain listgate does not serve would be accepted for any address
// and bounced by listgate's LMTP.
func (c *checker) checkUnservedRelay() {
	var bad []string
	for _, p := range splitList(c.s.Value("relay_domains")) {
		if strings.HasPrefix(p, "!") || strings.HasPrefix(p, ".") || strings.HasPrefix(p, "/") || isTable(p) || strings.Contains(p, "$") {
			continue
		}
		d := strings.ToLower(strings.TrimSuffix(p, "."))
		ascii, err := idna.Lookup.ToASCII(d)
		if err == nil && slices.Contains(c.lg.Domains, ascii) {
			continue
		}
		if c.s.Class(d) != "relay" {
			continue
		}
		if ok, _ := c.toListgate(c.s.Route(d, "relay")); ok {
			bad = append(bad, d)
		}
	}
	if len(bad) > 0 {
		lmtpName := "lmtp:" + c.lg.LMTP.MainCFName(c.s.Value("queue_directory"))
		var entries []string
		for _, d := range c.forms {
			entries = append(entries, d+"="+lmtpName)
		}
		c.find("relay_domains", "remove them from relay_domains, or route only the list domains to listgate: transport_maps = inline:{ "+strings.Join(entries, ", ")+" } and relay_transport back to its old value",
			"has %s, which listgate does not serve, delivered to listgate's LMTP: Postfix accepts any address there, listgate's milter lets it pass as not its own, and its LMTP refusal becomes a bounce (backscatter)", strings.Join(bad, ", "))
	}
}

// checkDelimiter: Postfix and listgate must split address extensions alike.
func (c *checker) checkDelimiter() {
	pd := c.s.Value("recipient_delimiter")
	if sameChars(pd, c.lg.Delimiter) {
		return
	}
	show := func(s string) string {
		if s == "" {
			return "none"
		}
		return strconv.Quote(s)
	}
	c.find("recipient_delimiter", "recipient_delimiter = "+c.lg.Delimiter+" (or run listgate with --recipient-delimiter matching Postfix's)",
		"is %s but listgate's is %s: Postfix's tables keyed by address (relay_recipient_maps, transport_maps, virtual_alias_maps, access maps) then split list-bounces+token@ differently from listgate",
		show(pd), show(c.lg.Delimiter))
}

func sameChars(a, b string) bool {
	x, y := []rune(a), []rune(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// checkSizes: Postfix must not accept a message listgate must refuse.
func (c *checker) checkSizes() {
	msl, err := strconv.ParseInt(c.s.Value("message_size_limit"), 10, 64)
	if err != nil {
		c.s.note("message_size_limit = %q: not a number, not checked", c.s.Value("message_size_limit"))
		return
	}
	fix := fmt.Sprintf("message_size_limit = %d", c.lg.MaxMessageSize)
	switch {
	case msl == 0:
		c.find("message_size_limit", fix, "is 0 (no limit): Postfix accepts a message larger than listgate's --max-message-size %d, which listgate's LMTP then refuses: a bounce", c.lg.MaxMessageSize)
	case msl > c.lg.MaxMessageSize:
		c.find("message_size_limit", fix, "is %d, above listgate's --max-message-size %d: Postfix accepts a message listgate's LMTP then refuses: a bounce", msl, c.lg.MaxMessageSize)
	}
	// local(8) and virtual(8) refuse to run when their mailbox limit is
	// below message_size_limit ("configuration error: ... is smaller than
	// message_size_limit"), and the host's own mail waits in the queue.
	for _, lim := range []struct{ param, domains, agent string }{
		{"mailbox_size_limit", "mydestination", "local(8)"},
		{"virtual_mailbox_limit", "virtual_mailbox_domains", "virtual(8)"},
	} {
		n, err := strconv.ParseInt(c.s.Value(lim.param), 10, 64)
		if err != nil || n == 0 || n >= msl || msl == 0 || c.s.Value(lim.domains) == "" {
			continue
		}
		c.find(lim.param, fmt.Sprintf("%s = 0 (no limit) or at least %d", lim.param, msl),
			"is %d, smaller than message_size_limit %d: %s then refuses to run (\"configuration error\") and the host's own mail for %s waits in the queue", n, msl, lim.agent, lim.domains)
	}
}

// checkRelay: Postfix must not relay for the world.
func (c *checker) checkRelay() {
	guarded := false
	for _, key := range []string{"smtpd_relay_restrictions", "smtpd_recipient_restrictions"} {
		v, _ := c.s.smtpd(key)
		for _, r := range splitList(v) {
			if r == "permit" {
				break
			}
			if r == "reject_unauth_destination" || r == "defer_unauth_destination" {
				guarded = true
				break
			}
		}
	}
	if !guarded {
		_, param := c.s.smtpd("smtpd_relay_restrictions")
		c.find(param, "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
			"neither it nor smtpd_recipient_restrictions has reject_unauth_destination before any permit: Postfix relays mail for any domain (an open relay)")
	}
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
