// Package forward hands the mail listgate accepted to each list's next
// hop (docs/design.md, "The hand-off"; docs/forwarding.md): an LMTP
// server such as GNU Mailman 3's LMTP runner, or a command such as
// mlmmj-receive or public-inbox-mda. A list whose next hop is none keeps
// its mail in the Maildir for a consumer that reads it.
//
// # What goes where
//
// Each spool folder SPOOL/<domain>/<local>/<kind> belongs to one list;
// its next hop is the list file's next_hop, else its domain file's, else
// the default_next_hop setting (lists.Snapshot.Forwarding). One worker
// per folder takes the messages of new/ oldest first (by the delivery
// time their Maildir names start with) and forwards one at a time, so the
// next hop sees them in the order they were stored. A message that meets
// a temporary failure is tried again, after a backoff, before any later
// one of its folder.
//
// # The envelope
//
// The envelope comes from the fields the spool added on top of the
// message: MAIL FROM is the Return-Path (<> stays <>), the one RCPT is
// the Delivered-To, the recipient as received with its extension. Each
// message goes in a transaction of its own with one recipient, since
// Mailman's runner gives one reply for all recipients on some errors.
//
// # Headers
//
// Of the fields listgate added, an LMTP next hop gets the Received trace
// field (and a Message-ID listgate generated for a message that had
// none). Return-Path and Delivered-To are the envelope, which the next
// hop records itself; Message-ID-Hash, X-Message-ID-Hash and X-MailFrom
// are Mailman's, and its runner adds them again. So Mailman stores what
// it stores when Postfix delivers to it directly, plus listgate's
// Received. A command gets Return-Path and Delivered-To as well, on top,
// as Postfix's local(8) hands a message to a command; it does not get
// Mailman's three. The message's own header and body are not changed.
//
// # Lines
//
// An LMTP next hop gets CRLF line ends and dot-stuffing (go-smtp's
// client). A line longer than 998 octets is broken as Postfix's lmtp(8)
// breaks it (postconf(5), lmtp_line_length_limit = 998): a CRLF and a
// space are inserted after 998 octets, and again after every 997 more,
// so no line on the wire is longer than 998 octets. A command gets the
// stored bytes as they are (LF line ends, nothing folded), as local(8)
// and pipe(8) give them.
//
// # Results
//
//   - Taken: LMTP 250 for the one recipient after DATA, or exit status 0.
//     The message leaves new/: it is removed, or moved to cur/ when the
//     list (or its domain) says keep = true; new/ is then flushed.
//   - Temporary: an LMTP 4xx at any stage, a refused or failed greeting,
//     a connection that cannot be made, breaks or times out; exit status
//     75 (EX_TEMPFAIL); a command that cannot start, dies of a signal or
//     outruns Options.Timeout. The message stays first in new/ and is
//     tried again after MinBackoff·2^(n-1), at most MaxBackoff, ±20%.
//   - Permanent: an LMTP 5xx at MAIL, RCPT or after DATA, any other exit
//     status, or a file in new/ that listgate did not store. The message
//     moves to quarantine/ beside new/ with a reason file (Reason), is
//     logged once and counted; `listgate spool retry` puts it back.
//
// # At least once
//
// A message leaves new/ only after its next hop took it, and the move is
// flushed. A crash or a shutdown that runs out of time while a message
// is in flight leaves it in new/: it is sent again at the next start,
// and the next hop may get it twice. Nothing is lost or skipped.
//
// # Concurrency
//
// Folders are independent: a next hop that is down holds only the
// folders that go to it, and Options.Concurrency bounds the forwards in
// flight to one next hop. New mail is seen at once (Notify, which the
// daemon wires to spool.Options.Delivered) and by a scan of the whole
// spool every ScanInterval and after each reload of the lists, which
// also finds mail left by a crash or put back by `listgate spool retry`.
package forward
