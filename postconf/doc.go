// Package postconf is listgate's model of a Postfix configuration: what
// `listgate postfix` prints, what `listgate postfix --check` judges, and
// what the test harness (internal/postfixtest) writes, read by one parser.
//
// # Reading
//
// Parse reads main.cf syntax, which is also what "postconf -n" prints
// (postconf(5), the introduction): "name = value" logical lines, lines
// starting with white space continuing them, "#" comments. Names with a
// "/" are master.cf's per-service overrides as "postconf -P" prints them
// ("smtp/inet/smtpd_milters = ..."). Every setting keeps its file:line,
// and every setting of a name is kept: Postfix uses the last one, and
// Config.Duplicates finds the others.
//
// Tools runs the Postfix installed here: Tools.Defaults is "postconf
// -d"; Tools.Running is "postconf -n" and "postconf -P" and main.cf
// itself, which shows what postconf -n hides (a parameter set twice);
// Tools.Query is "postmap -q". Each command is bounded by Tools.Timeout
// (10 s). Where Postfix is not installed, BuiltinDefaults are Postfix
// 3.7's for the parameters the checks read, and Defaults.Source says which
// was used.
//
// # Meaning
//
// Settings answers as Postfix would:
//
//   - Value: a parameter's last setting or its default, with $name,
//     ${name}, $(name), ${name?value}, ${name:value},
//     ${name?{value1}:{value2}} and the relational ${{a} op {b} ? ...}
//     forms expanded (postconf(5)); postconf -d's own defaults use the
//     last, e.g. relay_domains depends on compatibility_level.
//   - InList: a domain against a domain list as match_list(3) matches it:
//     first match wins, "!" negates, "/file" holds more patterns,
//     "type:table" is looked up, subdomains match by
//     parent_domain_matches_subdomains or ".domain".
//   - Class: the address class of a recipient domain (ADDRESS_CLASS_README):
//     local (mydestination), virtual alias, virtual mailbox, relay
//     (relay_domains), or default.
//   - Route: where a domain's mail goes: the class's transport parameter,
//     overridden by transport_maps (transport(5)).
//   - Lookup: inline: and static: tables are read here; file tables
//     (hash:, lmdb:, cdb:, regexp:, pcre:, cidr:, texthash:) through
//     postmap -q; network and database tables (tcp:, socketmap:, ldap:,
//     mysql:, ...) are never queried: only the running Postfix asks them
//     (Lint answers listgate's own socketmap as its door would). regexp:,
//     pcre: and socketmap: are pattern tables: a domain is looked up as
//     it is, never by its parent domains.
//     What cannot be read becomes a note (Settings.Notes), not an error.
//
// # Judging
//
// Lint compares Settings with a Listgate (its domains, lists, doors,
// postmaster@ and abuse@ addresses, recipient delimiter and size limit)
// and returns a Finding for every setting that makes Postfix accept a
// bogus list address and bounce it later (backscatter), accept mail
// unchecked, relay for anyone, or lose mail while listgate is down. It
// recognises the door Postfix asks at RCPT TO (Report.Asked): listgate's
// milter in smtpd_milters (MILTER_README), its policy service in a
// restriction list (SMTPD_POLICY_README), or its socketmap recipients map
// in relay_recipient_maps (socketmap_table(5)); lookups in listgate's own
// socketmap tables are answered as its door would. Findings: no door
// asked, or one at a wrong address or after a permit; a default action
// that accepts or rejects while listgate is down; a list domain not
// relayed to listgate's LMTP; a subdomain or another domain relayed to it;
// recipient tables that lack the lists; smtpd_reject_unlisted_recipient =
// no; a socketmap table of the wrong map; postmaster@ or abuse@ with a
// target and no virtual_alias_maps to rewrite it; a different
// recipient_delimiter; size limits above listgate's; no
// reject_unauth_destination; and every parameter main.cf sets twice.
// postmaster@ and abuse@ that listgate refuses (RFC 5321 §4.5.1) are a note.
//
// Recommend is the other direction: the settings that put Postfix in front
// of a listgate through one Door (contrib/postfix/main.cf,
// main.cf.policy or main.cf.socketmap filled in), each printable as a
// main.cf line (Setting.Line) or a postconf -e command (Setting.Command).
//
//	cfg, _, err := postconf.Tools{}.Running(ctx)
//	d, note := postconf.Tools{}.DefaultsOrBuiltin(ctx, "")
//	report := postconf.Lint(postconf.NewSettings(cfg, d, postconf.Options{}), lg)
package postconf
