package postconf

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// Endpoint is a socket address in Postfix's syntax: inet:host:port or
// unix:/path, as main.cf names a milter (MILTER_README, "Specifying
// ... milter applications") or an LMTP next hop (lmtp(8)). listgate's own
// listening addresses use the same syntax, so they paste into main.cf.
type Endpoint struct {
	Network string // "tcp" or "unix"
	Address string // host:port (net.JoinHostPort form) or a path
}

// String returns e in Postfix syntax: "inet:127.0.0.1:8024" or
// "unix:/path".
func (e Endpoint) String() string {
	if e.Network == "unix" {
		return "unix:" + e.Address
	}
	return "inet:" + e.Address
}

// ParseEndpoint reads a listening address given by flag (named in errors,
// e.g. "lmtp" for --lmtp). An empty value means the door is off (ok is
// false). A bare host:port is taken as inet:. The host must not be empty:
// an empty host would mean every interface, which must be said as
// 0.0.0.0 or [::].
func ParseEndpoint(flag, v string) (e Endpoint, ok bool, err error) {
	orig := v
	switch {
	case v == "":
		return Endpoint{}, false, nil
	case strings.HasPrefix(v, "unix:"):
		p := strings.TrimPrefix(v, "unix:")
		if p == "" {
			return Endpoint{}, false, fmt.Errorf("--%s %q: empty socket path", flag, v)
		}
		return Endpoint{"unix", p}, true, nil
	case strings.HasPrefix(v, "inet:"):
		v = strings.TrimPrefix(v, "inet:")
	case strings.Contains(v, ":") && !strings.Contains(v, "/"):
	default:
		return Endpoint{}, false, fmt.Errorf("--%s %q: want inet:host:port or unix:/path", flag, v)
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || port == "" {
		return Endpoint{}, false, fmt.Errorf("--%s %q: want inet:host:port or unix:/path", flag, orig)
	}
	if host == "" {
		return Endpoint{}, false, fmt.Errorf("--%s %q: give a host (127.0.0.1 for loopback; 0.0.0.0 to listen everywhere)", flag, orig)
	}
	return Endpoint{"tcp", net.JoinHostPort(host, port)}, true, nil
}

// ParseClientAddr reads an address as main.cf names a milter (ok only for
// unix:path, local:path and inet:host:port) or, with lmtp set, an LMTP next
// hop, which may also be host:port, [host]:port or a bare host (port 24).
// A relative unix path is relative to queueDir, Postfix's
// queue_directory, where its daemons run.
func ParseClientAddr(s, queueDir string, lmtp bool) (Endpoint, bool) {
	switch {
	case strings.HasPrefix(s, "unix:") || strings.HasPrefix(s, "local:"):
		_, p, _ := strings.Cut(s, ":")
		if !filepath.IsAbs(p) {
			p = filepath.Join(queueDir, p)
		}
		return Endpoint{"unix", filepath.Clean(p)}, true
	case strings.HasPrefix(s, "inet:"):
		s = strings.TrimPrefix(s, "inet:")
	case !lmtp:
		return Endpoint{}, false
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Endpoint{}, false
		}
		host, port = s[1:end], strings.TrimPrefix(s[end+1:], ":")
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
	}
	if port == "" {
		if !lmtp {
			return Endpoint{}, false
		}
		port = "24"
	}
	return Endpoint{"tcp", net.JoinHostPort(strings.ToLower(host), port)}, true
}

// Reaches reports whether Postfix connecting to client reaches a server
// listening on server: the same socket path, or the same port on the same
// host, on loopback as "localhost", or on a wildcard address.
func Reaches(client, server Endpoint) bool {
	if client.Network != server.Network {
		return false
	}
	if client.Network == "unix" {
		return filepath.Clean(client.Address) == filepath.Clean(server.Address)
	}
	ch, cp, _ := net.SplitHostPort(client.Address)
	sh, sp, _ := net.SplitHostPort(server.Address)
	if cp != sp {
		return false
	}
	if ch == strings.ToLower(sh) {
		return true
	}
	sip := net.ParseIP(sh)
	if sip != nil && sip.IsUnspecified() {
		return true // the server listens everywhere
	}
	return ch == "localhost" && sip != nil && sip.IsLoopback()
}

// InQueueDir reports whether e is a unix socket inside queueDir, Postfix's
// queue_directory: the only place a chrooted smtpd(8) or lmtp(8) can
// reach.
func (e Endpoint) InQueueDir(queueDir string) bool {
	if e.Network != "unix" {
		return false
	}
	rel, err := filepath.Rel(queueDir, e.Address)
	return err == nil && rel != "." && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel)
}

// DefaultQueueDirectory is Postfix's default queue_directory, where a
// chrooted smtpd(8), lmtp(8), cleanup(8) or trivial-rewrite(8) runs, and
// so where listgate's unix sockets go for a chrooted Postfix.
const DefaultQueueDirectory = "/var/spool/postfix"

// MainCFName spells e as main.cf names it for Postfix to connect to:
// e.Client(queueDir).String().
func (e Endpoint) MainCFName(queueDir string) string { return e.Client(queueDir).String() }

// Client returns the address a Postfix client (smtpd, lmtp, a table
// lookup) connects to, for a server listening on e. A unix socket inside
// queueDir is relative to it: every Postfix daemon runs there, and a
// chrooted one sees nothing else. A wildcard listening host is reached on
// loopback (0.0.0.0 as 127.0.0.1, [::] as [::1]).
func (e Endpoint) Client(queueDir string) Endpoint {
	if e.Network == "unix" {
		if e.InQueueDir(queueDir) {
			rel, _ := filepath.Rel(queueDir, e.Address)
			return Endpoint{"unix", rel}
		}
		return e
	}
	host, port, _ := net.SplitHostPort(e.Address)
	switch ip := net.ParseIP(host); {
	case ip == nil:
	case ip.Equal(net.IPv4zero):
		host = "127.0.0.1"
	case ip.Equal(net.IPv6unspecified):
		host = "::1"
	}
	return Endpoint{"tcp", net.JoinHostPort(host, port)}
}
