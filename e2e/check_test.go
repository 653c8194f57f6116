package e2e

import (
	"strings"
	"testing"

	"github.com/listgate/listgate/internal/postfixtest"
)

// 8. `listgate postfix --check` on the real "postconf -n" output of private
// Postfix instances configured the ways that make Postfix bounce a bogus
// list address: it names each setting (exit 1) — and each instance then
// does exactly that, which is what the finding warns of: the bogus
// address is accepted, listgate's LMTP sink refuses it, and Postfix sends
// a bounce to the (possibly forged) sender. The clean configurations
// (`listgate postfix` output) are checked in TestFlow.
func TestCheckFlagsBackscatter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mainCF []string
		want   []string // finding lines start with these, in order
		down   bool     // show it with listgate's milter down
	}{
		{
			name:   "without the milter",
			mainCF: []string{"smtpd_milters =", "relay_recipient_maps = inline:{ @example.org=listgate }"},
			want:   []string{"smtpd_milters: is empty: nothing asks listgate at RCPT TO"},
		},
		{
			name:   "milter_default_action = accept",
			mainCF: []string{"milter_default_action = accept"},
			want:   []string{"milter_default_action: is accept: while listgate is down or slow, Postfix accepts every recipient unchecked"},
			down:   true,
		},
		{
			name:   "relaying list domains with no recipient check",
			mainCF: []string{"smtpd_milters ="},
			want: []string{
				"smtpd_milters: is empty",
				"relay_recipient_maps: is empty and listgate's milter is not asked: Postfix accepts every address of example.org unchecked",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, setup{"generated-tcp", true, false}, flowLists, tc.mainCF...)
			out, exit := e.check(t)
			var lines []string // the findings: not the note: lines (postmaster@ refused, ...)
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.HasPrefix(l, "note: ") {
					lines = append(lines, l)
				}
			}
			if exit != 1 || len(lines) != len(tc.want) {
				t.Fatalf("--check: exit %d, want 1 and %d findings:\n%s", exit, len(tc.want), out)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) || !strings.Contains(lines[i], "; fix: ") {
					t.Errorf("finding %d: %s\nwant it to start with %q and name a fix", i+1, lines[i], w)
				}
			}

			// What the finding warns of, through this very instance.
			const bogus = "nosuchlist@example.org"
			if tc.down {
				e.lg.Stop(t)
			}
			send(t, e.pf.SMTPAddr, bogus) // accepted: 250 at RCPT and at end of data
			if tc.down {
				// Deferred, LMTP being down too. lmtp(8) logs that before
				// qmgr(8) has moved the message to the deferred queue, and a
				// flush before then finds nothing to flush: the message
				// would wait for its retry time (minutes). Wait for the
				// queue, as TestLMTPDownDefersThenFlushes does.
				e.pf.WaitLog(t, "to=<"+bogus+">, relay=none", wait)
				e.pf.WaitQueue(t, "the message to <"+bogus+"> deferred", wait, func(q []postfixtest.QueueMessage) bool {
					return len(q) == 1 && q[0].Queue == "deferred" && len(q[0].Recipients) == 1 && q[0].Recipients[0].Address == bogus
				})
				e.lg.Restart(t)
				e.pf.Flush(t)
			}
			line := e.pf.WaitLog(t, "to=<"+bogus+">, relay=127.0.0.1", wait)
			if !strings.Contains(line, "status=bounced (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 Requested action not taken: mailbox unavailable") {
				t.Errorf("Postfix log: %s", line)
			}
			e.pf.WaitLog(t, "sender non-delivery notification", wait)
			e.pf.WaitQueue(t, "the bounce to the sender", wait, func(q []postfixtest.QueueMessage) bool {
				return len(q) == 1 && q[0].Sender == "MAILER-DAEMON" && len(q[0].Recipients) == 1 && q[0].Recipients[0].Address == "alice@sender.example"
			})
		})
	}
}
