// Package lmtp is listgate's LMTP door (RFC 2033): the delivery sink that
// Postfix hands accepted list mail to. It is go-smtp's server in LMTP mode
// with a session that resolves each recipient with lists and stores the
// message with spool.
//
//	srv := lmtp.New(lmtp.Options{Lists: watcher, Spool: sp, Logger: log})
//	go srv.Serve(ln) // TCP or unix socket
//	defer srv.Shutdown(ctx)
//
// # What a 250 promises
//
// RFC 2033 §4.2: after the final "." of DATA the server gives one reply
// per recipient that RCPT accepted, in RCPT order, each saying whether
// the message was delivered to that recipient. Here each reply is the
// result of that recipient's own durable delivery: 250 is sent only after
// spool.Deliver returned nil, that is after the message was written in
// tmp/, flushed, renamed into new/ and new/ was flushed (see package
// spool). A 250 therefore means the message is on stable storage in that
// recipient's folder; Postfix may then delete its copy. Every failure is a
// tempfail for that recipient alone, so Postfix keeps the message and
// retries it: nothing is lost, at worst a message is stored twice.
//
// The copies of a message with several recipients are written at the
// same time (up to 8 at once); that changes nothing in what each 250
// promises, only how long the message takes.
//
// The door never gives a 554: go-smtp turns any error from LMTPData that
// is not an *smtp.SMTPError into "554 5.0.0", a permanent failure after
// which the sender bounces the mail. Every reply is built by smtpError
// from package reply's verdict table.
//
// # Replies
//
// The LMTP column of package reply's verdict table (generated from it:
// go generate ./reply), the replies at RCPT and after DATA:
//
//	verdict               stage       answer
//	accept                RCPT        250 2.0.0 (go-smtp's own text)
//	accept                after DATA  250 2.1.5 <rcpt> Ok
//	unknown               RCPT        550 5.1.1 Requested action not taken: mailbox unavailable
//	not-served            RCPT        550 5.1.1 Requested action not taken: mailbox unavailable
//	tempfail              RCPT        451 4.3.0 Temporary lookup failure
//	too-large             RCPT        552 5.3.4 Message size exceeds fixed limit
//	too-large             after DATA  552 5.3.4 <rcpt> Message size exceeds fixed limit
//	alias                 RCPT        451 4.3.0 Temporary lookup failure
//	observed              RCPT        550 5.1.1 Requested action not taken: mailbox unavailable
//	error                 RCPT        451 4.3.0 Requested action aborted: local error in processing
//	error                 after DATA  451 4.3.0 <rcpt> Requested action aborted: local error in processing
//	no-space              RCPT        452 4.3.1 Insufficient system storage
//	no-space              after DATA  452 4.3.1 <rcpt> Insufficient system storage
//	too-many-recipients   RCPT        452 4.5.3 Error: too many recipients
//	too-many-connections  connect     421 4.7.0 Error: too many connections
//
// At RCPT, too-large comes from MAIL FROM's SIZE=; after DATA, from the
// message as received. After DATA, error is a failed delivery (an I/O
// error, permissions), or message data that did not arrive whole; at any
// command, error is also a recovered panic, or no lists to ask. no-space
// after DATA is a full disk or an exceeded quota; at RCPT, a recipient
// that would be accepted gets it when its copy of the message (MAIL
// FROM's SIZE=; every accepted recipient of the transaction counts) would
// leave less than the spool's reserve free, in bytes or in inodes
// (spool_reserve, spool.Spool.Room): Postfix then keeps the message in its
// queue and tries again, instead of listgate filling the disk to its last
// block. Other verdicts keep their reply whatever the free space.
//
// 2.1.5 after DATA is RFC 3463's "destination address valid", the code of
// a positive delivery report. An accepted RCPT gets go-smtp's own
// "250 2.0.0 I'll make sure <rcpt> gets this": go-smtp sends no other
// text for an accepted recipient, and what counts is the reply after DATA.
// go-smtp answers some commands itself: a MAIL FROM whose SIZE= exceeds
// MaxMessageSize gets its "552 5.3.4 Max message size exceeded", HELO and
// EHLO its "500 5.5.1 This is a LMTP server, use LHLO"; its 502 for a
// command out of sequence is sent as 503 (RFC 2033 §4.2: DATA with no
// accepted RCPT "MUST fail with a 503 reply code"), e.g. "503 5.5.1
// Missing RCPT TO command.".
//
// The verdict is taken at RCPT, with the snapshot current then (a reload
// of the lists directory is seen at the next RCPT; no restart), and the
// message is stored under it after DATA; it is not looked up again. That
// is what the client was told: a list removed between RCPT and DATA still
// gets the message it accepted.
//
// # Sizes
//
// MaxMessageSize (--max-message-size; zero means
// lists.DefaultMaxMessageSize, 64 MiB, as for the milter) is advertised in LHLO as SIZE (RFC
// 1870) and applies to every recipient; a list's max_message_size applies
// to its posting address only. Both are checked against MAIL FROM's SIZE=
// at RCPT (RFC 1870 §6.4) and against the message as received after DATA,
// counted in octets with CRLF line ends. A message over the global limit
// is refused for every recipient. go-smtp's DATA reader stops at
// MaxMessageSize octets before it has seen the end of data, so a message
// of exactly MaxMessageSize octets is refused too (a go-smtp limit; one
// octet less is accepted). Keep Postfix's message_size_limit below it.
//
// # Bytes
//
// The message reaches Spool.ReadMessage as received, dot-unstuffed (RFC
// 5321 §4.5.2) with its CRLF line ends, 8-bit and non-UTF-8 bytes, NUL,
// lone CRs and bare LFs included; the spool turns each CRLF into LF. Only
// CRLF ends a line, as RFC 5321 says: a "." after a bare LF is content.
// Lines may be up to MaxLineLength octets (default 1 MiB, far beyond RFC
// 5321's 1000, since a message is never refused for its content); a
// longer line makes the message too large (552 5.3.4) and go-smtp ends the
// connection.
//
// A message is never held whole in memory: the spool streams it as it is
// read (a buffer of spool.SpillBuffer bytes per connection in DATA, the
// rest in a spill file in the spool, removed once the message is
// delivered), so memory stays bounded by the number of connections, not
// by the size of the messages (docs/reliability.md, "Memory"). A full disk
// while the message is read is answered 452 4.3.1 for every recipient.
//
// # Timeouts and shutdown
//
// ReadTimeout (5 minutes, as Postfix's smtpd_timeout) bounds each command
// line whole, from the moment the server is ready for it: bytes that
// trickle in do not extend it, and a line still incomplete when it passes
// is never run (go-smtp v0.25.1 alone runs it, and then waits again). A
// message (DATA, or a BDAT chunk) may take ReadTimeout plus its size over
// MinDataRate (500 bytes a second, Postfix's smtpd_min_data_rate), and at
// most ReadTimeout between reads; a client slower than that is cut off
// and retries the message. The connection code is deadline.go.
//
// MaxConnections (1000) and MaxConnectionsPerClient (500, per TCP client
// address) bound the connections held open; one past either is answered
// "421 4.7.0 Error: too many connections" in place of the greeting and
// closed.
// Shutdown stops accepting, closes idle connections at once (Postfix
// keeps LMTP connections open for reuse), lets transactions in flight
// finish and then closes their connections, and when its context ends
// closes whatever is left: no reply was sent for those, so the sender
// retries.
//
// # BDAT
//
// go-smtp always advertises CHUNKING (RFC 3030); Postfix's LMTP client
// does not use it, but BDAT works, with the same per-recipient replies.
// go-smtp v0.25.1 has a race in BDAT: its goroutine reads connection state
// without a lock. The session closes the case where a BDAT transfer
// aborted by RSET or LHLO could pass its result to the next transaction
// (see session.LMTPData). One case remains, invisible to the session: a
// zero-length "BDAT 0" chunk followed at once by RSET or LHLO and a new
// transaction can give that transaction's recipients a 451 while their
// message is stored, so a retry stores it twice. No sequence of commands
// gives a 250 for a message that is not on disk.
//
// # Logs and metrics
//
// One info line per verdict ("rcpt", with door, rcpt, list, verdict,
// lmtp_id, queue_id), one per delivery ("delivered", with the kind, file
// and bytes), one error line per failed delivery and per recovered panic
// (with the stack). lmtp_id is the door's own transaction id, which its
// Received: field names ("with LMTP id ..."); queue_id is Postfix's
// queue id, taken from the topmost Received: field of the message, the
// one Postfix's smtpd (or pickup) added ("with ESMTP id 4Xyz..."), so the
// lines join with Postfix's own ("postfix/lmtp[...]: 4Xyz...: to=<...>").
// queue_id is known only once the message has arrived: the lines at RCPT
// have it empty and share lmtp_id with the lines after DATA.
//
// Metrics, with the names and labels of every door:
// listgate_lmtp_recipients_total{verdict} (accept, unknown, not-served,
// tempfail, too-large, alias, error, no-space, too-many-recipients),
// listgate_lmtp_deliveries_total{result}
// (delivered, too-large, error, no-space), listgate_lmtp_panics_total and
// the gauge listgate_lmtp_connections. Every label value exists from 0.
//
// # Defaults
//
// As in every door: a zero MaxMessageSize is lists.DefaultMaxMessageSize;
// a nil Logger discards; nil Lists (or a source without a snapshot)
// answers every recipient with the local-error tempfail, 451 4.3.0, so
// senders retry.
package lmtp
