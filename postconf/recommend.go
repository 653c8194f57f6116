package postconf

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Setting is one main.cf parameter that puts Postfix in front of listgate,
// and why.
type Setting struct {
	Name, Value string
	Why         string // may span lines
}

// Line returns s as main.cf states it: "name = value", broken after
// commas into continuation lines of at most 78 columns where it can be.
func (s Setting) Line() string {
	const width = 78
	var b strings.Builder
	col := 0
	for i, word := range strings.SplitAfter(s.Name+" = "+s.Value, ", ") {
		if i > 0 && col+len(strings.TrimRight(word, " ")) > width {
			t := strings.TrimRight(b.String(), " ")
			b.Reset()
			b.WriteString(t + "\n    ")
			col = 4
		}
		b.WriteString(word)
		col += len(word)
	}
	return strings.TrimRight(b.String(), " ")
}

// Command returns s as a postconf(1) command that sets it in main.cf,
// quoted for a POSIX shell: postconf -e 'name = value'. postconf -e
// replaces the line main.cf already has, where "cat >>" would add a
// second one.
func (s Setting) Command() string {
	return "postconf -e " + shellQuote(s.Name+" = "+s.Value)
}

// shellQuote quotes s as one word for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Recommend returns the main.cf settings that send lg's domains to
// listgate (contrib/postfix/main.cf, filled in): listgate's unix sockets
// are named relative to queueDir, Postfix's queue_directory, and
// parent_domain_matches_subdomains is d's without relay_domains.
func Recommend(lg Listgate, queueDir string, d *Defaults) []Setting {
	pdms, _ := d.Get("parent_domain_matches_subdomains")
	var keep []string
	for _, p := range splitList(pdms) {
		if p != "relay_domains" {
			keep = append(keep, p)
		}
	}
	return []Setting{
		{"relay_domains", strings.Join(lg.Forms(), ", "),
			"The list domains (the relay address class): Postfix accepts mail for\n" +
				"them from anyone; listgate's milter checks every recipient."},
		{"parent_domain_matches_subdomains", strings.Join(keep, ", "),
			"Only those domains, not their subdomains (Postfix's default matches\n" +
				"subdomains of relay_domains): listgate does not serve sub.example.org, so\n" +
				"Postfix would accept mail for it and bounce it when listgate's LMTP\n" +
				"refuses it. For another relay domain whose subdomains you do relay,\n" +
				"write .domain in relay_domains."},
		{"relay_transport", "lmtp:" + lg.LMTP.MainCFName(queueDir),
			"Deliver mail for relay_domains over LMTP to listgate's sink."},
		{"lmtp_destination_recipient_limit", "50",
			"Recipients per LMTP transaction; listgate answers each one on its own."},
		{"smtpd_milters", lg.Milter.MainCFName(queueDir),
			"Ask listgate at RCPT TO, so a bogus list address is refused during the\n" +
				"SMTP dialogue and never bounced later."},
		{"milter_default_action", "tempfail",
			"listgate down or not answering: 4xx, the sender retries. Never accept\n" +
				"unchecked mail."},
		{"milter_protocol", "6", "Milter protocol 6 (Sendmail 8.14), which listgate speaks."},
		{"recipient_delimiter", lg.Delimiter,
			"The same delimiter as listgate's: list-bounces+token@ is list-bounces@."},
		{"message_size_limit", strconv.FormatInt(lg.MaxMessageSize, 10),
			fmt.Sprintf("At or below listgate's --max-message-size (%d). local(8) refuses to run\n"+
				"when mailbox_size_limit is smaller (Postfix's default is 51200000;\n"+
				"Debian's main.cf sets 0): --check says so.", lg.MaxMessageSize)},
		{"smtpd_relay_restrictions", "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
			"Relay only for our own clients; everyone else may send only to domains\n" +
				"this server is the destination for (the list domains): not an open relay."},
	}
}

// SocketNote says what lg's unix sockets need, as comment text: their
// directory made with the postfix group, so that Postfix may connect, and
// master.cf's chroot column (master(5)) set to n for a socket outside
// queueDir, which a chrooted smtpd(8) or lmtp(8) cannot reach.
func SocketNote(lg Listgate, queueDir string) string {
	var dirs []string
	master := "master.cf needs no change."
	for _, e := range []Endpoint{lg.LMTP, lg.Milter} {
		if e.Network != "unix" {
			continue
		}
		if d := filepath.Dir(e.Address); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
		if !e.InQueueDir(queueDir) {
			master = fmt.Sprintf("master.cf: %s is outside Postfix's queue directory\n"+
				"%s, where a chrooted smtpd or lmtp cannot reach it: set their\n"+
				"chroot column to n (postconf -F smtp/inet/chroot=n lmtp/unix/chroot=n),\n"+
				"or run listgate with sockets under %s (--unix).", e.Address, queueDir, queueDir)
		}
	}
	if len(dirs) == 0 {
		return master
	}
	return "Unix-domain sockets: make their directory with the postfix group, e.g.\n" +
		"  install -d -o listgate -g postfix -m 2750 " + strings.Join(dirs, " ") + "\n\n" + master
}
