package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/listgate/listgate/postconf"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/net/idna"

	"github.com/listgate/listgate/lists"
)

// `listgate postfix` prints the main.cf lines that put Postfix in front of
// listgate (contrib/postfix/main.cf, filled in for the current flags and
// the lists directory's domains), and `listgate postfix --check` judges a
// Postfix configuration ("postconf -n" output) against them: it names
// every setting that would let Postfix accept a bogus list address and
// bounce it later (backscatter), accept mail unchecked, or lose mail while
// listgate is down. docs/postfix.md explains both.

// postfixQueueDir is Postfix's default queue_directory, where a chrooted
// smtpd(8) and lmtp(8) live and so where listgate's unix sockets go.
const postfixQueueDir = "/var/spool/postfix"

// pdmsWithoutRelay is Postfix's default parent_domain_matches_subdomains
// (postconf -d, Postfix 2.x to 3.10) without relay_domains: a list domain
// in relay_domains must not also relay its subdomains, which listgate
// does not serve.
const pdmsWithoutRelay = "debug_peer_list, fast_flush_domains, mynetworks, permit_mx_backup_networks, qmqpd_authorized_clients, smtpd_access_maps"

// postfixFlags are `listgate postfix`'s flags: the ones of `listgate
// serve` that Postfix's configuration depends on.
type postfixFlags struct {
	lists    listsFlags
	lmtp     string
	milter   string
	maxSize  sizeFlag
	unix     bool
	queueDir string
	check    bool
}

func (f *postfixFlags) register(fs *flag.FlagSet) {
	f.lists.register(fs)
	fs.StringVar(&f.lmtp, "lmtp", "", "listgate's LMTP `address` (default inet:127.0.0.1:8024; with --unix, unix:"+postfixQueueDir+"/listgate/lmtp)")
	fs.StringVar(&f.milter, "milter", "", "listgate's milter `address` (default inet:127.0.0.1:8025; with --unix, unix:"+postfixQueueDir+"/listgate/milter)")
	f.maxSize = defaultMaxMessageSize
	fs.Var(&f.maxSize, "max-message-size", "listgate's --max-message-size in `bytes`; Postfix's message_size_limit is set to it")
	fs.BoolVar(&f.unix, "unix", false, "Postfix reaches listgate over unix-domain sockets in its queue directory (a chrooted smtpd and lmtp, as on Debian)")
	fs.StringVar(&f.queueDir, "queue-directory", postfixQueueDir, "Postfix's queue_directory `path`: sockets under it are named relative to it, as chrooted daemons see them")
	fs.BoolVar(&f.check, "check", false, "read \"postconf -n\" output (FILE, - for stdin, or run postconf) and name every setting that lets Postfix bounce a bogus list address, accept mail unchecked or lose mail while listgate is down")
}

// setup is what Postfix must know of a listgate: its domains, addresses
// and limits.
type setup struct {
	dir      string
	snap     *lists.Snapshot
	domains  []string // served domains, A-labels, sorted
	forms    []string // every spelling Postfix must list: A-labels, then U-labels of IDNs
	lmtp     postconf.Endpoint
	milter   postconf.Endpoint
	delim    string // Postfix's spelling: "" for none
	maxSize  int64
	queueDir string
	unix     bool
}

// postfixCmd runs `listgate postfix`: without --check it prints main.cf
// lines; with --check it prints one line per finding and returns
// exitRefused if there is any.
func postfixCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("postfix", stderr)
	var f postfixFlags
	f.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: listgate postfix [flags]\n"+
			"       listgate postfix --check [flags] [FILE|-]\n\n"+
			"Prints the lines for Postfix's main.cf that send the list domains to\n"+
			"listgate, for listgate's flags and the lists directory's domains:\n\n"+
			"    listgate postfix --lists /etc/listgate/lists >> /etc/postfix/main.cf\n\n"+
			"With --check, reads \"postconf -n\" output (from FILE, from stdin with -, or by\n"+
			"running postconf -n and postconf -P) and prints one line per setting that would\n"+
			"let Postfix accept a bogus list address and bounce it later, accept mail\n"+
			"unchecked, or lose mail while listgate is down. Exits 1 if there is any.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return 0, err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if !f.check && fs.NArg() != 0 {
		return 0, fmt.Errorf("%w: unexpected argument %q (only --check reads a FILE)", errUsage, fs.Arg(0))
	}
	if fs.NArg() > 1 {
		return 0, fmt.Errorf("%w: --check reads one FILE, got %q", errUsage, fs.Args())
	}
	s, err := f.setup(set, stderr)
	if err != nil {
		return 0, err
	}
	if !f.check {
		if len(s.domains) == 0 {
			return 0, fmt.Errorf("--lists %s serves no domain yet: add a list file (e.g. announce@example.org) first, so that relay_domains names it", s.dir)
		}
		return 0, writeSnippet(stdout, s)
	}
	name, text, err := readPostconf(fs.Arg(0), stdin)
	if err != nil {
		return 0, err
	}
	pc, err := parsePostconf(text, name)
	if err != nil {
		return 0, err
	}
	c := &checker{pc: pc, lg: s, postmap: postmapPath()}
	c.run()
	for _, fd := range c.findings {
		fmt.Fprintln(stdout, fd)
	}
	for _, n := range c.notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	if len(c.findings) > 0 {
		fmt.Fprintf(stderr, "listgate postfix --check: %s in %s\n", plural(len(c.findings), "finding"), name)
		return exitRefused, nil
	}
	fmt.Fprintf(stdout, "ok: %s refuses bogus addresses of %s at RCPT TO (listgate's milter %s, tempfail while it is down) and delivers them to listgate's LMTP %s\n",
		name, strings.Join(s.forms, ", "), s.milter, s.lmtp)
	return 0, nil
}

// setup resolves the flags into what Postfix must know.
func (f *postfixFlags) setup(set map[string]bool, stderr io.Writer) (*setup, error) {
	lopts, err := f.lists.options()
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(f.queueDir) {
		return nil, fmt.Errorf("%w: --queue-directory %q: want an absolute path", errUsage, f.queueDir)
	}
	s := &setup{dir: f.lists.dir, maxSize: int64(f.maxSize), queueDir: filepath.Clean(f.queueDir), unix: f.unix}
	for _, d := range []struct {
		name string
		v    *string
		port string // listgate serve's default port
		ep   *postconf.Endpoint
	}{{"lmtp", &f.lmtp, "8024", &s.lmtp}, {"milter", &f.milter, "8025", &s.milter}} {
		switch {
		case set[d.name]:
		case f.unix:
			*d.v = "unix:" + filepath.Join(s.queueDir, "listgate", d.name)
		default:
			*d.v = "inet:127.0.0.1:" + d.port
		}
		ep, on, err := postconf.ParseEndpoint(d.name, *d.v)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if !on {
			return nil, fmt.Errorf("%w: --%s is empty: Postfix needs listgate's %s door", errUsage, d.name, d.name)
		}
		if f.unix && (ep.Network != "unix" || !underDir(ep.Address, s.queueDir)) {
			return nil, fmt.Errorf("%w: --%s %s: with --unix, give a unix socket under --queue-directory %s, where a chrooted Postfix can reach it", errUsage, d.name, ep, s.queueDir)
		}
		*d.ep = ep
	}
	s.delim = f.lists.delimiter
	if s.delim == "none" {
		s.delim = ""
	}
	snap, err := lists.Load(f.lists.dir, lopts)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("--lists %s: the directory does not exist", f.lists.dir)
		}
		return nil, fmt.Errorf("--lists: %w", err)
	}
	for _, p := range snap.Problems() {
		fmt.Fprintf(stderr, "listgate postfix: warning: %v\n", p)
	}
	s.snap = snap
	s.domains = snap.ServedDomains()
	s.forms = append(s.forms, s.domains...)
	for _, d := range s.domains {
		// Postfix compares relay_domains byte for byte: an SMTPUTF8
		// client's RCPT TO:<x@bücher.example> matches only the U-label.
		if u, err := idna.Lookup.ToUnicode(d); err == nil && u != d {
			s.forms = append(s.forms, u)
		}
	}
	return s, nil
}

// underDir reports whether path is inside dir.
func underDir(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel)
}

// postfixName spells a listgate address as Postfix's main.cf names it. A
// unix socket under the queue directory is relative to it: every Postfix
// daemon runs there, and a chrooted one sees nothing else. A wildcard
// listening host is reached on loopback.
func postfixName(e postconf.Endpoint, queueDir string) string {
	if e.Network == "unix" {
		if underDir(e.Address, queueDir) {
			rel, _ := filepath.Rel(queueDir, e.Address)
			return "unix:" + rel
		}
		return "unix:" + e.Address
	}
	host, port, _ := net.SplitHostPort(e.Address)
	switch ip := net.ParseIP(host); {
	case ip == nil:
	case ip.Equal(net.IPv4zero):
		host = "127.0.0.1"
	case ip.Equal(net.IPv6unspecified):
		host = "::1"
	}
	return "inet:" + net.JoinHostPort(host, port)
}

// writeSnippet prints the main.cf lines: contrib/postfix/main.cf filled in,
// plus parent_domain_matches_subdomains (see pdmsWithoutRelay).
func writeSnippet(w io.Writer, s *setup) error {
	lmtp, milter := postfixName(s.lmtp, s.queueDir), postfixName(s.milter, s.queueDir)
	var b strings.Builder
	delimFlag := ""
	switch s.delim {
	case lists.DefaultDelimiter:
	case "":
		delimFlag = " --recipient-delimiter none"
	default:
		delimFlag = " --recipient-delimiter " + strconv.Quote(s.delim)
	}
	fmt.Fprintf(&b, `# listgate: lines for Postfix's main.cf, written by "listgate postfix" for
#   listgate serve --lists %s --lmtp %s --milter %s%s --max-message-size %d
# (%d lists in %d domains).
#
# Append to /etc/postfix/main.cf. A parameter that main.cf already sets must
# be merged into one line (Postfix uses the last one). Then check with
# "listgate postfix --check" and run "postfix reload". docs/postfix.md
# explains every line.
#
# A new list in one of these domains needs no change here: listgate serves
# its file at once. A list in a new domain needs relay_domains updated and
# "postfix reload".
`, s.dir, s.lmtp, s.milter, delimFlag, s.maxSize, len(s.snap.Lists()), len(s.domains))
	var dirs []string
	for _, e := range []postconf.Endpoint{s.lmtp, s.milter} {
		if d := filepath.Dir(e.Address); e.Network == "unix" && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) > 0 {
		fmt.Fprintf(&b, "#\n# Unix-domain sockets: make their directory with the postfix group, e.g.\n"+
			"#   install -d -o listgate -g postfix -m 2750 %s\n", strings.Join(dirs, " "))
	}
	masterNote := "#\n# master.cf needs no change.\n"
	for _, e := range []postconf.Endpoint{s.lmtp, s.milter} {
		if e.Network == "unix" && !underDir(e.Address, s.queueDir) {
			masterNote = fmt.Sprintf("#\n# master.cf: %s is outside Postfix's queue directory\n"+
				"# %s, where a chrooted smtpd or lmtp cannot reach it: set their\n"+
				"# chroot column to n, or run listgate with sockets under %s (--unix).\n",
				e.Address, s.queueDir, s.queueDir)
		}
	}
	b.WriteString(masterNote)
	param := func(comment, key, value string) {
		fmt.Fprintf(&b, "\n# %s\n%s\n", strings.ReplaceAll(comment, "\n", "\n# "), fold(key+" = "+value))
	}
	param("The list domains (the relay address class): Postfix accepts mail for\n"+
		"them from anyone; listgate's milter checks every recipient.", "relay_domains", strings.Join(s.forms, ", "))
	param("Only those domains, not their subdomains (Postfix's default matches\n"+
		"subdomains of relay_domains): listgate does not serve sub.example.org, so\n"+
		"Postfix would accept mail for it and bounce it when listgate's LMTP\n"+
		"refuses it. For another relay domain whose subdomains you do relay,\n"+
		"write .domain in relay_domains.", "parent_domain_matches_subdomains", pdmsWithoutRelay)
	param("Deliver mail for relay_domains over LMTP to listgate's sink.", "relay_transport", "lmtp:"+lmtp)
	param("Recipients per LMTP transaction; listgate answers each one on its own.", "lmtp_destination_recipient_limit", "50")
	param("Ask listgate at RCPT TO, so a bogus list address is refused during the\n"+
		"SMTP dialogue and never bounced later.", "smtpd_milters", milter)
	param("listgate down or not answering: 4xx, the sender retries. Never accept\n"+
		"unchecked mail.", "milter_default_action", "tempfail")
	param("Milter protocol 6 (Sendmail 8.14), which listgate speaks.", "milter_protocol", "6")
	param("The same delimiter as listgate's: list-bounces+token@ is list-bounces@.", "recipient_delimiter", s.delim)
	param(fmt.Sprintf("At or below listgate's --max-message-size (%d).", s.maxSize), "message_size_limit", strconv.FormatInt(s.maxSize, 10))
	param("Relay only for our own clients; everyone else may send only to domains\n"+
		"this server is the destination for (the list domains): not an open relay.",
		"smtpd_relay_restrictions", "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination")
	_, err := io.WriteString(w, b.String())
	return err
}

// fold breaks a long main.cf line after commas; continuation lines start
// with white space (postconf(5), "SYNTAX").
func fold(line string) string {
	const width = 78
	var b strings.Builder
	col := 0
	for i, word := range strings.SplitAfter(line, ", ") {
		if i > 0 && col+len(strings.TrimRight(word, " ")) > width {
			s := strings.TrimRight(b.String(), " ")
			b.Reset()
			b.WriteString(s + "\n    ")
			col = 4
		}
		b.WriteString(word)
		col += len(word)
	}
	return strings.TrimRight(b.String(), " ")
}

// readPostconf returns the text --check judges: FILE, stdin ("-"), or the
// output of "postconf -n" and "postconf -P" (master.cf overrides).
func readPostconf(file string, stdin io.Reader) (name, text string, err error) {
	switch file {
	case "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return "", "", fmt.Errorf("read stdin: %w", err)
		}
		return "stdin", string(b), nil
	case "":
		var all strings.Builder
		for _, arg := range []string{"-n", "-P"} {
			cmd := exec.Command("postconf", arg)
			var e bytes.Buffer
			cmd.Stderr = &e
			out, err := cmd.Output()
			if err != nil {
				return "", "", fmt.Errorf("postconf %s: %v: %s(give postconf -n output as FILE instead)", arg, err, e.String())
			}
			all.Write(out)
		}
		return "postconf -n", all.String(), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", "", err
	}
	return file, string(b), nil
}

// postconf is a Postfix configuration as "postconf -n" prints it: the
// parameters main.cf sets. Lines "service/type/name = value" ("postconf
// -P") are master.cf overrides.
type mainCF struct {
	main   map[string]string
	master map[string]string // "smtp/inet/smtpd_milters" -> value
}

// parsePostconf reads postconf -n (or main.cf) syntax: "name = value",
// continuation lines starting with white space, "#" comments.
func parsePostconf(text, name string) (*mainCF, error) {
	pc := &mainCF{main: map[string]string{}, master: map[string]string{}}
	var last map[string]string
	var lastKey string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimLeft(line, " \t")
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if trimmed != line {
			if last == nil {
				return nil, fmt.Errorf("%s:%d: continuation line with nothing to continue", name, n)
			}
			last[lastKey] = strings.TrimSpace(last[lastKey] + " " + trimmed)
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("%s:%d: not a postconf line \"name = value\": %q", name, n, line)
		}
		last, lastKey = pc.main, key
		if strings.Contains(key, "/") {
			last = pc.master
		}
		last[key] = strings.TrimSpace(value)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return pc, nil
}

// postfixDefault is Postfix's default (postconf -d, Postfix 3.7) for a
// parameter --check reads, which "postconf -n" leaves out when main.cf
// does not set it. compat is compatibility_level, which a few defaults
// depend on. Parameters not listed here (myhostname, mydomain) are not
// known offline and stay unexpanded.
func postfixDefault(key, compat string) (string, bool) {
	switch key {
	case "compatibility_level":
		return "0", true
	case "relay_domains":
		if compatBelow(compat, 2) {
			return "$mydestination", true
		}
		return "", true
	case "smtpd_relay_restrictions":
		if compatBelow(compat, 1) {
			return "", true
		}
		return "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination", true
	case "mydestination":
		return "$myhostname, localhost.$mydomain, localhost", true
	case "relay_transport":
		return "relay", true
	case "default_transport":
		return "smtp", true
	case "local_transport":
		return "local:$myhostname", true
	case "virtual_transport":
		return "virtual", true
	case "virtual_alias_domains":
		return "$virtual_alias_maps", true
	case "virtual_alias_maps":
		return "$virtual_maps", true
	case "virtual_mailbox_domains":
		return "$virtual_mailbox_maps", true
	case "milter_default_action":
		return "tempfail", true
	case "message_size_limit":
		return "10240000", true
	case "mailbox_size_limit", "virtual_mailbox_limit":
		return "51200000", true
	case "parent_domain_matches_subdomains":
		return "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps", true
	case "transport_maps", "smtpd_milters", "non_smtpd_milters", "recipient_delimiter",
		"relay_recipient_maps", "smtpd_recipient_restrictions", "receive_override_options",
		"virtual_maps", "virtual_mailbox_maps", "smtpd_milter_maps":
		return "", true
	}
	return "", false
}

// compatBelow reports whether compatibility_level level is below major.
func compatBelow(level string, major int) bool {
	m, _, _ := strings.Cut(strings.TrimSpace(level), ".")
	n, err := strconv.Atoi(m)
	return err == nil && n < major
}

// finding is one setting that makes Postfix bounce a bogus list address,
// accept mail unchecked, or lose mail: the parameter, what is wrong, and
// the fix.
type finding struct{ param, problem, fix string }

func (f finding) String() string { return f.param + ": " + f.problem + "; fix: " + f.fix }

// checker judges a Postfix configuration against a listgate setup.
type checker struct {
	pc       *mainCF
	lg       *setup
	postmap  string // postmap(1), for tables other than inline: and static:
	findings []finding
	notes    []string
	noted    map[string]bool
	cache    map[[2]string]lookupResult
}

type lookupResult struct {
	value string
	found bool
	err   error
}

func (c *checker) find(param, fix, format string, args ...any) {
	c.findings = append(c.findings, finding{param, fmt.Sprintf(format, args...), fix})
}

func (c *checker) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if c.noted == nil {
		c.noted = map[string]bool{}
	}
	if !c.noted[n] {
		c.noted[n] = true
		c.notes = append(c.notes, n)
	}
}

// param returns a parameter's value as Postfix uses it: set, or its
// default, with $name references expanded.
func (c *checker) param(key string) string {
	v, _ := c.lookupParam(key)
	return c.expand(v, 0)
}

func (c *checker) lookupParam(key string) (string, bool) {
	if v, ok := c.pc.main[key]; ok {
		return v, true
	}
	if key == "queue_directory" {
		return c.lg.queueDir, true
	}
	compat := c.pc.main["compatibility_level"]
	return postfixDefault(key, compat)
}

// smtpd returns the value smtpd(8) on port 25 uses: a master.cf override
// of the smtp/inet service ("postconf -P") or main.cf's, and the name to
// report it under.
func (c *checker) smtpd(key string) (value, name string) {
	if v, ok := c.pc.master["smtp/inet/"+key]; ok {
		return c.expand(v, 0), "smtp/inet/" + key + " (master.cf -o)"
	}
	return c.param(key), key
}

// expand replaces $name, ${name}, $(name), ${name?text} and ${name:text}
// (postconf(5), "SYNTAX") with their values; names it does not know stay
// as they are.
func (c *checker) expand(s string, depth int) string {
	if depth > 20 || !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		start, j := i, i+1
		if s[j] == '$' {
			b.WriteByte('$')
			i += 2
			continue
		}
		if open := s[j]; open == '{' || open == '(' {
			closing := map[byte]byte{'{': '}', '(': ')'}[open]
			level, k := 0, j
			for ; k < len(s); k++ {
				if s[k] == open {
					level++
				} else if s[k] == closing {
					if level--; level == 0 {
						break
					}
				}
			}
			if k == len(s) {
				b.WriteString(s[start:])
				break
			}
			inner := s[j+1 : k]
			i = k + 1
			name, op, text := inner, byte(0), ""
			if x := strings.IndexAny(inner, "?:"); x >= 0 {
				name, op, text = inner[:x], inner[x], inner[x+1:]
			}
			if !isParamName(name) {
				b.WriteString(s[start:i]) // e.g. ${{...} == {...} ? ...}: leave it
				continue
			}
			v, known := c.lookupParam(name)
			switch {
			case op == '?':
				if v != "" {
					b.WriteString(c.expand(text, depth+1))
				}
			case op == ':':
				if v == "" {
					b.WriteString(c.expand(text, depth+1))
				}
			case known:
				b.WriteString(c.expand(v, depth+1))
			default:
				b.WriteString(s[start:i])
			}
			continue
		}
		k := j
		for k < len(s) && (s[k] == '_' || s[k] < 0x80 && (unicode.IsLetter(rune(s[k])) || unicode.IsDigit(rune(s[k])))) {
			k++
		}
		if k == j {
			b.WriteByte('$')
			i++
			continue
		}
		i = k
		if v, known := c.lookupParam(s[j:k]); known {
			b.WriteString(c.expand(v, depth+1))
		} else {
			b.WriteString(s[start:k])
		}
	}
	return b.String()
}

func isParamName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r != '_' && !(r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return false
		}
	}
	return true
}

// splitList splits a Postfix list value at commas and white space, keeping
// {...} groups (inline: tables, per-milter settings) whole.
func splitList(s string) []string {
	var out []string
	var cur strings.Builder
	level := 0
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for _, r := range s {
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

// parseInline reads the body of an inline: or static: table, "{ k=v, ... }".
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

// postmapPath finds postmap(1), which --check asks about tables it cannot
// read itself (hash:, lmdb:, pcre:, ...); "" if it is not installed.
func postmapPath() string {
	for _, p := range []string{"postmap", "/usr/sbin/postmap"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// lookup looks key up in one table ("type:name") as Postfix would.
func (c *checker) lookup(table, key string) (string, bool, error) {
	if r, ok := c.cache[[2]string{table, key}]; ok {
		return r.value, r.found, r.err
	}
	if r, ok := c.cache[[2]string{table, ""}]; ok && r.err != nil {
		return "", false, r.err // the table cannot be read at all
	}
	v, found, err := c.lookupUncached(table, key)
	if c.cache == nil {
		c.cache = map[[2]string]lookupResult{}
	}
	c.cache[[2]string{table, key}] = lookupResult{v, found, err}
	if err != nil {
		c.cache[[2]string{table, ""}] = lookupResult{err: err}
	}
	return v, found, err
}

func (c *checker) lookupUncached(table, key string) (string, bool, error) {
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
	}
	// A table file that is not there: say so without postmap, which
	// sleeps a second or more before it reports a fatal error.
	suffix, known := map[string]string{"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb",
		"texthash": "", "regexp": "", "pcre": "", "cidr": ""}[typ]
	if !known {
		// Network and database tables (tcp, socketmap, ldap, mysql,
		// ...) are queried only by the running Postfix: --check does
		// not connect anywhere.
		return "", false, fmt.Errorf("cannot read %s: %q tables are not looked up by --check", table, typ)
	}
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name + suffix); err != nil {
			return "", false, fmt.Errorf("cannot read %s (%v)", table, err)
		}
	}
	if c.postmap == "" {
		return "", false, fmt.Errorf("cannot read %s: postmap is not installed here", table)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.postmap, "-q", key, table)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if msg := strings.TrimSpace(e.String()); msg != "" {
		msg, _, _ = strings.Cut(msg, "\n")
		return "", false, fmt.Errorf("cannot read %s (%s)", table, msg)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("cannot read %s (postmap: %w)", table, err)
	}
	return strings.TrimSpace(o.String()), true, nil
}

// parentMatches reports whether a name in list parameter param also
// matches its subdomains (parent_domain_matches_subdomains).
func (c *checker) parentMatches(param string) bool {
	return slices.Contains(splitList(c.param("parent_domain_matches_subdomains")), param)
}

// inList reports whether domain matches the domain list param, as
// match_list(3) does: patterns in order, the first that matches decides;
// "!pattern" negates; "/file/name" holds more patterns; "type:table" is
// looked up; a name matches itself and, when param is in
// parent_domain_matches_subdomains, its subdomains; otherwise ".name"
// matches the subdomains of name.
func (c *checker) inList(param, domain string) bool {
	m, _ := c.matchPatterns(param, splitList(c.param(param)), strings.ToLower(domain), c.parentMatches(param), 0)
	return m
}

func (c *checker) matchPatterns(param string, pats []string, domain string, parent bool, depth int) (match, decided bool) {
	for _, p := range pats {
		neg := false
		for strings.HasPrefix(p, "!") {
			neg, p = !neg, p[1:]
		}
		switch {
		case strings.HasPrefix(p, "/"):
			b, err := os.ReadFile(p)
			if err != nil || depth > 5 {
				c.note("%s: cannot read %s (%v): the domains in it are not checked", param, p, err)
				continue
			}
			var lines []string
			for _, l := range strings.Split(string(b), "\n") {
				if l, _, _ = strings.Cut(l, "#"); strings.TrimSpace(l) != "" {
					lines = append(lines, l)
				}
			}
			if m, d := c.matchPatterns(param, splitList(strings.Join(lines, " ")), domain, parent, depth+1); d {
				return m != neg, true
			}
		case isTable(p):
			keys := []string{domain}
			for rest := domain; strings.Contains(rest, "."); {
				_, rest, _ = strings.Cut(rest, ".")
				if parent {
					keys = append(keys, rest)
				} else {
					keys = append(keys, "."+rest)
				}
			}
			for _, k := range keys {
				_, found, err := c.lookup(p, k)
				if err != nil {
					c.note("%s: %v: the domains in it are not checked", param, err)
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

// class is the address class trivial-rewrite(8) gives a domain
// (ADDRESS_CLASS_README): the first of local (mydestination), virtual
// alias, virtual mailbox and relay that it belongs to, else default.
func (c *checker) class(domain string) string {
	switch {
	case c.inList("mydestination", domain):
		return "local"
	case c.inList("virtual_alias_domains", domain):
		return "virtual_alias"
	case c.inList("virtual_mailbox_domains", domain):
		return "virtual"
	case c.inList("relay_domains", domain):
		return "relay"
	}
	return "default"
}

// route is where Postfix delivers a domain's mail: transport, next hop
// (empty: the recipient's domain), and the parameter that decided.
type route struct{ transport, nexthop, by string }

func (r route) String() string {
	if r.nexthop == "" {
		return r.transport + ": (the recipient domain's MX)"
	}
	return r.transport + ":" + r.nexthop
}

func splitTransport(v string) (transport, nexthop string) {
	t, nh, _ := strings.Cut(strings.TrimSpace(v), ":")
	return strings.TrimSpace(t), strings.TrimSpace(nh)
}

// route gives the delivery of a domain of class cls: the class's transport
// parameter, overridden by transport_maps (transport(5): the domain, its
// parent domains, then "*").
func (c *checker) route(domain, cls string) route {
	param := map[string]string{"local": "local_transport", "virtual": "virtual_transport",
		"relay": "relay_transport", "default": "default_transport"}[cls]
	t, nh := splitTransport(c.param(param))
	r := route{t, nh, param}
	keys := []string{domain}
	for rest := domain; strings.Contains(rest, "."); {
		_, rest, _ = strings.Cut(rest, ".")
		if c.parentMatches("transport_maps") {
			keys = append(keys, rest)
		} else {
			keys = append(keys, "."+rest)
		}
	}
	keys = append(keys, "*")
	for _, k := range keys {
		for _, table := range splitList(c.param("transport_maps")) {
			v, found, err := c.lookup(table, k)
			if err != nil {
				c.note("transport_maps: %v: the routes in it are not checked", err)
				continue
			}
			if !found {
				continue
			}
			vt, vnh := splitTransport(v)
			by := "transport_maps (" + table + ")"
			switch {
			case vt == "" && vnh == "": // "do not change"
			case vt == "":
				r = route{t, vnh, by}
			case vnh == "":
				r = route{vt, "", by}
			default:
				r = route{vt, vnh, by}
			}
			return r
		}
	}
	return r
}

// toListgate reports whether a route delivers to listgate's LMTP sink, and
// if not, why.
func (c *checker) toListgate(r route) (bool, string) {
	qdir := c.param("queue_directory")
	for _, nh := range splitList(r.nexthop) {
		ep, ok := postconf.ParseClientAddr(nh, qdir, true)
		if !ok || !postconf.Reaches(ep, c.lg.lmtp) {
			continue
		}
		if r.transport == "smtp" || r.transport == "relay" {
			return false, fmt.Sprintf("%s (%s) speaks SMTP to listgate's LMTP %s, which refuses EHLO", r.by, r, c.lg.lmtp)
		}
		return true, ""
	}
	return false, fmt.Sprintf("%s sends it to %s, not to listgate's LMTP %s", r.by, r, c.lg.lmtp)
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
	qdir := c.param("queue_directory")
	for i := range entries {
		if ep, ok := postconf.ParseClientAddr(entries[i].addr, qdir, false); ok && postconf.Reaches(ep, c.lg.milter) {
			return &entries[i]
		}
	}
	return nil
}

// run makes every check.
func (c *checker) run() {
	if len(c.lg.domains) == 0 {
		c.note("--lists %s serves no domain: the list domains are not checked", c.lg.dir)
	}
	checked := c.checkMilter()
	c.checkDomains(checked)
	c.checkDelimiter()
	c.checkSizes()
	c.checkRelay()
}

// checkMilter: listgate's milter must be in smtpd_milters, with tempfail
// as its default action, and not switched off. It reports whether
// smtpd asks listgate at RCPT TO.
func (c *checker) checkMilter() bool {
	want := postfixName(c.lg.milter, c.param("queue_directory"))
	milters, mparam := c.smtpd("smtpd_milters")
	entries := parseMilters(milters)
	ours := c.findMilter(entries)
	switch {
	case ours == nil && len(entries) == 0:
		c.find(mparam, "smtpd_milters = "+want,
			"is empty: nothing asks listgate at RCPT TO, so Postfix accepts every address of the list domains and bounces the bogus ones when listgate's LMTP refuses them (backscatter)")
	case ours == nil:
		c.find(mparam, "smtpd_milters = "+milters+", "+want+" (drop any entry left from an old listgate address: an entry nothing answers makes every client get 451)",
			"names %s but not listgate's milter %s: nothing asks listgate at RCPT TO, so Postfix accepts every address of the list domains and bounces the bogus ones when listgate's LMTP refuses them (backscatter)",
			milters, c.lg.milter)
	}
	if ours != nil {
		if da, ok := ours.settings["default_action"]; ok {
			c.defaultAction(mparam+" (default_action of "+ours.addr+")", da,
				"remove default_action from listgate's entry (milter_default_action = tempfail applies)")
		} else {
			action, aparam := c.smtpd("milter_default_action")
			c.defaultAction(aparam, action, "milter_default_action = tempfail")
		}
	} else if action, aparam := c.smtpd("milter_default_action"); action != "tempfail" {
		c.defaultAction(aparam, action, "milter_default_action = tempfail")
	}
	if opts, param := c.smtpd("receive_override_options"); slices.Contains(splitList(opts), "no_milters") {
		c.find(param, "remove no_milters from it",
			"has no_milters: smtpd never asks listgate (nor any milter), so Postfix accepts every address of the list domains and bounces the bogus ones later (backscatter)")
		ours = nil
	}
	if nm := c.findMilter(parseMilters(c.param("non_smtpd_milters"))); nm != nil {
		c.find("non_smtpd_milters", "remove listgate's milter from non_smtpd_milters (keep it in smtpd_milters)",
			"names listgate's milter %s: Postfix does not let a non-SMTP milter refuse a recipient; mail submitted with sendmail(1) to a bogus list address stays in the queue with a configuration error instead", nm.addr)
	}
	if c.param("smtpd_milter_maps") != "" {
		c.note("smtpd_milter_maps is set: it replaces smtpd_milters for the clients it matches; make sure none of them gets DISABLE or a milter list without listgate's %s", want)
	}
	return ours != nil
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
func (c *checker) checkDomains(milterChecks bool) {
	group := func(m map[string][]string, key, d string) {
		if !slices.Contains(m[key], d) {
			m[key] = append(m[key], d)
		}
	}
	local, alias, missing := []string{}, []string{}, []string{}
	misrouted := map[string][]string{} // why -> domains
	unchecked := map[string][]string{} // param -> domains without a recipient check
	tableMisses := map[string][]string{}
	lmtpName := "lmtp:" + postfixName(c.lg.lmtp, c.param("queue_directory"))
	for _, d := range c.lg.forms {
		switch cls := c.class(d); cls {
		case "local":
			local = append(local, d)
		case "virtual_alias":
			alias = append(alias, d)
		case "default":
			missing = append(missing, d)
		default:
			if ok, why := c.toListgate(c.route(d, cls)); !ok {
				group(misrouted, why, d)
			}
			table := map[string]string{"relay": "relay_recipient_maps", "virtual": "virtual_mailbox_maps"}[cls]
			if !milterChecks && c.param(table) == "" {
				group(unchecked, table, d)
			}
			if c.param(table) != "" {
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
	if len(missing) > 0 {
		rd := c.param("relay_domains")
		fix := "relay_domains = " + strings.Join(missing, ", ")
		if rd != "" {
			fix = "relay_domains = " + rd + ", " + strings.Join(missing, ", ")
		}
		c.find("relay_domains", fix, "lacks the list domains %s: Postfix refuses mail for them (554 5.7.1 Relay access denied)", strings.Join(missing, ", "))
	}
	for _, why := range sortedKeys(misrouted) {
		ds := misrouted[why]
		param, _, _ := strings.Cut(why, " ")
		fix := "relay_transport = " + lmtpName
		if param != "relay_transport" {
			fix = "route " + strings.Join(ds, ", ") + " to " + lmtpName
		}
		c.find(param, fix, "mail for the list domains %s is not delivered to listgate: %s", strings.Join(ds, ", "), why)
	}
	for _, table := range sortedKeys(unchecked) {
		ds := unchecked[table]
		c.find(table, "put listgate's milter in smtpd_milters (and leave "+table+" empty)",
			"is empty and listgate's milter is not asked: Postfix accepts every address of %s unchecked, and bounces the bogus ones when listgate's LMTP refuses them (backscatter)", strings.Join(ds, ", "))
	}
	for _, table := range sortedKeys(tableMisses) {
		c.find(table, "leave "+table+" empty (listgate's milter is the recipient check), or list the list domains as @domain",
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
	for _, l := range c.lg.snap.Lists() {
		if l.Domain != ascii {
			continue
		}
		for _, addr := range []string{l.Local + "@" + d, l.Local + "-request@" + d} {
			found := false
			for _, table := range splitList(c.param(param)) {
				for _, key := range []string{addr, "@" + d} {
					_, ok, err := c.lookup(table, key)
					if err != nil {
						c.note("%s: %v: not checked", param, err)
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
	for _, d := range c.lg.domains {
		sub := "sub." + d
		if slices.Contains(c.lg.domains, sub) {
			continue
		}
		cls := c.class(sub)
		if cls != "relay" && cls != "virtual" {
			continue
		}
		if ok, _ := c.toListgate(c.route(sub, cls)); !ok {
			continue
		}
		param := map[string]string{"relay": "relay_domains", "virtual": "virtual_mailbox_domains"}[cls]
		if c.parentMatches(param) && c.inListExact(param, d) {
			viaParent = append(viaParent, d)
		} else {
			viaDot = append(viaDot, d)
		}
	}
	if len(viaParent) > 0 {
		var keep []string
		for _, p := range splitList(c.param("parent_domain_matches_subdomains")) {
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

// inListExact reports whether the list param names domain itself (not
// through a subdomain pattern).
func (c *checker) inListExact(param, domain string) bool {
	m, _ := c.matchPatterns(param, splitList(c.param(param)), domain, false, 0)
	return m
}

// checkUnservedRelay: relay_transport applies to every relay domain, so a
// relay domain listgate does not serve would be accepted for any address
// and bounced by listgate's LMTP.
func (c *checker) checkUnservedRelay() {
	var bad []string
	for _, p := range splitList(c.param("relay_domains")) {
		if strings.HasPrefix(p, "!") || strings.HasPrefix(p, ".") || strings.HasPrefix(p, "/") || isTable(p) || strings.Contains(p, "$") {
			continue
		}
		d := strings.ToLower(strings.TrimSuffix(p, "."))
		ascii, err := idna.Lookup.ToASCII(d)
		if err == nil && slices.Contains(c.lg.domains, ascii) {
			continue
		}
		if c.class(d) != "relay" {
			continue
		}
		if ok, _ := c.toListgate(c.route(d, "relay")); ok {
			bad = append(bad, d)
		}
	}
	if len(bad) > 0 {
		lmtpName := "lmtp:" + postfixName(c.lg.lmtp, c.param("queue_directory"))
		var entries []string
		for _, d := range c.lg.forms {
			entries = append(entries, d+"="+lmtpName)
		}
		c.find("relay_domains", "remove them from relay_domains, or route only the list domains to listgate: transport_maps = inline:{ "+strings.Join(entries, ", ")+" } and relay_transport back to its old value",
			"has %s, which listgate does not serve, delivered to listgate's LMTP: Postfix accepts any address there, listgate's milter lets it pass as not its own, and its LMTP refusal becomes a bounce (backscatter)", strings.Join(bad, ", "))
	}
}

// checkDelimiter: Postfix and listgate must split address extensions alike.
func (c *checker) checkDelimiter() {
	pd := c.param("recipient_delimiter")
	if sameChars(pd, c.lg.delim) {
		return
	}
	show := func(s string) string {
		if s == "" {
			return "none"
		}
		return strconv.Quote(s)
	}
	c.find("recipient_delimiter", "recipient_delimiter = "+c.lg.delim+" (or run listgate with --recipient-delimiter matching Postfix's)",
		"is %s but listgate's is %s: Postfix's tables keyed by address (relay_recipient_maps, transport_maps, virtual_alias_maps, access maps) then split list-bounces+token@ differently from listgate",
		show(pd), show(c.lg.delim))
}

func sameChars(a, b string) bool {
	x, y := []rune(a), []rune(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// checkSizes: Postfix must not accept a message listgate must refuse.
func (c *checker) checkSizes() {
	msl, err := strconv.ParseInt(c.param("message_size_limit"), 10, 64)
	if err != nil {
		c.note("message_size_limit = %q: not a number, not checked", c.param("message_size_limit"))
		return
	}
	fix := fmt.Sprintf("message_size_limit = %d", c.lg.maxSize)
	switch {
	case msl == 0:
		c.find("message_size_limit", fix, "is 0 (no limit): Postfix accepts a message larger than listgate's --max-message-size %d, which listgate's LMTP then refuses: a bounce", c.lg.maxSize)
	case msl > c.lg.maxSize:
		c.find("message_size_limit", fix, "is %d, above listgate's --max-message-size %d: Postfix accepts a message listgate's LMTP then refuses: a bounce", msl, c.lg.maxSize)
	}
	// local(8) and virtual(8) refuse to run when their mailbox limit is
	// below message_size_limit ("configuration error: ... is smaller than
	// message_size_limit"), and the host's own mail waits in the queue.
	for _, lim := range []struct{ param, domains, agent string }{
		{"mailbox_size_limit", "mydestination", "local(8)"},
		{"virtual_mailbox_limit", "virtual_mailbox_domains", "virtual(8)"},
	} {
		n, err := strconv.ParseInt(c.param(lim.param), 10, 64)
		if err != nil || n == 0 || n >= msl || msl == 0 || c.param(lim.domains) == "" {
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
		v, _ := c.smtpd(key)
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
		_, param := c.smtpd("smtpd_relay_restrictions")
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

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
