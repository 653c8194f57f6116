package postfixtest_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/internal/postfixtest"
)

// TestLookups records what Postfix asks a socketmap table and a policy
// service, key by key, for the recipients listgate cares about: the
// findings in docs/postfix-lookups.md come from its output (go test -v
// -run TestLookups ./internal/postfixtest). relay_domains,
// relay_recipient_maps, transport_maps and virtual_alias_maps are
// socketmap tables (socketmap_table(5)) served by a recorder in the test
// that answers from a small table of base addresses as listgate's Resolve
// would (any case; list+ext@ is list@'s), and some keys TEMP or PERM;
// check_policy_service (SMTPD_POLICY_README) is a recorder that answers
// DUNNO. Each lookup is recorded with the Postfix daemon that made it,
// found through /proc. The test checks
// the facts listgate's socketmap and policy doors rely on, and logs the
// whole record. It runs twice: with virtual_alias_domains at its default
// ($virtual_alias_maps, so that trivial-rewrite(8) asks the aliases map
// about every domain it resolves) and empty.
func TestLookups(t *testing.T) {
	t.Parallel()
	postfixtest.Require(t) // before the peers start: a skip is prompt
	for _, vad := range []string{"default", "empty"} {
		t.Run("virtual_alias_domains="+vad, func(t *testing.T) {
			t.Parallel()
			testLookups(t, vad == "empty")
		})
	}
}

func testLookups(t *testing.T, noAliasDomains bool) {
	lmtpLn := listenTCP(t)
	sink := startLMTP(t, lmtpLn)
	rec := &recorder{}
	nexthop := "lmtp:inet:" + lmtpLn.Addr().String()
	rec.table = map[string]map[string]string{
		"domains": {
			"example.org":         "OK example.org",
			"temp-domain.example": "TEMP the list source is unreachable",
			"perm-domain.example": "PERM a permanent error",
			"temp-sender.example": "TEMP the list source is unreachable",
		},
		"recipients": {
			"list@example.org":         "OK list",
			"list-bounces@example.org": "OK list",
			"temp-rcpt@example.org":    "TEMP the list source is unreachable",
			"perm-rcpt@example.org":    "PERM a permanent error",
		},
		"transport": {
			"list@example.org":           "OK " + nexthop,
			"list-bounces@example.org":   "OK " + nexthop,
			"temp-transport@example.org": "TEMP the list source is unreachable",
		},
		"aliases": {
			"postmaster@example.org": "OK hostmaster@example.net",
			"temp-alias@example.org": "TEMP the list source is unreachable",
		},
	}
	smLn, polLn := listenTCP(t), listenTCP(t)
	rec.serve(t, smLn, rec.socketmapConn)
	rec.serve(t, polLn, rec.policyConn)
	sm := "socketmap:inet:" + smLn.Addr().String() + ":"
	policy := "check_policy_service inet:" + polLn.Addr().String()
	opts := postfixtest.Options{
		LMTP: "inet:" + lmtpLn.Addr().String(),
		MainCF: []string{
			"smtpd_milters =",
			"relay_domains = " + sm + "domains",
			"relay_recipient_maps = " + sm + "recipients",
			"transport_maps = " + sm + "transport",
			"virtual_alias_maps = " + sm + "aliases",
			// The policy door where `listgate postfix --door policy` puts
			// it (after reject_unauth_destination, which
			// smtpd_relay_restrictions applies first), and at DATA and at
			// the end of DATA to see what else it is asked.
			"smtpd_recipient_restrictions = " + policy,
			"smtpd_data_restrictions = " + policy,
			"smtpd_end_of_data_restrictions = " + policy,
			// Many refused RCPTs in one session: no error delays.
			"smtpd_soft_error_limit = 1000",
			"smtpd_hard_error_limit = 1000",
			"smtpd_error_sleep_time = 0",
		},
	}
	if noAliasDomains {
		opts.MainCF = append(opts.MainCF, "virtual_alias_domains =")
	}
	pf := postfixtest.Start(t, opts)
	defer func() { t.Log(rec.out.String()) }()
	version := strings.TrimSpace(pf.Postconf(t, "-d", "-h", "mail_version"))
	rec.report("Postfix %s (postconf -d mail_version); the instance's lookup parameters:\n```\n%s```", version,
		pf.Postconf(t, "relay_domains", "relay_recipient_maps", "transport_maps", "virtual_alias_maps",
			"virtual_alias_domains", "parent_domain_matches_subdomains", "recipient_delimiter", "smtpd_relay_restrictions",
			"smtpd_recipient_restrictions", "smtpd_data_restrictions", "smtpd_end_of_data_restrictions"))

	// One SMTP session for every RCPT TO, so that one smtpd(8) process
	// asks, and what it remembers from one recipient to the next (its
	// cache of trivial-rewrite(8) answers) is the same on every run. Each
	// case is MAIL FROM, RCPT TO, RSET.
	c, err := smtp.Dial(pf.SMTPAddr)
	if err != nil {
		t.Fatalf("dial smtpd %s: %v", pf.SMTPAddr, err)
	}
	defer c.Close()
	if err := c.Hello("client.postfixtest.invalid"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	type rcptCase struct {
		from  string // MAIL FROM; "" for alice@sender.example
		to    string
		size  int64  // SIZE= in MAIL FROM; 0: none
		setup func() // run after MAIL FROM, before RCPT TO
		reply string // code and enhanced code of Postfix's answer to RCPT TO
		// asked are the keys about the recipient's domain that smtpd(8)
		// and trivial-rewrite(8) ask each map ("daemon map") while
		// Postfix decides on this RCPT TO, in order; cleanup(8) asks too,
		// when it is handed an accepted recipient, but in its own time.
		asked  map[string][]string
		policy bool // whether the policy service is asked
	}
	const (
		trAliases    = "trivial-rewrite aliases"
		trDomains    = "trivial-rewrite domains"
		trTransport  = "trivial-rewrite transport"
		smtpdAliases = "smtpd aliases"
		smtpdRcpts   = "smtpd recipients"
	)
	resolve := func(domain, addr string) map[string][]string {
		m := map[string][]string{trDomains: {domain}, trTransport: {addr}}
		if !noAliasDomains {
			m[trAliases] = []string{domain}
		}
		return m
	}
	relay := func(domain, raw, folded string, smtpd ...string) map[string][]string {
		m := resolve(domain, raw)
		m[smtpdAliases] = []string{folded}
		if len(smtpd) == 0 {
			m[smtpdRcpts] = []string{folded}
		}
		return m
	}
	domainOnly := func(domain string) map[string][]string {
		m := resolve(domain, "")
		delete(m, trTransport)
		return m
	}
	cached := func(folded string) map[string][]string {
		return map[string][]string{smtpdAliases: {folded}, smtpdRcpts: {folded}}
	}
	cases := []rcptCase{
		{to: "list@example.org", size: 12345, reply: "250 2.1.5", policy: true,
			asked: relay("example.org", "list@example.org", "list@example.org")},
		{to: "list@example.org", size: 12345, reply: "250 2.1.5", policy: true, asked: cached("list@example.org")},
		{to: "list@example.org", reply: "250 2.1.5", policy: true, asked: cached("list@example.org")},
		{to: "List+ext@Example.ORG", size: 12345, reply: "250 2.1.5", policy: true,
			asked: relay("example.org", "List+ext@Example.ORG", "list+ext@example.org")},
		{to: "list-bounces+anne=example.net@example.org", size: 12345, reply: "250 2.1.5", policy: true,
			asked: relay("example.org", "list-bounces+anne=example.net@example.org", "list-bounces+anne=example.net@example.org")},
		{to: "bogus@example.org", size: 12345, reply: "550 5.1.1", policy: true,
			asked: relay("example.org", "bogus@example.org", "bogus@example.org")},
		{to: "bogus+x@example.org", size: 12345, reply: "550 5.1.1", policy: true,
			asked: relay("example.org", "bogus+x@example.org", "bogus+x@example.org")},
		{to: "postmaster@example.org", size: 12345, reply: "250 2.1.5", policy: true,
			asked: relay("example.org", "postmaster@example.org", "postmaster@example.org", "alias")},
		{to: "Postmaster+x@Example.org", size: 12345, reply: "250 2.1.5", policy: true,
			asked: relay("example.org", "Postmaster+x@Example.org", "postmaster+x@example.org", "alias")},
		{to: "postmaster", size: 12345, reply: "250 2.1.5"},
		{to: "someone@sub.example.org", size: 12345, reply: "554 5.7.1",
			asked: resolve("sub.example.org", "someone@sub.example.org")},
		{to: "someone@elsewhere.example", size: 12345, reply: "554 5.7.1",
			asked: resolve("elsewhere.example", "someone@elsewhere.example")},
		{to: "list@example.org.", size: 12345, reply: "250 2.1.5", policy: true,
			asked: relay("example.org", "list@example.org", "list@example.org")},
		{to: "temp-rcpt@example.org", size: 12345, reply: "451 4.3.0", policy: true,
			asked: relay("example.org", "temp-rcpt@example.org", "temp-rcpt@example.org")},
		{to: "perm-rcpt@example.org", size: 12345, reply: "451 4.3.5", policy: true,
			asked: relay("example.org", "perm-rcpt@example.org", "perm-rcpt@example.org")},
		{to: "someone@temp-domain.example", size: 12345, reply: "451 4.3.0",
			asked: domainOnly("temp-domain.example")},
		// smtpd keeps the failure (its resolve cache, by sender and
		// recipient): the domain is served now, yet Postfix does not ask
		// again for this sender; for another sender it does.
		{to: "someone@temp-domain.example", size: 12345, reply: "451 4.3.0", asked: map[string][]string{},
			setup: func() { rec.set("domains", "temp-domain.example", "OK temp-domain.example") }},
		{from: "bob@sender.example", to: "someone@temp-domain.example", size: 12345, reply: "550 5.1.1", policy: true,
			asked: relay("temp-domain.example", "someone@temp-domain.example", "someone@temp-domain.example")},
		{to: "someone@perm-domain.example", size: 12345, reply: "451 4.3.0",
			asked: domainOnly("perm-domain.example")},
		{to: "temp-alias@example.org", size: 12345, reply: "451 4.3.0", policy: true,
			asked: relay("example.org", "temp-alias@example.org", "temp-alias@example.org", "TEMP")},
		{to: "temp-transport@example.org", size: 12345, reply: "451 4.3.0",
			asked: resolve("example.org", "temp-transport@example.org")},
		// Hot remove: the domain and its lists go between MAIL FROM and
		// RCPT TO. An address smtpd resolved before is still of a relay
		// domain to it (its cache), so only relay_recipient_maps refuses
		// it; one it never resolved is refused as relaying.
		{to: "list@example.org", size: 12345, reply: "550 5.1.1", policy: true, asked: cached("list@example.org"),
			setup: func() {
				rec.set("domains", "example.org", "")
				rec.set("recipients", "list@example.org", "")
				rec.set("recipients", "list-bounces@example.org", "")
			}},
		{to: "list-bounces@example.org", size: 12345, reply: "554 5.7.1",
			asked: resolve("example.org", "list-bounces@example.org")},
		// Added back; a sender whose domain lookup fails.
		// MAIL FROM resolves the sender too; a failure there is ignored.
		{from: "alice@temp-sender.example", to: "list@example.org", size: 12345, reply: "250 2.1.5", policy: true,
			asked: relay("example.org", "list@example.org", "list@example.org"),
			setup: func() {
				rec.set("domains", "example.org", "OK example.org")
				rec.set("recipients", "list@example.org", "OK list")
				rec.set("recipients", "list-bounces@example.org", "OK list")
			}},
	}
	var results []rcptResult
	for i, tc := range cases {
		from := tc.from
		if from == "" {
			from = "alice@sender.example"
		}
		var opts *smtp.MailOptions
		if tc.size > 0 {
			opts = &smtp.MailOptions{Size: tc.size}
		}
		m := rec.mark()
		r := rcptResult{from: from, to: tc.to, mailReply: replyOf(c.Mail(from, opts))}
		if tc.setup != nil {
			tc.setup()
		}
		r.mail = rec.since(m)
		m = rec.mark()
		if strings.HasPrefix(r.mailReply, "250 ") {
			r.reply = replyOf(c.Rcpt(tc.to, nil))
		}
		r.events = rec.since(m)
		if err := c.Reset(); err != nil {
			t.Fatalf("RSET after RCPT TO:<%s>: %v", tc.to, err)
		}
		results = append(results, r)

		if tc.reply != "" && !strings.HasPrefix(r.reply, tc.reply+" ") {
			t.Errorf("case %d: MAIL FROM:<%s> (%s) RCPT TO:<%s>: Postfix answered %q, want %s", i, from, r.mailReply, tc.to, r.reply, tc.reply)
		}
		if tc.asked != nil {
			_, domain, _ := strings.Cut(strings.TrimSuffix(strings.ToLower(tc.to), "."), "@")
			if got := r.asked(domain); !reflect.DeepEqual(got, tc.asked) {
				t.Errorf("case %d: RCPT TO:<%s>: Postfix asked\n%v\nwant\n%v", i, tc.to, got, tc.asked)
			}
		}
		if p := r.policy(); len(p) != btoi(tc.policy) {
			t.Errorf("case %d: RCPT TO:<%s>: %d policy requests, want %d", i, tc.to, len(p), btoi(tc.policy))
		}
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
	rec.reportRcpts(results)

	// The policy service is asked at RCPT TO with the recipient as the
	// client wrote it (no brackets), and the size= of MAIL FROM.
	for _, r := range results {
		for _, e := range r.policy() {
			if got := e.attr("protocol_state"); got != "RCPT" {
				t.Errorf("RCPT TO:<%s>: policy request with protocol_state=%s", r.to, got)
			}
			if got := e.attr("recipient"); got != r.to {
				t.Errorf("RCPT TO:<%s>: policy request with recipient=%s", r.to, got)
			}
		}
	}
	if got := results[0].policy(); len(got) != 1 || got[0].attr("size") != "12345" {
		t.Errorf("RCPT TO:<list@example.org> with SIZE=12345: policy requests %v, want one with size=12345", got)
	}
	if got := results[2].policy(); len(got) != 1 || got[0].attr("size") != "0" {
		t.Errorf("RCPT TO:<list@example.org> without SIZE: policy requests %v, want one with size=0", got)
	}

	// A message through cleanup(8), qmgr(8) and lmtp(8): which process
	// asks which map while it is delivered, and the postmaster alias
	// rewritten to an address of a domain not served (left deferred by
	// the instance's default_transport).
	tos := []string{"list@example.org", "List+ext@Example.ORG", "list-bounces+anne=example.net@example.org", "postmaster@example.org", "Postmaster+x@Example.org"}
	m := rec.mark()
	sendTo(t, pf.SMTPAddr, "alice@sender.example", tos)
	got := sink.next(t)
	pf.WaitQueue(t, "the postmaster alias deferred to hostmaster@example.net", wait, func(q []postfixtest.QueueMessage) bool {
		for _, m := range q {
			if m.Sender != "alice@sender.example" || m.Queue != "deferred" || len(m.Recipients) == 0 {
				continue
			}
			for _, r := range m.Recipients {
				if r.Address != "hostmaster@example.net" {
					return false
				}
			}
			return true
		}
		return false
	})
	delivery := rec.since(m)
	rec.reportDelivery(delivery, got)
	gotRcpt := append([]string(nil), got.rcpt...)
	sort.Strings(gotRcpt)
	if want := []string{"List+ext@Example.ORG", "list-bounces+anne=example.net@example.org", "list@example.org"}; !reflect.DeepEqual(gotRcpt, want) {
		t.Errorf("LMTP sink got RCPT TO:%q, want %q", got.rcpt, want)
	}
	states := map[string]bool{}
	for _, e := range delivery {
		if e.door == "policy" {
			states[e.attr("protocol_state")] = true
		}
	}
	for _, s := range []string{"RCPT", "DATA", "END-OF-MESSAGE"} {
		if !states[s] {
			t.Errorf("no policy request with protocol_state=%s while sending a message (got %v)", s, states)
		}
	}

	if noAliasDomains {
		return
	}
	// postmap -q against the recorder: how the socketmap client reads
	// each kind of answer (an OK with no value, TEMP, PERM, junk).
	probe := map[string]string{
		"ok-value":   "OK value",
		"ok-empty":   "OK ",
		"ok-nospace": "OK",
		"notfound":   "NOTFOUND ",
		"temp":       "TEMP reason",
		"timeout":    "TIMEOUT reason",
		"perm":       "PERM reason",
		"junk":       "MAYBE reason",
	}
	for key, answer := range probe {
		rec.set("probe", key, answer)
	}
	var b strings.Builder
	b.WriteString("postmap -q KEY " + sm + "probe (exit status, stdout, stderr):\n\n| answer | exit | stdout | stderr |\n|---|---|---|---|\n")
	for _, key := range []string{"ok-value", "ok-empty", "ok-nospace", "notfound", "temp", "timeout", "perm", "junk"} {
		cmd := exec.Command(filepath.Join(postfixBin(t), "postmap"), "-c", pf.ConfigDir, "-q", key, sm+"probe")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		exit := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			exit = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("postmap -q %s: %v", key, err)
		}
		fmt.Fprintf(&b, "| `%s` | %d | `%q` | `%s` |\n", probe[key], exit, stdout.String(), strings.TrimSpace(stderr.String()))
		if want := map[string]int{"ok-value": 0, "ok-empty": 0, "notfound": 1}[key]; (key == "ok-value" || key == "ok-empty" || key == "notfound") && exit != want {
			t.Errorf("postmap -q %s: exit %d, want %d", key, exit, want)
		}
	}
	rec.report("%s", b.String())
	if t.Failed() {
		t.Logf("maillog:\n%s", pf.Log())
	}
}

// postfixBin is the directory of postconf(1), where postmap(1) is too.
func postfixBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("postconf")
	if err != nil {
		p = "/usr/sbin/postconf"
	}
	return filepath.Dir(p)
}

// sendTo sends one message to several recipients, all of which must be
// accepted.
func sendTo(t *testing.T, addr, from string, to []string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatalf("dial smtpd %s: %v", addr, err)
	}
	defer c.Close()
	if err := c.Hello("client.postfixtest.invalid"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	if err := c.Mail(from, nil); err != nil {
		t.Fatalf("MAIL FROM: %v", err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt, nil); err != nil {
			t.Fatalf("RCPT TO:<%s>: %v", rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	fmt.Fprintf(w, "From: <%s>\r\nSubject: lookups\r\nMessage-ID: <%d@postfixtest.invalid>\r\n\r\nhello\r\n", from, time.Now().UnixNano())
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
}

func replyOf(err error) string {
	if err == nil {
		return "250 2.1.5 (accepted)"
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
	}
	return "error: " + err.Error()
}

// subsequence reports whether want appears in got in order, maybe with
// other elements between.
func subsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// event is one request a recorder got: a socketmap lookup or a policy
// request.
type event struct {
	door   string // "socketmap" or "policy"
	proc   string // the Postfix daemon that asked (its /proc/PID/comm), "?" if unknown
	conn   int    // connection number, per recorder
	m, key string // socketmap: map name and key
	answer string // socketmap answer; policy: the action
	attrs  []string
}

func (e event) attr(name string) string {
	for _, a := range e.attrs {
		if k, v, _ := strings.Cut(a, "="); k == name {
			return v
		}
	}
	return ""
}

func (e event) String() string {
	if e.door == "policy" {
		return fmt.Sprintf("%s#%d policy %s", e.proc, e.conn, strings.Join(e.attrs, " "))
	}
	return fmt.Sprintf("%s#%d %s %q -> %q", e.proc, e.conn, e.m, e.key, e.answer)
}

type rcptResult struct {
	from, to, mailReply, reply string
	mail, events               []event // during MAIL FROM, RCPT TO
}

// asked returns the keys about domain that smtpd and trivial-rewrite asked
// each map ("daemon map" -> keys in order).
func (r rcptResult) asked(domain string) map[string][]string {
	out := map[string][]string{}
	for _, e := range r.events {
		if e.door != "socketmap" || e.proc != "smtpd" && e.proc != "trivial-rewrite" {
			continue
		}
		k := strings.ToLower(e.key)
		if k != domain && !strings.HasSuffix(k, "@"+domain) {
			continue
		}
		out[e.proc+" "+e.m] = append(out[e.proc+" "+e.m], e.key)
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// keys returns the keys map m was asked, in order.
func (r rcptResult) keys(m string) []string {
	var out []string
	for _, e := range r.events {
		if e.door == "socketmap" && e.m == m {
			out = append(out, e.key)
		}
	}
	return out
}

func (r rcptResult) policy() []event {
	var out []event
	for _, e := range r.events {
		if e.door == "policy" {
			out = append(out, e)
		}
	}
	return out
}

// recorder serves socketmap and policy requests, recording each one
// before it answers, so that once Postfix has replied to a command every
// lookup made for it is recorded.
type recorder struct {
	mu     sync.Mutex
	table  map[string]map[string]string // map -> key -> answer; written before Postfix starts, then by set
	events []event
	nconn  int
	out    strings.Builder
}

func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func (r *recorder) since(m int) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events[m:]...)
}

func (r *recorder) set(m, key, answer string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if answer == "" {
		delete(r.table[m], key)
		return
	}
	if r.table[m] == nil {
		r.table[m] = map[string]string{}
	}
	r.table[m][key] = answer
}

func (r *recorder) record(e event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) report(format string, args ...any) {
	fmt.Fprintf(&r.out, "\n"+format+"\n", args...)
}

func eventLines(events []event) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "    %s\n", e)
	}
	return b.String()
}

func (r *recorder) reportRcpts(results []rcptResult) {
	var b strings.Builder
	b.WriteString("RCPT TO, one session (MAIL FROM, RCPT TO, RSET each); lookups in the order made, as process#connection:\n")
	for _, res := range results {
		fmt.Fprintf(&b, "\nMAIL FROM:<%s>  =>  %s\n%s", res.from, res.mailReply, eventLines(res.mail))
		fmt.Fprintf(&b, "RCPT TO:<%s>  =>  %s\n%s", res.to, res.reply, eventLines(res.events))
	}
	r.report("%s", b.String())
}

func (r *recorder) reportDelivery(events []event, got received) {
	var b strings.Builder
	b.WriteString("One message to several recipients, from MAIL FROM to delivery (LMTP sink got RCPT TO ")
	fmt.Fprintf(&b, "%q):\n", got.rcpt)
	for _, e := range events {
		fmt.Fprintf(&b, "    %s\n", e)
	}
	r.report("%s", b.String())
}

// serve accepts connections on ln, each handled by handle, until the test
// ends; cleanup closes the listener and every connection and waits for
// their goroutines.
func (r *recorder) serve(t *testing.T, ln net.Listener, handle func(c net.Conn, n int)) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	closed := false
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = true
			r.mu.Lock()
			r.nconn++
			n := r.nconn
			r.mu.Unlock()
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				handle(c, n)
			}()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		closed = true
		ln.Close()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// socketmapConn answers socketmap requests (socketmap_table(5)): a
// netstring "map key", answered by a netstring from the table, NOTFOUND
// for a key it does not hold.
func (r *recorder) socketmapConn(c net.Conn, n int) {
	br := bufio.NewReader(c)
	proc := ""
	for {
		req, err := readNetstring(br, 100000)
		if err != nil {
			return
		}
		if proc == "" {
			proc = peerProcess(c) // Postfix waits for the answer: it still holds the socket
		}
		m, key, _ := strings.Cut(string(req), " ")
		r.mu.Lock()
		answer, ok := r.table[m][key]
		if local, domain, found := strings.Cut(strings.ToLower(key), "@"); !ok && found {
			// As listgate's Resolve: any case, and list+ext@dom is
			// list@dom's.
			base, _, _ := strings.Cut(local, "+")
			answer, ok = r.table[m][base+"@"+domain]
		}
		r.mu.Unlock()
		if !ok {
			answer = "NOTFOUND "
		}
		r.record(event{door: "socketmap", proc: proc, conn: n, m: m, key: key, answer: answer})
		if _, err := fmt.Fprintf(c, "%d:%s,", len(answer), answer); err != nil {
			return
		}
	}
}

// policyConn answers policy delegation requests (SMTPD_POLICY_README):
// name=value lines ended by an empty line, answered "action=DUNNO".
func (r *recorder) policyConn(c net.Conn, n int) {
	br := bufio.NewReader(c)
	proc := ""
	var attrs []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		if line != "" {
			attrs = append(attrs, line)
			continue
		}
		if proc == "" {
			proc = peerProcess(c)
		}
		r.record(event{door: "policy", proc: proc, conn: n, answer: "DUNNO", attrs: attrs})
		attrs = nil
		if _, err := io.WriteString(c, "action=DUNNO\n\n"); err != nil {
			return
		}
	}
}

// readNetstring reads one netstring ("len:data,") of at most max bytes.
func readNetstring(br *bufio.Reader, max int) ([]byte, error) {
	head, err := br.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(head, ":"))
	if err != nil || n < 0 || n > max {
		return nil, fmt.Errorf("bad netstring length %q", head)
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, err
	}
	if buf[n] != ',' {
		return nil, fmt.Errorf("netstring of %d bytes not ended by ','", n)
	}
	return buf[:n], nil
}

// peerProcess names the local process at the other end of a loopback TCP
// connection c: it finds the socket's inode in /proc/net/tcp and the
// process holding it in /proc/*/fd, and returns its comm (smtpd,
// trivial-rewrite, cleanup, ...), or "?".
func peerProcess(c net.Conn) string {
	ra, ok1 := c.RemoteAddr().(*net.TCPAddr)
	la, ok2 := c.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return "?"
	}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return "?"
	}
	want := fmt.Sprintf(":%04X", ra.Port)
	peer := fmt.Sprintf(":%04X", la.Port)
	inode := ""
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && strings.HasSuffix(f[1], want) && strings.HasSuffix(f[2], peer) {
			inode = f[9]
			break
		}
	}
	if inode == "" {
		return "?"
	}
	target := "socket:[" + inode + "]"
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		fds, _ := os.ReadDir(filepath.Join(p, "fd"))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(p, "fd", fd.Name())); err == nil && l == target {
				comm, _ := os.ReadFile(filepath.Join(p, "comm"))
				return strings.TrimSpace(string(comm))
			}
		}
	}
	return "?"
}
