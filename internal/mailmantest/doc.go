// Package mailmantest runs a real GNU Mailman 3 core (Debian's mailman3
// package, 3.3.8 on Debian 12) privately for a test, as internal/postfixtest
// does for Postfix, so that tests drive listgate against the list manager
// it hands mail to (docs/design.md, "The hand-off").
//
//	mm := mailmantest.Start(t, mailmantest.Options{})
//	mm.CreateList(t, "announce@example.org")    // mailman create
//	// listgate serve --mailman mm.REST, forwarding to mm.LMTP ...
//	posts := mm.WaitQueue(t, "in", 1, 10*time.Second)
//	mm.Stop(t)    // REST and LMTP down
//	mm.Restart(t) // up again, same ports, lists and queues
//
// A program that is not a test (the bench, docs/performance.md) starts the
// same instance with Launch and ends it with Close; Available, PostForm and
// CountQueue are Require, Post and QueueLen returning errors.
//
// # The instance
//
// Everything lives in one directory, /tmp/mailmantest-NNNN (Mailman.Dir):
// mailman.cfg, given to every Mailman command with -C, and var/, Mailman's
// var_dir (the SQLite database in var/data, the queues in var/queue, the
// log in var/logs/mailman.log). The directory is the harness's own rather
// than a t.TempDir: Mailman runs as the user list, which must reach it
// (t.TempDir's parent is root's alone), and a later run must find an
// instance that a killed test binary left behind (see below). The system
// instance (/etc/mailman3, /var/lib/mailman3, the mailman3 service) is
// never read or touched: with -C, Mailman reads no other configuration
// file, and the harness gives its processes a fixed environment, so that no
// MAILMAN_CONFIG_FILE or MAILMAN_VAR_DIR of the test's reaches them.
//
// mailman.cfg is written over Mailman's built-in schema: a path layout of
// its own with var_dir in Dir and Debian's bin_dir (/usr/lib/mailman3/bin,
// where master and runner live); SQLite; the REST API ([webservice]) on
// 127.0.0.1 and a free port, with the user restadmin and a random password
// per instance; the LMTP runner ([mta] lmtp_host, lmtp_port) on 127.0.0.1
// and another free port, never 8001, 8024 or 8025; incoming =
// mailman.mta.null.NullMTA (no Postfix maps to regenerate); smtp_host and
// smtp_port pointing nowhere (127.0.0.1:9, unless Options.SMTP), never the
// host's port 25. Only the rest and lmtp runners start (plus
// Options.Runners): what the LMTP runner accepts stays in the queue
// directories as .pck files, posts in queue/in, -request, -join, -leave and
// the like in queue/command, -bounces (VERP or not) in queue/bounces, where
// Queue reads them; Mailman creates every queue directory whether or not
// its runner runs.
//
// # Starting and stopping
//
// Start runs Mailman's master (/usr/lib/mailman3/bin/master -C FILE
// --force) as the user list, in the foreground and in a process group of
// its own: it is what "mailman start" runs, without the daemonizing, so
// the harness knows its pid. The master forks the runners; rest runs
// gunicorn, with one worker here ([webservice] workers, 2 by default: one
// fewer process to start and stop). Start returns when the REST API answers
// GET /3.1/system/versions with Mailman's name and the LMTP runner greets
// with "220 ... GNU Mailman LMTP runner": checking the answer, not only the
// port, proves that no other process took a port picked as free. A runner
// that cannot bind its port (logged "Address already in use" or "Connection
// in use") makes Start try other ports. Start takes about 5s on an idle
// 2-core machine, nearly all of it Python importing Mailman, once in the
// master and again in each runner; the first start also creates the
// database.
//
// Stop sends the master SIGTERM, as "mailman stop" does: it passes it on to
// the runners and exits when they have, which takes a few seconds (gunicorn
// and the LMTP runner's event loop); Stop waits until no process of the
// instance is left. Restart starts it again with the same configuration,
// ports, lists and queues. At cleanup the harness kills the whole process
// group at once (nothing of the instance is kept, and a graceful stop would
// cost seconds per test), reaps it, checks that no process still runs with
// the instance's mailman.cfg, and removes Dir; if the test failed it logs
// Mailman's log first. The test binary makes itself a child subreaper, so
// that runners orphaned when the master dies are reaped here. If the test
// binary itself is killed (a go test timeout runs no cleanups), the next
// Start kills the abandoned instance's processes and removes it: each
// instance holds a flock that dies with its test binary. This handling of
// processes and instance directories is internal/proctest's, shared with
// internal/postfixtest.
//
// # Files and users
//
// Dir is root's; var/ and mailman.cfg (it holds the REST password) are
// list's, and Mailman creates everything in var/ with umask 007. So every
// Mailman command runs as list (Run, CreateList, RemoveList, Queue): one run
// as root would leave a root-owned database or lock that the runners
// cannot write. Queue unpickles the .pck files with Mailman's own Python
// (the interpreter on the mailman command's #! line, not the first python3
// in $PATH, which may lack Mailman's modules) and prints them as JSON.
//
// # What Mailman 3.3.8 does at its LMTP door
//
// Its LMTP runner refuses RCPT TO for an unknown list or an unknown
// sub-address with "550 Requested action not taken: mailbox unavailable"
// (no enhanced status code), and accepts the rest. It cuts the local part
// at the first "+" (verp_delimiter) before it looks for a sub-address, so
// announce+anything@ is a post and announce-bounces+anne=example.net@ a
// bounce, and it maps an alias_domain to its mail_host. After DATA it
// answers per recipient, adds Message-ID-Hash, X-Message-ID-Hash and
// X-MailFrom (the envelope sender; "<>" for the null sender), and queues
// one entry per recipient: posts and -owner in queue/in, -request,
// -join/-subscribe, -leave/-unsubscribe and -confirm in queue/command,
// -bounces in queue/bounces.
package mailmantest
