// Package reply owns listgate's SMTP replies and the verdict table: for
// each verdict of lists.Resolve, and for each failure of listgate itself,
// what every door answers and at which stage of the SMTP dialogue. The
// doors (lmtp, milter, and the policy and socketmap doors of package
// postfix) read their answer from here, each in exactly one function, so
// they cannot disagree; no other code chooses a reply code or a text.
//
//	a := reply.For(reply.LMTP, reply.RCPT, reply.Of(v.Status))
//	// a.Action == reply.Send: a.Reply is "550 5.1.1 Requested action not taken: mailbox unavailable"
//
// Reply codes are RFC 5321's (§4.2.2, §4.2.3), named as constants after
// the text RFC 5321 gives them (C550MailboxUnavail); enhanced status codes
// are RFC 3463's, named after its subject and detail
// (SeAddr1UnknownDestMailbox1, X.1.1) and written without their class,
// which is the reply code's first digit (RFC 2034 §4).
//
// The texts do not change: senders' servers and tools match on them. The
// 550 is GNU Mailman's LMTP runner's, the 451 of a broken list file is
// Postfix's for a failed table lookup.
//
// # The table
//
// The table (see Table and docs/replies.md) has one row per outcome:
// accept, unknown, not-served, tempfail (a list file never parsed),
// too-large, error (listgate failed) and no-space (the spool is full). For
// each door it gives the answer at RCPT and after the message (RFC 2033
// §4.2's replies after DATA for LMTP, the end of message for the milter).
// ForDoor picks, for `listgate check`, the stage at which the door really
// decides: for an accepted recipient, the LMTP door says 2.1.5 only after
// DATA.
//
// docs/replies.md and the reply tables of lmtp/doc.go and milter/doc.go
// are rendered from the table; TestDocs fails when they are stale, and
// "go generate ./reply" rewrites them.
package reply

//go:generate go test -run ^TestDocs$ -update
