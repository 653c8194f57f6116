package main

import (
	"errors"
	"fmt"
	"github.com/listgate/listgate/postconf"
	"io/fs"
	"net"
	"os"
)

// listen opens e. A stale unix socket left by a previous run is removed
// first; a live one (something answers) is an error, as is any other file
// at that path. Unix sockets are made accessible to Postfix (mode 0666;
// guard them with the directory's permissions).
func listen(flag string, e postconf.Endpoint) (net.Listener, error) {
	if e.Network == "unix" {
		if fi, err := os.Lstat(e.Address); err == nil {
			if fi.Mode()&fs.ModeSocket == 0 {
				return nil, fmt.Errorf("--%s: %s exists and is not a socket", flag, e.Address)
			}
			if c, err := net.Dial("unix", e.Address); err == nil {
				c.Close()
				return nil, fmt.Errorf("--%s: %s: another process is listening there", flag, e.Address)
			}
			if err := os.Remove(e.Address); err != nil {
				return nil, fmt.Errorf("--%s: remove stale socket: %w", flag, err)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
	}
	network := e.Network
	if host, _, err := net.SplitHostPort(e.Address); err == nil && network == "tcp" {
		if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
			network = "tcp4" // inet:0.0.0.0:port is IPv4 only, as in Postfix
		}
	}
	l, err := net.Listen(network, e.Address)
	if err != nil {
		return nil, fmt.Errorf("--%s %s: %w", flag, e, err)
	}
	if e.Network == "unix" {
		if err := os.Chmod(e.Address, 0o666); err != nil {
			l.Close()
			return nil, fmt.Errorf("--%s: chmod %s: %w", flag, e.Address, err)
		}
	}
	return l, nil
}
