package postconf

import (
	"fmt"
	"net"
	"slices"
	"strings"
)

// This file judges the doors other than the milter: the policy service
// (SMTPD_POLICY_README) and the socketmap tables (socketmap_table(5)),
// and the postmaster@ and abuse@ addresses (RFC 5321 §4.5.1).

// policyEntry is one check_policy_service of a restriction list: its
// server and per-service settings ("{ inet:host:port, default_action =
// DUNNO }", Postfix 3.0), the parameter that has it, and whether an
// earlier "permit" keeps smtpd from ever asking it.
type policyEntry struct {
	milterEntry
	param       string
	unreachable bool
}

// policyEntries returns every check_policy_service of
// smtpd_relay_restrictions and smtpd_recipient_restrictions (smtpd(8)
// evaluates both at RCPT TO, the relay restrictions first).
func (c *checker) policyEntries() []policyEntry {
	var out []policyEntry
	for _, key := range []string{"smtpd_relay_restrictions", "smtpd_recipient_restrictions"} {
		v, param := c.s.smtpd(key)
		rs := splitList(v)
		permitted := false
		for i := 0; i < len(rs); i++ {
			switch rs[i] {
			case "permit":
				permitted = true
			case "check_policy_service":
				if i+1 < len(rs) {
					i++
					e := parseMilters(rs[i])
					if len(e) == 1 {
						out = append(out, policyEntry{e[0], param, permitted})
					}
				}
			}
		}
	}
	return out
}

// checkPolicy: with listgate's policy door on, a check_policy_service
// that reaches it, asked for every recipient, with a default action that
// tempfails while listgate is down. It reports whether smtpd asks
// listgate's policy service at RCPT TO.
func (c *checker) checkPolicy() bool {
	if c.lg.Policy.Network == "" {
		return false
	}
	qdir := c.s.Value("queue_directory")
	var ours *policyEntry
	var others []string
	for _, e := range c.policyEntries() {
		ep, ok := ParseClientAddr(e.addr, qdir, false)
		switch {
		case ok && Reaches(ep, c.lg.Policy) && e.unreachable:
			c.find(e.param, "move check_policy_service "+e.addr+" before any permit",
				"has check_policy_service %s, listgate's policy service, after a permit: smtpd never asks it", e.addr)
		case ok && Reaches(ep, c.lg.Policy):
			if ours == nil {
				ours = &e
			}
		default:
			others = append(others, e.addr)
		}
	}
	if ours == nil {
		if len(others) > 0 {
			c.policyNamedElsewhere = others
		}
		return false
	}
	if da, ok := ours.settings["default_action"]; ok {
		c.policyDefaultAction(ours.param+" (default_action of "+ours.addr+")", da,
			"remove default_action from listgate's entry (smtpd_policy_service_default_action applies)")
	} else {
		action, param := c.s.smtpd("smtpd_policy_service_default_action")
		c.policyDefaultAction(param, action, "smtpd_policy_service_default_action = 451 4.3.5 Server configuration problem")
	}
	return true
}

// policyDefaultAction judges what smtpd does when it cannot ask the
// policy service (access(5) actions; SMTPD_POLICY_README, "Policy client
// failure").
func (c *checker) policyDefaultAction(param, action, fix string) {
	word, _, _ := strings.Cut(strings.TrimSpace(action), " ")
	switch w := strings.ToUpper(word); {
	case w == "":
		c.find(param, fix, "is empty: while listgate is down, smtpd does not know what to answer")
	case w[0] == '4' || w == "DEFER" || w == "DEFER_IF_PERMIT" || w == "DEFER_IF_REJECT":
	case w[0] == '5' || w == "REJECT" || w == "DISCARD":
		c.find(param, fix, "is %q: while listgate is down, Postfix refuses (or discards) all mail for good, so it is lost", action)
	case w == "DUNNO" || w == "OK" || w == "PERMIT" || w[0] == '2':
		c.find(param, fix, "is %q: while listgate is down or slow, Postfix accepts every recipient unchecked, and bounces the bogus ones when listgate's LMTP refuses them (backscatter)", action)
	default:
		c.find(param, fix, "is %q: while listgate is down, smtpd does that instead of a 4xx (the sender's retry)", action)
	}
}

// socketmapRecipients reports whether relay_recipient_maps asks listgate's
// socketmap recipients map: Postfix then refuses an unknown list address
// at RCPT TO itself (smtpd_reject_unlisted_recipient).
func (c *checker) socketmapRecipients() bool {
	qdir := c.s.Value("queue_directory")
	for _, t := range splitList(c.s.Value("relay_recipient_maps")) {
		if m, ok := c.lg.ownSocketmap(strings.TrimPrefix(t, "proxy:"), qdir); ok && m == "recipients" {
			return true
		}
	}
	return false
}

// nothingAsks: no door of listgate's is asked at RCPT TO, and the milter
// door is off (the milter's own finding covers it when on).
func (c *checker) nothingAsks() {
	qdir := c.s.Value("queue_directory")
	if c.lg.Policy.Network == "" {
		return // the socketmap alone: checkDomains names relay_recipient_maps
	}
	want := "check_policy_service " + c.lg.Policy.MainCFName(qdir)
	v, param := c.s.smtpd("smtpd_recipient_restrictions")
	fix := "smtpd_recipient_restrictions = " + want
	if v != "" {
		fix = "smtpd_recipient_restrictions = " + v + ", " + want
	}
	if len(c.policyNamedElsewhere) > 0 {
		c.find(param, fix+" (drop any check_policy_service left from an old listgate address)",
			"names check_policy_service %s but not listgate's policy service %s: nothing asks listgate at RCPT TO, so Postfix accepts every address of the list domains and bounces the bogus ones when listgate's LMTP refuses them (backscatter)",
			strings.Join(c.policyNamedElsewhere, ", "), c.lg.Policy)
		return
	}
	c.find(param, fix,
		"has no check_policy_service for listgate's policy service %s: nothing asks listgate at RCPT TO, so Postfix accepts every address of the list domains and bounces the bogus ones when listgate's LMTP refuses them (backscatter)", c.lg.Policy)
}

// recipientCheckFix is the fix for a relay_recipient_maps (or
// virtual_mailbox_maps) that is empty while no door of listgate's checks
// the recipients.
func (c *checker) recipientCheckFix(table string) string {
	qdir := c.s.Value("queue_directory")
	switch {
	case c.lg.Milter.Network != "":
		return "put listgate's milter in smtpd_milters (and leave " + table + " empty)"
	case c.lg.Socketmap.Network != "" && table == "relay_recipient_maps":
		return table + " = " + c.lg.SocketmapTable(qdir, "recipients")
	case c.lg.Policy.Network != "":
		return "smtpd_recipient_restrictions = check_policy_service " + c.lg.Policy.MainCFName(qdir)
	}
	return "run listgate with its milter, policy or socketmap door, and have Postfix ask it"
}

// socketmapParams are the parameters a map of listgate's socketmap is for.
var socketmapParams = map[string]string{
	"relay_domains":        "domains",
	"relay_recipient_maps": "recipients",
	"transport_maps":       "transport",
	"virtual_alias_maps":   "aliases",
}

// checkSocketmapRefs: every socketmap table named like one of listgate's
// maps must be listgate's socketmap (not an old address), the map its
// parameter needs, and one the door has; and a socketmap door that is on
// but never asked is noted.
func (c *checker) checkSocketmapRefs() {
	qdir := c.s.Value("queue_directory")
	used := false
	for _, param := range sortedKeys(map[string][]string{"relay_domains": nil, "relay_recipient_maps": nil, "transport_maps": nil, "virtual_alias_maps": nil}) {
		want := socketmapParams[param]
		for _, t := range splitList(c.s.Value(param)) {
			t = strings.TrimPrefix(strings.TrimPrefix(t, "!"), "proxy:")
			name, ok := strings.CutPrefix(t, "socketmap:")
			if !ok {
				continue
			}
			server, m, ok := splitSocketmap(name)
			if !ok {
				c.find(param, "name the table as socketmap:inet:host:port:map or socketmap:unix:/path:map",
					"has %s: not a socketmap table Postfix can open (socketmap_table(5))", t)
				continue
			}
			if !slices.Contains(socketmapMaps, m) {
				continue // another socketmap server's
			}
			mine, isOurs := c.lg.ownSocketmap(t, qdir)
			switch {
			case c.lg.Socketmap.Network == "" && c.offSocketmap[param]:
				// checkSocketmapOff's finding.
			case c.lg.Socketmap.Network == "":
				ep, _ := ParseClientAddr(server, qdir, false)
				c.s.note("%s has %s, a map named like listgate's, but listgate's socketmap door is off here (--socketmap): it is not checked; if that server is a listgate, give its address: --socketmap %s", param, t, ep)
			case !isOurs:
				ep, _ := ParseClientAddr(server, qdir, false)
				c.find(param, "replace it with "+c.lg.SocketmapTable(qdir, m),
					"has %s, which is not listgate's socketmap %s (it reaches %s): Postfix's lookups fail or ask another server", t, c.lg.Socketmap, ep)
			case mine != want:
				c.find(param, "use "+c.lg.SocketmapTable(qdir, want)+" here",
					"asks listgate's %s map (%s), but %s needs its %s map: the answers mean something else", mine, t, param, want)
			default:
				used = true
			}
		}
	}
	if c.lg.Socketmap.Network != "" && !used {
		c.s.note("listgate's socketmap door %s is on, but no parameter asks it (%s)", c.lg.Socketmap,
			"relay_domains, relay_recipient_maps, transport_maps, virtual_alias_maps: listgate postfix --door socketmap")
	}
	if c.lg.Policy.Network != "" && !c.policyAsked {
		c.s.note("listgate's policy door %s is on, but no check_policy_service asks it", c.lg.Policy)
	}
}

// socketmapParamOrder is the order checkSocketmapOff names the
// parameters in: as docs/postfix.md and listgate postfix present them.
var socketmapParamOrder = []string{"relay_domains", "relay_recipient_maps", "transport_maps", "virtual_alias_maps"}

// checkSocketmapOff: with listgate's socketmap door off, a parameter that
// asks a socketmap server on this host (loopback, or a unix socket named
// for listgate) for a map named like listgate's is most likely asking a
// listgate that was meant to run with --socketmap: if nothing answers
// there, every lookup fails and smtpd answers 451 4.3.0 (socketmap_table(5);
// a table that cannot be read is a temporary error). It comes first, as
// the did-you-mean, and the findings it explains are left out. A server
// at another host may well be someone else's: checkSocketmapRefs notes it.
func (c *checker) checkSocketmapOff() {
	c.offSocketmap = map[string]bool{}
	if c.lg.Socketmap.Network != "" {
		return
	}
	qdir := c.s.Value("queue_directory")
	type use struct{ param, table, m string }
	byServer := map[string][]use{}
	var servers []string
	for _, param := range socketmapParamOrder {
		for _, t := range splitList(c.s.Value(param)) {
			t = strings.TrimPrefix(strings.TrimPrefix(t, "!"), "proxy:")
			name, ok := strings.CutPrefix(t, "socketmap:")
			if !ok {
				continue
			}
			server, m, ok := splitSocketmap(name)
			if !ok || !slices.Contains(socketmapMaps, m) {
				continue
			}
			ep, ok := ParseClientAddr(server, qdir, false)
			if !ok || !localSocketmap(ep) {
				continue
			}
			if _, seen := byServer[ep.String()]; !seen {
				servers = append(servers, ep.String())
			}
			byServer[ep.String()] = append(byServer[ep.String()], use{param, t, m})
			c.offSocketmap[param] = true
		}
	}
	for _, server := range servers {
		uses := byServer[server]
		var also, whole, partly []string
		every := false
		for _, u := range uses {
			if u != uses[0] {
				also = append(also, u.param+" its "+u.m+" map")
			}
			every = every || u.param != "relay_recipient_maps"
			if len(splitList(c.s.Value(u.param))) == 1 {
				whole = append(whole, u.param)
			} else {
				partly = append(partly, "remove "+u.table+" from "+u.param)
			}
		}
		who := "every address of the relay domains"
		if every {
			who = "every recipient"
		}
		var remove []string
		if len(whole) > 0 {
			remove = append(remove, "postconf -X "+strings.Join(whole, " "))
		}
		remove = append(remove, partly...)
		fix := "did you mean --socketmap " + server + "? (give it to listgate serve and to listgate postfix); or, if nothing serves it, remove it: " + strings.Join(remove, "; ")
		if c.offSocketmap["relay_domains"] {
			fix += ", and set up another door: listgate postfix --door milter --postconf"
		}
		more := ""
		if len(also) > 0 {
			more = " (and " + strings.Join(also, ", ") + ")"
		}
		c.find(uses[0].param, fix,
			"asks the socketmap %s on this host for listgate's %s map%s, but listgate's socketmap door is off here (no --socketmap): unless something else answers there, every lookup fails and Postfix answers 451 4.3.0 to %s",
			server, uses[0].m, more, who)
	}
}

// localSocketmap reports whether a socketmap server address is one a
// listgate on this host would have: loopback, or a unix socket with
// "listgate" in its path.
func localSocketmap(ep Endpoint) bool {
	if ep.Network == "unix" {
		return strings.Contains(ep.Address, "listgate")
	}
	host, _, _ := net.SplitHostPort(ep.Address)
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// domainsSocketmap returns the socketmap table in relay_domains named
// like listgate's domains map, or "".
func (c *checker) domainsSocketmap() string {
	for _, t := range splitList(c.s.Value("relay_domains")) {
		t = strings.TrimPrefix(t, "proxy:")
		if name, ok := strings.CutPrefix(t, "socketmap:"); ok {
			if _, m, ok := splitSocketmap(name); ok && m == "domains" {
				return t
			}
		}
	}
	return ""
}

// checkUnlisted: with a recipient table as the check (no milter, no
// policy service), smtpd must refuse the addresses it does not list.
func (c *checker) checkUnlisted(asked bool) {
	if asked || c.s.Value("relay_recipient_maps") == "" {
		return
	}
	if v, param := c.s.smtpd("smtpd_reject_unlisted_recipient"); v == "no" {
		c.find(param, "smtpd_reject_unlisted_recipient = yes (Postfix's default)",
			"is no: smtpd accepts the addresses relay_recipient_maps does not list, and Postfix bounces them later (backscatter)")
	}
}

// checkRoles: postmaster@ (and abuse@) of every served domain should be
// accepted (RFC 5321 §4.5.1): a list of that name, or the domain file's
// address, which Postfix's virtual_alias_maps must then rewrite it to. A
// target nothing rewrites is a finding when listgate's socketmap door is
// on (its aliases map is one line away), a note when it is off.
func (c *checker) checkRoles() {
	var refused []string
	var notRewritten []Role
	for _, r := range c.lg.Roles {
		switch {
		case r.List:
		case r.Target == "":
			refused = append(refused, r.Addr)
		default:
			found := false
			for _, t := range splitList(c.s.Value("virtual_alias_maps")) {
				v, ok, err := c.s.Lookup(t, r.Addr)
				if err != nil {
					c.s.note("virtual_alias_maps: %v: %s not checked", err, r.Addr)
					found = true
					break
				}
				if ok && v != "" {
					found = true
					break
				}
			}
			if !found {
				notRewritten = append(notRewritten, r)
			}
		}
	}
	if len(refused) > 0 {
		byLocal := map[string][]string{}
		for _, a := range refused {
			local, d, _ := strings.Cut(a, "@")
			byLocal[local] = append(byLocal[local], d)
		}
		var parts []string
		for _, local := range sortedKeys(byLocal) {
			parts = append(parts, local+"@ of "+strings.Join(byLocal[local], ", "))
		}
		slices.Reverse(parts) // postmaster first
		c.s.note("%s: refused (550 5.1.1), as no list has the name and the domain file sets no address for it; RFC 5321 §4.5.1 wants postmaster@ of every domain a server takes mail for: set postmaster = \"you@your.example\" (and abuse) in the domain file, e.g. %s (an alias domain's are its main domain's: never give an alias domain a domain file of its own), and ask listgate's socketmap aliases map in virtual_alias_maps (docs/postfix.md, \"postmaster and abuse\")",
			strings.Join(parts, "; "), c.roleFile(refused[0]))
	}
	if len(notRewritten) == 0 {
		return
	}
	var what []string
	for _, r := range notRewritten {
		what = append(what, fmt.Sprintf("%s (%s in %s)", r.Addr, r.Target, r.File))
	}
	if c.lg.Socketmap.Network == "" {
		// This listgate has no aliases map to ask: listgate postfix says
		// so in its lines, and they must pass --check; a note, naming the
		// consequence and both ways out.
		var entries []string
		for _, r := range notRewritten {
			entries = append(entries, r.Addr+" "+r.Target)
		}
		c.s.note("virtual_alias_maps does not rewrite %s: Postfix accepts them and hands them to listgate's LMTP, which tempfails them until Postfix gives up and bounces them; they need listgate's socketmap aliases map, and its socketmap door is off here: run listgate with --socketmap (e.g. inet:127.0.0.1:8027) and set virtual_alias_maps = socketmap:inet:127.0.0.1:8027:aliases, or add your own virtual_alias_maps entries (%s)",
			strings.Join(what, ", "), strings.Join(entries, ", "))
		return
	}
	qdir := c.s.Value("queue_directory")
	fix := "virtual_alias_maps = " + c.lg.SocketmapTable(qdir, "aliases")
	if v := c.s.Value("virtual_alias_maps"); v != "" {
		fix = "virtual_alias_maps = " + v + ", " + c.lg.SocketmapTable(qdir, "aliases")
	}
	c.find("virtual_alias_maps", fix,
		"does not rewrite %s: listgate lets the address pass at RCPT TO for Postfix to rewrite, so Postfix accepts it and hands it to listgate's LMTP, which tempfails it until Postfix gives up and bounces it",
		strings.Join(what, ", "))
}

// roleFile names the domain file of a role's address.
func (c *checker) roleFile(addr string) string {
	for _, r := range c.lg.Roles {
		if r.Addr == addr {
			return r.File
		}
	}
	return addr
}
