package lmtp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/reply"
	"github.com/listgate/listgate/spool"
)

// Pinned so that a change of go-smtp's interfaces cannot silently fall
// back to its single-status Data path (one reply for all recipients: the
// mistake of maddy's issue #453).
var (
	_ smtp.Backend     = backend{}
	_ smtp.Session     = (*session)(nil)
	_ smtp.LMTPSession = (*session)(nil)
)

// smtpError is the one place where the LMTP door turns an outcome into
// its reply at a stage: every reply it gives comes from package reply's
// verdict table (docs/design.md), never from an error's text. It returns
// a bare *smtp.SMTPError, which go-smtp sends as it is (any other error
// after DATA would become a permanent 554 and the mail would bounce), or
// nil where the door lets go-smtp answer (its own 250 to an accepted
// RCPT). A case the table says the door never meets is a local error.
func smtpError(st reply.Stage, o reply.Outcome) error {
	a := reply.For(reply.LMTP, st, o)
	switch a.Action {
	case reply.Pass:
		return nil
	case reply.Send:
	default:
		a = reply.For(reply.LMTP, st, reply.LocalError)
	}
	r := a.Reply
	return &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.EnhancedCode(r.EnhancedCode()), Message: r.Text}
}

type backend struct{ srv *Server }

// NewSession is called by go-smtp at LHLO.
func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s := &session{srv: b.srv, helo: c.Hostname()}
	s.conn, _ = c.Conn().(*conn)
	if addr := c.Conn().RemoteAddr(); addr != nil {
		s.remote = addr.String()
	}
	return s, nil
}

// session is one LMTP connection after LHLO. go-smtp calls its methods
// from the connection's goroutine, except LMTPData, which it runs in a
// goroutine of its own (and which, with BDAT, can overlap a RSET): mu
// guards the transaction.
type session struct {
	srv    *Server
	conn   *conn // nil only if go-smtp hands us a connection we did not accept
	helo   string
	remote string

	mu   sync.Mutex
	tx   transaction
	inTx bool // MAIL was accepted: the connection is busy

	// data is held while LMTPData runs; Reset waits for it. See LMTPData.
	data sync.Mutex
	// aborted is the BDAT data of a transfer that ended without its last
	// chunk; Reset waits until go-smtp has closed it. Guarded by mu.
	aborted *io.PipeReader
}

// transaction is the state from MAIL to the end of DATA.
type transaction struct {
	id    string // the door's own id: logs (lmtp_id) and the Received field
	from  string
	size  int64 // MAIL FROM's SIZE=, 0 if not given
	rcpts []recipient
}

// recipient is one accepted RCPT, with the verdict it was accepted under.
type recipient struct {
	rcpt string // exactly as received, the key go-smtp's StatusCollector wants
	v    lists.Verdict
}

// Mail starts a transaction. go-smtp itself refuses a SIZE= above
// MaxMessageBytes (552 5.3.4) before calling it.
func (s *session) Mail(from string, opts *smtp.MailOptions) (err error) {
	defer s.recover("mail", &err)
	var size int64
	if opts != nil {
		size = opts.Size
	}
	if size > s.srv.max {
		return smtpError(reply.RCPT, reply.TooLarge)
	}
	if s.conn != nil && !s.srv.begin(s.conn) {
		// Shutting down: the connection is closed; the client retries.
		return smtpError(reply.RCPT, reply.LocalError)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inTx {
		// A second MAIL in a transaction: go-smtp accepts it and keeps
		// the recipients, and so must we, or they would get no status
		// after DATA.
		s.tx.from, s.tx.size = from, size
		return nil
	}
	s.inTx = true
	s.tx = transaction{id: queueID(), from: from, size: size}
	return nil
}

// Rcpt resolves the recipient, raw as received, and answers with its
// verdict (RFC 2033 §4.1: RCPT replies as in SMTP). The reply to an
// accepted recipient is go-smtp's 250; the replies that count for an
// accepted recipient come after DATA. Without lists to ask (no Lists, or
// no snapshot yet) every recipient gets the local-error tempfail. A
// recipient that would be accepted gets 452 4.3.1 instead when its copy
// of the message (SIZE=, if given) would leave less than the spool's
// reserve free (spool.Spool.Room). Once the transaction has MaxRecipients
// accepted recipients, every further one gets 452 4.5.3 before it is
// resolved (RFC 5321 §4.5.3.1.10): the client sends it again in another
// transaction.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) (err error) {
	defer s.recover("rcpt", &err)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tx.rcpts) >= s.srv.maxRcpts {
		s.srv.logOutcome(to, "", reply.TooManyRecipients, s.tx.id, "")
		return smtpError(reply.RCPT, reply.TooManyRecipients)
	}
	var snap *lists.Snapshot
	if s.srv.lists != nil {
		snap = s.srv.lists.Snapshot()
	}
	if snap == nil {
		s.srv.logOutcome(to, "", reply.LocalError, s.tx.id, "")
		return smtpError(reply.RCPT, reply.LocalError)
	}
	v := snap.Resolve(to)
	if s.tx.size > 0 {
		// RFC 1870 §6.4: refuse at RCPT what cannot be accepted anyway.
		v = v.CheckSize(s.tx.size, s.srv.max)
	}
	o := reply.Of(v.Status)
	if o == reply.Accept {
		// Keep the spool's reserve free (spool_reserve): each accepted
		// recipient gets a copy of the message, whose size SIZE= gives
		// (Postfix's LMTP client sends it); below the reserve, 452 4.3.1
		// (RFC 3463 X.3.1, mail system full) and Postfix keeps the
		// message queued. Other verdicts store nothing and keep their
		// reply.
		n := int64(len(s.tx.rcpts) + 1)
		if err := s.srv.spool.Room(satMul(s.tx.size, n), n); err != nil {
			o = reply.LocalError
			if spool.IsNoSpace(err) {
				o = reply.NoSpace
			}
		}
	}
	s.srv.logOutcome(to, v.List, o, s.tx.id, "")
	if o == reply.Alias {
		// Postfix should have rewritten it before delivery; the 451
		// keeps the mail queued until it does.
		s.srv.log.Warn(fmt.Sprintf("%s@%s is an alias for %s: Postfix's virtual_alias_maps (socketmap aliases) should have rewritten it",
			v.Local, v.Domain, v.Target), "door", "lmtp", "rcpt", to, "lmtp_id", s.tx.id)
	}
	// An observed recipient (its domain in observe mode) is refused as
	// unknown: the milter let it through, Postfix accepted the mail, and
	// the 550 makes Postfix bounce it to the sender, as the domain's
	// setup did before listgate (docs/lists.md, "Observe mode").
	if o != reply.Accept {
		return smtpError(reply.RCPT, o)
	}
	s.tx.rcpts = append(s.tx.rcpts, recipient{rcpt: to, v: v})
	return smtpError(reply.RCPT, reply.Accept)
}

// Data is go-smtp's single-status path. It is never used: in LMTP mode
// go-smtp calls LMTPData, which the compile-time check above pins.
func (s *session) Data(r io.Reader) error {
	return smtpError(reply.Data, reply.LocalError)
}

// LMTPData reads the message once (streamed by spool.ReadMessage: a
// bounded buffer per connection, the rest in a spill file in the spool)
// and then delivers it to each accepted recipient (the copies of a
// message with several recipients written at the same time), setting
// each recipient's status, in RCPT order, only after its own delivery:
// 250 only once spool.Deliver has put that copy on stable storage
// (RFC 2033 §4.2; see the package documentation).
//
// The verdict is the one given at RCPT time: that is what the client was
// told, and it is not looked up again. A list removed between RCPT and
// DATA still gets the message it accepted, in its folder.
//
// go-smtp v0.25.1 runs LMTPData for BDAT (RFC 3030, which it always
// advertises) in a goroutine that, after LMTPData returns, sends the
// returned error to a channel it reads from the connection's state at
// that moment, and then closes r. When RSET or LHLO aborts a BDAT
// transfer and the client pipelines a new BDAT transaction, that error
// can reach the new transaction, whose recipients go-smtp then answers
// with it before their own delivery ran. Two defences:
//
//   - Reset (called by go-smtp's connection goroutine before it reads the
//     next command) waits until LMTPData has returned and go-smtp has
//     closed r, i.e. until the error went to the aborted transaction.
//   - LMTPData always returns a 451 (after setting every status, so
//     go-smtp ignores it otherwise): a stray result can only be a
//     tempfail, never a 250 that no file stands behind.
//
// go-smtp also reads the status collector in that goroutine without a
// lock, so "BDAT 0" followed at once by RSET can hand LMTPData a nil
// collector; the SetStatus panic is recovered as any other. Postfix's LMTP
// client does not use BDAT.
func (s *session) LMTPData(r io.Reader, status smtp.StatusCollector) (err error) {
	s.data.Lock()
	defer s.data.Unlock()
	// go-smtp gives the returned error to every recipient left without a
	// status (after a panic, or should its list of recipients ever differ
	// from ours). It is never nil, so go-smtp never answers 250 on its own.
	fallback := smtpError(reply.Data, reply.LocalError)
	defer s.recover("data", &err)
	s.mu.Lock()
	tx := s.tx
	tx.rcpts = append([]recipient(nil), s.tx.rcpts...)
	s.mu.Unlock()

	head := &headReader{r: r}
	m, rerr := s.srv.spool.ReadMessage(head)
	// Postfix's queue id, from the Received: field its smtpd added: the
	// key that joins these log lines with Postfix's.
	qid := receivedQueueID(head.head)
	if rerr != nil {
		// Nothing was stored. A message over the global limit, or with a
		// line longer than MaxLineLength, is refused for good (552 5.3.4);
		// a full disk while the message was spilled is 452 4.3.1;
		// anything else (the client went away, a timeout, another error
		// of the spill file) is a tempfail.
		o := reply.LocalError
		switch {
		case errors.Is(rerr, smtp.ErrDataTooLarge) || errors.Is(rerr, smtp.ErrTooLongLine):
			o = reply.TooLarge
		case spool.IsNoSpace(rerr):
			o = reply.NoSpace
		}
		s.srv.log.Warn("message not stored", "door", "lmtp", "lmtp_id", tx.id, "queue_id", qid,
			"result", deliveryResult(o), "err", rerr)
		if pr, ok := r.(*io.PipeReader); ok {
			s.mu.Lock()
			s.aborted = pr
			s.mu.Unlock()
		}
		for _, rc := range tx.rcpts {
			s.srv.m.deliveries.WithLabelValues(deliveryResult(o)).Inc()
			status.SetStatus(rc.rcpt, smtpError(reply.Data, o))
		}
		return fallback
	}
	defer m.Close()
	// Each recipient's copy is admitted first, in RCPT order (its list's
	// size limit; the spool's reserve, counting the copies admitted
	// before it); the admitted copies are then written at the same time
	// (at most maxParallelCopies at once), and each recipient's status is
	// set, in RCPT order, as soon as its own copy is on stable storage.
	// Every copy has ended before the message is closed (the deferred
	// Wait runs first).
	if len(tx.rcpts) == 1 { // the common case: no goroutine, no channel
		rc := tx.rcpts[0]
		o, ok := s.admit(m, tx, rc, qid, 0)
		if ok {
			o = s.deliver(m, tx, rc, qid)
		}
		status.SetStatus(rc.rcpt, smtpError(reply.Data, o))
		return fallback
	}
	outcomes := make([]chan reply.Outcome, len(tx.rcpts))
	sem := make(chan struct{}, maxParallelCopies)
	var wg sync.WaitGroup
	defer wg.Wait()
	var copies []int // indexes of the admitted recipients
	for i, rc := range tx.rcpts {
		outcomes[i] = make(chan reply.Outcome, 1)
		if o, ok := s.admit(m, tx, rc, qid, len(copies)); !ok {
			outcomes[i] <- o
			continue
		}
		copies = append(copies, i)
	}
	if len(copies) == 1 {
		i := copies[0]
		outcomes[i] <- s.deliver(m, tx, tx.rcpts[i], qid)
	} else {
		for _, i := range copies {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				outcomes[i] <- s.deliverCopy(m, tx, tx.rcpts[i], qid)
			})
		}
	}
	for i, rc := range tx.rcpts {
		status.SetStatus(rc.rcpt, smtpError(reply.Data, <-outcomes[i]))
	}
	return fallback
}

// maxParallelCopies is how many copies of one message the LMTP door
// writes at the same time, for a message with several recipients: each
// waits mostly on its file's and its folder's flush, so they overlap.
const maxParallelCopies = 8

// deliverCopy is deliver for a copy written in a goroutine of its own: a
// panic is that recipient's 451 4.3.0, logged once with its stack, and
// the session and the server go on.
func (s *session) deliverCopy(m *spool.Message, tx transaction, rc recipient, qid string) (o reply.Outcome) {
	defer func() {
		if p := recover(); p != nil {
			s.srv.m.panics.Inc()
			s.srv.m.deliveries.WithLabelValues(deliveryResult(reply.LocalError)).Inc()
			s.srv.log.Error("panic", "door", "lmtp", "cmd", "data", "rcpt", rc.rcpt, "err", fmt.Sprint(p), "stack", string(debug.Stack()))
			o = reply.LocalError
		}
	}()
	return s.deliver(m, tx, rc, qid)
}

// admit decides whether m is stored for one recipient: its list's own
// max_message_size (posting address only; Verdict.MaxMessageSize is 0 for
// sub-addresses) and the global limit, and, for a client that sent no
// SIZE=, the spool's reserve. prior is how many copies of m were admitted
// before this one: a client without SIZE= passed the reserve check at
// RCPT with a size of 0, so each copy is checked now that the size is
// known, counting the copies admitted before it, which are not on disk
// yet (a fresh reading also counts the message's spill file, so this errs
// on the safe side). With SIZE= the RCPT check counted every copy
// already. When ok is false, o is the recipient's outcome, logged and
// counted.
func (s *session) admit(m *spool.Message, tx transaction, rc recipient, qid string, prior int) (o reply.Outcome, ok bool) {
	if v := rc.v.CheckSize(m.Size(), s.srv.max); v.Status != lists.Accept {
		o := reply.Of(v.Status)
		s.srv.logOutcome(rc.rcpt, v.List, o, tx.id, qid)
		s.srv.m.deliveries.WithLabelValues(deliveryResult(o)).Inc()
		return o, false
	}
	if tx.size == 0 {
		n := int64(prior) + 1
		if err := s.srv.spool.Room(satMul(m.Size(), n), n); err != nil {
			s.srv.m.deliveries.WithLabelValues(deliveryResult(reply.NoSpace)).Inc()
			s.srv.log.Warn("not delivered: the spool is below its reserve", "door", "lmtp", "rcpt", rc.rcpt, "list", rc.v.List,
				"kind", string(rc.v.Kind), "lmtp_id", tx.id, "queue_id", qid, "result", deliveryResult(reply.NoSpace), "err", err)
			return reply.NoSpace, false
		}
	}
	return reply.Accept, true
}

// deliver stores m for one recipient that admit let through and returns
// the outcome, whose reply after DATA is the recipient's status (RFC 3463
// §3.2: 2.1.5 "destination address valid", the code of a positive
// delivery report). qid is Postfix's queue id, for the logs.
func (s *session) deliver(m *spool.Message, tx transaction, rc recipient, qid string) reply.Outcome {
	path, err := s.srv.spool.Deliver(m, spool.Envelope{
		Sender: tx.from, Rcpt: rc.rcpt,
		Domain: rc.v.Domain, Local: rc.v.Local, Kind: string(rc.v.Kind),
		Helo: s.helo, RemoteAddr: s.remote, ID: tx.id,
	})
	if err != nil {
		o := reply.LocalError
		if spool.IsNoSpace(err) {
			o = reply.NoSpace
		}
		s.srv.m.deliveries.WithLabelValues(deliveryResult(o)).Inc()
		s.srv.log.Error("delivery failed", "door", "lmtp", "rcpt", rc.rcpt, "list", rc.v.List,
			"kind", string(rc.v.Kind), "lmtp_id", tx.id, "queue_id", qid, "result", deliveryResult(o), "err", err)
		return o
	}
	s.srv.m.deliveries.WithLabelValues(resultDelivered).Inc()
	s.srv.log.Info("delivered", "door", "lmtp", "rcpt", rc.rcpt, "list", rc.v.List,
		"kind", string(rc.v.Kind), "lmtp_id", tx.id, "queue_id", qid, "file", path, "bytes", m.Size())
	return reply.Accept
}

// Reset ends the transaction: after the replies to DATA, on RSET and on
// a second LHLO. go-smtp has already closed the data of an unfinished
// BDAT transfer; Reset waits for its LMTPData to return (see LMTPData).
func (s *session) Reset() {
	s.data.Lock()
	//lint:ignore SA2001 empty on purpose: it waits for LMTPData to return
	s.data.Unlock()
	s.mu.Lock()
	aborted := s.aborted
	s.aborted = nil
	s.mu.Unlock()
	if aborted != nil {
		waitClosed(aborted)
	}
	s.mu.Lock()
	s.tx = transaction{}
	wasInTx := s.inTx
	s.inTx = false
	s.mu.Unlock()
	if wasInTx && s.conn != nil {
		s.srv.end(s.conn)
	}
}

// waitClosed waits (at most a second) until go-smtp has closed the reader
// side of an aborted BDAT transfer, which it does right after it has
// passed on LMTPData's result. Its writer side is closed already, so a
// Read returns at once: the writer's error until the reader is closed,
// then io.ErrClosedPipe.
func waitClosed(pr *io.PipeReader) {
	deadline := time.Now().Add(time.Second)
	for i := 0; ; i++ {
		if _, err := pr.Read(nil); errors.Is(err, io.ErrClosedPipe) || time.Now().After(deadline) {
			return
		}
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// Logout is called when the connection closes.
func (s *session) Logout() error { return nil }

// recover turns a panic in a session method into a 451 4.3.0 for that
// command, and logs it once with its stack. The session and the server
// go on.
func (s *session) recover(cmd string, err *error) {
	p := recover()
	if p == nil {
		return
	}
	s.srv.m.panics.Inc()
	if cmd == "rcpt" {
		s.srv.m.rcpts.WithLabelValues(reply.LocalError.String()).Inc()
	}
	s.srv.log.Error("panic", "door", "lmtp", "cmd", cmd, "err", fmt.Sprint(p), "stack", string(debug.Stack()))
	st := reply.Data
	if cmd != "data" {
		st = reply.RCPT // any command but DATA: the reply of a command
	}
	*err = smtpError(st, reply.LocalError)
}

// logOutcome logs one line per verdict and counts it. id is the door's
// own transaction id, qid Postfix's queue id, known only after DATA.
func (s *Server) logOutcome(rcpt, list string, o reply.Outcome, id, qid string) {
	s.m.rcpts.WithLabelValues(o.String()).Inc()
	s.log.Info("rcpt", "door", "lmtp", "rcpt", rcpt, "list", list,
		"verdict", o.String(), "lmtp_id", id, "queue_id", qid)
}

// satMul is a*b for non-negative a and b, at most math.MaxInt64.
func satMul(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

// queueID returns a new transaction id: 12 characters of base32, 60
// random bits.
func queueID() string { return rand.Text()[:12] }
