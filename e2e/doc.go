// Package e2e holds listgate's end-to-end tests. Real SMTP clients
// (go-smtp's, swaks, Python's smtplib) talk to a private, real Postfix
// (internal/postfixtest), which asks the listgate binary, built from
// cmd/listgate and run as `listgate serve`, at RCPT TO over the milter
// protocol and delivers to it over LMTP, as in production. The package has
// no code but its tests.
//
// What each test shows (issue 4, "Must show"):
//
//	TestFlow                   1-4 and 8, in four setups: contrib/postfix's main.cf
//	                           (TCP) and main.cf.unix (unix sockets, chrooted smtpd and
//	                           lmtp), and `listgate postfix` output pasted unchanged
//	                           (TCP; --unix, chrooted): delivery into the right
//	                           Maildir; 550 5.1.1 at RCPT with nothing queued and no
//	                           bounce; no open relay; list files live within a second
//	                           with no reload; `listgate postfix --check` on the
//	                           instance; a subdomain of a list domain refused by
//	                           Postfix itself (no backscatter)
//	TestListgateDown           5: listgate stopped, 451 4.7.1 (RCPT in an open session,
//	                           MAIL FROM in a new one); restarted, the retry is
//	                           delivered; a never-parsed list file, 451 4.3.0
//	TestSize                   6: SIZE= over a list's max_message_size, 552 5.3.4 at RCPT
//	TestSizeWithoutSIZE        6: a post over the list's limit without SIZE=, 552 5.3.4
//	                           at the end of DATA (the milter counts the message)
//	TestCorpus                 7: the verdict corpus through Postfix's smtpd, then into
//	                           the spool
//	TestCheckFlagsBackscatter  8: `listgate postfix --check` on real "postconf -n"
//	                           output of misconfigured instances, each then shown
//	                           bouncing a bogus address
//
// And for issue 8 ("Hand the mail on"):
//
//	TestMailman                1-3: a real GNU Mailman 3 (internal/mailmantest) behind
//	                           Postfix and listgate with an empty lists directory: a
//	                           list made with `mailman create` accepted at RCPT within
//	                           10 s, bogus addresses 550; a post, a -request mail and
//	                           a VERP bounce each in Mailman's in, command and bounces
//	                           queue exactly once; `mailman remove` 550 within 10 s;
//	                           Mailman stopped: mail kept, no bounce, each kept message
//	                           delivered once after its restart; the headers Mailman
//	                           stores equal a direct delivery's but for two Received
//	TestExecMlmmj              4: exec next hop into real mlmmj: delivered, exit 75
//	                           retried, exit 1 quarantined with its reason, `listgate
//	                           spool retry` re-sends
//	TestExecPublicInbox        4: exec next hop into a real public-inbox v2 inbox
//
// And for issue 9 ("Postfix's other doors"), each setup one listgate and
// one Postfix shared by its subtests, with no milter unless named:
//
//	TestPolicyDoor             2: the policy door alone (contrib's main.cf.policy):
//	                           a list, List+ext@Example.ORG, -request and a VERP
//	                           -bounces address delivered into the spool; bogus
//	                           addresses 550 5.1.1 at RCPT, nothing queued, no
//	                           bounce; 554 5.7.1 for foreign domains, a subdomain and
//	                           source routes; a list file live both ways with no
//	                           reload or postmap; listgate down, 451 4.3.5 at RCPT
//	                           (smtpd_policy_service_default_action), restarted, the
//	                           next attempt delivered. 4: with no domain file setting
//	                           postmaster@ is 550 and `listgate postfix --check`
//	                           notes it
//	TestSocketmapDoor          2 (the same) with the socketmap alone (contrib's
//	                           main.cf.socketmap: relay_domains,
//	                           relay_recipient_maps, transport_maps,
//	                           virtual_alias_maps), a list in a new domain live too,
//	                           listgate down 451 4.3.0 for senders resolved before and
//	                           new ones; 3: a domain's last list file removed, its
//	                           addresses refused at RCPT (554 5.7.1, 550 5.1.1 for a
//	                           sender smtpd resolved before), nothing reaches the LMTP
//	                           door, no bounce; 4: postmaster@ and Abuse+x@ of
//	                           example.org delivered into the list its domain file
//	                           names (hostmaster@example.net), example.com's 550
//	TestPostmaster             4 with the milter and with the policy door, each with
//	                           listgate's socketmap aliases map as virtual_alias_maps
//	                           (`listgate postfix --door milter|policy` output); policy
//	                           with aliases and listgate down: 451 4.3.0 for list and
//	                           foreign domains alike (virtual_alias_domains asks the
//	                           aliases map first)
//
// The tests need postfix, swaks, python3, mailman3, mlmmj, public-inbox and
// root. Without them they skip,
// unless LISTGATE_TEST_POSTFIX=1, which makes a missing one a failure. The
// listgate binary is built once per run, with -race when the tests run
// with it.
package e2e
