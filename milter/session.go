package milter

import (
	"fmt"
	"math"
	"runtime/debug"
	"strings"

	gomilter "github.com/d--j/go-milter"

	"github.com/listgate/listgate/lists"
)

// protocolVersion is the milter protocol version the door speaks at most.
const protocolVersion = 6

// wantActions are the actions the door asks of the MTA: none that change a
// message, only the right to name the macros it wants (SMFIF_SETSYMLIST).
const wantActions = gomilter.OptSetMacros

// wantProtocol turns off every event but MAIL FROM and RCPT TO, and every
// reply but the one to RCPT TO. SMFIP_SKIP and SMFIP_RCPT_REJ are left out
// on purpose (see the package documentation).
const wantProtocol = gomilter.OptNoConnect | gomilter.OptNoHelo | gomilter.OptNoHeaders |
	gomilter.OptNoEOH | gomilter.OptNoBody | gomilter.OptNoData | gomilter.OptNoUnknown |
	gomilter.OptNoConnReply | gomilter.OptNoHeloReply | gomilter.OptNoMailReply |
	gomilter.OptNoHeaderReply | gomilter.OptNoEOHReply | gomilter.OptNoBodyReply |
	gomilter.OptNoDataReply | gomilter.OptNoUnknownReply

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

// statusInternal is not a lists.Status: it stands for a failure inside
// listgate (a panic, no snapshot). milterReply answers it, like any status
// missing from the verdict table, with a tempfail.
const statusInternal lists.Status = math.MaxUint8

// milterReply is the door's one mapping from a verdict to its answer,
// DESIGN.md's verdict table, milter column. Accepted and foreign
// recipients continue (SMFIR_CONTINUE, never SMFIR_ACCEPT, which would end
// the checks for the rest of the message); every refusal is a custom
// SMFIR_REPLYCODE, which refuses only this recipient and keeps the
// transaction. Texts come from lists; go-milter doubles any '%' for the
// MTA, and Postfix undoes it.
func milterReply(v lists.Verdict) *gomilter.Response {
	var r lists.Reply
	switch v.Status {
	case lists.Accept, lists.NotServed:
		return gomilter.RespContinue
	case lists.Unknown, lists.Broken, lists.TooLarge:
		r = v.Status.Reply()
	default:
		r = lists.ReplyLocalError
	}
	resp, err := gomilter.RejectWithCodeAndReason(uint16(r.Code),
		fmt.Sprintf("%d.%d.%d %s", r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Text))
	if err != nil {
		// Only a code outside 400..599 or an oversized text fail, and the
		// replies in lists are neither; still never let one through.
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

	size   int64 // SIZE= of the current transaction, 0 if none
	failed bool  // MAIL FROM could not be handled: tempfail every RCPT
}

var _ gomilter.Milter = (*session)(nil)

// MailFrom starts a transaction and remembers its SIZE=. Its reply is not
// negotiated (SMFIP_NR_MAIL); with an MTA that still waits for one, it is
// continue.
func (m *session) MailFrom(_ string, esmtpArgs string, _ gomilter.Modifier) (resp *gomilter.Response, err error) {
	m.size, m.failed = 0, false
	defer func() {
		if p := recover(); p != nil {
			m.s.panicked("mail", "", p)
			m.failed = true
			resp, err = gomilter.RespContinue, nil
		}
	}()
	m.size = sizeParam(esmtpArgs)
	return gomilter.RespContinue, nil
}

// RcptTo gives the verdict for one recipient.
func (m *session) RcptTo(rcpt string, _ string, mod gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			m.s.panicked("rcpt", rcpt, p)
			m.s.metrics.rcpt.WithLabelValues(labelError).Inc()
			resp, err = milterReply(lists.Verdict{Status: statusInternal}), nil
		}
	}()
	if m.failed {
		m.s.metrics.rcpt.WithLabelValues(labelError).Inc()
		return milterReply(lists.Verdict{Status: statusInternal}), nil
	}
	snap := m.s.opts.Lists.Snapshot()
	if snap == nil {
		panic("lists source has no snapshot")
	}
	// go-milter gives the address as the MTA sent it, less one pair of <>.
	v := snap.Resolve(rcpt).CheckSize(m.size, m.s.opts.MaxMessageSize)
	m.s.log.Info("rcpt", "door", "milter", "rcpt", rcpt, "list", v.List,
		"verdict", v.Status.String(), "queue_id", mod.Get(gomilter.MacroQueueId))
	m.s.metrics.rcpt.WithLabelValues(v.Status.String()).Inc()
	return milterReply(v), nil
}

// Abort ends the transaction without a message.
func (m *session) Abort(gomilter.Modifier) error {
	m.size, m.failed = 0, false
	return nil
}

// EndOfMessage ends the transaction. The recipients were judged one by
// one; the message itself is accepted.
func (m *session) EndOfMessage(gomilter.Modifier) (*gomilter.Response, error) {
	m.size, m.failed = 0, false
	return gomilter.RespAccept, nil
}

// panicked logs and counts a panic recovered while answering cmd.
func (s *Server) panicked(cmd, rcpt string, p any) {
	s.log.Error("panic answering the MTA; replying tempfail", "door", "milter", "command", cmd,
		"rcpt", rcpt, "err", fmt.Sprint(p), "stack", string(debug.Stack()))
	s.metrics.panics.Inc()
}
