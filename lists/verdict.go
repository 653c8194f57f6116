package lists

import "fmt"

// Status is the outcome of resolving a recipient. Each status has exactly
// one reply per door, given by the verdict table in DESIGN.md and by Reply.
type Status uint8

const (
	// NotServed means the recipient's domain is not one listgate serves.
	// The milter and policy doors let such mail pass; the LMTP door and
	// `listgate check` refuse it (550 5.1.1).
	NotServed Status = iota
	// Unknown means the domain is served but no list or sub-address has
	// this name (550 5.1.1).
	Unknown
	// Accept means the recipient is a list's posting address or one of its
	// sub-addresses.
	Accept
	// Broken means the list file that would decide this recipient has
	// never parsed, or two files fold to the same address, or the
	// recipient is unknown in a domain where a list file has never parsed
	// (it may be one of that file's aliases): a tempfail (451 4.3.0) so
	// the sender retries while the admin fixes the file.
	Broken
	// TooLarge means the message (its SIZE= or its data) exceeds the
	// list's max_message_size or the global limit (552 5.3.4). Resolve
	// never returns it; Verdict.CheckSize does.
	TooLarge
)

var statusNames = [...]string{
	NotServed: "not-served",
	Unknown:   "unknown",
	Accept:    "accept",
	Broken:    "tempfail",
	TooLarge:  "too-large",
}

// String returns the status as logs and `listgate check` print it:
// "accept", "unknown", "not-served", "tempfail" or "too-large".
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "invalid"
}

// ParseStatus is the inverse of Status.String. It reports false for a name
// that is not a status.
func ParseStatus(name string) (Status, bool) {
	for s, n := range statusNames {
		if n == name {
			return Status(s), true
		}
	}
	return 0, false
}

// Kind is the part of a list an accepted recipient reaches: the posting
// address or one of the sub-addresses. It is also the spool folder name.
type Kind string

// The kinds. Subscribe and unsubscribe are spelled join and leave, as
// Mailman does.
const (
	Post     Kind = "post"
	Bounces  Kind = "bounces"
	Confirm  Kind = "confirm"
	Join     Kind = "join"
	Leave    Kind = "leave"
	Owner    Kind = "owner"
	Request  Kind = "request"
	noSuffix Kind = ""
)

// Kinds lists every kind, posting address first, in spool folder order.
var Kinds = []Kind{Post, Bounces, Confirm, Join, Leave, Owner, Request}

// subaddress maps a local-part suffix (after the last '-') to its kind.
func subaddress(suffix string) Kind {
	switch suffix {
	case "bounces":
		return Bounces
	case "confirm":
		return Confirm
	case "join", "subscribe":
		return Join
	case "leave", "unsubscribe":
		return Leave
	case "owner":
		return Owner
	case "request":
		return Request
	}
	return noSuffix
}

// Verdict is what Resolve says of one recipient. It is a plain value; its
// strings point into the snapshot and into the recipient given to Resolve.
type Verdict struct {
	// Status is the outcome; the reply for each door follows from it alone.
	Status Status
	// List is the canonical posting address of the list reached: lower
	// case, domain in ASCII (A-label) form. Set for Accept and Broken
	// (when the broken file names one list), empty otherwise.
	List string
	// Local and Domain are List's two halves; they name the spool folder
	// SPOOL/<Domain>/<Local>/<Kind>.
	Local, Domain string
	// Kind is the posting address or the sub-address reached (Accept only).
	Kind Kind
	// Extension is the address extension cut at the first recipient
	// delimiter, without the delimiter (e.g. VERP data "anne=example.org").
	Extension string
	// MaxMessageSize is the list's max_message_size in bytes when Kind is
	// Post, 0 when there is no list limit. Sub-addresses have none.
	MaxMessageSize int64
}

// CheckSize returns v with Status TooLarge if v accepts and size (bytes, as
// announced by SIZE= or as received) exceeds the list's max_message_size or
// globalMax (0 means no global limit). Otherwise it returns v unchanged.
func (v Verdict) CheckSize(size, globalMax int64) Verdict {
	if v.Status != Accept {
		return v
	}
	if (v.MaxMessageSize > 0 && size > v.MaxMessageSize) || (globalMax > 0 && size > globalMax) {
		v.Status = TooLarge
	}
	return v
}

// Reply is a door-neutral SMTP reply: a code, an RFC 3463 enhanced status
// code and the text. Every door builds its answer from one of these, so
// their texts cannot drift apart.
type Reply struct {
	Code     int    // RFC 5321 reply code, e.g. 550
	Enhanced [3]int // RFC 3463 enhanced status code, e.g. {5, 1, 1}
	Text     string // human-readable text, without the codes
}

// String formats r as it appears on the wire, without CRLF:
// "550 5.1.1 Requested action not taken: mailbox unavailable".
func (r Reply) String() string {
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text)
}

// The replies of DESIGN.md's verdict table. The 550 text is Mailman's.
var (
	ReplyAccept   = Reply{250, [3]int{2, 1, 5}, "Ok"}
	ReplyUnknown  = Reply{550, [3]int{5, 1, 1}, "Requested action not taken: mailbox unavailable"}
	ReplyBroken   = Reply{451, [3]int{4, 3, 0}, "Temporary lookup failure"}
	ReplyTooLarge = Reply{552, [3]int{5, 3, 4}, "Message size exceeds fixed limit"}
	// ReplyLocalError is the tempfail for a failure of listgate itself
	// (storage error, panic): the sender keeps the message and retries.
	ReplyLocalError = Reply{451, [3]int{4, 3, 0}, "Requested action aborted: local error in processing"}
	// ReplyNoSpace is the tempfail for a full disk or an exceeded quota.
	ReplyNoSpace = Reply{452, [3]int{4, 3, 1}, "Insufficient system storage"}
)

// Reply returns the SMTP reply for s as the LMTP door and `listgate check`
// give it. NotServed and Unknown share the 550 5.1.1 reply. The milter and
// policy doors differ only for NotServed, which they let pass.
func (s Status) Reply() Reply {
	switch s {
	case Accept:
		return ReplyAccept
	case Broken:
		return ReplyBroken
	case TooLarge:
		return ReplyTooLarge
	default:
		return ReplyUnknown
	}
}

// MarshalText makes a Status print by name in JSON logs and output.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
