package postfix

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/reply"
)

// PolicyServer is the policy door: a Postfix SMTP access policy
// delegation server (SMTPD_POLICY_README), asked through
// check_policy_service in smtpd_recipient_restrictions. Its zero value is
// not usable; call NewPolicy.
type PolicyServer struct {
	s   *server
	max int64 // the global limit: Options.MaxMessageSize or its default
}

// NewPolicy returns a policy door answering from o.Lists. It registers the
// door's metrics with o.Registerer.
func NewPolicy(o Options) *PolicyServer {
	p := &PolicyServer{s: newServer(doorPolicy, o), max: o.MaxMessageSize}
	if p.max <= 0 {
		p.max = lists.DefaultMaxMessageSize
	}
	if o.Lists == nil {
		p.s.log.Warn("no lists: every recipient is answered 451 4.3.0", "door", doorPolicy)
	}
	p.s.serve = p.serveConn
	return p
}

// Serve accepts policy connections from Postfix on l (TCP or unix) until
// Shutdown, and then returns ErrServerClosed. Any other error is the
// listener's. l is closed on return.
func (p *PolicyServer) Serve(l net.Listener) error { return p.s.Serve(l) }

// Shutdown stops the server gracefully: it closes the listeners, closes
// every connection waiting for its next request, lets the requests being
// read or answered get their reply, closes their connections, and returns
// when every connection is gone. If ctx ends first, the remaining
// connections are closed and ctx's error is returned. A second Shutdown
// returns ErrServerClosed. Postfix answers the SMTP clients of a
// connection it lost with smtpd_policy_service_default_action (by default
// 451 4.3.5), after reconnecting smtpd_policy_service_try_limit times.
func (p *PolicyServer) Shutdown(ctx context.Context) error { return p.s.Shutdown(ctx) }

// The attribute names and values the door reads (SMTPD_POLICY_README,
// "Protocol description"). Every other attribute is ignored.
const (
	attrRequest  = "request"
	attrState    = "protocol_state"
	attrRcpt     = "recipient"
	attrSize     = "size"
	attrHelo     = "helo_name"
	attrSender   = "sender"
	attrQueueID  = "queue_id"
	attrClient   = "client_address"
	requestValue = "smtpd_access_policy"
	stateRCPT    = "RCPT"
)

// request is one policy delegation request: the attributes the door
// reads. Postfix sends each attribute once; of a repeated one the first
// counts, as in Postfix's own attribute reader (attr_scan_plain.c keeps
// the first instance of a name in its table).
type request struct {
	kind      string // request=, "smtpd_access_policy"
	state     string // protocol_state=, e.g. "RCPT"
	rcpt      string // recipient=, as Postfix received it
	size      string // size=, MAIL FROM's SIZE= ("0" when not given)
	helo      string // helo_name=
	sender    string // sender=
	queueID   string // queue_id=
	client    string // client_address=
	hasKind   bool
	hasState  bool
	hasRcpt   bool
	hasSize   bool
	hasHelo   bool
	hasSender bool
	hasQueue  bool
	hasClient bool
}

// set records attribute name=value, unless name was seen before.
func (r *request) set(name, value []byte) {
	var dst *string
	var seen *bool
	switch string(name) { // no allocation: the compiler compares in place
	case attrRequest:
		dst, seen = &r.kind, &r.hasKind
	case attrState:
		dst, seen = &r.state, &r.hasState
	case attrRcpt:
		dst, seen = &r.rcpt, &r.hasRcpt
	case attrSize:
		dst, seen = &r.size, &r.hasSize
	case attrHelo:
		dst, seen = &r.helo, &r.hasHelo
	case attrSender:
		dst, seen = &r.sender, &r.hasSender
	case attrQueueID:
		dst, seen = &r.queueID, &r.hasQueue
	case attrClient:
		dst, seen = &r.client, &r.hasClient
	default:
		return
	}
	if !*seen {
		*dst, *seen = string(value), true
	}
}

// errTooBig is returned by readRequest for a request larger than the
// limit; the rest of it is not read, so the connection must end.
var errTooBig = errors.New("request too large")

// malformedError is a request that was read to its end (its empty line)
// but is not a valid policy request; the next one can be read.
type malformedError struct{ reason string }

func (e *malformedError) Error() string { return "malformed policy request: " + e.reason }

// readRequest reads one policy request from r: lines "name=value" ended
// by a newline, the request ended by an empty line (SMTPD_POLICY_README;
// Postfix's attr_print_plain writes exactly that, with bare newlines). A
// carriage return before a newline is dropped, for people testing by
// hand. r's buffer must hold maxLine bytes.
//
// It returns io.EOF when r ends before the request's first byte, and an
// error wrapping io.ErrUnexpectedEOF when it ends within the request (or
// the connection's error: a timeout, a reset). A line longer than maxLine,
// a line without '=' or with an empty name, a NUL byte, a request without
// request=smtpd_access_policy or protocol_state: the request is read to
// its empty line and a *malformedError returned. More than maxReq bytes
// in all: errTooBig, at once.
func readRequest(r *bufio.Reader, maxLine, maxReq int) (request, error) {
	var req request
	var bad string
	total := 0
	for n := 1; ; n++ {
		line, err := r.ReadSlice('\n')
		total += len(line)
		long := err == bufio.ErrBufferFull || len(line) > maxLine
		for err == bufio.ErrBufferFull && total <= maxReq {
			line, err = r.ReadSlice('\n') // the rest of a line too long
			total += len(line)
		}
		if total > maxReq {
			return req, errTooBig
		}
		if err != nil {
			if total == 0 && errors.Is(err, io.EOF) {
				return req, io.EOF
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return req, fmt.Errorf("reading policy request line %d: %w", n, err)
		}
		if long {
			if bad == "" {
				bad = fmt.Sprintf("line %d longer than %d bytes", n, maxLine)
			}
			continue
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
		if len(line) == 0 {
			break
		}
		if bad != "" {
			continue
		}
		eq := bytes.IndexByte(line, '=')
		switch {
		case bytes.IndexByte(line, 0) >= 0:
			bad = fmt.Sprintf("line %d holds a NUL byte", n)
		case eq < 0:
			bad = fmt.Sprintf("line %d is not name=value", n)
		case eq == 0:
			bad = fmt.Sprintf("line %d has no attribute name", n)
		default:
			req.set(line[:eq], line[eq+1:])
		}
	}
	switch {
	case bad != "":
	case !req.hasKind || req.kind != requestValue:
		bad = fmt.Sprintf("want request=%s, got %q", requestValue, req.kind)
	case !req.hasState:
		bad = "no protocol_state"
	}
	if bad != "" {
		return req, &malformedError{bad}
	}
	return req, nil
}

// parseSize reads the size= attribute: decimal digits, at most
// math.MaxInt64 (a larger value counts as that); empty is 0, as Postfix
// sends for a MAIL FROM without SIZE=. It reports false for anything else.
func parseSize(s string) (int64, bool) {
	var n int64
	for i := 0; i < len(s); i++ {
		d := s[i]
		if d < '0' || d > '9' {
			return 0, false
		}
		if n > (math.MaxInt64-int64(d-'0'))/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}

// sizeMargin is the fixed part of the margin the door adds to size=
// before comparing it with a limit: the same as the milter door's (see
// package milter, margin), for the same reason. Postfix sends the SIZE=
// of MAIL FROM; its LMTP client later announces to the LMTP door the
// size of its queue file, larger by Postfix's own Received: header (whose
// first lines name the HELO name and the recipient) and a few records. A
// recipient let through here must not be refused for its size by the
// LMTP door, which would make Postfix bounce the message; refusing a
// little early is safe. The two doors adding the same margin also keeps
// their verdicts the same.
const sizeMargin = 2 << 10

// margin is sizeMargin plus the lengths of the HELO name and the
// recipient.
func margin(helo, rcpt string) int64 {
	return sizeMargin + int64(len(helo)) + int64(len(rcpt))
}

// policyAction is the door's one mapping from an outcome to its answer:
// the policy column of the verdict table (package reply), as an access(5)
// action. A recipient let through is DUNNO (never OK, which would end
// smtpd_recipient_restrictions and skip the restrictions after it); a
// refusal is "NNN X.Y.Z text", which Postfix gives the SMTP client as is.
// An outcome the table says the door never meets is answered as a local
// error.
func policyAction(o reply.Outcome) string {
	a := reply.For(reply.Policy, reply.RCPT, o)
	switch a.Action {
	case reply.Pass:
		return "DUNNO"
	case reply.Send:
		return a.Reply.String()
	}
	return reply.For(reply.Policy, reply.RCPT, reply.LocalError).Reply.String()
}

// frameAction is action as a policy reply: "action=...", then the empty
// line that ends it.
func frameAction(action string) []byte {
	return []byte("action=" + action + "\n\n")
}

// serveConn answers the requests of one connection, in order, until
// Postfix closes it, it stays idle too long, or Shutdown.
func (p *PolicyServer) serveConn(c *conn) {
	s := p.s
	for c.next() {
		req, err := readRequest(c.br, s.maxLine, s.maxReq)
		var action string
		var mal *malformedError
		switch {
		case err == nil:
			action = p.answer(c, req)
		case errors.As(err, &mal), errors.Is(err, errTooBig):
			s.log.Warn("malformed policy request; replying tempfail", "door", doorPolicy,
				"remote", c.remote(), "err", err)
			s.m.protocolErrors.Inc()
			s.m.requests.WithLabelValues(reply.LocalError.String()).Inc()
			action = policyAction(reply.LocalError)
		default:
			s.log.Warn("policy request cut off; closing the connection", "door", doorPolicy,
				"remote", c.remote(), "err", err)
			s.m.protocolErrors.Inc()
			return
		}
		if err := c.reply(frameAction(action)); err != nil {
			s.log.Debug("writing the policy reply", "door", doorPolicy, "remote", c.remote(), "err", err)
			return
		}
		if errors.Is(err, errTooBig) {
			return // the rest of the request was not read
		}
	}
}

// answer judges one well-formed request: only at protocol_state=RCPT, the
// recipient as Postfix sent it, resolved on the current snapshot and
// checked against size= (margin included). A panic is the local-error
// tempfail.
func (p *PolicyServer) answer(c *conn, req request) (action string) {
	s := p.s
	defer func() {
		if v := recover(); v != nil {
			s.panicked(c, "policy", req.rcpt, v)
			s.m.requests.WithLabelValues(reply.LocalError.String()).Inc()
			action = policyAction(reply.LocalError)
		}
	}()
	if req.state != stateRCPT {
		s.log.Debug("policy request", "door", doorPolicy, "protocol_state", req.state,
			"rcpt", req.rcpt, "action", "DUNNO")
		s.m.requests.WithLabelValues(labelIgnored).Inc()
		return "DUNNO"
	}
	var o reply.Outcome
	var list string
	size, sizeOK := parseSize(req.size)
	snap := s.snapshot()
	switch {
	case req.rcpt == "":
		s.log.Warn("policy request at RCPT without a recipient; replying tempfail", "door", doorPolicy,
			"remote", c.remote(), "queue_id", req.queueID)
		s.m.protocolErrors.Inc()
		o = reply.LocalError
	case !sizeOK:
		s.log.Warn("policy request with a malformed size; replying tempfail", "door", doorPolicy,
			"remote", c.remote(), "rcpt", req.rcpt, "size", req.size)
		s.m.protocolErrors.Inc()
		o = reply.LocalError
	case snap == nil:
		o = reply.LocalError
	default:
		v := snap.Resolve(req.rcpt) // raw, as every door
		if size > 0 {
			v = v.CheckSize(addSat(size, margin(req.helo, req.rcpt)), p.max)
		}
		o, list = reply.Of(v.Status), v.List
		if o == reply.Observed {
			// Observe mode: enforce would refuse it (550 5.1.1).
			s.m.wouldRefuse.WithLabelValues(doorPolicy, v.Domain).Inc()
		}
	}
	action = policyAction(o)
	s.log.Info("rcpt", "door", doorPolicy, "rcpt", req.rcpt, "list", list, "verdict", o.String(),
		"queue_id", req.queueID, "client_addr", req.client, "from", req.sender)
	s.log.Debug("policy request", "door", doorPolicy, "protocol_state", req.state,
		"rcpt", req.rcpt, "size", req.size, "action", action)
	s.m.requests.WithLabelValues(o.String()).Inc()
	return action
}

// addSat returns a+b for non-negative a and b, or math.MaxInt64 if the sum
// does not fit.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
