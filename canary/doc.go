// Package canary proves, while listgate runs, that the gate still shuts:
// that Postfix's own SMTP server refuses a bogus list address at RCPT TO.
// listgate's doors only answer when Postfix asks them; a main.cf edit that
// drops smtpd_milters (or the check_policy_service, or the socketmap
// tables) leaves every door healthy and idle while Postfix accepts mail for
// any address and bounces it later. Only a client of Postfix sees that.
//
// Every Options.Interval (a minute by default) a Canary connects to
// Postfix's smtpd (Options.SMTP, e.g. inet:127.0.0.1:25) as a sending MTA
// would, and runs one dialogue (RFC 5321 §3.3):
//
//	EHLO <hostname>
//	MAIL FROM:<>                      (or Options.Sender)
//	RCPT TO:<list>                    a list's posting address: want 2xx
//	RSET
//	EHLO, MAIL FROM:<>                (go-smtp greets again after RSET)
//	RCPT TO:<listgate-canary-RANDOM@domain>  a bogus address: want 5xx
//	QUIT
//
// It never sends DATA, so no message is ever queued. The list is
// Options.List, or else the first list of the current snapshot (sorted by
// address) whose posting address resolves as accepted; the bogus address
// is in the list's domain, with a local part that is random per probe and
// checked with Resolve to be unknown (not tempfailing, not a list), so
// that a refusal proves the check and not a list file problem.
//
// Each probe has one Result. OK: the list was accepted and the bogus
// address refused. GateOpen, the one that matters: Postfix accepted the
// bogus address, so nothing checks recipients at RCPT time and mail to
// unknown list addresses is accepted and later bounced (backscatter).
// ListRefused: Postfix refused (or deferred) the known list: listgate's
// milter down, the domain not in relay_domains, a restriction refusing
// the canary's client. BogusDeferred: the bogus address got a 4xx (a
// greylisting or rate-limiting policy, or a tempfailing listgate): the
// gate is not proven shut. Unreachable: no connection. Error: the
// dialogue failed before the recipients (a 421 or 554 greeting, a refused
// EHLO or MAIL FROM, a timeout). NoList: nothing to probe with.
//
// A list in a domain in enforce mode is preferred. When every domain with
// a list is in observe mode (lists.ModeObserve), or Options.List is in
// one, the bogus address resolves as observed and Postfix is expected to
// accept it: Observe, which is ready (Result.Ready) but not OK, with
// listgate_canary_observe 1 and listgate_canary_ok 0.
//
// The latest probe's result is Status, the listgate_canary_* metrics and,
// unless OK or Observe, a reason for the daemon's /readyz to answer 503
// (NotReady).
// A probe is bounded by Options.Timeout as a whole, connect included.
//
// What a probe costs: one SMTP session at Postfix (two transactions, no
// message), and the recipient check of each RCPT at listgate's door, so a
// healthy probe adds one "accept" and one "unknown" to
// listgate_milter_recipients_total (or the policy or socketmap door's
// counters) per Interval; the bogus address starts with
// "listgate-canary-" in listgate's and Postfix's logs. docs/reliability.md
// ("The canary") says what to configure in Postfix so that a probe from
// loopback is treated as mail from the Internet.
package canary
