// Package mailman makes GNU Mailman 3's lists lists listgate serves
// (docs/mailman.md). A Source polls Mailman core's REST API, version 3.1
// (HTTP Basic with Mailman's [webservice] admin_user and admin_pass), every
// Options.Interval, since Mailman announces no change and sends no HTTP
// ETag:
//
//   - GET /lists?count=N&page=P until total_size: fqdn_listname and
//     list_id of every list. The pages must agree on total_size and add up
//     to it; when more than one page was read, a list that seems removed
//     is asked for alone (GET /lists/LIST_ID), since a list created or
//     removed between two pages shifts the ones after it. A read that does
//     not fit together is read again;
//   - GET /domains: mail_host and alias_domain (null or a domain) of every
//     domain: each is served even with no lists, its alias domain as a
//     domain file's alias;
//   - GET /system/configuration/mta: lmtp_host and lmtp_port, the LMTP
//     runner that is the lists' next hop (unless Options.LMTP says
//     another), and verp_delimiter, which must be one of listgate's
//     recipient delimiters.
//
// What it reads becomes a lists.External, merged into the same snapshot
// and the same Resolve as the list files. A poll that fails keeps the last
// good set. Before the first successful poll the set is not settled: it is
// the cache file's (the last set read, kept across restarts) and the
// domains the configuration names, and an unknown address of those
// domains tempfails (451) rather than getting a 550.
//
// Credentials never appear in a log line, an error or a metric: requests
// carry them in the Authorization header only, and every URL shown is the
// base without its user information (Redact).
package mailman
