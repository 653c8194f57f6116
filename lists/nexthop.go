package lists

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/listgate/listgate/postconf"
)

// Transport is the kind of a next hop: where a list's accepted mail goes
// after the spool (docs/design.md, "The hand-off").
type Transport string

// The transports. The zero value means "not set here": a list inherits its
// domain file's next hop, and a domain the default's.
const (
	// Unset means the setting is not given; the next level decides.
	Unset Transport = ""
	// None keeps the mail in the Maildir for a consumer that reads it
	// (public-inbox-watch, a cron job): listgate forwards nothing. It is
	// what a list has when nothing says otherwise.
	None Transport = "none"
	// LMTP sends each message to an LMTP server (RFC 2033), one
	// recipient per transaction: Mailman's LMTP runner, Dovecot.
	LMTP Transport = "lmtp"
	// Exec runs a command per message with the message on its standard
	// input: mlmmj-receive, Sympa's queue, public-inbox-mda.
	Exec Transport = "exec"
)

// Placeholders are the words an exec next hop's arguments may hold in
// braces, replaced for each message: {list} the canonical list address,
// {local} and {domain} its halves, {kind} the folder (post, bounces, ...),
// {extension} the address extension, {sender} the envelope sender (empty
// for the null sender), {recipient} the recipient as received.
var Placeholders = []string{"list", "local", "domain", "kind", "extension", "sender", "recipient"}

// NextHop is where a list's accepted mail goes: the key next_hop of a list
// or domain file, or the default_next_hop setting. Its zero value is Unset.
// A NextHop is immutable once parsed.
type NextHop struct {
	// Transport says which of the fields below is set.
	Transport Transport
	// Endpoint is the LMTP server of an LMTP next hop: inet:host:port or
	// unix:/path.
	Endpoint postconf.Endpoint
	// Argv is the command of an Exec next hop: an absolute program path
	// and its arguments, with placeholders still in braces.
	Argv []string
}

// String returns h in the syntax ParseNextHop reads: "none",
// "lmtp:inet:127.0.0.1:8024", "lmtp:unix:/run/mailman/lmtp",
// "exec:/usr/bin/mlmmj-receive -F -L /var/spool/mlmmj/{local}"; "" when
// unset. It names the next hop in logs, metrics and `listgate spool`.
func (h NextHop) String() string {
	switch h.Transport {
	case LMTP:
		return "lmtp:" + h.Endpoint.String()
	case Exec:
		return "exec:" + strings.Join(h.Argv, " ")
	}
	return string(h.Transport)
}

// Forwards reports whether h sends mail on (LMTP or Exec) rather than
// keeping it in the Maildir.
func (h NextHop) Forwards() bool { return h.Transport == LMTP || h.Transport == Exec }

// ParseNextHop reads a next hop:
//
//   - "none": mail stays in the Maildir;
//   - "lmtp:inet:host:port", "lmtp:unix:/path" (Postfix's transport syntax,
//     as in transport(5) and lmtp(8); "lmtp:host:port", "lmtp:[host]:port"
//     and "lmtp:host", port 24, are read as Postfix reads them); a unix
//     socket path must be absolute;
//   - "exec:/path/to/command arg ...": the command and its arguments,
//     split at white space as pipe(8)'s argv= is; the program path must be
//     absolute; arguments may hold the Placeholders in braces, any other
//     brace is an error.
//
// "" is Unset. Errors say what is wrong and what is wanted; the caller
// names the value and the file, line or setting.
func ParseNextHop(s string) (NextHop, error) {
	switch {
	case s == "":
		return NextHop{}, nil
	case s == "none":
		return NextHop{Transport: None}, nil
	case strings.HasPrefix(s, "lmtp:"):
		addr := strings.TrimPrefix(s, "lmtp:")
		if strings.ContainsAny(addr, " \t\r\n") || addr == "" {
			return NextHop{}, errors.New("want lmtp:inet:host:port or lmtp:unix:/path")
		}
		ep, ok := postconf.ParseClientAddr(addr, "/", true)
		if !ok {
			return NextHop{}, errors.New("want lmtp:inet:host:port or lmtp:unix:/path")
		}
		if ep.Network == "unix" {
			_, p, _ := strings.Cut(addr, ":")
			if !filepath.IsAbs(p) {
				return NextHop{}, errors.New("the socket path must be absolute")
			}
		} else if host, port, err := net.SplitHostPort(ep.Address); err != nil || host == "" || !digits(port) {
			return NextHop{}, errors.New("want lmtp:inet:host:port with a host and a numeric port")
		}
		return NextHop{Transport: LMTP, Endpoint: ep}, nil
	case strings.HasPrefix(s, "exec:"):
		argv := strings.Fields(strings.TrimPrefix(s, "exec:"))
		if len(argv) == 0 {
			return NextHop{}, errors.New("name a command, e.g. exec:/usr/bin/mlmmj-receive -F -L /var/spool/mlmmj/{local}")
		}
		if !filepath.IsAbs(argv[0]) {
			return NextHop{}, fmt.Errorf("the command %q must be an absolute path", argv[0])
		}
		if strings.ContainsRune(argv[0], '{') {
			return NextHop{}, errors.New("the command path cannot hold a placeholder")
		}
		for _, a := range argv[1:] {
			if err := checkPlaceholders(a); err != nil {
				return NextHop{}, err
			}
		}
		return NextHop{Transport: Exec, Argv: argv}, nil
	}
	return NextHop{}, errors.New("want none, lmtp:inet:host:port, lmtp:unix:/path or exec:/path/to/command")
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkPlaceholders reports an error for a brace in arg that does not
// enclose one of the Placeholders.
func checkPlaceholders(arg string) error {
	for rest := arg; ; {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			return nil
		}
		if rest[i] == '}' {
			return fmt.Errorf("argument %q: '}' without '{'", arg)
		}
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return fmt.Errorf("argument %q: '{' without '}'", arg)
		}
		name := rest[i+1 : i+end]
		if !slices.Contains(Placeholders, name) {
			return fmt.Errorf("argument %q: unknown placeholder {%s}; want one of {%s}", arg, name, strings.Join(Placeholders, "}, {"))
		}
		rest = rest[i+end+1:]
	}
}

// Expand returns h's Argv with each placeholder replaced by its value
// from vals (keys are the Placeholders' names). It does not split or
// quote: a value with spaces stays one argument.
func (h NextHop) Expand(vals map[string]string) []string {
	out := make([]string, len(h.Argv))
	out[0] = h.Argv[0]
	for i, a := range h.Argv[1:] {
		var b strings.Builder
		for {
			j := strings.IndexByte(a, '{')
			if j < 0 {
				b.WriteString(a)
				break
			}
			end := strings.IndexByte(a[j:], '}')
			if end < 0 { // ParseNextHop refuses it; keep it as written
				b.WriteString(a)
				break
			}
			b.WriteString(a[:j])
			b.WriteString(vals[a[j+1:j+end]])
			a = a[j+end+1:]
		}
		out[i+1] = b.String()
	}
	return out
}

// Forwarding is what a list's next hop and keep settings come to: the
// list file's own, else its domain file's; the caller applies its default
// when Hop is still Unset.
type Forwarding struct {
	Hop  NextHop
	Keep bool // keep a forwarded message in cur/ rather than remove it
}

// List returns the list whose canonical posting address is addr, or nil.
// Lists whose file has never parsed are not found.
func (s *Snapshot) List(addr string) *List {
	i := sort.Search(len(s.lists), func(i int) bool { return s.lists[i].Address >= addr })
	if i < len(s.lists) && s.lists[i].Address == addr {
		return s.lists[i]
	}
	return nil
}

// Domain returns the domain file of the canonical domain name, or nil.
func (s *Snapshot) Domain(name string) *Domain {
	i := sort.Search(len(s.doms), func(i int) bool { return s.doms[i].Name >= name })
	if i < len(s.doms) && s.doms[i].Name == name {
		return s.doms[i]
	}
	return nil
}

// Forwarding returns the next hop and keep setting of the list whose
// canonical posting address is addr: each from the list file if it sets
// it, else from its domain file. ok is false when there is no such list
// (removed, or its file has never parsed): its mail is held.
func (s *Snapshot) Forwarding(addr string) (f Forwarding, ok bool) {
	l := s.List(addr)
	if l == nil {
		return Forwarding{}, false
	}
	f.Hop = l.NextHop
	keep := l.Keep
	if d := s.Domain(l.Domain); d != nil {
		if f.Hop.Transport == Unset {
			f.Hop = d.NextHop
		}
		if keep == nil {
			keep = d.Keep
		}
	}
	f.Keep = keep != nil && *keep
	return f, true
}
