package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
)

// endpoint is a listening address in Postfix's syntax: inet:host:port or
// unix:/path (MILTER_README, lmtp(8)), so values paste into main.cf.
type endpoint struct {
	network string // "tcp" or "unix"
	address string // host:port or a path
}

func (e endpoint) String() string {
	if e.network == "unix" {
		return "unix:" + e.address
	}
	return "inet:" + e.address
}

// parseEndpoint reads a door's flag value. An empty value means the door
// is off (ok is false). A bare host:port is taken as inet:.
func parseEndpoint(flag, v string) (e endpoint, ok bool, err error) {
	orig := v
	switch {
	case v == "":
		return endpoint{}, false, nil
	case strings.HasPrefix(v, "unix:"):
		p := strings.TrimPrefix(v, "unix:")
		if p == "" {
			return endpoint{}, false, fmt.Errorf("--%s %q: empty socket path", flag, v)
		}
		return endpoint{"unix", p}, true, nil
	case strings.HasPrefix(v, "inet:"):
		v = strings.TrimPrefix(v, "inet:")
	case strings.Contains(v, ":") && !strings.Contains(v, "/"):
	default:
		return endpoint{}, false, fmt.Errorf("--%s %q: want inet:host:port or unix:/path", flag, v)
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || port == "" {
		return endpoint{}, false, fmt.Errorf("--%s %q: want inet:host:port or unix:/path", flag, orig)
	}
	if host == "" {
		return endpoint{}, false, fmt.Errorf("--%s %q: give a host (127.0.0.1 for loopback; 0.0.0.0 to listen everywhere)", flag, orig)
	}
	return endpoint{"tcp", net.JoinHostPort(host, port)}, true, nil
}

// listen opens e. A stale unix socket left by a previous run is removed
// first; a live one (something answers) is an error, as is any other file
// at that path. Unix sockets are made accessible to Postfix (mode 0666;
// guard them with the directory's permissions).
func listen(flag string, e endpoint) (net.Listener, error) {
	if e.network == "unix" {
		if fi, err := os.Lstat(e.address); err == nil {
			if fi.Mode()&fs.ModeSocket == 0 {
				return nil, fmt.Errorf("--%s: %s exists and is not a socket", flag, e.address)
			}
			if c, err := net.Dial("unix", e.address); err == nil {
				c.Close()
				return nil, fmt.Errorf("--%s: %s: another process is listening there", flag, e.address)
			}
			if err := os.Remove(e.address); err != nil {
				return nil, fmt.Errorf("--%s: remove stale socket: %w", flag, err)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
	}
	network := e.network
	if host, _, err := net.SplitHostPort(e.address); err == nil && network == "tcp" {
		if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
			network = "tcp4" // inet:0.0.0.0:port is IPv4 only, as in Postfix
		}
	}
	l, err := net.Listen(network, e.address)
	if err != nil {
		return nil, fmt.Errorf("--%s %s: %w", flag, e, err)
	}
	if e.network == "unix" {
		if err := os.Chmod(e.address, 0o666); err != nil {
			l.Close()
			return nil, fmt.Errorf("--%s: chmod %s: %w", flag, e.address, err)
		}
	}
	return l, nil
}
