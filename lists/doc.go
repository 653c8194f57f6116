// Package lists turns the lists directory (and an External set, from GNU
// Mailman) into an immutable Snapshot, and a recipient into a Verdict.
// Every door asks the same Snapshot the same question, so they cannot
// disagree (docs/lists.md, docs/design.md "Resolving a recipient").
//
// # Files
//
// A file named local@domain declares a list; one named @domain declares a
// served domain and its settings (alias domains, next hop, keep, and
// where postmaster@ and abuse@ go). Each is TOML with a fixed set of
// keys; a problem names the file and line like compiler output
// ("lists/@example.org:2: postmaster: ..."). A file that breaks keeps its
// last good settings; one that never parsed tempfails what it decides.
// Load reads the directory once; Watch keeps a Snapshot current as files
// change, and Watcher.SetExternal as Mailman's lists do. A file or
// directory that could not be read (EMFILE, EIO, EACCES) is retried with
// backoff (RetryMin to RetryMax) until it reads.
//
// # Resolving a recipient
//
// Snapshot.Resolve gets the recipient exactly as a door received it:
//
//  1. Strip <>; split at the last @; fold local part and domain to lower
//     case (A- and U-label domains compare equal); drop a trailing dot;
//     map an alias domain to its domain. A domain not served: NotServed.
//  2. Cut the extension at the first recipient delimiter, keeping it.
//  3. local@domain is a list or list alias: Accept, its posting address.
//  4. Else a sub-address suffix after the last '-' of a list: Accept,
//     that kind.
//  5. Else postmaster or abuse, when the domain file sets where it goes
//     (RFC 5321 §4.5.1, RFC 2142 §2): Alias, with Verdict.Target. A list
//     of that name won at step 3.
//  6. Else Unknown, or Broken while a list file of the domain has never
//     parsed.
//
// Snapshot.ServesDomain answers the domain lookups of Postfix's tables
// (relay_domains through the socketmap door): Accept, NotServed, or Broken
// while an External that has never been reached names no domain.
package lists
