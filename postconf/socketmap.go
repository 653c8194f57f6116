package postconf

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/net/idna"
)

// The maps of listgate's socketmap door (socketmap_table(5)), as main.cf
// names them after the address: socketmap:inet:127.0.0.1:8027:domains.
var socketmapMaps = []string{"domains", "recipients", "transport", "aliases"}

// splitSocketmap splits the name of a socketmap table ("inet:host:port:map"
// or "unix:/path:map", what follows "socketmap:") into its server and its
// map name.
func splitSocketmap(name string) (server, mapName string, ok bool) {
	i := strings.LastIndexByte(name, ':')
	if i <= 0 || i == len(name)-1 {
		return "", "", false
	}
	return name[:i], name[i+1:], true
}

// ownSocketmap reports whether table ("socketmap:...", proxy: removed) is a
// map of lg's socketmap door, reached from queueDir, and the map's name.
func (lg Listgate) ownSocketmap(table, queueDir string) (mapName string, ok bool) {
	name, isSocketmap := strings.CutPrefix(table, "socketmap:")
	if !isSocketmap || lg.Socketmap.Network == "" {
		return "", false
	}
	server, mapName, ok := splitSocketmap(name)
	if !ok {
		return "", false
	}
	ep, ok := ParseClientAddr(server, queueDir, false)
	if !ok || !Reaches(ep, lg.Socketmap) {
		return "", false
	}
	return mapName, true
}

// socketmapLookup answers key in a map of lg's socketmap door as the door
// answers Postfix, from what lg knows: a served domain, an address of a
// served domain (the door resolves it; --check trusts it for the list
// addresses it asks), the LMTP door for either, a postmaster@ or abuse@
// address with a target. A map the door does not have is an error, as its
// PERM reply is to Postfix.
func (lg Listgate) socketmapLookup(mapName, key, queueDir string) (string, bool, error) {
	served := func(d string) bool {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if d == "" || strings.HasPrefix(d, ".") {
			return false
		}
		a, err := idna.Lookup.ToASCII(d)
		return err == nil && slices.Contains(lg.Domains, a)
	}
	local, domain, isAddr := strings.Cut(key, "@")
	for strings.Contains(domain, "@") {
		_, domain, _ = strings.Cut(domain, "@")
	}
	switch mapName {
	case "domains":
		return "OK", !isAddr && served(key), nil
	case "recipients":
		return "OK", isAddr && local != "" && served(domain), nil
	case "transport":
		if isAddr && local != "" && served(domain) || !isAddr && served(key) {
			return lg.TransportAnswer(queueDir), true, nil
		}
		return "", false, nil
	case "aliases":
		for _, r := range lg.Roles {
			if r.Target != "" && strings.EqualFold(r.Addr, key) {
				return r.Target, true, nil
			}
		}
		return "", false, nil
	}
	return "", false, fmt.Errorf("listgate's socketmap %s has no map %q (it has %s): Postfix gets PERM, a configuration error",
		lg.Socketmap, mapName, strings.Join(socketmapMaps, ", "))
}
