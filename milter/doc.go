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
// The door needs two events and asks the MTA not to send any other
// (SMFIP_NOCONNECT, SMFIP_NOHELO, SMFIP_NOHDRS, SMFIP_NOEOH, SMFIP_NOBODY,
// SMFIP_NODATA, SMFIP_NOUNKNOWN), nor to wait for a reply to any event but
// RCPT TO (the SMFIP_NR_* flags):
//
//   - MAIL FROM, without a reply, to read the ESMTP SIZE= parameter
//     (RFC 1870) so that a message larger than a list accepts is refused
//     at RCPT, before it is queued, rather than bounced later;
//   - RCPT TO, with a reply, which is where every verdict is given.
//
// The end-of-message event cannot be turned off in the protocol; it is
// answered "accept" (the recipients were decided one by one already).
// SMFIP_SKIP and SMFIP_RCPT_REJ are never negotiated: a "skip" reply to a
// RCPT makes Postfix stop asking about the remaining recipients of the
// message, which would let bogus ones through. The only action requested
// is SMFIF_SETSYMLIST, to ask for the queue-ID macro {i} at RCPT; it is
// logged. Postfix sends {i} only once the queue file exists, which by
// default (smtpd_delay_open_until_valid_rcpt = yes) is after the first
// accepted recipient, so the first recipient of a message is often logged
// with an empty queue_id.
//
// Whatever the MTA offers, the door takes the intersection with what it
// wants, so an MTA configured with an older milter_protocol still works:
// it merely sends events the door then answers with "continue".
//
// # Replies
//
// Each recipient is resolved with lists.Snapshot.Resolve on the current
// snapshot, exactly as received, then checked against the SIZE= of its
// transaction with lists.Verdict.CheckSize. milterReply turns the verdict
// into the answer, from DESIGN.md's verdict table:
//
//	accept          continue
//	not served      continue (another domain: not ours to judge)
//	unknown         550 5.1.1 Requested action not taken: mailbox unavailable
//	list broken     451 4.3.0 (tempfail: the sender retries)
//	too large       552 5.3.4 Message size exceeds fixed limit
//	internal error  451 4.3.0 Requested action aborted: local error in processing
//
// Refusals are sent as SMFIR_REPLYCODE, which refuses that one recipient
// and keeps the transaction: the next RCPT is asked about as usual and the
// accepted recipients get the message. A continue is SMFIR_CONTINUE, never
// SMFIR_ACCEPT, which would make Postfix stop asking about the rest of the
// message's recipients.
//
// A panic while answering is recovered in the session, logged once with
// its stack, counted, and answered with the internal-error tempfail; the
// server keeps serving. Packets that would make the protocol library
// itself panic (a zero length, a MAIL, RCPT or CONNECT without its NUL
// terminator) end that one connection instead.
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
