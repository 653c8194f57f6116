// Package spool stores accepted mail durably in Maildir folders, one per
// list and kind of recipient:
//
//	SPOOL/<domain>/<local>/<kind>/{tmp,new,cur}
//
// where <domain>/<local> is the list's canonical address (lower case, the
// domain in A-label form) and <kind> is "post" for the posting address or
// the canonical sub-address: bounces, confirm, join, leave, owner or
// request. A folder and its tmp/, new/ and cur/ are made on its first
// delivery.
//
// # Reading a message
//
// ReadMessage reads the DATA of a transaction once; Spool.Deliver then
// stores it for each accepted recipient. The message is streamed, never
// held whole in memory: its header section is scanned and its line ends
// converted as it is read, into a buffer of SpillBuffer bytes (64 KiB)
// and, past that, into a spill file in the spool root, removed from the
// directory as soon as it is made; each recipient's file is then its
// added headers plus a copy of that content (the spill file read back in
// SpillBuffer pieces). Memory per message is thus a constant however large
// the message or its header section; disk use while reading is at most
// the message's own size. The spill file is not a durable step: it is
// scratch, never fsynced, gone with the process. The stored bytes are the received
// bytes unchanged (8-bit and non-UTF-8 bytes, NUL and long lines included)
// except that each CRLF becomes LF, as qmail, Postfix's local(8) and
// Dovecot write Maildir files; a lone CR or a lone LF stays as it is. No
// message is refused for its content.
//
// The header section is found by a small scanner over the bytes (a
// parser would re-encode or reject malformed input): it is the run of
// header fields at the top of the message, a field being a line that
// starts with a name of printable US-ASCII characters and a colon (RFC
// 5322 §2.2) plus its continuation lines (§2.2.3). If the message is empty
// or its first line is not a header field, the message has no header
// section and the whole of it is body; an empty line is then put between
// the added headers and the message, so its first line is never read as a
// header. A message that starts with an empty line already has that
// separator and gets no second one.
//
// # Headers added
//
// On top of the message, in this order:
//
//	Return-Path: <sender>                  ("<>" for the null sender)
//	Delivered-To: rcpt                     (the recipient as received)
//	Received: from helo (remoteaddr)
//		by hostname (listgate) with LMTP id ID
//		for <rcpt>; Mon, 02 Jan 2006 15:04:05 -0700
//	Message-ID: <generated>                (only if the message has none)
//	Message-ID-Hash: HASH
//	X-Message-ID-Hash: HASH
//	X-MailFrom: sender                     ("<>" for the null sender)
//
// Every ASCII control byte of an envelope value (0x00-0x1f and DEL) is
// written as '?', as Postfix's logs show it: no value starts a header
// line or carries a control into a header. Postfix's smtpd accepts such
// bytes in an address, so they are encoded here rather than refused by
// the LMTP door (docs/lmtp.md, "What is stored").
//
// The last four are what Mailman's LMTP runner adds (runners/lmtp.py and
// utilities/email.py add_message_hash). HASH is MessageIDHash of the
// message's first Message-ID field (any case of the name, folded or not).
// Every Message-ID-Hash and X-Message-ID-Hash field already in the header
// section is removed, continuation lines included; nothing else of the
// message changes.
//
// # Durability
//
// Deliver takes these steps, each named by an Op, and returns nil only
// after the last one succeeded:
//
//  1. On the first delivery to a folder (per process): make the missing
//     directories (OpMkdir), then flush with fsync(2) the folder and each
//     directory above it up to the spool root (OpDirFsync), so the new
//     directory entries survive a crash.
//  2. Create a uniquely named file in tmp/ with O_CREAT|O_EXCL (OpCreate).
//  3. Write the whole message (OpWrite).
//  4. fsync the file (OpFsync), then close it.
//  5. Rename it into new/ under the same name (OpRename).
//  6. fsync new/ (OpDirFsync).
//
// A nil error from Deliver therefore promises that the complete message
// is in new/ and on stable storage: the LMTP door may answer 250. On any
// error the file in tmp/ is removed, and a file that reached new/ before
// a failed step 6 is removed again, so new/ never holds a message for
// which Deliver failed, nor a partial one; the door answers 451 4.3.0, or
// 452 4.3.1 when IsNoSpace reports a full disk or quota. (A reader that
// picks a file up from new/ between steps 5 and 6 may still see it; the
// sender's retry then makes a duplicate, never a loss.)
//
// A crash between steps 2 and 5 leaves the file in tmp/, with no 250 given
// for it. CleanTmp removes the files in every folder's tmp/ older than a
// grace period (TmpGrace, 36 hours, the Maildir convention); the daemon
// runs it at start and every TmpCleanInterval. It also removes a spill
// file (SpillPrefix) left in the spool root by a crash in the instant
// between its creation and its removal from the directory.
//
// # Free space and the reserve
//
// Options.Reserve keeps part of the file system free (spool_reserve;
// DefaultReserve: the larger of 1% and twice the largest message). Room
// tells the LMTP door, at each RCPT, whether one more copy of the message
// (MAIL FROM's SIZE= for each recipient accepted so far, and one inode
// each) still leaves the reserve free; when it does not, the door answers
// 452 4.3.1 and Postfix keeps the message queued, as its own smtpd does
// below queue_minfree. Free space is what statfs(2) gives unprivileged
// users (f_bavail × f_bsize), whoever runs listgate, so the blocks a file
// system keeps for root are never counted; free inodes are f_ffree, and
// the inode reserve is the reserve's share of the file system (a file
// system without a fixed number of inodes, such as btrfs, has none).
//
// A reading is reused for Options.SpaceTTL (1 s): Room then costs a
// mutex and a clock read (~0.2 µs against ~11 µs for statfs on the
// reference VM; BenchmarkRoom). Each delivered file is taken off the
// cached reading, and an ENOSPC or EDQUOT drops it. The reserve is an
// early warning, not the guarantee: the durable steps above still decide,
// and a full disk after RCPT still gives 452 4.3.1 after DATA with nothing
// in new/. If statfs fails, Room lets the mail through (logged once).
// Space and the gauges listgate_spool_free_bytes, _free_inodes,
// _reserve_bytes and _reserve_inodes show the last reading.
//
// File names follow the Maildir convention (https://cr.yp.to/proto/maildir.html
// and Dovecot's extensions): <secs>.M<usec>P<pid>Q<counter>R<random>.<host>,S=<size>.
package spool
