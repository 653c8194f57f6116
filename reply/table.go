package reply

import "github.com/listgate/listgate/lists"

// Outcome is a row of the verdict table: what a door has to answer for.
// The first seven are the statuses of lists (Of maps them); LocalError and
// NoSpace are failures of listgate itself; TooManyRecipients and
// TooManyConnections are limits of the doors. The zero Outcome is not valid:
// the table answers it, like any value it does not know, as LocalError.
type Outcome uint8

// The outcomes, in the order of the table.
const (
	// Accept: a list's posting address or one of its sub-addresses
	// (lists.Accept).
	Accept Outcome = iota + 1
	// Unknown: the domain is served, no list has this name
	// (lists.Unknown).
	Unknown
	// NotServed: the domain is not one listgate serves (lists.NotServed).
	NotServed
	// Broken: the list file that decides the recipient has never parsed
	// (lists.Broken); printed "tempfail".
	Broken
	// TooLarge: the message exceeds a size limit (lists.TooLarge).
	TooLarge
	// Alias: postmaster@ or abuse@ of a served domain whose domain file
	// names where it goes (lists.Alias): Postfix's virtual_alias_maps
	// rewrites it, through the socketmap door's map "aliases".
	Alias
	// Observed: an address no list has, in a domain in observe mode
	// (lists.Observed): what would be Unknown, let through by the doors
	// that answer at RCPT, and refused by the LMTP door as Unknown.
	Observed
	// LocalError: listgate failed (a storage error, data cut off, a
	// panic, no lists to ask): a tempfail, the sender retries. Printed
	// "error".
	LocalError
	// NoSpace: the spool's file system is full or a quota is exceeded
	// (after DATA), or its free space is below the reserve (at RCPT): a
	// tempfail.
	NoSpace
	// TooManyRecipients: the LMTP transaction already has the most
	// recipients it may (lmtp.Options.MaxRecipients): a tempfail for this
	// recipient, which the client sends again in a new transaction (RFC
	// 5321 §4.5.3.1.10).
	TooManyRecipients
	// TooManyConnections: a new connection would pass the door's
	// --max-connections, or its client's --max-connections-per-client.
	// The LMTP door answers it instead of its greeting (stage Connect)
	// and closes the connection; the other doors, whose protocols have
	// no greeting, close it without a word.
	TooManyConnections
	numOutcomes = iota
)

var outcomeNames = [...]string{
	Accept:     "accept",
	Unknown:    "unknown",
	NotServed:  "not-served",
	Broken:     "tempfail",
	TooLarge:   "too-large",
	Alias:      "alias",
	Observed:   "observed",
	LocalError: "error",
	NoSpace:    "no-space",

	TooManyRecipients:  "too-many-recipients",
	TooManyConnections: "too-many-connections",
}

// String returns the outcome as logs print it and as the "verdict" label
// of the doors' metrics holds it: the lists.Status name for the first
// seven ("accept", "unknown", "not-served", "tempfail", "too-large",
// "alias", "observed"), then "error", "no-space", "too-many-recipients" and
// "too-many-connections".
func (o Outcome) String() string {
	if o > 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "invalid"
}

// Outcomes lists every valid outcome in table order.
func Outcomes() []Outcome {
	out := make([]Outcome, 0, numOutcomes)
	for o := Outcome(1); o <= numOutcomes; o++ {
		out = append(out, o)
	}
	return out
}

// Of returns the outcome of a lists status. A status lists does not
// define is LocalError.
func Of(s lists.Status) Outcome {
	switch s {
	case lists.Accept:
		return Accept
	case lists.Unknown:
		return Unknown
	case lists.NotServed:
		return NotServed
	case lists.Broken:
		return Broken
	case lists.TooLarge:
		return TooLarge
	case lists.Alias:
		return Alias
	case lists.Observed:
		return Observed
	}
	return LocalError
}

// Door is one of listgate's doors: the protocols Postfix asks it in.
type Door uint8

// The doors.
const (
	// LMTP is the delivery sink (RFC 2033), package lmtp.
	LMTP Door = iota + 1
	// Milter is the milter (Sendmail's milter protocol, Postfix's
	// MILTER_README), package milter.
	Milter
	// Policy is Postfix's SMTP access policy delegation
	// (SMTPD_POLICY_README): its answer is an access(5) action.
	Policy
	// Socketmap is a Postfix socketmap table (socketmap_table(5)).
	Socketmap
)

var doorNames = [...]string{LMTP: "lmtp", Milter: "milter", Policy: "policy", Socketmap: "socketmap"}

// String returns the door's name as logs and metric names spell it:
// "lmtp", "milter", "policy", "socketmap".
func (d Door) String() string {
	if d > 0 && int(d) < len(doorNames) {
		return doorNames[d]
	}
	return "invalid"
}

// Doors lists every door.
func Doors() []Door { return []Door{LMTP, Milter, Policy, Socketmap} }

// ParseDoor is the inverse of Door.String; it reports false for a name
// that is not a door.
func ParseDoor(name string) (Door, bool) {
	for _, d := range Doors() {
		if d.String() == name {
			return d, true
		}
	}
	return 0, false
}

// Stage is the point of the SMTP dialogue at which a door answers.
type Stage uint8

// The stages.
const (
	// RCPT is the reply to RCPT TO: the LMTP door's RCPT reply, the
	// milter's answer to SMFIC_RCPT, the policy service asked in
	// smtpd_recipient_restrictions, a socketmap looked up for a
	// recipient.
	RCPT Stage = iota + 1
	// Data is after the message: the LMTP door's reply per recipient
	// after the final "." of DATA (RFC 2033 §4.2), the milter's answer to
	// the end of message (SMFIC_BODYEOB), which is for the whole message.
	Data
	// Connect is when a connection opens: the LMTP door's greeting (RFC
	// 5321 §3.1, §4.2), where a 421 takes the place of the 220 and the
	// connection is closed. Only the LMTP door answers at it.
	Connect
)

// String returns "RCPT", "DATA" or "connect".
func (s Stage) String() string {
	switch s {
	case RCPT:
		return "RCPT"
	case Data:
		return "DATA"
	case Connect:
		return "connect"
	}
	return "invalid"
}

// Action is what kind of answer a door gives.
type Action uint8

// The actions.
const (
	// None: the door never meets this outcome at this stage (e.g. a
	// full spool at the milter). A door that meets it anyway answers
	// LocalError.
	None Action = iota
	// Pass: listgate does not object and the dialogue goes on: go-smtp's
	// own "250 2.0.0" to an LMTP RCPT, the milter's SMFIR_CONTINUE, the
	// policy service's DUNNO.
	Pass
	// Send: the door sends Answer.Reply: as an LMTP reply, as the
	// milter's SMFIR_REPLYCODE, as the policy service's action (access(5)
	// "NNN text").
	Send
	// AcceptMessage: the milter's SMFIR_ACCEPT at the end of a message.
	AcceptMessage
	// Found, NotFound and Temp are the socketmap replies "OK",
	// "NOTFOUND" and "TEMP" (socketmap_table(5)); a TEMP carries
	// Answer.Reply's text as its reason.
	Found
	NotFound
	Temp
)

// Answer is what one door answers for one outcome at one stage.
type Answer struct {
	Door   Door
	Stage  Stage
	Action Action
	// Reply is the reply sent (Action Send) or the reason given (Temp);
	// zero otherwise.
	Reply Reply
}

// String formats a as the door puts it on the wire, without framing:
// "550 5.1.1 Requested action not taken: mailbox unavailable",
// "continue", "DUNNO", "TEMP Temporary lookup failure", "-" for None.
func (a Answer) String() string {
	switch a.Action {
	case Send:
		return a.Reply.String()
	case Pass:
		switch a.Door {
		case LMTP:
			return "250 2.0.0 (go-smtp's own text)"
		case Milter:
			return "continue"
		case Policy:
			return "DUNNO"
		}
		return "pass"
	case AcceptMessage:
		return "accept"
	case Found:
		return "OK"
	case NotFound:
		return "NOTFOUND"
	case Temp:
		return "TEMP " + a.Reply.Text
	}
	return "-"
}

// Row is one row of the verdict table: an outcome, when it is given, and
// each door's answer at each stage.
type Row struct {
	Outcome Outcome
	// When says when the outcome is given, for docs/replies.md
	// (Markdown).
	When string

	lmtp, milter, policy, socketmap stages
	// greeting is the LMTP door's answer at Connect; none for every
	// other outcome.
	greeting Answer
}

// stages are one door's answers for one outcome.
type stages struct{ rcpt, data Answer }

func (r *Row) door(d Door) stages {
	switch d {
	case LMTP:
		return r.lmtp
	case Milter:
		return r.milter
	case Policy:
		return r.policy
	case Socketmap:
		return r.socketmap
	}
	return stages{}
}

// Shorthands for the table.
var (
	none     = Answer{}
	pass     = Answer{Action: Pass}
	accepted = Answer{Action: AcceptMessage}
	found    = Answer{Action: Found}
	notFound = Answer{Action: NotFound}
)

func send(r Reply) Answer { return Answer{Action: Send, Reply: r} }
func temp(r Reply) Answer { return Answer{Action: Temp, Reply: r} }

// table is the verdict table of docs/design.md: for each outcome, what
// each door answers at RCPT and after the message. It is the only place
// where listgate's replies are chosen; docs/replies.md and the doc.go of
// each door show it (their tables are checked against it by TestDocs).
//
// The milter lets a recipient of a domain listgate does not serve pass:
// another restriction, or Postfix itself, decides for it. The LMTP door
// refuses it: Postfix should not have sent it there.
var table = [numOutcomes + 1]Row{
	Accept: {
		When:      "a list's posting address or sub-address",
		lmtp:      stages{pass, send(delivered)},
		milter:    stages{pass, accepted},
		policy:    stages{pass, none},
		socketmap: stages{found, none},
	},
	Unknown: {
		When:      "the domain is served, but no list has this name",
		lmtp:      stages{send(mailboxUnavl), none},
		milter:    stages{send(mailboxUnavl), none},
		policy:    stages{send(mailboxUnavl), none},
		socketmap: stages{notFound, none},
	},
	NotServed: {
		When:      "the domain is none of listgate's",
		lmtp:      stages{send(mailboxUnavl), none},
		milter:    stages{pass, none},
		policy:    stages{pass, none},
		socketmap: stages{notFound, none},
	},
	Broken: {
		When: "the list's file has never parsed, or two files (or two aliases) claim the address, " +
			"or the address is unknown in a domain where a list file has never parsed (it may be that file's alias)",
		lmtp:      stages{send(lookupFailure), none},
		milter:    stages{send(lookupFailure), none},
		policy:    stages{send(lookupFailure), none},
		socketmap: stages{temp(lookupFailure), none},
	},
	TooLarge: {
		When: "`SIZE=` or the message exceeds the list's `max_message_size` (posting address) " +
			"or `--max-message-size` (any address)",
		lmtp:      stages{send(tooLarge), send(tooLarge)},
		milter:    stages{send(tooLarge), send(tooLarge)},
		policy:    stages{send(tooLarge), none},
		socketmap: stages{none, none},
	},
	Alias: {
		When: "`postmaster@` or `abuse@` of a served domain whose domain file sets `postmaster` or `abuse` " +
			"(and no list has that name): the socketmap's `aliases` map gives Postfix's `virtual_alias_maps` the address " +
			"to rewrite it to; the milter and the policy service let it pass. The LMTP door should never see it " +
			"(Postfix rewrites it before delivery): it tempfails, so the mail stays queued while the admin " +
			"adds the `aliases` map, and logs why",
		lmtp:      stages{send(lookupFailure), none},
		milter:    stages{pass, none},
		policy:    stages{pass, none},
		socketmap: stages{found, none},
	},
	Observed: {
		When: "the domain is in observe mode (domain file `mode = \"observe\"`, or the `observe` setting) and no list " +
			"has this name: enforce would answer `unknown`. The milter and the policy service let it pass, the socketmap's " +
			"`recipients` map finds it (and `transport` routes it to the LMTP door), and each counts it in " +
			"`listgate_would_refuse_total`. The LMTP door refuses it as `unknown`: Postfix has accepted the mail, " +
			"so it bounces to the sender. Observe mode is not fail-open at the LMTP door: it is meant for a domain " +
			"whose mail still goes to its old list manager (docs/lists.md, \"Observe mode\")",
		lmtp:      stages{send(mailboxUnavl), none},
		milter:    stages{pass, none},
		policy:    stages{pass, none},
		socketmap: stages{found, none},
	},
	LocalError: {
		When: "listgate itself failed: a storage error, message data cut off, an internal panic, " +
			"no lists to ask",
		lmtp:      stages{send(localError), send(localError)},
		milter:    stages{send(localError), send(localError)},
		policy:    stages{send(localError), none},
		socketmap: stages{temp(localError), none},
	},
	NoSpace: {
		When: "at `RCPT`: the recipient's copy of the message (`SIZE=`) would leave less free space, or fewer free inodes, " +
			"on the spool's file system than `spool_reserve`; after `DATA`: the file system is full or a quota is exceeded. " +
			"The milter answers neither: Postfix's queue holds the mail until the LMTP door takes it",
		lmtp:      stages{send(noSpace), send(noSpace)},
		milter:    stages{none, none},
		policy:    stages{none, none},
		socketmap: stages{none, none},
	},
	TooManyRecipients: {
		When: "the LMTP transaction already has `--max-recipients` accepted recipients (default 1000, " +
			"above Postfix's `lmtp_destination_recipient_limit` of 50): the client sends the rest in another " +
			"transaction (RFC 5321 §4.5.3.1.10). Postfix's smtpd applies its own `smtpd_recipient_limit` before the milter",
		lmtp:      stages{send(tooManyRcpts), none},
		milter:    stages{none, none},
		policy:    stages{none, none},
		socketmap: stages{none, none},
	},
	TooManyConnections: {
		When: "a new connection would pass the door's `--max-connections` (default 1000) or its client address's " +
			"`--max-connections-per-client` (default 500): the LMTP door answers it in place of its greeting and " +
			"closes the connection, and Postfix tries again later; the milter, policy and socketmap doors close it " +
			"(Postfix then applies `milter_default_action`, `smtpd_policy_service_default_action`, or a lookup error)",
		lmtp:      stages{none, none},
		milter:    stages{none, none},
		policy:    stages{none, none},
		socketmap: stages{none, none},
		greeting:  send(tooManyConns),
	},
}

// Table returns the rows of the verdict table, in Outcomes order.
func Table() []Row {
	rows := make([]Row, 0, numOutcomes)
	for _, o := range Outcomes() {
		r := table[o]
		r.Outcome = o
		rows = append(rows, r)
	}
	return rows
}

// For returns door d's answer for outcome o at stage st, straight from the
// table. An outcome the table does not know is answered as LocalError; a
// door or stage it does not know gets None.
func For(d Door, st Stage, o Outcome) Answer {
	if o == 0 || o > numOutcomes {
		o = LocalError
	}
	row := table[o]
	s := row.door(d)
	var a Answer
	switch st {
	case RCPT:
		a = s.rcpt
	case Data:
		a = s.data
	case Connect:
		if d == LMTP {
			a = row.greeting
		}
	}
	a.Door, a.Stage = d, st
	return a
}

// ForDoor returns door d's answer to a recipient whose verdict has status
// s, at the stage where the door gives it, for `listgate check`: the
// answer at RCPT, unless the door lets the recipient pass there and
// answers it after the message (the LMTP door's "250 2.1.5" after DATA,
// the milter's accept at the end of message).
func ForDoor(d Door, s lists.Status) Answer {
	o := Of(s)
	a := For(d, RCPT, o)
	if a.Action == Pass {
		if after := For(d, Data, o); after.Action != None {
			return after
		}
	}
	return a
}
