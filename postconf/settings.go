package postconf

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
)

// Settings is a configuration as Postfix uses it: each parameter's value
// (set, or its default, with $name references expanded), the address
// class of a domain, its route, and table lookups. It notes what it could
// not read (a table, a file of patterns) instead of failing.
// A Settings is not safe for concurrent use.
type Settings struct {
	cfg      *Config
	defaults *Defaults
	opts     Options
	x        expander
	notes    []string
	noted    map[string]bool
	cache    map[[2]string]lookupResult
	values   map[string]string // Value's answers
	classes  map[string]Class  // Class's answers
	// own, set by Lint, answers lookups in the socketmap tables of the
	// listgate being judged as its socketmap door would.
	own *Listgate
}

// Options are the settings of NewSettings.
type Options struct {
	// Tools looks up file tables (hash:, lmdb:, pcre:, ...) with
	// postmap -q. Network and database tables (tcp:, socketmap:,
	// ldap:, mysql:, ...) are never queried: only the running Postfix
	// asks them.
	Tools Tools
	// QueueDirectory is queue_directory when the configuration does not
	// set it; empty means the default's.
	QueueDirectory string
}

type lookupResult struct {
	value string
	found bool
	err   error
}

// NewSettings returns cfg as Postfix reads it with defaults d.
func NewSettings(cfg *Config, d *Defaults, opts Options) *Settings {
	s := &Settings{cfg: cfg, defaults: d, opts: opts, noted: map[string]bool{}, cache: map[[2]string]lookupResult{},
		values: map[string]string{}, classes: map[string]Class{}}
	s.x = expander{get: s.raw, keepUnknown: d.Builtin}
	return s
}

// Notes returns what s could not read, in the order it found out, each
// once.
func (s *Settings) Notes() []string { return s.notes }

func (s *Settings) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if !s.noted[n] {
		s.noted[n] = true
		s.notes = append(s.notes, n)
	}
}

// raw returns a parameter's unexpanded value: main.cf's, or the default.
func (s *Settings) raw(name string) (string, bool) {
	if v, ok := s.cfg.Get(name); ok {
		return v, true
	}
	if name == "queue_directory" && s.opts.QueueDirectory != "" {
		return s.opts.QueueDirectory, true
	}
	return s.defaults.Get(name)
}

// Value returns a parameter's value as Postfix uses it: main.cf's last
// setting, or the default, with $name references expanded (postconf(5)).
func (s *Settings) Value(name string) string {
	if v, ok := s.values[name]; ok {
		return v
	}
	v, _ := s.raw(name)
	v = s.x.expand(v)
	s.values[name] = v
	return v
}

// smtpd returns the value smtpd(8) on port 25 uses: master.cf's override
// for the smtp/inet service ("-o name=value", postconf -P) or main.cf's;
// where names it for a reader: name, or "smtp/inet/name (master.cf -o)".
func (s *Settings) smtpd(name string) (value, where string) {
	if v, ok := s.cfg.Override("smtp/inet", name); ok {
		return s.x.expand(v), "smtp/inet/" + name + " (master.cf -o)"
	}
	return s.Value(name), name
}

// splitList splits a list value at commas and white space, keeping {...}
// groups (inline: tables, per-milter settings) whole.
func splitList(v string) []string {
	var out []string
	var cur strings.Builder
	level := 0
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for _, r := range v {
		switch {
		case r == '{':
			level++
		case r == '}' && level > 0:
			level--
		case level == 0 && (r == ',' || unicode.IsSpace(r)):
			flush()
			continue
		}
		cur.WriteRune(r)
	}
	flush()
	return out
}

// isTable reports whether a list element is a lookup table "type:name".
func isTable(p string) bool {
	typ, _, ok := strings.Cut(p, ":")
	if !ok || typ == "" {
		return false
	}
	for _, r := range typ {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// isPatternTable reports whether Postfix looks a domain up in table
// ("type:name") only as it is, never by its parent domains: regexp: and
// pcre: tables, and socketmap: (dict_sockmap.c opens it with
// DICT_FLAG_PATTERN, "don't look up parent domains").
func isPatternTable(table string) bool {
	typ, _, _ := strings.Cut(strings.TrimPrefix(table, "proxy:"), ":")
	return typ == "regexp" || typ == "pcre" || typ == "socketmap"
}

// parseInline reads the body of an inline: table, "{ k=v, ... }".
func parseInline(body string) (map[string]string, error) {
	body = strings.TrimSpace(body)
	if !strings.HasPrefix(body, "{") || !strings.HasSuffix(body, "}") {
		return nil, fmt.Errorf("want {...}, got %q", body)
	}
	m := map[string]string{}
	for _, item := range splitList(body[1 : len(body)-1]) {
		if strings.HasPrefix(item, "{") && strings.HasSuffix(item, "}") {
			item = item[1 : len(item)-1]
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want name=value", item)
		}
		m[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return m, nil
}

// Lookup looks key up in one table ("type:name") as Postfix would:
// inline: and static: read here, file tables through postmap -q (a
// missing file is an error without asking postmap, which sleeps before
// it reports one), other tables not at all (an error). An error for a
// table is remembered: the table is not asked again.
func (s *Settings) Lookup(table, key string) (string, bool, error) {
	if r, ok := s.cache[[2]string{table, key}]; ok {
		return r.value, r.found, r.err
	}
	if r, ok := s.cache[[2]string{table, ""}]; ok && r.err != nil {
		return "", false, r.err
	}
	v, found, err := s.lookup(table, key)
	s.cache[[2]string{table, key}] = lookupResult{v, found, err}
	if err != nil {
		s.cache[[2]string{table, ""}] = lookupResult{err: err}
	}
	return v, found, err
}

func (s *Settings) lookup(table, key string) (string, bool, error) {
	typ, name, _ := strings.Cut(strings.TrimPrefix(table, "proxy:"), ":")
	switch typ {
	case "inline":
		m, err := parseInline(name)
		if err != nil {
			return "", false, fmt.Errorf("%s: %w", table, err)
		}
		v, ok := m[strings.ToLower(key)]
		return v, ok, nil
	case "static":
		return strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(name, "{"), "}")), true, nil
	case "socketmap":
		if s.own != nil {
			qdir := s.Value("queue_directory")
			if m, ok := s.own.ownSocketmap("socketmap:"+name, qdir); ok {
				return s.own.socketmapLookup(m, key, qdir)
			}
		}
	}
	suffix, known := map[string]string{"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb",
		"texthash": "", "regexp": "", "pcre": "", "cidr": ""}[typ]
	if !known {
		return "", false, fmt.Errorf("cannot read %s: %q tables are not looked up by --check", table, typ)
	}
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name + suffix); err != nil {
			return "", false, fmt.Errorf("cannot read %s (%v)", table, err)
		}
	}
	v, found, err := s.opts.Tools.Query(context.Background(), table, key)
	if err != nil {
		return "", false, fmt.Errorf("cannot read %s (%w)", table, err)
	}
	return v, found, nil
}

// parentMatches reports whether a name in list parameter param also
// matches its subdomains (parent_domain_matches_subdomains).
func (s *Settings) parentMatches(param string) bool {
	return slices.Contains(splitList(s.Value("parent_domain_matches_subdomains")), param)
}

// InList reports whether domain matches the domain list param, as
// match_list(3) does: patterns in order, the first that matches decides;
// "!pattern" negates; "/file/name" holds more patterns; "type:table" is
// looked up; a name matches itself and, when param is in
// parent_domain_matches_subdomains, its subdomains; otherwise ".name"
// matches the subdomains of name.
func (s *Settings) InList(param, domain string) bool {
	m, _ := s.match(param, splitList(s.Value(param)), strings.ToLower(domain), s.parentMatches(param), 0)
	return m
}

// inListExact reports whether the list param names domain itself, not
// through a pattern for its subdomains.
func (s *Settings) inListExact(param, domain string) bool {
	m, _ := s.match(param, splitList(s.Value(param)), strings.ToLower(domain), false, 0)
	return m
}

func (s *Settings) match(param string, pats []string, domain string, parent bool, depth int) (match, decided bool) {
	for _, p := range pats {
		neg := false
		for strings.HasPrefix(p, "!") {
			neg, p = !neg, p[1:]
		}
		switch {
		case strings.HasPrefix(p, "/"):
			b, err := os.ReadFile(p)
			if err != nil || depth > 5 {
				s.note("%s: cannot read %s (%v): the domains in it are not checked", param, p, err)
				continue
			}
			var lines []string
			for _, l := range strings.Split(string(b), "\n") {
				if l, _, _ = strings.Cut(l, "#"); strings.TrimSpace(l) != "" {
					lines = append(lines, l)
				}
			}
			if m, d := s.match(param, splitList(strings.Join(lines, " ")), domain, parent, depth+1); d {
				return m != neg, true
			}
		case isTable(p):
			keys := tableKeys(domain, parent)
			if isPatternTable(p) {
				keys = keys[:1]
			}
			for _, k := range keys {
				_, found, err := s.Lookup(p, k)
				if err != nil {
					s.note("%s: %v: the domains in it are not checked", param, err)
					break
				}
				if found {
					return !neg, true
				}
			}
		default:
			p = strings.ToLower(strings.TrimSuffix(p, "."))
			if domain == p || parent && strings.HasSuffix(domain, "."+p) ||
				!parent && strings.HasPrefix(p, ".") && strings.HasSuffix(domain, p) {
				return !neg, true
			}
		}
	}
	return false, false
}

// tableKeys are the keys a domain is looked up under in a table: itself,
// then its parent domains, as "parent" or ".parent".
func tableKeys(domain string, parent bool) []string {
	keys := []string{domain}
	for rest := domain; strings.Contains(rest, "."); {
		_, rest, _ = strings.Cut(rest, ".")
		if parent {
			keys = append(keys, rest)
		} else {
			keys = append(keys, "."+rest)
		}
	}
	return keys
}

// Class is the address class trivial-rewrite(8) gives a recipient domain
// (ADDRESS_CLASS_README): it decides whether Postfix accepts the
// recipient and how it delivers it.
type Class string

// The address classes, in the order trivial-rewrite tries them.
const (
	ClassLocal          Class = "local"         // mydestination
	ClassVirtualAlias   Class = "virtual_alias" // virtual_alias_domains
	ClassVirtualMailbox Class = "virtual"       // virtual_mailbox_domains
	ClassRelay          Class = "relay"         // relay_domains
	ClassDefault        Class = "default"       // anything else: relayed only for permitted clients
)

// Class returns the address class of a recipient domain: the first of
// local, virtual alias, virtual mailbox and relay whose domain list has
// it, else default.
func (s *Settings) Class(domain string) Class {
	domain = strings.ToLower(domain)
	if c, ok := s.classes[domain]; ok {
		return c
	}
	c := ClassDefault
	switch {
	case s.InList("mydestination", domain):
		c = ClassLocal
	case s.InList("virtual_alias_domains", domain):
		c = ClassVirtualAlias
	case s.InList("virtual_mailbox_domains", domain):
		c = ClassVirtualMailbox
	case s.InList("relay_domains", domain):
		c = ClassRelay
	}
	s.classes[domain] = c
	return c
}

// Route is where Postfix delivers a domain's mail: a transport (a
// master.cf service such as lmtp or smtp), a next hop (empty: the
// recipient domain's MX), and the parameter that decided.
type Route struct {
	Transport, Nexthop, By string
}

func (r Route) String() string {
	if r.Nexthop == "" {
		return r.Transport + ": (the recipient domain's MX)"
	}
	return r.Transport + ":" + r.Nexthop
}

func splitTransport(v string) (transport, nexthop string) {
	t, nh, _ := strings.Cut(strings.TrimSpace(v), ":")
	return strings.TrimSpace(t), strings.TrimSpace(nh)
}

// Route returns the delivery of a domain of class cls: the class's
// transport parameter (local_transport, virtual_transport,
// relay_transport, default_transport), overridden by transport_maps
// (transport(5): the domain, its parent domains, then "*"; an empty
// transport or next hop in the table keeps the class's).
func (s *Settings) Route(domain string, cls Class) Route {
	param := map[Class]string{ClassLocal: "local_transport", ClassVirtualMailbox: "virtual_transport",
		ClassRelay: "relay_transport", ClassDefault: "default_transport"}[cls]
	t, nh := splitTransport(s.Value(param))
	r := Route{t, nh, param}
	keys := append(tableKeys(strings.ToLower(domain), s.parentMatches("transport_maps")), "*")
	for i, k := range keys {
		for _, table := range splitList(s.Value("transport_maps")) {
			if i > 0 && k != "*" && isPatternTable(table) {
				continue // asked the whole address only (transport(5))
			}
			v, found, err := s.Lookup(table, k)
			if err != nil {
				s.note("transport_maps: %v: the routes in it are not checked", err)
				continue
			}
			if !found {
				continue
			}
			vt, vnh := splitTransport(v)
			by := "transport_maps (" + table + ")"
			switch {
			case vt == "" && vnh == "":
			case vt == "":
				r = Route{t, vnh, by}
			case vnh == "":
				r = Route{vt, "", by}
			default:
				r = Route{vt, vnh, by}
			}
			return r
		}
	}
	return r
}
