// Package postfixtest starts a private Postfix for a test, configured from
// the snippets in contrib/postfix, so that tests drive listgate through the
// MTA it is written for and prove the snippets admins paste (docs/design.md,
// "Tests that need Postfix").
//
//	pf := postfixtest.Start(t, postfixtest.Options{
//		LMTP:   "inet:" + lmtpListener.Addr().String(),
//		Milter: "inet:" + milterListener.Addr().String(),
//	})
//	c, _ := smtp.Dial(pf.SMTPAddr) // an SMTP client, as the sender's MX
//	...
//	pf.WaitQueueEmpty(t, 10*time.Second)
//
// A program that is not a test (the bench, docs/performance.md) starts the
// same instance with Launch and ends it with Close; Available and Queued
// are Require and Queue returning errors.
//
// # Each door's snippet
//
// Options.Snippet picks one of Snippets, contrib/postfix's main.cf files,
// and the Options fields of that setup put the test's addresses in place
// of listgate's defaults:
//
//	snippet             door                       Options to set
//	main.cf             milter over TCP            LMTP, Milter, Domains
//	main.cf.unix        milter over unix sockets   none: ListenUnix(t, "listgate/lmtp"), "listgate/milter"
//	main.cf.policy      check_policy_service       LMTP, Policy, Domains
//	main.cf.socketmap   socketmap tables           Socketmap only
//
// Policy replaces the server of every check_policy_service in
// smtpd_recipient_restrictions and smtpd_relay_restrictions. Socketmap
// replaces the server of every socketmap:SERVER:MAP table of relay_domains,
// relay_recipient_maps, transport_maps and virtual_alias_maps, keeping the
// map names, so it also points a `listgate postfix` output's
// virtual_alias_maps (aliases map) at the test's listgate. The socketmap
// setup names no domain and no LMTP address: the lists directory of the
// listgate under test decides which domains Postfix relays, and its
// transport map answers its own LMTP door (daemon: the LMTP listener's
// address, as Postfix reaches it), so Options.Domains and Options.LMTP are
// errors there. For unix sockets, listen with ListenUnix (or run listgate
// with sockets under QueueDir) and pass "unix:listgate/socketmap"; Chroot
// chroots smtpd, trivial-rewrite and cleanup, the daemons that ask the
// socketmap, as Debian does. An end-to-end test of the socketmap setup:
//
//	d := startListgate(t, "--socketmap", "inet:127.0.0.1:0", "--milter", "") // e2e's helper
//	pf := postfixtest.Start(t, postfixtest.Options{
//		Snippet:   "main.cf.socketmap",
//		Socketmap: d.Addr("socketmap"), // "inet:127.0.0.1:PORT"
//	})
//
// and of the policy setup:
//
//	pf := postfixtest.Start(t, postfixtest.Options{
//		Snippet: "main.cf.policy",
//		LMTP:    d.Addr("lmtp"),
//		Policy:  d.Addr("policy"),
//		Domains: []string{"example.org"},
//	})
//
// CheckOptions reports, without Postfix, what Start would refuse in an
// Options. The harness's own tests (doors_test.go) run each snippet with
// stand-in policy and socketmap servers and record what Postfix asks.
//
// # The instance
//
// Everything lives in one directory, /tmp/postfixtest-NNNN (Postfix.Dir):
// etc/ is the config_directory (given to every command with -c), q/ the
// queue_directory, d/ the data_directory, maillog the log. The path is
// short on purpose: unix-domain socket paths are limited to 107 bytes, and
// t.TempDir paths can be longer. The system instance (/etc/postfix,
// /var/spool/postfix) is never read or touched; as root, postfix(1) and
// postqueue(1) accept a -c directory that the system's main.cf does not
// list in alternate_config_directories.
//
// main.cf is, in order, each key written once (a later source replaces an
// earlier one, as Postfix's "last one wins", without its "overriding earlier
// entry" warnings):
//
//  1. defaults: compatibility_level (3.6 where Postfix knows it),
//     myhostname = mx.postfixtest.invalid, mydestination, local_recipient_maps,
//     alias_maps and alias_database empty (nothing is delivered locally),
//     mynetworks empty, in_flow_delay = 0;
//  2. the snippet (Options.Snippet, contrib/postfix/main.cf by default), with
//     relay_domains, the address in relay_transport = lmtp:ADDRESS,
//     smtpd_milters, the check_policy_service servers and the socketmap
//     servers replaced by Options.Domains, LMTP, Milter, Policy and
//     Socketmap when set;
//  3. what keeps the instance private, which no snippet can change:
//     queue_directory, data_directory, maillog_file and maillog_file_prefixes
//     (postlogd(8) writes the log, so it is readable per instance),
//     inet_interfaces = loopback-only, inet_protocols = ipv4, and
//     default_transport = retry:... so that mail for any other domain (a
//     bounce, say) never leaves but stays visible in the queue;
//  4. Options.MainCF.
//
// mynetworks is empty so that every SMTP client is a stranger, as a
// sending MX on the Internet is: the test's client connects from 127.0.0.1,
// and with loopback in mynetworks, permit_mynetworks would let it relay
// anywhere and an open-relay test would prove nothing.
//
// master.cf is a minimal one written here: smtpd on 127.0.0.1:PORT (a free
// port per instance, never 25), the queue services, lmtp, retry and the
// postlog service that maillog_file needs; then the non-comment lines of
// contrib/postfix/master.cf and Options.MasterCF. Nothing is chrooted unless
// Options.Chroot, which chroots the services Debian chroots.
//
// Start refuses a configuration whose relay_transport, smtpd_milters,
// restriction lists or socketmap tables point at listgate's default ports
// (8024, 8025) or contrib's policy and socketmap ports (8026, 8027):
// those belong to a listgate the host may run, never to a test.
//
// # Starting and stopping
//
// Start checks main.cf with "postconf -n" (an unknown parameter, such as a
// typo in a snippet, fails the test), then runs "postfix start", which checks
// the installation and creates the queue directories with the right owners
// (postfix-script check-fatal and check-warn; their warnings fail the test
// too) and returns once master(8) has bound its sockets; Start then waits
// for smtpd's 220 greeting. A failure names the command and shows what
// Postfix said, and the log. postfix(1) writes its errors to stderr only if
// that is a terminal, and a main.cf it cannot read leaves nothing in the
// log either; so its stderr is a pty, which the harness reads. A Start takes
// about 0.3s on an idle machine, most of it in postfix-script's checks.
//
// Reload runs "postfix reload" after a test changed main.cf (Postconf
// with -e or -X, as an admin would) and returns once master(8) has logged
// the reload; an idle smtpd(8) of the old configuration may still take
// one more connection.
//
// At cleanup, "postfix abort" sends master(8) SIGTERM (as "stop" does, but
// without stop's one-second polling), and the harness waits until no
// process of master's process group is alive, killing it if it lingers,
// then removes the directory; if the test failed it logs the maillog first.
// The test binary makes itself a child subreaper, so that Postfix's
// daemons, orphaned when master exits, are reaped here rather than left as
// zombies where PID 1 does not reap. If the test binary itself is killed (a
// go test timeout runs no cleanups), the next Start removes the abandoned
// instance: each instance holds a flock that dies with its test binary.
// This handling of processes and instance directories is
// internal/proctest's, shared with internal/mailmantest.
//
// # Files Postfix is picky about
//
// Postfix re-reads a main.cf or master.cf modified in the last second (it
// may still be being edited), every 300ms; the harness dates the files it
// writes a minute back, or each Start would take two seconds longer. The
// queue directory must be root's and not group- or world-writable, and
// reachable by the postfix user. A unix-domain socket that Postfix connects
// to must be writable by the postfix user: ListenUnix makes one in the
// queue directory, where a chrooted daemon finds it under the same relative
// name ("unix:listgate/lmtp").
package postfixtest
