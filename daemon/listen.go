package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"

	"github.com/listgate/listgate/postconf"
)

// listen opens e; origin names the setting in errors ("--lmtp",
// "listgate.toml:4: lmtp"). A stale unix socket left by a previous run is
// removed first; a live one (something answers) is an error, as is any
// other file at that path. Unix sockets are made accessible to Postfix
// (mode 0666; guard them with the directory's permissions).
func listen(origin string, e postconf.Endpoint) (net.Listener, error) {
	if e.Network == "unix" {
		if fi, err := os.Lstat(e.Address); err == nil {
			if fi.Mode()&fs.ModeSocket == 0 {
				return nil, fmt.Errorf("%s: %s exists and is not a socket", origin, e.Address)
			}
			if c, err := net.Dial("unix", e.Address); err == nil {
				c.Close()
				return nil, fmt.Errorf("%s: %s: another process is listening there", origin, e.Address)
			}
			if err := os.Remove(e.Address); err != nil {
				return nil, fmt.Errorf("%s: remove stale socket: %w", origin, err)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", origin, err)
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
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s %s: %w%s", origin, e, err, inUseHint(e))
		}
		return nil, fmt.Errorf("%s %s: %w", origin, e, err)
	}
	if e.Network == "unix" {
		if err := os.Chmod(e.Address, 0o666); err != nil {
			l.Close()
			return nil, fmt.Errorf("%s: chmod %s: %w", origin, e.Address, err)
		}
	}
	return l, nil
}

// inUseHint is what follows "address already in use" for e: who to look
// for. Port 8024, the LMTP door's default, is also the default port of
// GNU Mailman 3's LMTP runner (docs/mailman.md, "Free port 8024").
func inUseHint(e postconf.Endpoint) string {
	_, port, err := net.SplitHostPort(e.Address)
	if e.Network != "tcp" || err != nil {
		return ""
	}
	hint := fmt.Sprintf(" (another program listens on port %s: `ss -ltnp sport = :%s` names it", port, port)
	if port == "8024" {
		hint += "; Mailman 3's LMTP runner listens on 8024 by default: move it ([mta] lmtp_port in mailman.cfg) or listgate's lmtp door, docs/install.md"
	}
	return hint + ")"
}
