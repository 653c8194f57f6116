package lists

// Status is the outcome of resolving a recipient. Each status has exactly
// one answer per door, given by the verdict table of docs/design.md,
// which package reply holds.
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
	// Alias means the recipient is postmaster@ or abuse@ of a served
	// domain (RFC 5321 §4.5.1, RFC 2142 §2) whose domain file names the
	// address it goes to (keys `postmaster`, `abuse`), and no list has
	// that name: Verdict.Target is that address. Postfix rewrites it
	// through virtual_alias_maps (the socketmap door's map "aliases");
	// the milter and policy doors let it pass.
	Alias
	// Observed means the recipient would be Unknown, but its domain is in
	// observe mode (domain file key `mode = "observe"`, or
	// Options.Observe for every domain whose file sets no mode): the
	// milter and policy doors let it pass and the socketmap's recipients
	// map finds it, each counting it as a refusal it would have made;
	// the LMTP door refuses it as Unknown (550 5.1.1), which after
	// Postfix accepted it is a bounce, as with no listgate in front.
	// Verdict.Domain is the served domain. A tempfail (Broken) stays a
	// tempfail in observe mode.
	Observed
)

var statusNames = [...]string{
	NotServed: "not-served",
	Unknown:   "unknown",
	Accept:    "accept",
	Broken:    "tempfail",
	TooLarge:  "too-large",
	Alias:     "alias",
	Observed:  "observed",
}

// String returns the status as logs and `listgate check` print it:
// "accept", "unknown", "not-served", "tempfail", "too-large", "alias" or
// "observed".
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
	// Target is the address an Alias recipient goes to, as its domain
	// file writes it (e.g. "hostmaster@example.net"); empty otherwise.
	// Domain is then the served domain whose file sets it.
	Target string
}

// DefaultMaxMessageSize is the global message size limit when none is
// given (--max-message-size, and a zero MaxMessageSize in the Options of
// the lmtp and milter doors): 64 MiB, in octets as received.
const DefaultMaxMessageSize = 64 << 20

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

// MarshalText makes a Status print by name in JSON logs and output.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
