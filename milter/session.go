package milter

import (
	"fmt"
	"math"
	"runtime/debug"
	"strings"
	"sync"

	gomilter "github.com/d--j/go-milter"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/reply"
)

// protocolVersion is the milter protocol version the door speaks at most.
const protocolVersion = 6

// wantActions are the actions the door asks of the MTA: none that change a
// message, only the right to name the macros it wants (SMFIF_SETSYMLIST).
const wantActions = gomilter.OptSetMacros

// wantProtocol asks for the events the door uses (CONNECT, HELO, MAIL
// FROM, RCPT TO, header fields, body chunks; the end of message cannot be
// turned off) and for replies only where it answers (RCPT TO, body chunks,
// end of message). SMFIP_SKIP lets it answer "skip" to a body chunk, and
// SMFIP_HDR_LEADSPC has header values come whole, so they can be counted
// exactly. SMFIP_RCPT_REJ is left out on purpose (see the package
// documentation).
const wantProtocol = gomilter.OptNoEOH | gomilter.OptNoData | gomilter.OptNoUnknown |
	gomilter.OptNoConnReply | gomilter.OptNoHeloReply | gomilter.OptNoMailReply |
	gomilter.OptNoHeaderReply | gomilter.OptNoEOHReply | gomilter.OptNoDataReply | gomilter.OptNoUnknownReply |
	gomilter.OptSkip | gomilter.OptHeaderLeadingSpace

// negotiate answers the MTA's SMFIC_OPTNEG. go-milter's own negotiation
// refuses an MTA that does not offer every flag asked for; every flag the
// door asks for is an optimisation, so it takes what is offered instead:
// the lower protocol version, and the intersection of actions and of
// protocol flags. An MTA that ignores a "no event" flag merely sends
// events the session answers with continue.
func negotiate(mtaVersion, milterVersion uint32, mtaActions, milterActions gomilter.OptAction,
	mtaProtocol, milterProtocol gomilter.OptProtocol, _ gomilter.DataSize,
) (uint32, gomilter.OptAction, gomilter.OptProtocol, gomilter.DataSize, error) {
	if mtaVersion < 2 {
		return 0, 0, 0, 0, fmt.Errorf("milter: negotiate: MTA speaks milter protocol %d, want 2 to %d", mtaVersion, milterVersion)
	}
	return min(mtaVersion, milterVersion), milterActions & mtaActions, milterProtocol & mtaProtocol,
		gomilter.DataSize64K, nil
}

// milterReply is the door's one mapping from an outcome to its answer at
// a stage: the milter column of the verdict table (package reply,
// docs/design.md). At RCPT, accepted and foreign recipients continue
// (SMFIR_CONTINUE, never SMFIR_ACCEPT, which would end the checks for the
// rest of the message); every refusal is a custom SMFIR_REPLYCODE, which
// refuses only this recipient and keeps the transaction. At the end of
// message, a message let in is accepted (SMFIR_ACCEPT) and a refusal
// refuses the whole message. A case the table says the milter never meets
// is answered as a local error. go-milter doubles any '%' of the text for
// the MTA, and Postfix undoes it.
//
// The answers are made once, when first asked for, and shared (a response
// is never changed once made): formatting a reply allocated about 8 KiB
// for every refused recipient.
func milterReply(st reply.Stage, o reply.Outcome) *gomilter.Response {
	t := milterReplies()
	if int(st) >= len(t) {
		return makeMilterReply(st, o)
	}
	return t[st][o]
}

// milterReplies holds milterReply's answer for every stage and outcome,
// indexed by them (index 0 and values past the last are never asked for,
// but are answered as a local error).
var milterReplies = sync.OnceValue(func() (t [reply.Connect + 1][256]*gomilter.Response) {
	for st := range t {
		for o := range t[st] {
			t[st][o] = makeMilterReply(reply.Stage(st), reply.Outcome(o))
		}
	}
	return t
})

// makeMilterReply makes milterReply's answer.
func makeMilterReply(st reply.Stage, o reply.Outcome) *gomilter.Response {
	a := reply.For(reply.Milter, st, o)
	switch a.Action {
	case reply.Pass:
		return gomilter.RespContinue
	case reply.AcceptMessage:
		return gomilter.RespAccept
	case reply.Send:
	default:
		a = reply.For(reply.Milter, st, reply.LocalError)
	}
	r := a.Reply
	resp, err := gomilter.RejectWithCodeAndReason(uint16(r.Code), r.Status()+" "+r.Text)
	if err != nil {
		// Only a code outside 400..599 or an oversized text fail, and the
		// replies of the table are neither; still never let one through.
		return gomilter.RespTempFail
	}
	return resp
}

// sizeParam returns the message size announced by the SIZE= parameter of
// MAIL FROM (RFC 1870 §6: size-value ::= 1*20DIGIT), given go-milter's
// space-separated ESMTP arguments; the first SIZE= counts. The keyword is
// case-insensitive, in ASCII (RFC 5321 §2.4). A value too large for an
// int64 counts as math.MaxInt64; no SIZE=, or one that is not all digits,
// is 0, "unknown" (Postfix refuses a malformed SIZE= itself before the
// milter is asked).
func sizeParam(args string) int64 {
	for arg := range strings.SplitSeq(args, " ") {
		key, val, ok := strings.Cut(arg, "=")
		if !ok || len(key) != 4 || !strings.EqualFold(key, "SIZE") { // ASCII only: not "ſIZE"
			continue
		}
		if val == "" {
			return 0
		}
		var n int64
		for i := 0; i < len(val); i++ {
			d := val[i]
			if d < '0' || d > '9' {
				return 0
			}
			if n > (math.MaxInt64-int64(d-'0'))/10 {
				n = math.MaxInt64
				continue
			}
			n = n*10 + int64(d-'0')
		}
		return n
	}
	return 0
}

// session is the state of one milter connection, which Postfix opens per
// SMTP session. go-milter calls its methods from one goroutine.
type session struct {
	gomilter.NoOpMilter
	s *Server

	canSkip   bool   // SMFIP_SKIP negotiated: a body chunk may be answered "skip"
	leadSpace bool   // SMFIP_HDR_LEADSPC negotiated: header values come whole
	helo      int    // length of the SMTP session's HELO name
	client    string // the SMTP client's address, for the logs ("" if the MTA did not say)

	tx transaction
}

// transaction is the state of one mail transaction, from MAIL FROM to its
// end of message or abort.
type transaction struct {
	from string // the envelope sender, for the logs
	size int64  // SIZE= of the transaction, 0 if none
	// failed is set by a panic while reading MAIL FROM, a header field or
	// a body chunk: what is left (RCPTs, the message) is a tempfail.
	failed bool

	// accepted is true once a recipient was let through as listgate's
	// (a list's posting address or sub-address): the message's size
	// matters, up to the global limit.
	accepted bool
	// postLimit is the smallest max_message_size of the posting
	// addresses let through (0: none has one), and postList its list.
	postLimit int64
	postList  string
	// rcpt is the length of the longest recipient let through as
	// listgate's (see margin).
	rcpt int

	count counter // the message's size, from its header fields and body
}

var _ gomilter.Milter = (*session)(nil)

// newSession makes the session for one connection, with what was
// negotiated on it.
func (s *Server) newSession(_ uint32, _ gomilter.OptAction, proto gomilter.OptProtocol, _ gomilter.DataSize) gomilter.Milter {
	return &session{s: s,
		canSkip:   proto&gomilter.OptSkip != 0,
		leadSpace: proto&gomilter.OptHeaderLeadingSpace != 0,
	}
}

// NewConnection starts a new SMTP session on the connection (SMFIC_QUIT_NC
// and the first one).
func (m *session) NewConnection(gomilter.Modifier) error {
	m.helo, m.client, m.tx = 0, "", transaction{}
	return nil
}

// Connect remembers the SMTP client's address (SMFIC_CONNECT), which the
// log lines carry as client_addr, as Postfix's own carry client=. Its
// reply is not negotiated (SMFIP_NR_CONN).
func (m *session) Connect(_ string, _ string, _ uint16, addr string, _ gomilter.Modifier) (*gomilter.Response, error) {
	m.client = addr
	return gomilter.RespContinue, nil
}

// Helo remembers the length of the HELO name, which Postfix writes into the
// Received: header it adds (see margin). Its reply is not negotiated.
func (m *session) Helo(name string, _ gomilter.Modifier) (*gomilter.Response, error) {
	m.helo = len(name)
	return gomilter.RespContinue, nil
}

// MailFrom starts a transaction and remembers its SIZE=. Its reply is not
// negotiated (SMFIP_NR_MAIL); with an MTA that still waits for one, it is
// continue.
func (m *session) MailFrom(from string, esmtpArgs string, _ gomilter.Modifier) (resp *gomilter.Response, err error) {
	m.tx = transaction{from: from}
	defer func() {
		if p := recover(); p != nil {
			m.panicked("mail", "", p)
			m.tx.failed = true
			resp, err = gomilter.RespContinue, nil
		}
	}()
	m.tx.size = sizeParam(esmtpArgs)
	return gomilter.RespContinue, nil
}

// RcptTo gives the verdict for one recipient. A SIZE= is checked with the
// margin the end of message adds, so that a recipient let through here is
// not refused there, with the whole message, for a size it declared.
// Without lists to ask (no Lists, or no snapshot) every recipient gets the
// local-error tempfail.
func (m *session) RcptTo(rcpt string, _ string, mod gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			m.panicked("rcpt", rcpt, p)
			m.s.metrics.rcpt.WithLabelValues(labelError).Inc()
			resp, err = milterReply(reply.RCPT, reply.LocalError), nil
		}
	}()
	if m.tx.failed {
		m.s.metrics.rcpt.WithLabelValues(labelError).Inc()
		return milterReply(reply.RCPT, reply.LocalError), nil
	}
	var snap *lists.Snapshot
	if m.s.opts.Lists != nil {
		snap = m.s.opts.Lists.Snapshot()
	}
	if snap == nil {
		m.logRcpt(rcpt, "", reply.LocalError, mod)
		return milterReply(reply.RCPT, reply.LocalError), nil
	}
	// go-milter gives the address as the MTA sent it, less one pair of <>.
	v := snap.Resolve(rcpt)
	if m.tx.size > 0 {
		v = v.CheckSize(addSat(m.tx.size, margin(m.helo, len(rcpt))), m.s.max)
	}
	o := reply.Of(v.Status)
	m.logRcpt(rcpt, v.List, o, mod)
	if o == reply.Observed {
		// Observe mode: enforce would refuse it (550 5.1.1).
		m.s.metrics.wouldRefuse.WithLabelValues("milter", v.Domain).Inc()
	}
	if v.Status == lists.Accept {
		m.tx.accepted = true
		m.tx.rcpt = max(m.tx.rcpt, len(rcpt))
		// Verdict.MaxMessageSize is 0 but for a posting address.
		if v.MaxMessageSize > 0 && (m.tx.postLimit == 0 || v.MaxMessageSize < m.tx.postLimit) {
			m.tx.postLimit, m.tx.postList = v.MaxMessageSize, v.List
		}
	}
	return milterReply(reply.RCPT, o), nil
}

// logRcpt logs the one line of a recipient's verdict and counts it.
func (m *session) logRcpt(rcpt, list string, o reply.Outcome, mod gomilter.Modifier) {
	m.s.log.Info("rcpt", "door", "milter", "rcpt", rcpt, "list", list, "verdict", o.String(),
		"queue_id", mod.Get(gomilter.MacroQueueId), "client_addr", m.client, "from", m.tx.from)
	m.s.metrics.rcpt.WithLabelValues(o.String()).Inc()
}

// checked reports whether the message's size is to be checked: a
// recipient was let through as listgate's (the global limit always
// applies to it).
func (m *session) checked() bool {
	return m.tx.accepted
}

// estimate is the message's size as counted so far, and the margin.
func (m *session) estimate() (size, marg int64) {
	return m.tx.count.total(), margin(m.helo, m.tx.rcpt)
}

// sizeVerdict judges a message of size bytes (margin included) against the
// limits of the recipients let through: the smallest list limit among the
// posting addresses, and the global limit.
func (m *session) sizeVerdict(size int64) lists.Verdict {
	v := lists.Verdict{Status: lists.Accept, List: m.tx.postList, MaxMessageSize: m.tx.postLimit}
	return v.CheckSize(size, m.s.max)
}

// skip answers a body chunk after which the door needs no more: "skip"
// (SMFIR_SKIP, Postfix sends no more body chunks of this message) where
// negotiated, otherwise continue.
func (m *session) skip() *gomilter.Response {
	if m.canSkip {
		return gomilter.RespSkip
	}
	return gomilter.RespContinue
}

// Header counts one header field. Its reply is not negotiated.
func (m *session) Header(name, value string, _ gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			m.panicked("header", "", p)
			m.tx.failed = true
			resp, err = gomilter.RespContinue, nil
		}
	}()
	if !m.tx.failed && m.checked() {
		m.tx.count.header(name, value, m.leadSpace)
	}
	return gomilter.RespContinue, nil
}

// BodyChunk counts a chunk of the body (CRLF line ends, as Postfix sends
// it); the body is never kept. Once the door needs no more of the body
// (no recipient of listgate's was let through, or the message is too
// large already), it answers skip.
func (m *session) BodyChunk(chunk []byte, _ gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			m.panicked("body", "", p)
			m.tx.failed = true
			resp, err = m.skip(), nil
		}
	}()
	if m.tx.failed || !m.checked() {
		return m.skip(), nil
	}
	m.tx.count.write(chunk)
	if size, marg := m.estimate(); m.sizeVerdict(addSat(size, marg)).Status == lists.TooLarge {
		return m.skip(), nil // decided: the rest cannot make it smaller
	}
	return gomilter.RespContinue, nil
}

// EndOfMessage ends the transaction. The recipients were judged one by
// one; the message is refused as a whole (552 5.3.4) if it is too large
// for one of them, accepted otherwise.
func (m *session) EndOfMessage(mod gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer func() { m.tx = transaction{} }()
	defer func() {
		if p := recover(); p != nil {
			m.panicked("eom", "", p)
			m.s.metrics.messages.WithLabelValues(labelError).Inc()
			resp, err = milterReply(reply.Data, reply.LocalError), nil
		}
	}()
	if m.tx.failed {
		m.s.metrics.messages.WithLabelValues(labelError).Inc()
		return milterReply(reply.Data, reply.LocalError), nil
	}
	if !m.checked() {
		m.s.metrics.messages.WithLabelValues(labelUnchecked).Inc()
		return milterReply(reply.Data, reply.Accept), nil
	}
	size, marg := m.estimate()
	o := reply.Of(m.sizeVerdict(addSat(size, marg)).Status)
	m.s.metrics.messages.WithLabelValues(o.String()).Inc()
	if o != reply.TooLarge {
		return milterReply(reply.Data, o), nil
	}
	list, limit := "", m.s.max
	if m.tx.postLimit > 0 && addSat(size, marg) > m.tx.postLimit {
		list, limit = m.tx.postList, m.tx.postLimit
	}
	m.s.log.Info("message", "door", "milter", "list", list, "verdict", o.String(),
		"queue_id", mod.Get(gomilter.MacroQueueId), "client_addr", m.client, "from", m.tx.from,
		"bytes", size, "margin", marg, "limit", limit)
	return milterReply(reply.Data, o), nil
}

// Abort ends the transaction without a message.
func (m *session) Abort(gomilter.Modifier) error {
	m.tx = transaction{}
	return nil
}

// panicked logs and counts a panic recovered while answering cmd.
func (m *session) panicked(cmd, rcpt string, p any) {
	m.s.log.Error("panic answering the MTA; replying tempfail", "door", "milter", "command", cmd,
		"rcpt", rcpt, "client_addr", m.client, "from", m.tx.from, "err", fmt.Sprint(p), "stack", string(debug.Stack()))
	m.s.metrics.panics.Inc()
}
