package postfix

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/postconf"
	"github.com/listgate/listgate/reply"
)

// SocketmapServer is the socketmap door: a Postfix socketmap table server
// (socketmap_table(5)) with the maps domains, recipients, transport and
// aliases. Its zero value is not usable; call NewSocketmap.
type SocketmapServer struct {
	s         *server
	transport string // "lmtp:" + Options.LMTP, "" when not set
}

// The maps the door serves: the socketmap name after the last ':' of
// "socketmap:inet:host:port:NAME" in main.cf.
const (
	mapDomains    = "domains"
	mapRecipients = "recipients"
	mapTransport  = "transport"
	mapAliases    = "aliases"
)

// mapNames lists the maps, in the order of the docs.
var mapNames = []string{mapDomains, mapRecipients, mapTransport, mapAliases}

// NewSocketmap returns a socketmap door answering from o.Lists. It
// registers the door's metrics with o.Registerer.
func NewSocketmap(o Options) *SocketmapServer {
	m := &SocketmapServer{s: newServer(doorSocketmap, o)}
	if o.LMTP.Network != "" {
		m.transport = "lmtp:" + o.LMTP.String()
	} else {
		m.s.log.Warn("no LMTP endpoint: the transport map answers NOTFOUND to every key", "door", doorSocketmap)
	}
	if o.Lists == nil {
		m.s.log.Warn("no lists: every lookup that may concern listgate is answered TEMP", "door", doorSocketmap)
	}
	m.s.serve = m.serveConn
	return m
}

// Serve accepts socketmap connections from Postfix on l (TCP or unix)
// until Shutdown, and then returns ErrServerClosed. Any other error is
// the listener's. l is closed on return.
func (m *SocketmapServer) Serve(l net.Listener) error { return m.s.Serve(l) }

// Shutdown stops the server gracefully, as PolicyServer.Shutdown does: a
// lookup being read or answered gets its reply, idle connections are
// closed at once. Postfix reconnects once on a connection it finds closed
// (dict_sockmap.c); a lookup that still fails is a lookup error, which
// Postfix turns into a tempfail (451 4.3.0 at RCPT, a deferred message
// later), never an accept and never a bounce.
func (m *SocketmapServer) Shutdown(ctx context.Context) error { return m.s.Shutdown(ctx) }

// serveConn answers the lookups of one connection, in order, until
// Postfix closes it, it stays idle too long, or Shutdown. A request that
// is not a netstring ends the connection: nothing after it can be framed.
func (m *SocketmapServer) serveConn(c *conn) {
	s := m.s
	for c.next() {
		payload, err := readNetstring(c.br, s.maxReq)
		if err != nil {
			if errors.Is(err, errNetstring) {
				s.log.Warn("malformed socketmap request; closing the connection", "door", doorSocketmap,
					"remote", c.remote(), "err", err)
			} else {
				s.log.Warn("socketmap request cut off; closing the connection", "door", doorSocketmap,
					"remote", c.remote(), "err", err)
			}
			s.m.protocolErrors.Inc()
			return
		}
		out := m.lookup(c, string(payload))
		if err := c.reply(appendNetstring(nil, out)); err != nil {
			s.log.Debug("writing the socketmap reply", "door", doorSocketmap, "remote", c.remote(), "err", err)
			return
		}
	}
}

// lookup answers one request, "MAPNAME KEY" (dict_sockmap.c sends the
// name, one space, the key). The key is everything after the first space,
// as Postfix sent it. A panic is a TEMP.
func (m *SocketmapServer) lookup(c *conn, req string) (out string) {
	s := m.s
	name, key, ok := strings.Cut(req, " ")
	label := name
	defer func() {
		if p := recover(); p != nil {
			s.panicked(c, "lookup "+name, key, p)
			out = socketmapReply(reply.LocalError, "")
		}
		if !ok || !isMap(name) {
			label = mapOther
		}
		s.m.requests.WithLabelValues(label, result(out)).Inc()
		s.log.Debug("lookup", "door", doorSocketmap, "map", name, "key", key, "answer", out)
	}()
	if !ok {
		s.log.Warn("malformed socketmap request: no space between a map name and a key; replying PERM", "door", doorSocketmap,
			"remote", c.remote(), "request", req)
		s.m.protocolErrors.Inc()
		return socketmapPerm(name, ok)
	}
	if !isMap(name) {
		s.log.Warn("socketmap lookup in a map listgate does not serve; replying PERM", "door", doorSocketmap,
			"remote", c.remote(), "map", name)
		s.m.protocolErrors.Inc()
		return socketmapPerm(name, ok)
	}
	o, value, v := answerMap(s.snapshot(), m.transport, name, key)
	switch {
	case name == mapRecipients:
		if o == reply.Observed {
			s.m.wouldRefuse.WithLabelValues(doorSocketmap, v.Domain).Inc()
		}
		s.log.Info("rcpt", "door", doorSocketmap, "rcpt", key, "list", v.List, "verdict", o.String(), "map", name)
	case name == mapAliases && o == reply.Alias:
		s.log.Info("rcpt", "door", doorSocketmap, "rcpt", key, "list", "", "verdict", o.String(),
			"map", name, "target", v.Target)
	}
	return socketmapReply(o, value)
}

// SocketmapMaps returns the names of the socketmap door's maps, in the
// order of the docs: domains, recipients, transport, aliases.
func SocketmapMaps() []string { return slices.Clone(mapNames) }

// SocketmapAnswer returns what the socketmap door answers, on snap, to a
// lookup of key in the map name (one of SocketmapMaps), with its LMTP
// door at lmtp (the zero Endpoint: none), as on the wire without the
// netstring: "OK announce@example.org", "NOTFOUND ", "TEMP ...". The
// door answers through the same code; `listgate check --explain` shows
// it. It neither logs nor counts.
func SocketmapAnswer(snap *lists.Snapshot, lmtp postconf.Endpoint, name, key string) string {
	if !isMap(name) {
		return socketmapPerm(name, true)
	}
	transport := ""
	if lmtp.Network != "" {
		transport = "lmtp:" + lmtp.String()
	}
	o, value, _ := answerMap(snap, transport, name, key)
	return socketmapReply(o, value)
}

// answerMap is the one answer of the maps: the outcome of key in map
// name (one of mapNames) on snap, the value a found key gets, and the
// verdict of recipients and aliases lookups. transport is the
// transport map's value ("" when the door has no LMTP endpoint).
func answerMap(snap *lists.Snapshot, transport, name, key string) (reply.Outcome, string, lists.Verdict) {
	var v lists.Verdict
	switch name {
	case mapDomains:
		return domain(snap, key), key, v
	case mapRecipients:
		o, v := recipient(snap, key)
		switch v.Status {
		case lists.Alias:
			return o, v.Target, v
		case lists.Observed:
			// Found, as a list would be; Postfix's relay_recipient_maps
			// does not use the value.
			return o, v.Domain, v
		}
		return o, v.List, v
	case mapTransport:
		return transportOf(snap, transport, key), transport, v
	case mapAliases:
		o, v := alias(snap, key)
		return o, v.Target, v
	}
	return reply.LocalError, "", v
}

// isMap reports whether name is one of the door's maps.
func isMap(name string) bool {
	for _, n := range mapNames {
		if n == name {
			return true
		}
	}
	return false
}

// domain answers the domains map (relay_domains): a served domain is
// found, any other not; an External never reached that declares no
// domain makes every domain not otherwise served a TEMP.
func domain(snap *lists.Snapshot, key string) reply.Outcome {
	if snap == nil {
		return reply.LocalError
	}
	return reply.Of(snap.ServesDomain(key))
}

// isAddress reports whether key is a full address, with '@' and a
// non-empty local part: the only form the recipients, transport and
// aliases maps resolve. "@domain" and a bare local part, forms Postfix's
// lookups derive from an address for other table types, are not.
func isAddress(key string) bool {
	return strings.LastIndexByte(key, '@') > 0
}

// recipient answers the recipients map (relay_recipient_maps): a list's
// address or sub-address is found, and postmaster@ or abuse@ of a domain
// whose domain file names where they go (virtual_alias_maps rewrites
// them; the recipient is valid), and an unknown address of a domain in
// observe mode (counted as a refusal enforce would make); an unknown
// address, or one of a domain not served, is not; a list file that never parsed is a TEMP. The key is
// resolved exactly as received.
func recipient(snap *lists.Snapshot, key string) (reply.Outcome, lists.Verdict) {
	if !isAddress(key) {
		return reply.NotServed, lists.Verdict{}
	}
	if snap == nil {
		return reply.LocalError, lists.Verdict{}
	}
	v := snap.Resolve(key)
	return reply.Of(v.Status), v
}

// transportOf answers the transport map (transport_maps): listgate's LMTP
// door for an address that resolves to a list (an unknown address of a
// domain in observe mode too: the LMTP door refuses it, where Postfix
// would otherwise relay it to the domain's MX, itself; or to postmaster@ or
// abuse@ with a domain file setting: virtual_alias_maps should have
// rewritten it, and the LMTP door then keeps it queued with a 451 rather
// than Postfix relaying it to the domain's MX, itself) and for a served
// domain; TEMP where Resolve or ServesDomain cannot tell; not found
// otherwise.
func transportOf(snap *lists.Snapshot, transport, key string) reply.Outcome {
	switch {
	case transport == "":
		return reply.NotServed
	case snap == nil:
		return reply.LocalError
	case isAddress(key):
		switch o := reply.Of(snap.Resolve(key).Status); o {
		case reply.Accept, reply.Alias, reply.Broken, reply.Observed:
			return o
		}
		return reply.NotServed
	case strings.HasPrefix(key, "@"):
		return reply.NotServed
	}
	return reply.Of(snap.ServesDomain(key))
}

// alias answers the aliases map (virtual_alias_maps): postmaster@ or
// abuse@ of a domain whose domain file names where they go is found, with
// that address. Postfix asks this map about every recipient it sees, its
// own users' too, so nothing else is ever a TEMP: only postmaster@ and
// abuse@ keys whose answer listgate cannot give (a list file of the
// domain never parsed, no lists to ask).
func alias(snap *lists.Snapshot, key string) (reply.Outcome, lists.Verdict) {
	if !isAddress(key) {
		return reply.NotServed, lists.Verdict{}
	}
	delims := lists.DefaultDelimiter
	if snap != nil {
		delims = snap.Delimiters()
	}
	role := isRole(key, delims)
	if snap == nil {
		if role {
			return reply.LocalError, lists.Verdict{}
		}
		return reply.NotServed, lists.Verdict{}
	}
	v := snap.Resolve(key)
	switch {
	case v.Status == lists.Alias:
		return reply.Alias, v
	case v.Status == lists.Broken && role:
		return reply.Broken, v
	}
	return reply.NotServed, lists.Verdict{}
}

// isRole reports whether the local part of address key, up to the first
// recipient delimiter, is postmaster or abuse in any case: the addresses
// a domain file can alias. It only decides between TEMP and NOTFOUND for
// a key Resolve could not settle; Resolve decides everything else.
func isRole(key, delims string) bool {
	local := strings.TrimPrefix(key[:strings.LastIndexByte(key, '@')], "<")
	if i := strings.IndexAny(local, delims); i >= 0 && delims != "" {
		local = local[:i]
	}
	return strings.EqualFold(local, "postmaster") || strings.EqualFold(local, "abuse")
}

// socketmapReply is the door's one mapping from an outcome to its
// answer: the socketmap column of the verdict table (package reply).
// Found is "OK " and value, which must not be empty: Postfix 3.7 takes
// "OK " with an empty value as a configuration error, and "OK" without
// the space as not found (dict_sockmap.c splits the reply at its first
// space; maps.c refuses an empty result), so an empty value is answered
// as a local error. Not found is "NOTFOUND " (socketmap_table(5): the
// space is part of it), TEMP carries the table's text as its reason. An
// outcome the table says the door never meets is answered as a local
// error.
func socketmapReply(o reply.Outcome, value string) string {
	a := reply.For(reply.Socketmap, reply.RCPT, o)
	switch a.Action {
	case reply.Found:
		if value != "" {
			return "OK " + value
		}
	case reply.NotFound:
		return "NOTFOUND "
	case reply.Temp:
		return "TEMP " + a.Reply.Text
	}
	return "TEMP " + reply.For(reply.Socketmap, reply.RCPT, reply.LocalError).Reply.Text
}

// socketmapPerm answers a request for a map the door does not serve, or
// one without a space: PERM, which Postfix logs with the reason ("socketmap
// server permanent error: ...") and takes as a configuration error: the
// lookup fails and the mail is deferred (451 4.3.5 at RCPT), never
// accepted or bounced. This is a protocol reply, not a verdict, so it is
// not in the verdict table.
func socketmapPerm(name string, spaced bool) string {
	if !spaced {
		return "PERM malformed request: want a map name, a space and a key"
	}
	return "PERM unknown map " + strings.ToValidUTF8(name[:min(len(name), 100)], "?") +
		"; listgate serves " + strings.Join(mapNames, ", ")
}

// result is the result label of a reply: its first word in lower case.
func result(out string) string {
	switch {
	case strings.HasPrefix(out, "OK "):
		return resultFound
	case strings.HasPrefix(out, "NOTFOUND "):
		return resultNotFound
	case strings.HasPrefix(out, "PERM "):
		return resultPerm
	}
	return resultTemp
}
