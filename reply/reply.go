package reply

import (
	"strconv"
	"strings"
)

// Reply codes, RFC 5321 §4.2.2 and §4.2.3, named after the text RFC 5321
// gives them. Only the codes listgate gives (or documents) are here.
const (
	// C250Completed is "Requested mail action okay, completed".
	C250Completed = 250
	// C421ServiceNotAvail is "Service not available, closing
	// transmission channel": the server refuses the connection (or ends
	// it) and the client tries again later (RFC 5321 §3.8).
	C421ServiceNotAvail = 421
	// C451LocalErr is "Requested action aborted: local error in
	// processing": a transient failure, the client retries.
	C451LocalErr = 451
	// C452StorageFull is "Requested action not taken: insufficient system
	// storage".
	C452StorageFull = 452
	// C452TooManyRecipients is 452 as RFC 5321 §4.5.3.1.10 gives it to
	// "too many recipients" (RFC 821 had 552): a temporary failure, the
	// client sends the recipient again in a later transaction.
	C452TooManyRecipients = 452
	// C503BadCmdSeq is "Bad sequence of commands".
	C503BadCmdSeq = 503
	// C550MailboxUnavail is "Requested action not taken: mailbox
	// unavailable (e.g., mailbox not found ...)".
	C550MailboxUnavail = 550
	// C552ExceededStorage is "Requested mail action aborted: exceeded
	// storage allocation", the code RFC 1870 §4 gives to a message larger
	// than the server accepts.
	C552ExceededStorage = 552
	// C554TransactionFailed is "Transaction failed". listgate never gives
	// it: after DATA it would make the sender bounce the message.
	C554TransactionFailed = 554
)

// Enhanced is an RFC 3463 enhanced status code without its class: the
// subject and the detail, "subject.detail" (e.g. "1.1"). The class is the
// first digit of the reply code it goes with (RFC 2034 §4: "a 4xx
// response must incorporate a 4.X.X code"), so one Enhanced serves a
// temporary and a permanent reply alike: 451 with SeSys3Other0 is 4.3.0.
type Enhanced string

// Enhanced status codes, RFC 3463 §3, named Se<subject name><subject
// digit><detail name><detail digit>.
const (
	// SeOther0Undefined0 is X.0.0, "Other undefined Status" (§3.1).
	SeOther0Undefined0 Enhanced = "0.0"
	// SeAddr1UnknownDestMailbox1 is X.1.1, "Bad destination mailbox
	// address": the mailbox does not exist (§3.2).
	SeAddr1UnknownDestMailbox1 Enhanced = "1.1"
	// SeAddr1DestValid5 is X.1.5, "Destination address valid", the code
	// of a positive delivery report (§3.2).
	SeAddr1DestValid5 Enhanced = "1.5"
	// SeSys3Other0 is X.3.0, "Other or undefined mail system status"
	// (§3.4).
	SeSys3Other0 Enhanced = "3.0"
	// SeSys3StorageFull1 is X.3.1, "Mail system full": no disk space or
	// quota left (§3.4).
	SeSys3StorageFull1 Enhanced = "3.1"
	// SeSys3MsgLimitExceeded4 is X.3.4, "Message too big for system"
	// (§3.4).
	SeSys3MsgLimitExceeded4 Enhanced = "3.4"
	// SeProto5BadCmdOrSeq1 is X.5.1, "Invalid command": a command out of
	// sequence or not implemented (§3.6).
	SeProto5BadCmdOrSeq1 Enhanced = "5.1"
	// SeProto5TooManyRecipients3 is X.5.3, "Too many recipients": more
	// recipients than the protocol or the server allows in one
	// transaction (§3.6).
	SeProto5TooManyRecipients3 Enhanced = "5.3"
	// SeSec7Other0 is X.7.0, "Other or undefined security status"
	// (§3.8): Postfix gives 4.7.0 to a client over its connection limit.
	SeSec7Other0 Enhanced = "7.0"
)

// Reply is a door-neutral SMTP reply: a code, an enhanced status code and
// a text. Every door builds its answer from the Reply the table gives, so
// their texts cannot drift apart.
type Reply struct {
	// Code is the RFC 5321 reply code, e.g. 550.
	Code int
	// Enhanced is the RFC 3463 subject and detail; the class is Code's
	// first digit.
	Enhanced Enhanced
	// Text is the human-readable text, without the codes.
	Text string
}

// IsZero reports whether r is no reply at all.
func (r Reply) IsZero() bool { return r == Reply{} }

// EnhancedCode returns r's whole enhanced status code, class first: {5,
// 1, 1} for 550 with SeAddr1UnknownDestMailbox1. The class is Code / 100.
// A malformed Enhanced gives {class, 0, 0}.
func (r Reply) EnhancedCode() [3]int {
	code := [3]int{r.Code / 100}
	subject, detail, ok := strings.Cut(string(r.Enhanced), ".")
	s, err1 := strconv.Atoi(subject)
	d, err2 := strconv.Atoi(detail)
	if ok && err1 == nil && err2 == nil {
		code[1], code[2] = s, d
	}
	return code
}

// Status returns r's enhanced status code as it is written, e.g. "5.1.1".
func (r Reply) Status() string {
	c := r.EnhancedCode()
	return strconv.Itoa(c[0]) + "." + strconv.Itoa(c[1]) + "." + strconv.Itoa(c[2])
}

// String formats r as it appears on the wire, without CRLF:
// "550 5.1.1 Requested action not taken: mailbox unavailable".
func (r Reply) String() string {
	return strconv.Itoa(r.Code) + " " + r.Status() + " " + r.Text
}

// The replies listgate gives. The 550 text is that of GNU Mailman's LMTP
// runner, so tools that match on it keep working; the others are those of
// Postfix for the same conditions.
var (
	delivered     = Reply{C250Completed, SeAddr1DestValid5, "Ok"}
	mailboxUnavl  = Reply{C550MailboxUnavail, SeAddr1UnknownDestMailbox1, "Requested action not taken: mailbox unavailable"}
	lookupFailure = Reply{C451LocalErr, SeSys3Other0, "Temporary lookup failure"}
	tooLarge      = Reply{C552ExceededStorage, SeSys3MsgLimitExceeded4, "Message size exceeds fixed limit"}
	localError    = Reply{C451LocalErr, SeSys3Other0, "Requested action aborted: local error in processing"}
	noSpace       = Reply{C452StorageFull, SeSys3StorageFull1, "Insufficient system storage"}
	tooManyRcpts  = Reply{C452TooManyRecipients, SeProto5TooManyRecipients3, "Error: too many recipients"}
	tooManyConns  = Reply{C421ServiceNotAvail, SeSec7Other0, "Error: too many connections"}
)
