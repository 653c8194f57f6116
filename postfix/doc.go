// Package postfix is listgate's two doors in Postfix's own protocols:
// the policy door, a Postfix SMTP access policy delegation server
// (SMTPD_POLICY_README), and the socketmap door, a Postfix socketmap
// table server (socketmap_table(5)). Both resolve recipients with
// lists.Snapshot.Resolve on the current snapshot, exactly as Postfix sent
// them, and answer from package reply's verdict table, so their verdicts
// are those of the milter and LMTP doors.
//
//	pol := postfix.NewPolicy(postfix.Options{Lists: watcher, Logger: log})
//	go pol.Serve(ln) // TCP or unix socket
//	defer pol.Shutdown(ctx)
//
//	sm := postfix.NewSocketmap(postfix.Options{Lists: watcher, LMTP: lmtpEndpoint})
//	go sm.Serve(ln2)
//	defer sm.Shutdown(ctx)
//
// The policy door suits a Postfix without milters: it is asked at RCPT
// and can refuse by MAIL FROM's SIZE=, but cannot see the message (the
// milter counts its size at the end of DATA). The socketmap door lets
// Postfix ask listgate which domains it serves and which recipients
// exist, so no static domain list is needed anywhere: a domain whose last
// list file is removed is refused at RCPT at once.
//
// # Policy delegation
//
// Postfix's smtpd connects as configured by check_policy_service (in
// smtpd_recipient_restrictions, after reject_unauth_destination) and
// sends one request per restriction it evaluates, many on one connection:
// lines "name=value" ended by a newline, the request ended by an empty
// line (SMTPD_POLICY_README, "Protocol description"; Postfix writes them
// with attr_print_plain). The door reads request (it must be
// smtpd_access_policy), protocol_state, recipient, size, helo_name,
// sender, queue_id and client_address, and ignores every other attribute;
// of an attribute sent twice the first counts, as in Postfix's own reader
// (attr_scan_plain.c). A CR before the newline is dropped. The reply is
// "action=ACTION", then an empty line.
//
// Only protocol_state=RCPT is judged; at any other state the action is
// DUNNO. The recipient is resolved as sent; a size= above 0 (Postfix
// sends MAIL FROM's SIZE=, 0 when there was none) is checked with
// lists.Verdict.CheckSize against the list's max_message_size and
// Options.MaxMessageSize, with the milter door's margin added (2 KiB plus
// the lengths of the HELO name and the recipient: Postfix later announces
// to the LMTP door the size of its queue file, which is larger by its own
// Received: header, and a recipient let through here must not be refused
// there, after queueing, with a bounce). A recipient let through is
// answered DUNNO, never OK: OK would end smtpd_recipient_restrictions and
// skip what follows. A message sent without SIZE= is not checked here;
// the LMTP door checks it after queueing, so set Postfix's
// message_size_limit no higher than listgate's global limit, or use the
// milter door.
//
// A malformed request (a line without '=' or with an empty name, a NUL
// byte, a line longer than MaxLine, no request=smtpd_access_policy or no
// protocol_state, at RCPT no recipient or a size= that is not a number)
// is read to its empty line and answered with the local-error tempfail;
// the connection goes on. A request over MaxRequest is answered so and
// the connection closed, as is one cut off by the client (no reply) or
// one that stalls (IdleTimeout). If Postfix gets no valid reply (the
// connection closed, smtpd_policy_service_timeout, 100s, passed) it
// reconnects up to smtpd_policy_service_try_limit times (2), then applies
// smtpd_policy_service_default_action, by default "451 4.3.5 Server
// configuration problem": a tempfail, never an accept (smtpd_check.c,
// check_policy_service). Postfix closes an idle policy connection after
// smtpd_policy_service_max_idle (300s) and any after
// smtpd_policy_service_max_ttl (1000s).
//
// # Socketmap
//
// Postfix's dict_sockmap.c sends each lookup as one netstring
// ("LEN:BYTES,", netstring.c) holding the map name, one space and the
// key, and reads one netstring back: "OK value", "NOTFOUND ", "TEMP
// reason" or "PERM reason" (socketmap_table(5)). Many lookups share one
// connection per server address; Postfix 3.7 closes it after 10s idle or
// 100s in all, waits 100s at most for a reply, and, finding the
// connection closed, reconnects once and asks again. It takes replies of
// up to 100,000 bytes. What it does with each reply (dict_sockmap.c,
// maps.c, Postfix 3.7):
//
//   - "OK value": found. The value must not be empty: Postfix 3.7.11
//     logs a warning about "OK " alone ("empty string result is not
//     allowed") and takes it as not found, and takes "OK" without the
//     space as not found, silently. The door never sends an empty value
//     (socketmapReply answers it as a local error).
//   - "NOTFOUND ": not found.
//   - "TEMP reason", and any reply it does not know: a lookup error that
//     may go away. smtpd answers the SMTP client 451 4.3.0 ("Temporary
//     lookup failure"), the queue manager defers the message.
//   - "PERM reason": a configuration error, logged with the reason
//     ("socketmap server permanent error"). The lookup fails as with
//     TEMP: smtpd answers 451, 4.3.5 ("Server configuration error") from
//     relay_recipient_maps, also mailing postmaster a transcript,
//     4.3.0 from relay_domains; nothing is bounced. The door answers
//     PERM only to a map name it does not serve, or a request without a
//     space.
//
// A request that is not a netstring, or one longer than MaxRequest,
// closes the connection; Postfix logs a lookup error and tempfails.
//
// # Maps
//
// Each map is named in main.cf as socketmap:inet:HOST:PORT:NAME or
// socketmap:unix:PATH:NAME.
//
//   - domains (relay_domains): a served domain (Snapshot.ServesDomain:
//     a list's or a domain file's domain, an alias domain, a Mailman
//     domain; any case, trailing dot, U-label or A-label) is "OK" with the
//     key as its value; any other NOTFOUND; TEMP while a Mailman source
//     that declares no domain has never been reached.
//   - recipients (relay_recipient_maps): an address with a non-empty
//     local part is resolved: a list's posting address or sub-address is
//     "OK" with the list's address, postmaster@ or abuse@ of a domain
//     whose domain file names where they go is "OK" with that address;
//     an unknown address of a domain in observe mode (lists.Observed) is
//     "OK" with the domain, and counted in listgate_would_refuse_total;
//     unknown and not served are NOTFOUND; a never-parsed list file is
//     TEMP. "@domain" and a bare local part are NOTFOUND.
//   - transport (transport_maps): an address that resolves to a list, or
//     to postmaster@ or abuse@ with a domain file setting, or to an
//     unknown address of a domain in observe mode, and a served
//     domain, are "OK lmtp:" followed by Options.LMTP (e.g.
//     "lmtp:inet:127.0.0.1:8024"), listgate's LMTP door; TEMP where
//     Resolve or ServesDomain says tempfail; anything else NOTFOUND, and
//     everything NOTFOUND when Options.LMTP is not set. (postmaster@ is
//     sent to the LMTP door, which keeps it queued with a 451, rather than
//     to the domain's MX, that is to this Postfix again, should
//     virtual_alias_maps not have rewritten it.)
//   - aliases (virtual_alias_maps): postmaster@ or abuse@ of a domain
//     whose domain file names where they go (lists.Alias) is "OK" with
//     that address. Postfix asks this map about every recipient it
//     handles, its own users' too, so everything else is NOTFOUND, and
//     TEMP only for a postmaster@ or abuse@ key listgate cannot answer
//     (a list file of its domain never parsed, no lists to ask).
//
// With no lists to ask (Options.Lists nil, or no snapshot yet) every
// lookup that could concern listgate is TEMP: domains, a full address in
// recipients, transport; aliases only for postmaster@ and abuse@.
//
// # What Postfix asks
//
// Recorded from a real Postfix 3.7.11 (Debian 12) by TestLookups in
// internal/postfixtest, and written up key by key in
// docs/postfix-lookups.md. A socketmap is opened as a pattern table
// (dict_sockmap.c sets DICT_FLAG_PATTERN), and Postfix's partial lookups
// only ask tables of fixed keys, so where a hash: table would be asked
// several forms of an address, the socketmap is asked one:
//
//	parameter              map         asked by         keys sent
//	virtual_alias_domains  aliases     trivial-rewrite  the domain, lower case (its
//	 (default: $virtual_alias_maps)                     default makes aliases a domain list)
//	relay_domains          domains     trivial-rewrite  the domain, lower case, no trailing
//	                                                    dot; senders' and foreign domains too
//	transport_maps         transport   trivial-rewrite  "*" (twice, as it starts); then the
//	                                                    full address as the client wrote it
//	                                                    (case, +extension), trailing dot dropped
//	virtual_alias_maps     aliases     smtpd            the full address, lower case
//	relay_recipient_maps   recipients  smtpd            the same, only if aliases found nothing
//	virtual_alias_maps     aliases     cleanup          the full address as the client wrote
//	                                                    it; then each alias target in turn
//
// trivial-rewrite resolves every address smtpd sees (the sender at MAIL
// FROM, each recipient at RCPT TO) and again at delivery for the queue
// manager; smtpd caches what it resolved, failures included, per sender
// and recipient for the life of the process. The recipients and aliases
// lookups and the policy service are asked at every RCPT TO. Never asked
// of a socketmap: the address without its extension, "@domain", the bare
// local part, a domain in transport_maps, parent domains.
//
// The door answers each form as Resolve and ServesDomain do: a full
// address in any case, with or without a trailing dot, is resolved as
// sent; "*", a bare domain and "@domain" are NOTFOUND in the recipients,
// aliases and transport maps (a served domain is "OK" in transport, which
// Postfix 3.7 never asks; other versions, or postmap -q, may). The other
// forms above are answered as Resolve would too, should another Postfix
// send them.
//
// The policy service is asked at RCPT TO after smtpd_relay_restrictions
// (so never about a foreign domain), and before virtual_alias_maps and
// relay_recipient_maps, with recipient= as the client wrote it (case,
// +extension and a trailing dot kept, no brackets); at DATA and
// END-OF-MESSAGE with recipient= empty (DUNNO); never for a bare
// "postmaster", which smtpd accepts itself. size= is MAIL FROM's SIZE=, 0
// without one.
//
// Postfix's recipient_delimiter and listgate's delimiters must agree:
// were Postfix to strip an extension listgate does not know, it could
// ask a fixed table for an address listgate would refuse; with a
// socketmap, only the full address is asked and answered by Resolve.
//
// # Replies
//
// policyAction and socketmapReply turn a verdict into the answer: the
// policy and socketmap columns of package reply's verdict table. The
// socketmap's "OK" carries the value of the map, its TEMP the reason:
//
//	verdict     policy action                                                  socketmap
//	accept      DUNNO                                                          OK
//	unknown     550 5.1.1 Requested action not taken: mailbox unavailable      NOTFOUND
//	not-served  DUNNO                                                          NOTFOUND
//	tempfail    451 4.3.0 Temporary lookup failure                             TEMP Temporary lookup failure
//	too-large   552 5.3.4 Message size exceeds fixed limit                     -
//	alias       DUNNO                                                          OK
//	observed    DUNNO                                                          OK
//	error       451 4.3.0 Requested action aborted: local error in processing  TEMP Requested action aborted: local error in processing
//
// error is also a recovered panic, and a malformed policy request.
//
// # Defaults
//
// As in every door: a zero MaxMessageSize is lists.DefaultMaxMessageSize
// (64 MiB); a nil Logger discards; nil Lists answers as above. IdleTimeout
// (DefaultIdleTimeout, 5 minutes), MaxLine (DefaultMaxLine, 16 KiB) and
// MaxRequest (DefaultMaxRequest, 100,000 bytes) bound what one client can
// hold; MaxConnections (1000) and MaxConnectionsPerClient (500, per TCP
// client address) bound the connections held open: one past either is
// closed before a request is read, logged ("refusing a connection") and
// counted in listgate_<door>_connections_refused_total{reason}.
//
// # Logs and metrics
//
// Policy: one info line per judged request ("rcpt", with door, rcpt,
// list, verdict, queue_id, client_addr and from), a debug line per
// request ("policy request", with protocol_state and action).
// Socketmap: a debug line per lookup ("lookup", with map, key and
// answer), and an info line ("rcpt", with map) per recipients lookup and
// per alias found (with target). Both: a warning per malformed request
// or cut-off connection (with remote), an error line with the stack per
// recovered panic, and one per failed Accept.
//
// Metrics, named as in every door: listgate_policy_requests_total{verdict}
// (accept, unknown, not-served, tempfail, too-large, alias, error, and
// ignored: not at RCPT), listgate_socketmap_lookups_total{map,result}
// (maps domains, recipients, transport, aliases, and other for an
// unknown map name; results found, notfound, temp, perm), and for each
// door the gauge listgate_<door>_connections,
// listgate_<door>_panics_total and listgate_<door>_protocol_errors_total.
// Every label value exists from 0.
//
// # Shutdown
//
// Shutdown stops accepting, closes every connection waiting for its next
// request at once, lets a request being read or answered get its reply
// and then closes its connection, and closes what remains when its
// context ends. Postfix reconnects, and while listgate is down answers
// with its defaults above: tempfails, never an accept, never a bounce.
package postfix
