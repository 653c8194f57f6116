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

// Door is the way Postfix asks listgate about a recipient at RCPT TO
// (docs/postfix.md, "Which door").
type Door string

// The doors `listgate postfix --door` prints main.cf lines for.
const (
	// DoorMilter: smtpd_milters (MILTER_README); relay_domains static.
	DoorMilter Door = "milter"
	// DoorPolicy: check_policy_service (SMTPD_POLICY_README);
	// relay_domains static.
	DoorPolicy Door = "policy"
	// DoorSocketmap: relay_domains, relay_recipient_maps, transport_maps
	// and virtual_alias_maps ask listgate's socketmap (socketmap_table(5));
	// no static list of domains anywhere.
	DoorSocketmap Door = "socketmap"
)

// What names the door in a sentence: "milter", "policy service",
// "socketmap".
func (d Door) What() string {
	if d == DoorPolicy {
		return "policy service"
	}
	return string(d)
}

// Doors are every Door, in the order the docs present them.
var Doors = []Door{DoorMilter, DoorPolicy, DoorSocketmap}

// ParseDoor reads a Door's name.
func ParseDoor(s string) (Door, error) {
	for _, d := range Doors {
		if string(d) == s {
			return d, nil
		}
	}
	return "", fmt.Errorf("unknown door %q: want milter, policy or socketmap", s)
}

// Endpoint returns lg's address of door d (lg.Milter, lg.Policy or
// lg.Socketmap).
func (lg Listgate) Endpoint(d Door) Endpoint {
	switch d {
	case DoorPolicy:
		return lg.Policy
	case DoorSocketmap:
		return lg.Socketmap
	}
	return lg.Milter
}

// SocketmapTable names map (domains, recipients, transport or aliases) of
// lg's socketmap door as main.cf does: "socketmap:inet:127.0.0.1:8027:domains"
// (socketmap_table(5)).
func (lg Listgate) SocketmapTable(queueDir, name string) string {
	return "socketmap:" + lg.Socketmap.MainCFName(queueDir) + ":" + name
}

// TransportAnswer is what lg's socketmap transport map answers for a list
// address or a served domain: listgate's LMTP door as Postfix's lmtp(8)
// reaches it from queueDir, in transport(5) syntax
// ("lmtp:inet:127.0.0.1:8024", "lmtp:unix:listgate/lmtp").
func (lg Listgate) TransportAnswer(queueDir string) string {
	return "lmtp:" + lg.LMTP.MainCFName(queueDir)
}

// Recommend returns the main.cf settings that send lg's domains to
// listgate and have Postfix ask it about each recipient through door
// (contrib/postfix/main.cf, main.cf.policy or main.cf.socketmap, filled
// in): listgate's unix sockets are named relative to queueDir, Postfix's
// queue_directory, and parent_domain_matches_subdomains is d's without
// relay_domains. With the milter or the policy door and lg's socketmap
// door on, virtual_alias_maps asks the socketmap's aliases map, for
// postmaster@ and abuse@ (RFC 5321 §4.5.1).
func Recommend(lg Listgate, door Door, queueDir string, d *Defaults) []Setting {
	pdms, _ := d.Get("parent_domain_matches_subdomains")
	var keep []string
	for _, p := range splitList(pdms) {
		if p != "relay_domains" {
			keep = append(keep, p)
		}
	}
	var out []Setting
	add := func(name, value, why string) { out = append(out, Setting{name, value, why}) }
	lmtp := lg.TransportAnswer(queueDir)
	switch door {
	case DoorSocketmap:
		add("relay_domains", lg.SocketmapTable(queueDir, "domains"),
			"The list domains (the relay address class), asked of listgate's socketmap\n"+
				"live: a domain is relayed from the moment listgate serves it, and refused\n"+
				"(554 5.7.1 Relay access denied) from the moment it serves it no more. No\n"+
				"static list of domains anywhere, no postmap, no postfix reload.")
	default:
		add("relay_domains", strings.Join(lg.Forms(), ", "),
			"The list domains (the relay address class): Postfix accepts mail for\n"+
				"them from anyone; listgate's "+door.What()+" checks every recipient.")
	}
	if door != DoorSocketmap {
		// A socketmap is asked the domain as it is, never its parents:
		// the line would change nothing.
		add("parent_domain_matches_subdomains", strings.Join(keep, ", "),
			"Only those domains, not their subdomains (Postfix's default matches\n"+
				"subdomains of relay_domains): listgate does not serve sub.example.org, so\n"+
				"Postfix would accept mail for it and bounce it when listgate's LMTP\n"+
				"refuses it. For another relay domain whose subdomains you do relay,\n"+
				"write .domain in relay_domains.")
	}
	if door == DoorSocketmap {
		add("relay_recipient_maps", lg.SocketmapTable(queueDir, "recipients"),
			"The recipient check: listgate's socketmap answers OK for a list address\n"+
				"and its sub-addresses, so Postfix refuses any other address of a list\n"+
				"domain at RCPT TO (550 5.1.1 User unknown in relay recipient table),\n"+
				"and tempfails (451 4.3.0) while listgate cannot say.")
		add("smtpd_reject_unlisted_recipient", "yes",
			"Refuse at RCPT TO what relay_recipient_maps does not list (Postfix's\n"+
				"default, written out): with no, Postfix would accept a bogus list\n"+
				"address and bounce it later.")
		add("transport_maps", lg.SocketmapTable(queueDir, "transport"),
			"Deliver list mail over LMTP to listgate's sink: listgate's socketmap\n"+
				"answers "+lmtp+" for every address it accepts.\n"+
				"relay_transport stays as it was, for any other relay domain.")
	} else {
		add("relay_transport", lmtp,
			"Deliver mail for relay_domains over LMTP to listgate's sink.")
	}
	add("lmtp_destination_recipient_limit", "50",
		"Recipients per LMTP transaction; listgate answers each one on its own.")
	switch door {
	case DoorMilter:
		add("smtpd_milters", lg.Milter.MainCFName(queueDir),
			"Ask listgate at RCPT TO, so a bogus list address is refused during the\n"+
				"SMTP dialogue and never bounced later.")
		add("milter_default_action", "tempfail",
			"listgate down or not answering: 4xx, the sender retries. Never accept\n"+
				"unchecked mail.")
		add("milter_protocol", "6", "Milter protocol 6 (Sendmail 8.14), which listgate speaks.")
	case DoorPolicy:
		add("smtpd_recipient_restrictions", "check_policy_service "+lg.Policy.MainCFName(queueDir),
			"Ask listgate's policy service at RCPT TO, so a bogus list address is\n"+
				"refused during the SMTP dialogue and never bounced later. It runs after\n"+
				"smtpd_relay_restrictions (below), which refuses foreign domains first.\n"+
				"If main.cf already has smtpd_recipient_restrictions, add it to that line.")
		add("smtpd_policy_service_default_action", "451 4.3.5 Server configuration problem",
			"listgate down or not answering: 4xx, the sender retries (Postfix's\n"+
				"default, written out). Never DUNNO: that accepts unchecked mail.")
	}
	if lg.Socketmap.Network != "" && door != "" {
		add("virtual_alias_maps", lg.SocketmapTable(queueDir, "aliases"),
			"postmaster@ and abuse@ of a list domain go where its domain file says\n"+
				"(postmaster = \"...\"), as RFC 5321 §4.5.1 wants; listgate's aliases map\n"+
				"answers nothing else. Postfix asks it about every recipient: while\n"+
				"listgate is down, every recipient gets 451 4.3.0.")
	}
	add("recipient_delimiter", lg.Delimiter,
		"The same delimiter as listgate's: list-bounces+token@ is list-bounces@.")
	add("message_size_limit", strconv.FormatInt(lg.MaxMessageSize, 10),
		fmt.Sprintf("At or below listgate's --max-message-size (%d). local(8)\n"+
			"refuses to run when mailbox_size_limit is smaller (Postfix's default\n"+
			"is 51200000; Debian's main.cf sets 0): --check says so.", lg.MaxMessageSize))
	add("smtpd_relay_restrictions", "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
		"Relay only for our own clients; everyone else may send only to domains\n"+
			"this server is the destination for (the list domains): not an open relay.")
	return out
}

// SocketNote says what lg's unix sockets need, as comment text (one
// paragraph a line, for the caller to wrap): their
// directory made with the postfix group, so that Postfix may connect, and
// master.cf's chroot column (master(5)) set to n for the services that
// connect to a socket outside queueDir, which a chrooted one cannot reach:
// lmtp(8) for the LMTP door, smtpd(8) for the milter and the policy door,
// and for the socketmap smtpd, trivial-rewrite(8) (relay_domains,
// transport_maps) and cleanup(8) (virtual_alias_maps).
func SocketNote(lg Listgate, queueDir string) string {
	var dirs, outside, services []string
	for _, door := range []struct {
		e        Endpoint
		services []string
	}{
		{lg.LMTP, []string{"lmtp/unix"}},
		{lg.Milter, []string{"smtp/inet"}},
		{lg.Policy, []string{"smtp/inet"}},
		{lg.Socketmap, []string{"smtp/inet", "rewrite/unix", "cleanup/unix"}},
	} {
		e := door.e
		if e.Network != "unix" {
			continue
		}
		if d := filepath.Dir(e.Address); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
		if !e.InQueueDir(queueDir) {
			outside = append(outside, e.Address)
			for _, sv := range door.services {
				if !slices.Contains(services, sv) {
					services = append(services, sv)
				}
			}
		}
	}
	master := "master.cf needs no change."
	if len(outside) > 0 {
		var names, sets []string
		for _, sv := range services {
			names = append(names, map[string]string{"smtp/inet": "smtpd", "lmtp/unix": "lmtp",
				"rewrite/unix": "trivial-rewrite", "cleanup/unix": "cleanup"}[sv])
			sets = append(sets, sv+"/chroot=n")
		}
		one := len(outside) == 1
		master = fmt.Sprintf("master.cf: %s %s outside Postfix's queue directory "+
			"%s, where a chrooted %s cannot reach %s: set their "+
			"chroot column to n (postconf -F %s), "+
			"or run listgate with sockets under %s (--unix).",
			strings.Join(outside, ", "), map[bool]string{true: "is", false: "are"}[one],
			queueDir, strings.Join(names, " or "), map[bool]string{true: "it", false: "them"}[one], strings.Join(sets, " "), queueDir)
	}
	if len(dirs) == 0 {
		return master
	}
	return "Unix-domain sockets: make their directory with the postfix group, e.g.\n" +
		"  install -d -o listgate -g postfix -m 2750 " + strings.Join(dirs, " ") + "\n\n" + master
}

// Leftover is a parameter that only another door's setup sets, as
// `listgate postfix --door` printed it, and so one a switch of doors
// leaves behind: smtpd_milters naming listgate's milter after a switch to
// the policy door, say, or relay_recipient_maps asking listgate's
// socketmap after a switch away from it (docs/postfix.md, "Switching
// doors").
type Leftover struct {
	// Name is the parameter.
	Name string
	// Entries match the entries of its value that are listgate's, as
	// sh(1) case patterns: the milter or the policy service at lg's
	// address or at the ones listgate postfix suggests
	// (inet:127.0.0.1:8025 or 8026, unix:listgate/milter or policy), and
	// a socketmap map named like listgate's at lg's socketmap or on this
	// host (loopback, or a unix socket with "listgate" in its path),
	// whatever its port: what --check takes for listgate's.
	Entries []string
	// What names listgate's entries in a sentence.
	What string
}

// doorPorts are the ports listgate postfix suggests for the milter and
// the policy door.
var doorPorts = map[Door]string{DoorMilter: "8025", DoorPolicy: "8026"}

// names returns the addresses main.cf may name door d of lg by: lg's,
// if the door is on, and the ones listgate postfix suggests.
func (lg Listgate) names(d Door, queueDir string) []string {
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if ep := lg.Endpoint(d); ep.Network != "" {
		add(ep.MainCFName(queueDir))
		add(ep.String())
	}
	add("inet:127.0.0.1:" + doorPorts[d])
	add("inet:localhost:" + doorPorts[d])
	add("unix:listgate/" + string(d))
	add("unix:" + filepath.Join(queueDir, "listgate", string(d)))
	return out
}

// Leftovers returns the parameters that only the other doors' setups set
// when they point at listgate, for a switch to door: smtpd_milters (the
// milter), smtpd_recipient_restrictions (the policy service),
// relay_recipient_maps and transport_maps (the socketmap), and
// virtual_alias_maps unless Recommend sets it. The parameters both setups
// set (relay_domains), and the ones whose value is Postfix's default
// (milter_default_action = tempfail, smtpd_reject_unlisted_recipient =
// yes), are not among them.
func Leftovers(lg Listgate, door Door, queueDir string) []Leftover {
	var out []Leftover
	if door != DoorMilter {
		var pats []string
		for _, n := range lg.names(DoorMilter, queueDir) {
			pats = append(pats, shLiteral(n))
		}
		out = append(out, Leftover{"smtpd_milters", pats, "listgate's milter"})
	}
	if door != DoorPolicy {
		var pats []string
		for _, n := range lg.names(DoorPolicy, queueDir) {
			pats = append(pats, shLiteral(n))
		}
		out = append(out, Leftover{"smtpd_recipient_restrictions", pats, "listgate's check_policy_service"})
	}
	if door != DoorSocketmap {
		maps := []string{"recipients", "transport"}
		if lg.Socketmap.Network == "" {
			maps = append(maps, "aliases")
		}
		for _, m := range maps {
			var pats []string
			if ep := lg.Socketmap; ep.Network != "" {
				pats = append(pats, shLiteral(lg.SocketmapTable(queueDir, m)), shLiteral("socketmap:"+ep.String()+":"+m))
			}
			pats = append(pats, "socketmap:inet:127.*:"+m, "socketmap:inet:localhost:*:"+m,
				"socketmap:inet:[[]::1]:*:"+m, "socketmap:unix:*listgate*:"+m)
			out = append(out, Leftover{socketmapParamFor[m], pats, "listgate's socketmap " + m + " map"})
		}
	}
	return out
}

// socketmapParamFor is the parameter each map of listgate's socketmap is
// for (the inverse of socketmapParams).
var socketmapParamFor = map[string]string{"domains": "relay_domains", "recipients": "relay_recipient_maps",
	"transport": "transport_maps", "aliases": "virtual_alias_maps"}

// shLiteral quotes s as an sh(1) pattern that matches s alone.
func shLiteral(s string) string {
	return strings.NewReplacer("[", "[[]", "*", "[*]", "?", "[?]").Replace(s)
}

// LeftoverFunc is the sh(1) function the commands of LeftoverCommand
// call. It reads a parameter's value as main.cf sets it (postconf -nh),
// splits it into entries at commas and spaces, and removes the parameter
// (postconf -X: Postfix's default again) when every entry matches one of
// listgate's, the word check_policy_service aside; when some do and some
// do not, it removes nothing and says to edit the line by hand. Either
// way it says so on stderr.
const LeftoverFunc = `listgate_unset() { # PARAMETER PATTERN...
	p=$1 ours=0 theirs=0
	shift
	set -f
	for w in $(postconf -nh "$p" 2>/dev/null | tr , ' '); do
		m=0
		for pat in "$@"; do
			case $w in $pat) m=1 ;; esac
		done
		if [ "$w" = check_policy_service ]; then :
		elif [ $m = 1 ]; then ours=$((ours + 1))
		else theirs=$((theirs + 1))
		fi
	done
	set +f
	if [ $ours -gt 0 ] && [ $theirs = 0 ]; then
		postconf -X "$p"
		echo "listgate: removed $p (another door's, naming listgate alone)" >&2
	elif [ $ours -gt 0 ]; then
		echo "listgate: $p names listgate's and other entries: remove listgate's by hand" >&2
	fi
}`

// Command returns the sh(1) command that removes l from main.cf when it
// names listgate's entries alone (LeftoverFunc must precede it).
func (l Leftover) Command() string {
	var b strings.Builder
	b.WriteString("listgate_unset " + l.Name)
	for i, p := range l.Entries {
		if i%3 == 0 {
			b.WriteString(" \\\n\t")
		} else {
			b.WriteString(" ")
		}
		b.WriteString(shellQuote(p))
	}
	return b.String()
}

// RolesNote says, as comment text, what postmaster@ and abuse@ of lg's
// domains need when their domain files name where they go but door's
// settings cannot send them there: Postfix's virtual_alias_maps must
// rewrite them, from lg's socketmap aliases map, and lg's socketmap door
// is off. "" when there is nothing to say.
func RolesNote(lg Listgate, door Door) string {
	if lg.Socketmap.Network != "" || door == DoorSocketmap {
		return ""
	}
	var addrs, entries []string
	for _, r := range lg.Roles {
		if r.Target != "" {
			addrs = append(addrs, r.Addr)
			entries = append(entries, "  "+r.Addr+" "+r.Target)
		}
	}
	if len(addrs) == 0 {
		return ""
	}
	return "postmaster@ and abuse@: the domain files send " + strings.Join(addrs, ", ") +
		" elsewhere, and Postfix's virtual_alias_maps must rewrite them there. That needs listgate's socketmap aliases map, and its socketmap door is off: run listgate with --socketmap (e.g. inet:127.0.0.1:8027) and give this command the same, or add your own virtual_alias_maps entries:\n" +
		strings.Join(entries, "\n") + "\nWithout either, Postfix accepts them and listgate's LMTP tempfails them until Postfix bounces them (--check notes it)."
}
