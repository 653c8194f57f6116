// Package milter is listgate's milter door: Postfix (or Sendmail) asks it
// about every recipient at RCPT TO time, so a bogus list address is refused
// during the SMTP dialogue. The sending server reports that refusal to its
// own user; listgate never accepts mail it cannot deliver and so never
// bounces to a forged sender (backscatter).
//
// The door speaks the Sendmail 8 milter protocol, version 6, through
// github.com/d--j/go-milter. The protocol has no RFC; it is defined by
// Sendmail's libmilter (include/libmilter/mfdef.h and the smfi_* manual
// pages) and Postfix implements its MTA side as described in Postfix's
// MILTER_README ("Postfix before-queue Milter support").
//
// # What is negotiated
//
// The door asks for these events and for no others (SMFIP_NOEOH,
// SMFIP_NODATA, SMFIP_NOUNKNOWN), and waits to be asked for a reply only
// where it answers: RCPT TO, body chunks and the end of message (the
// SMFIP_NR_* flags for the others):
//
//   - CONNECT, without a reply, for the SMTP client's address, which the
//     log lines carry (see Logs and metrics);
//   - HELO, without a reply, for the length of the name, which Postfix
//     writes into its Received: header (see Sizes);
//   - MAIL FROM, without a reply, to read the ESMTP SIZE= parameter
//     (RFC 1870) so that a message larger than a list accepts is refused
//     at RCPT, before it is queued, rather than bounced later, and the
//     sender for the logs;
//   - RCPT TO, with a reply, which is where every recipient's verdict is
//     given;
//   - header fields, without a reply, and body chunks, with one, to count
//     the size of a message sent without SIZE= (see Sizes); with
//     SMFIP_HDR_LEADSPC, so that a header value comes whole;
//   - the end of message, which cannot be turned off: the message is
//     refused if it is too large for a recipient let through, accepted
//     otherwise.
//
// SMFIP_SKIP is negotiated so that a body chunk can be answered "skip":
// Postfix then sends no more of that message's body (milter8.c,
// SMFIR_SKIP). The door answers skip once it needs no more: when no
// recipient let through is listgate's, and once the message is too large
// already. It never answers skip to a RCPT:
// Postfix takes a skip as the answer to every further event of the same
// kind, so a skip at RCPT would let the remaining recipients of the
// message through unasked. SMFIP_RCPT_REJ is not negotiated: the door has
// no use for recipients refused before it is asked. The only action
// requested is SMFIF_SETSYMLIST, to ask for the queue-ID macro {i} at RCPT
// and at the end of message; it is logged. Postfix sends {i} only once the
// queue file exists, which by default (smtpd_delay_open_until_valid_rcpt =
// yes) is after the first accepted recipient, so the first recipient of a
// message is often logged with an empty queue_id.
//
// Whatever the MTA offers, the door takes the intersection with what it
// wants, so an MTA configured with an older milter_protocol still works:
// it merely sends events the door then answers with "continue", and
// without SMFIP_SKIP the door answers continue where it would skip.
//
// # Sizes
//
// A list's max_message_size applies to its posting address, the global
// limit (Options.MaxMessageSize) to every address of listgate's; both are
// checked twice:
//
//   - at RCPT, against MAIL FROM's SIZE=, if given: only the recipient it
//     is too large for is refused, and the message goes to the others;
//   - at the end of message, against the size counted from the message's
//     header fields and body, whether SIZE= was given or not: the whole
//     message is refused (the milter protocol cannot refuse one recipient
//     after DATA) if it is too large for one posting address let through at
//     RCPT, or for the global limit. Recipients refused at RCPT, and
//     recipients of other domains, do not count.
//
// Without the second check, a client that does not declare SIZE= would
// have its oversize post accepted by Postfix and refused by the LMTP door
// after queueing: a bounce, from Postfix, to a sender that may be forged.
//
// The size counted is the message's size on the wire: each header field's
// name, colon, value and CRLF (a folded value's line breaks, sent as bare
// LFs, counted as CRLFs; without SMFIP_HDR_LEADSPC one space after the
// colon counted back), the empty line after the header, and the body,
// which Postfix sends with CRLF line ends. Lines of 128 bytes or more
// count a few bytes more (lineExtra): Postfix announces its queue file's
// size as SIZE= to the LMTP door, which refuses at RCPT by it, and the
// queue file frames such lines with more than the two bytes of a CRLF.
// The body is only counted, never kept.
//
// To both checks the door adds a margin (margin): 2 KiB, plus the length
// of the HELO name, plus that of the longest recipient let through. It
// covers what Postfix adds to the message after the milter has seen it
// and before the LMTP door judges it: its own Received: header, which it
// does not show to milters and whose first lines name the HELO name and a
// single recipient, and a few queue file records. So a message the milter
// lets through is never refused for its size by the LMTP door (which
// would make Postfix bounce it); a message within the margin of a limit
// is refused a little early, in the SMTP dialogue, which is safe. Headers
// added by a milter listed after listgate's in smtpd_milters are not seen
// (one listed before is: Postfix shows each milter the message as the
// ones before it changed it), so list listgate's milter last.
//
// # Replies
//
// Each recipient is resolved with lists.Snapshot.Resolve on the current
// snapshot, exactly as received, then checked against the SIZE= of its
// transaction (margin included) with lists.Verdict.CheckSize; the size
// counted at the end of message is checked with the same function.
// milterReply turns the verdict into the answer: the milter column of
// package reply's verdict table (generated from it: go generate ./reply),
// at RCPT and at the end of message:
//
//	verdict     stage           answer
//	accept      RCPT            continue
//	accept      end of message  accept
//	unknown     RCPT            550 5.1.1 Requested action not taken: mailbox unavailable
//	not-served  RCPT            continue
//	tempfail    RCPT            451 4.3.0 Temporary lookup failure
//	too-large   RCPT            552 5.3.4 Message size exceeds fixed limit
//	too-large   end of message  552 5.3.4 Message size exceeds fixed limit
//	alias       RCPT            continue
//	observed    RCPT            continue
//	error       RCPT            451 4.3.0 Requested action aborted: local error in processing
//	error       end of message  451 4.3.0 Requested action aborted: local error in processing
//
// Refusals are sent as SMFIR_REPLYCODE. At RCPT it refuses that one
// recipient and keeps the transaction: the next RCPT is asked about as
// usual and the accepted recipients get the message. A continue is
// SMFIR_CONTINUE, never SMFIR_ACCEPT, which would make Postfix stop asking
// about the rest of the message's recipients. At the end of message it
// refuses the message; the SMTP client gets the 552 as the reply to its
// final dot, and nothing is queued. A message the door does not refuse is
// answered SMFIR_ACCEPT. A recipient of a domain listgate does not serve
// continues: another restriction, or Postfix itself, decides for it.
//
// The milter never answers no-space, not even when the LMTP door of the
// same daemon refuses recipients because the spool is below its reserve
// (spool_reserve): the point of that 452 is that Postfix keeps the mail in
// its own queue, which has its own guard (queue_minfree), until the spool
// has room; a 452 at the milter would push the mail back onto every remote
// sender's queue instead, with their slower retries, and would say nothing
// true about a Postfix whose queue is on another disk or host.
//
// A panic while answering is recovered in the session, logged once with
// its stack, counted, and answered with the local-error tempfail (error;
// for a header field or a body chunk, which have no such reply: at the
// end of that message); the server keeps serving. Packets that would make
// the protocol library itself panic (a zero length, a MAIL, RCPT or
// CONNECT without its NUL terminator) end that one connection instead.
//
// # Defaults
//
// As in every door: a zero MaxMessageSize is lists.DefaultMaxMessageSize
// (64 MiB), so the global limit always applies; a nil Logger discards;
// nil Lists (or a source without a snapshot) answers every recipient with
// the local-error tempfail, 451 4.3.0.
//
// # Logs and metrics
//
// One info line per recipient ("rcpt", with door, rcpt, list, verdict,
// queue_id, client_addr and from: the SMTP client's address and the
// envelope sender, as Postfix's own lines give them as client= and from=)
// and one per message refused at its end ("message", the same keys but
// rcpt, with the bytes counted, the margin and the limit; list is empty
// for the global limit). queue_id is Postfix's {i} macro, empty until
// Postfix has a queue file (see What is negotiated). Error lines for
// panics (with the stack), a warning per malformed packet, and an error
// per failed Accept (with delay_ms, the wait before the next).
//
// go-milter logs its own warnings (a connection that failed in the middle
// of a command, a packet it cannot parse) with the standard log package,
// through a package-level hook and not per server: LogLibraryWarnings
// sends them to a slog.Logger, once for the whole process.
//
// Metrics, with the names and labels of every door:
// listgate_milter_recipients_total{verdict} (accept, unknown, not-served,
// tempfail, too-large, error), listgate_milter_messages_total{result}
// (accept, too-large, error, and unchecked: no recipient of listgate's),
// listgate_milter_panics_total, listgate_milter_protocol_errors_total and
// the gauge listgate_milter_connections, listgate_milter_connections_refused_total
// (by reason: max_connections, max_connections_per_client) and
// listgate_milter_idle_closed_total. Every label value exists from 0.
//
// A connection past MaxConnections (1000) or MaxConnectionsPerClient (500,
// per TCP client address) is closed before a packet is read; one that
// waits IdleTimeout (7210 s, libmilter's default) for the MTA's next
// packet, or for the rest of one, is closed quietly. Either way Postfix
// applies its milter_default_action.
//
// # Shutdown
//
// Postfix holds one milter connection per SMTP session, idle between
// commands. Shutdown stops accepting, closes every connection that is not
// inside a mail transaction at once, lets transactions in flight reach
// their end of message or abort, and closes whatever remains when its
// context ends. Postfix then applies milter_default_action to the rest of
// those SMTP sessions; with the recommended "tempfail" nothing is lost.
package milter
