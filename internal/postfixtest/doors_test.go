package postfixtest_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/internal/postfixtest"
)

// Stand-ins for listgate's policy and socketmap doors, as the LMTP and
// milter peers stand in for the others: just enough of each protocol to
// prove that contrib/postfix's main.cf.policy and main.cf.socketmap, with
// the harness's substitutions, make a real Postfix ask them. They refuse
// (or do not list) every local part that starts with "bogus", and record
// what Postfix asked, which the test logs.

// peer serves conns with handle until cleanup, which closes the listener
// and every connection and waits for their goroutines (goleak checks).
type peer struct {
	mu    sync.Mutex
	conns map[net.Conn]bool
	asked []string // what Postfix asked, in order
	wg    sync.WaitGroup
}

func startPeer(t *testing.T, ln net.Listener, handle func(p *peer, c net.Conn)) *peer {
	t.Helper()
	p := &peer{conns: map[net.Conn]bool{}}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns[c] = true
			p.mu.Unlock()
			p.wg.Go(func() {
				defer c.Close()
				handle(p, c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
		t.Logf("peer %s was asked: %q", ln.Addr(), p.requests())
	})
	return p
}

func (p *peer) record(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, s)
}

func (p *peer) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.asked)
}

// bogus reports whether an address's local part starts with "bogus".
func bogus(addr string) bool { return strings.HasPrefix(strings.ToLower(addr), "bogus") }

// policyPeer answers SMTPD_POLICY_README requests: name=value lines, an
// empty line, then "action=...", many requests per connection.
func policyPeer(p *peer, c net.Conn) {
	r := bufio.NewReader(c)
	attrs := map[string]string{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		if line != "" {
			k, v, _ := strings.Cut(line, "=")
			attrs[k] = v
			continue
		}
		p.record(attrs["protocol_state"] + " " + attrs["recipient"])
		action := "DUNNO"
		if attrs["protocol_state"] == "RCPT" && bogus(attrs["recipient"]) {
			action = "550 5.1.1 Requested action not taken: mailbox unavailable"
		}
		if _, err := fmt.Fprintf(c, "action=%s\n\n", action); err != nil {
			return
		}
		attrs = map[string]string{}
	}
}

// socketmapPeer answers socketmap_table(5) lookups, netstrings
// "len:map key," each, for the domains it is given; transport answers
// lmtp.
func socketmapPeer(domains []string, lmtp string) func(p *peer, c net.Conn) {
	served := func(d string) bool { return slices.Contains(domains, strings.ToLower(d)) }
	return func(p *peer, c net.Conn) {
		r := bufio.NewReader(c)
		for {
			n, err := r.ReadString(':')
			if err != nil {
				return
			}
			size, err := strconv.Atoi(strings.TrimSuffix(n, ":"))
			if err != nil || size < 0 || size > 100000 {
				return
			}
			buf := make([]byte, size+1)
			if _, err := io.ReadFull(r, buf); err != nil || buf[size] != ',' {
				return
			}
			name, key, _ := strings.Cut(string(buf[:size]), " ")
			p.record(name + " " + key)
			local, domain, isAddr := strings.Cut(key, "@")
			reply := "NOTFOUND "
			switch {
			case name == "domains" && !isAddr && served(key),
				name == "recipients" && isAddr && local != "" && !bogus(local) && served(domain):
				reply = "OK " + key // "OK" alone is not found to Postfix: it wants a value
			case name == "transport" && (!isAddr && served(key) || isAddr && local != "" && served(domain)):
				reply = "OK " + lmtp
			case !slices.Contains([]string{"domains", "recipients", "transport", "aliases"}, name):
				reply = "PERM no such map"
			}
			if _, err := fmt.Fprintf(c, "%d:%s,", len(reply), reply); err != nil {
				return
			}
		}
	}
}

// main.cf.policy: Postfix asks the policy service at RCPT TO, delivers a
// list address over LMTP, and refuses a bogus one and a foreign domain.
func TestContribPolicy(t *testing.T) {
	t.Parallel()
	postfixtest.Require(t) // before the peers start: a skip is prompt
	lmtpLn, policyLn := listenTCP(t), listenTCP(t)
	sink := startLMTP(t, lmtpLn)
	pol := startPeer(t, policyLn, policyPeer)
	pf := postfixtest.Start(t, postfixtest.Options{
		Snippet: "main.cf.policy",
		LMTP:    "inet:" + lmtpLn.Addr().String(),
		Policy:  "inet:" + policyLn.Addr().String(),
		Domains: []string{"lists.example.org"},
	})
	if got := strings.TrimSpace(pf.Postconf(t, "-h", "smtpd_recipient_restrictions")); got != "check_policy_service inet:"+policyLn.Addr().String() {
		t.Fatalf("smtpd_recipient_restrictions = %q", got)
	}

	if err := send(t, pf.SMTPAddr, "alice@sender.example", "announce@lists.example.org"); err != nil {
		t.Fatalf("RCPT TO: %v", err)
	}
	if got := sink.next(t); len(got.rcpt) != 1 || got.rcpt[0] != "announce@lists.example.org" {
		t.Fatalf("LMTP got RCPT TO:%q", got.rcpt)
	}
	pf.WaitQueueEmpty(t, wait)

	err := send(t, pf.SMTPAddr, "alice@sender.example", "bogus@lists.example.org")
	wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 1, 1})
	err = send(t, pf.SMTPAddr, "alice@sender.example", "victim@foreign.example")
	wantSMTPError(t, err, 554, smtp.EnhancedCode{5, 7, 1})
	if q := pf.Queue(t); len(q) != 0 {
		t.Fatalf("queue: %v", q)
	}
	if got := pol.requests(); !slices.Contains(got, "RCPT bogus@lists.example.org") || slices.Contains(got, "RCPT victim@foreign.example") {
		t.Errorf("policy service asked %q: want the list domain's recipients, not the foreign one (smtpd_relay_restrictions refuses it first)", got)
	}
}

// main.cf.socketmap: no domain in main.cf; Postfix asks the socketmap which
// domains are relayed, which recipients exist and where they go, and
// delivers to the LMTP address the transport map answers. Over TCP and,
// chrooted, over a unix socket in the queue directory.
func TestContribSocketmap(t *testing.T) {
	t.Parallel()
	postfixtest.Require(t) // before the peers start: a skip is prompt
	for _, unix := range []bool{false, true} {
		t.Run(fmt.Sprintf("unix=%v", unix), func(t *testing.T) {
			t.Parallel()
			var pf *postfixtest.Postfix
			var sink *lmtpPeer
			var sm *peer
			domains := []string{"lists.example.org"}
			if unix {
				pf = postfixtest.Start(t, postfixtest.Options{Snippet: "main.cf.socketmap", Socketmap: "unix:listgate/socketmap", Chroot: true})
				sink = startLMTP(t, pf.ListenUnix(t, "listgate/lmtp"))
				sm = startPeer(t, pf.ListenUnix(t, "listgate/socketmap"), socketmapPeer(domains, "lmtp:unix:listgate/lmtp"))
			} else {
				lmtpLn, smLn := listenTCP(t), listenTCP(t)
				sink = startLMTP(t, lmtpLn)
				sm = startPeer(t, smLn, socketmapPeer(domains, "lmtp:inet:"+lmtpLn.Addr().String()))
				pf = postfixtest.Start(t, postfixtest.Options{Snippet: "main.cf.socketmap", Socketmap: "inet:" + smLn.Addr().String()})
			}

			if err := send(t, pf.SMTPAddr, "alice@sender.example", "announce@lists.example.org"); err != nil {
				t.Fatalf("RCPT TO: %v", err)
			}
			if got := sink.next(t); len(got.rcpt) != 1 || got.rcpt[0] != "announce@lists.example.org" {
				t.Fatalf("LMTP got RCPT TO:%q", got.rcpt)
			}
			pf.WaitQueueEmpty(t, wait)

			// Postfix asks a socketmap (a pattern table to it) the whole
			// address only, extension included, never user@domain or
			// @domain: smtpd lower-cased, trivial-rewrite's transport and
			// cleanup's virtual_alias_maps as received.
			before := len(sm.requests())
			if err := send(t, pf.SMTPAddr, "alice@sender.example", "Announce+Tag@Lists.Example.ORG"); err != nil {
				t.Fatalf("RCPT TO: %v", err)
			}
			sink.next(t)
			pf.WaitQueueEmpty(t, wait)
			got := sm.requests()[before:]
			for _, want := range []string{"recipients announce+tag@lists.example.org", "transport Announce+Tag@Lists.Example.ORG", "aliases Announce+Tag@Lists.Example.ORG"} {
				if !slices.Contains(got, want) {
					t.Errorf("socketmap was not asked %q; it was asked %q", want, got)
				}
			}
			for _, never := range []string{"recipients announce@lists.example.org", "recipients @lists.example.org", "transport lists.example.org"} {
				if slices.Contains(got, never) {
					t.Errorf("socketmap was asked %q", never)
				}
			}

			err := send(t, pf.SMTPAddr, "alice@sender.example", "bogus@lists.example.org")
			wantSMTPError(t, err, 550, smtp.EnhancedCode{5, 1, 1})
			err = send(t, pf.SMTPAddr, "alice@sender.example", "victim@foreign.example")
			wantSMTPError(t, err, 554, smtp.EnhancedCode{5, 7, 1})
			if q := pf.Queue(t); len(q) != 0 {
				t.Fatalf("queue: %v", q)
			}
			got = sm.requests()
			for _, want := range []string{"domains lists.example.org", "recipients announce@lists.example.org", "transport announce@lists.example.org"} {
				if !slices.Contains(got, want) {
					t.Errorf("socketmap was not asked %q; it was asked %q", want, got)
				}
			}
		})
	}
}

// Options the snippet has no place for are errors that say why.
func TestDoorOptionErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts postfixtest.Options
		want string
	}{
		{postfixtest.Options{Snippet: "main.cf.socketmap", Domains: []string{"example.org"}}, "there is no list for Options.Domains to replace"},
		{postfixtest.Options{Snippet: "main.cf.socketmap", LMTP: "inet:127.0.0.1:41000"}, "leave Options.LMTP empty"},
		{postfixtest.Options{Snippet: "main.cf", Policy: "inet:127.0.0.1:41000"}, "has no check_policy_service for Options.Policy"},
		{postfixtest.Options{Snippet: "main.cf.policy", Socketmap: "inet:127.0.0.1:41000"}, "has no socketmap:SERVER:MAP table for Options.Socketmap"},
		{postfixtest.Options{Snippet: "main.cf.policy", LMTP: "inet:127.0.0.1:41000"}, "check_policy_service inet:127.0.0.1:8026 would reach a listgate the host runs"},
		{postfixtest.Options{Snippet: "main.cf.socketmap"}, "socketmap:inet:127.0.0.1:8027:domains would reach a listgate the host runs"},
	} {
		if err := postfixtest.CheckOptions(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error with %q", tc.opts, err, tc.want)
		}
	}
}
