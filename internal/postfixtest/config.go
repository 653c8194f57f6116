package postfixtest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/listgate/listgate/postconf"
)

// param is one main.cf parameter: a logical line "key = value".
type param struct {
	key, value string
	origin     string // where it came from, e.g. "contrib/postfix/main.cf:17"
}

// parseMainCF reads a main.cf snippet with package postconf's parser
// (postconf(5) syntax; errors read "name:line: ..."). A master.cf
// override ("service/type/name = value", as postconf -P prints it) has no
// place in main.cf and is an error.
func parseMainCF(text, name string) ([]param, error) {
	c, err := postconf.Parse(text, name)
	if err != nil {
		return nil, err
	}
	if len(c.Master) > 0 {
		return nil, fmt.Errorf("%s: %q is a master.cf setting (postconf -P), not main.cf", c.Master[0].Pos(), c.Master[0].Name)
	}
	out := make([]param, len(c.Main))
	for i, p := range c.Main {
		out[i] = param{key: p.Name, value: p.Value, origin: p.Pos()}
	}
	return out, nil
}

// masterLines returns the lines of a master.cf snippet that are not comments
// or empty, continuation lines included.
func masterLines(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, " \t\r")
		trimmed := strings.TrimLeft(line, " \t")
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		out = append(out, line)
	}
	return out
}

// mainCF accumulates parameters in sections; a later setting of a key
// replaces the earlier one, so the written file names every key once
// (Postfix warns "overriding earlier entry" about repeats).
type mainCF struct {
	sections []string
	params   [][]param
}

func (m *mainCF) add(section string, ps []param) {
	m.sections = append(m.sections, section)
	m.params = append(m.params, ps)
}

// lookup returns the value a key ends up with.
func (m *mainCF) lookup(key string) (string, bool) {
	for i := len(m.params) - 1; i >= 0; i-- {
		for j := len(m.params[i]) - 1; j >= 0; j-- {
			if m.params[i][j].key == key {
				return m.params[i][j].value, true
			}
		}
	}
	return "", false
}

// set replaces the value of key wherever it is set last, keeping its place
// and noting why; it reports whether key was set at all.
func (m *mainCF) set(key, value, why string) bool {
	for i := len(m.params) - 1; i >= 0; i-- {
		for j := len(m.params[i]) - 1; j >= 0; j-- {
			if p := &m.params[i][j]; p.key == key {
				p.value = value
				p.origin += ", " + why
				return true
			}
		}
	}
	return false
}

func (m *mainCF) String() string {
	last := map[string][2]int{}
	for i, ps := range m.params {
		for j, p := range ps {
			last[p.key] = [2]int{i, j}
		}
	}
	var b strings.Builder
	for i, ps := range m.params {
		if len(ps) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n# --- %s\n", m.sections[i])
		for j, p := range ps {
			if last[p.key] != [2]int{i, j} {
				fmt.Fprintf(&b, "# %s: set again below\n", p.key)
				continue
			}
			if p.origin != m.sections[i] {
				fmt.Fprintf(&b, "# %s\n", p.origin)
			}
			fmt.Fprintf(&b, "%s = %s\n", p.key, p.value)
		}
	}
	return b.String()
}

const (
	sectionDefaults = "postfixtest: defaults"
	sectionInstance = "postfixtest: private instance"
)

// instanceParams are the settings that make the instance private: its own
// directories and log. They come after the snippet so that no snippet can
// point the instance at the system's queue or log.
func instanceParams(dir string) []param {
	ps := []param{
		{"queue_directory", filepath.Join(dir, "q"), ""},
		{"data_directory", filepath.Join(dir, "d"), ""},
		// postlogd(8) writes the log; maillog_file must start with one of
		// maillog_file_prefixes (default /var, /dev/stdout).
		{"maillog_file", filepath.Join(dir, "maillog"), ""},
		{"maillog_file_prefixes", dir, ""},
		// Loopback only, IPv4 only: smtpd listens where master.cf says
		// (127.0.0.1:port), and nothing else is bound.
		{"inet_interfaces", "loopback-only", ""},
		{"inet_protocols", "ipv4", ""},
		// Mail for anything but the list domains never leaves: it stays
		// deferred in the queue, where Queue shows it (a bounce to a
		// forged sender would be one).
		{"default_transport", "retry:postfixtest instance delivers nowhere but listgate", ""},
	}
	for i := range ps {
		ps[i].origin = sectionInstance
	}
	return ps
}

// baseParams are the defaults of the instance: no local delivery, a
// hostname that is not the host's. A snippet may change them.
func baseParams(compat string) []param {
	ps := []param{
		{"compatibility_level", compat, ""},
		{"myhostname", "mx.postfixtest.invalid", ""},
		{"mydomain", "postfixtest.invalid", ""},
		{"myorigin", "$myhostname", ""},
		// No local domains: listgate's domains are relay domains, and
		// nothing is delivered on this host.
		{"mydestination", "", ""},
		{"local_recipient_maps", "", ""},
		{"alias_maps", "", ""},
		{"alias_database", "", ""},
		// No trusted networks: every SMTP client is a stranger, as the
		// sending MX on the Internet is. The test client connects from
		// 127.0.0.1, so with 127.0.0.0/8 here (Postfix's usual value)
		// permit_mynetworks would let it relay anywhere and an open-relay
		// test would prove nothing.
		{"mynetworks", "", ""},
		{"biff", "no", ""},
		{"readme_directory", "no", ""},
		{"html_directory", "no", ""},
		// Deliver a test's burst of mail at once (in_flow_delay throttles
		// message arrival when the queue manager is behind).
		{"in_flow_delay", "0", ""},
	}
	for i := range ps {
		ps[i].origin = sectionDefaults
	}
	return ps
}

// service is one master.cf line (master(5)).
type service struct {
	name, typ, private, unpriv, chroot, wakeup, maxproc, command string
}

// services is a minimal master.cf: smtpd on the test's port, the queue
// machinery, lmtp, and the postlog service that maillog_file needs. The
// chroot column is "y" where Debian's master.cf has it, used with
// Options.Chroot.
func services(smtpAddr string) []service {
	return []service{
		{smtpAddr, "inet", "n", "-", "y", "-", "-", "smtpd"},
		{"pickup", "unix", "n", "-", "y", "60", "1", "pickup"},
		{"cleanup", "unix", "n", "-", "y", "-", "0", "cleanup"},
		{"qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"},
		{"rewrite", "unix", "-", "-", "y", "-", "-", "trivial-rewrite"},
		{"bounce", "unix", "-", "-", "y", "-", "0", "bounce"},
		{"defer", "unix", "-", "-", "y", "-", "0", "bounce"},
		{"trace", "unix", "-", "-", "y", "-", "0", "bounce"},
		{"verify", "unix", "-", "-", "y", "-", "1", "verify"},
		{"flush", "unix", "n", "-", "y", "1000?", "0", "flush"},
		{"proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"},
		{"smtp", "unix", "-", "-", "y", "-", "-", "smtp"},
		{"showq", "unix", "n", "-", "y", "-", "-", "showq"},
		{"error", "unix", "-", "-", "y", "-", "-", "error"},
		{"retry", "unix", "-", "-", "y", "-", "-", "error"},
		{"discard", "unix", "-", "-", "y", "-", "-", "discard"},
		{"lmtp", "unix", "-", "-", "y", "-", "-", "lmtp"},
		{"anvil", "unix", "-", "-", "y", "-", "1", "anvil"},
		{"scache", "unix", "-", "-", "y", "-", "1", "scache"},
		{"postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"},
	}
}

func masterCF(smtpAddr string, chroot bool, snippet, snippetName string, extra []string) string {
	var b strings.Builder
	b.WriteString("# --- postfixtest: private instance (master(5))\n")
	for _, s := range services(smtpAddr) {
		c := "n"
		if chroot {
			c = s.chroot
		}
		fmt.Fprintf(&b, "%-16s %-10s %-3s %-3s %-3s %-6s %-3s %s\n",
			s.name, s.typ, s.private, s.unpriv, c, s.wakeup, s.maxproc, s.command)
	}
	if lines := masterLines(snippet); len(lines) > 0 {
		fmt.Fprintf(&b, "# --- %s\n%s\n", snippetName, strings.Join(lines, "\n"))
	}
	if len(extra) > 0 {
		fmt.Fprintf(&b, "# --- Options.MasterCF\n%s\n", strings.Join(extra, "\n"))
	}
	return b.String()
}

// Snippets are the main.cf snippets of contrib/postfix, each a value of
// Options.Snippet: the milter over TCP and over unix sockets, the policy
// service, the socketmap.
var Snippets = []string{"main.cf", "main.cf.unix", "main.cf.policy", "main.cf.socketmap"}

// socketmapParams are the parameters whose socketmap tables
// Options.Socketmap points at the test's listgate.
var socketmapParams = []string{"relay_domains", "relay_recipient_maps", "transport_maps", "virtual_alias_maps"}

// listgateDefaultPorts are the ports of a listgate the host itself may run
// (docs/design.md, "Doors and defaults"; the policy and socketmap ports of
// contrib/postfix). A test instance must never talk to it.
var listgateDefaultPorts = map[string]bool{"8024": true, "8025": true, "8026": true, "8027": true}

// fields splits a main.cf value into its words (commas and blanks
// separate them; braces are separators too).
func fields(value string) []string {
	return strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '{' || r == '}' })
}

// policyServer finds the server of each check_policy_service, also in
// Postfix 3.0's form with settings ("{ inet:host:port, timeout=10s }").
var policyServer = regexp.MustCompile(`(check_policy_service[\s,]*\{?\s*)([^\s,{}]+)`)

// replacePolicy points every check_policy_service of a restriction list
// at server, and returns the list and how many it replaced.
func replacePolicy(value, server string) (string, int) {
	n := 0
	out := policyServer.ReplaceAllStringFunc(value, func(m string) string {
		n++
		sub := policyServer.FindStringSubmatch(m)
		return sub[1] + server
	})
	return out, n
}

// socketmapTable finds each socketmap:SERVER:MAP table.
var socketmapTable = regexp.MustCompile(`socketmap:[^\s,{}]+`)

// replaceSocketmap points every socketmap:SERVER:MAP table of a value at
// server, keeping MAP, and returns the value and how many it replaced.
func replaceSocketmap(value, server string) (string, int) {
	n := 0
	out := socketmapTable.ReplaceAllStringFunc(value, func(m string) string {
		j := strings.LastIndexByte(m, ':')
		if j <= len("socketmap:") {
			return m
		}
		n++
		return "socketmap:" + server + m[j:]
	})
	return out, n
}

// checkNotHostListgate reports an error if value (a relay_transport,
// smtpd_milters, restriction list or table list value) names an inet
// address on one of listgate's default ports.
func checkNotHostListgate(key, value string) error {
	for _, f := range fields(value) {
		i := strings.Index(f, "inet:")
		if i < 0 {
			continue
		}
		hostPort := f[i+len("inet:"):]
		if strings.Contains(f[:i], "socketmap:") {
			if j := strings.LastIndexByte(hostPort, ':'); j > 0 {
				hostPort = hostPort[:j] // the map's name
			}
		}
		_, port, err := net.SplitHostPort(strings.NewReplacer("[", "", "]", "").Replace(hostPort))
		if err == nil && listgateDefaultPorts[port] {
			return fmt.Errorf("%s = %s would reach a listgate the host runs on its default port %s; give the test's own address in Options", key, value, port)
		}
	}
	return nil
}

// compatibilityLevel picks the newest compatibility_level that the
// installed Postfix knows among those that change defaults we rely on, so
// that it logs no "using backwards-compatible default setting" warnings.
func compatibilityLevel(mailVersion string) string {
	major, rest, _ := strings.Cut(strings.TrimSpace(mailVersion), ".")
	minor, _, _ := strings.Cut(rest, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return "2"
	}
	if ma > 3 || ma == 3 && mi >= 6 {
		return "3.6"
	}
	return "2"
}

// repoFile finds name (e.g. "contrib/postfix/main.cf") in the module that
// contains the working directory, which is the package directory under
// `go test`.
func repoFile(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("postfixtest: find %s: %w", name, err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/listgate/listgate\n") {
			return filepath.Join(dir, name), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("postfixtest: find %s: no go.mod of github.com/listgate/listgate above the working directory", name)
		}
		dir = parent
	}
}
