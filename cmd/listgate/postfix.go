package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/listgate/listgate/config"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/postconf"
)

// `listgate postfix` prints the main.cf settings that put Postfix in front
// of listgate, and `listgate postfix --check` judges a configuration; what
// they know of Postfix is package postconf's. docs/postfix.md explains both.

// postfixQueueDir is Postfix's default queue_directory, where a chrooted
// smtpd(8) and lmtp(8) live and so where listgate's unix sockets go.
const postfixQueueDir = postconf.DefaultQueueDirectory

// postfixFlags are `listgate postfix`'s own flags: how to reach Postfix
// and what to print. listgate's settings (lists, addresses, size) come
// from the config file and the flags every command shares.
type postfixFlags struct {
	queueDir, command, door string
	unix, check, postconf   bool
}

func (f *postfixFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.door, "door", "", "how Postfix asks listgate about each recipient at RCPT TO (`door`): milter (smtpd_milters; the default), policy (check_policy_service) or socketmap (relay_domains, relay_recipient_maps and transport_maps asked live); docs/postfix.md, \"Which door\". --check recognises the door by itself; with --door, that door must be on (with --unix, its socket is the default)")
	fs.BoolVar(&f.unix, "unix", false, "Postfix reaches listgate over unix-domain sockets in its queue directory (a chrooted smtpd and lmtp, as on Debian); --lmtp, --milter and the --door's address default to unix:"+postfixQueueDir+"/listgate/{lmtp,milter,policy,socketmap}")
	fs.StringVar(&f.queueDir, "queue-directory", postfixQueueDir, "Postfix's queue_directory `path`: sockets under it are named relative to it, as chrooted daemons see them")
	fs.BoolVar(&f.check, "check", false, "read Postfix's configuration (FILE, - for stdin, or run postconf) and name every setting that lets Postfix bounce a bogus list address, accept mail unchecked or lose mail while listgate is down")
	fs.BoolVar(&f.postconf, "postconf", false, "print the settings as \"postconf -e\" commands, which edit main.cf in place, instead of main.cf lines")
	fs.StringVar(&f.command, "postconf-command", "postconf", "postconf(1) `path` (postmap(1) is taken from the same directory), asked for Postfix's defaults and, without FILE, its configuration")
}

// postfixCmd runs `listgate postfix`: without --check it prints the
// settings; with --check it prints one line per finding and returns
// exitRefused if there is any.
func postfixCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("postfix", stderr)
	cf := config.AddFlags(fs, append([]string{"lists", "recipient_delimiter", "lmtp", "milter", "policy", "socketmap", "max_message_size", "observe"}, config.MailmanKeys()...)...)
	var f postfixFlags
	f.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: listgate postfix [--door milter|policy|socketmap] [--postconf] [flags]\n"+
			"       listgate postfix --check [flags] [FILE|-]\n\n"+
			"Prints the main.cf settings that send the lists directory's domains to listgate\n"+
			"and have Postfix ask listgate's --door about each recipient, as main.cf lines or\n"+
			"(--postconf) as postconf -e commands to review and run:\n\n    listgate postfix --postconf > listgate.sh; less listgate.sh; sh -e listgate.sh\n\n"+
			"With --check, reads main.cf or \"postconf -n\" output (FILE, - for stdin, or\n"+
			"Postfix's own), recognises the door it asks (milter, policy or socketmap), and\n"+
			"prints each setting that would let Postfix bounce a bogus list address, accept\n"+
			"mail unchecked or lose mail while listgate is down, and each parameter set\n"+
			"twice. Exits 1 if there is any.\n\nflags:\n")
		fs.PrintDefaults()
	}
	s, err := settings(cf, args)
	if err != nil {
		return 0, err
	}
	switch {
	case !f.check && fs.NArg() != 0:
		return 0, fmt.Errorf("%w: unexpected argument %q (only --check reads a FILE)", errUsage, fs.Arg(0))
	case fs.NArg() > 1:
		return 0, fmt.Errorf("%w: --check reads one FILE, got %q", errUsage, fs.Args())
	case f.check && f.postconf:
		return 0, fmt.Errorf("%w: --postconf prints settings; --check judges them: give one", errUsage)
	}
	door := postconf.DoorMilter
	if f.door != "" {
		if door, err = postconf.ParseDoor(f.door); err != nil {
			return 0, fmt.Errorf("%w: --door: %w", errUsage, err)
		}
	}
	lg, err := f.listgate(s, door, stderr)
	if err != nil {
		return 0, err
	}
	ctx := context.Background()
	tools := postconf.Tools{Postconf: f.command}
	if !f.check {
		if len(lg.Domains) == 0 && door != postconf.DoorSocketmap { // the socketmap names no domain in main.cf
			return 0, fmt.Errorf("%s %s serves no domain yet: add a list file (e.g. announce@example.org) or a Mailman list first, so that relay_domains names it", s.Origin("lists"), s.Lists)
		}
		defaults, _ := tools.DefaultsOrBuiltin(ctx, "")
		return 0, f.print(stdout, lg, door, s, defaults)
	}
	name, cfg, notes, err := readConfig(ctx, tools, fs.Arg(0), stdin)
	if err != nil {
		return 0, err
	}
	defaults, defaultsNote := tools.DefaultsOrBuiltin(ctx, name)
	pf := postconf.NewSettings(cfg, defaults, postconf.Options{Tools: tools, QueueDirectory: f.queueDir})
	r := postconf.Lint(pf, lg)
	for _, fd := range r.Findings {
		fmt.Fprintln(stdout, fd)
	}
	printNotes := func() {
		for _, n := range append(notes, r.Notes...) {
			fmt.Fprintf(stdout, "note: %s\n", n)
		}
		fmt.Fprintf(stderr, "note: %s\n", defaultsNote)
	}
	name = cmp.Or(name, "postconf -n")
	if len(r.Findings) > 0 {
		printNotes()
		fmt.Fprintf(stderr, "listgate postfix --check: %s in %s\n", plural(len(r.Findings), "finding"), name)
		return exitRefused, nil
	}
	defer printNotes() // after the ok line
	var asked []string
	for _, d := range r.Asked {
		asked = append(asked, fmt.Sprintf("listgate's %s %s", d.What(), lg.Endpoint(d)))
	}
	if enforced := lg.EnforcedForms(); len(enforced) > 0 || len(lg.Observed) == 0 {
		fmt.Fprintf(stdout, "ok: %s refuses bogus addresses of %s at RCPT TO (%s, tempfail while it is down) and delivers them to listgate's LMTP %s\n",
			name, strings.Join(enforced, ", "), strings.Join(asked, " and "), lg.LMTP)
	} else {
		fmt.Fprintf(stdout, "ok: %s asks %s at RCPT TO about every recipient of %s (tempfail while it is down)\n",
			name, strings.Join(asked, " and "), strings.Join(lg.Forms(), ", "))
	}
	if observed := lg.ObservedForms(); len(observed) > 0 {
		// Not an ok claim: nothing refuses them yet, by design.
		fmt.Fprintf(stdout, "note: %s %s in observe mode (domain file mode = \"observe\", or the observe setting): bogus addresses of %s are accepted at RCPT TO and counted in listgate_would_refuse_total, not refused; listgate's LMTP refuses them after acceptance (a bounce), so keep their transport at the old list manager until you enforce (docs/postfix.md, \"Observe first\")\n",
			strings.Join(observed, ", "), map[bool]string{true: "is", false: "are"}[len(observed) == 1], map[bool]string{true: "it", false: "them"}[len(observed) == 1])
	}
	return 0, nil
}

// listgate resolves listgate's settings into what Postfix must know of
// it. Printing needs the LMTP door and door's; --check needs the LMTP door
// and one that Postfix can ask at RCPT TO.
func (f *postfixFlags) listgate(s config.Settings, door postconf.Door, stderr io.Writer) (postconf.Listgate, error) {
	lg := postconf.Listgate{LMTP: s.LMTP, Milter: s.Milter, Policy: s.Policy, Socketmap: s.Socketmap}
	if !filepath.IsAbs(f.queueDir) {
		return lg, fmt.Errorf("%w: --queue-directory %q: want an absolute path", errUsage, f.queueDir)
	}
	f.queueDir = filepath.Clean(f.queueDir)
	eps := map[string]*postconf.Endpoint{"lmtp": &lg.LMTP, "milter": &lg.Milter, "policy": &lg.Policy, "socketmap": &lg.Socketmap}
	// --check recognises the door main.cf asks by itself; a --door given
	// with it must be on (with --unix: defaults to its socket).
	needed := []string{"lmtp", string(door)}
	if f.check && f.door == "" {
		needed = []string{"lmtp"}
	}
	for _, name := range []string{"lmtp", "milter", "policy", "socketmap"} {
		ep := eps[name]
		need := slices.Contains(needed, name)
		if f.unix && !s.IsSet(name) && (need || name == "milter") {
			*ep = postconf.Endpoint{Network: "unix", Address: filepath.Join(f.queueDir, "listgate", name)}
		}
		if need && !config.On(*ep) {
			hint := ""
			if name == "policy" || name == "socketmap" {
				hint = fmt.Sprintf(" (it is off by default: run listgate serve --%s inet:127.0.0.1:%s, or set %s in the config file, and give listgate postfix the same)",
					name, map[string]string{"policy": "8026", "socketmap": "8027"}[name], name)
			}
			return lg, fmt.Errorf("%w: %s is empty: Postfix needs listgate's %s door%s", errUsage, s.Origin(name), name, hint)
		}
		if f.unix && config.On(*ep) && (need || name == "milter") && !ep.InQueueDir(f.queueDir) {
			return lg, fmt.Errorf("%w: %s %s: with --unix, give a unix socket under --queue-directory %s, where a chrooted Postfix can reach it", errUsage, s.Origin(name), *ep, f.queueDir)
		}
	}
	if f.check && !config.On(lg.Milter) && !config.On(lg.Policy) && !config.On(lg.Socketmap) {
		return lg, fmt.Errorf("%w: %s, %s and %s are all empty: Postfix needs one of listgate's doors to ask at RCPT TO", errUsage, s.Origin("milter"), s.Origin("policy"), s.Origin("socketmap"))
	}
	snap, _, err := loadLists(s, stderr)
	if err != nil {
		return lg, err
	}
	for _, p := range snap.Problems() {
		fmt.Fprintf(stderr, "listgate postfix: warning: %v\n", p)
	}
	lg.ListsDir, lg.Domains, lg.MaxMessageSize = s.Lists, snap.ServedDomains(), s.MaxMessageSize
	for _, l := range snap.Lists() {
		lg.Lists = append(lg.Lists, l.Local+"@"+l.Domain)
	}
	lg.Roles = roles(snap, s.Lists)
	lg.Observed = snap.ObservedDomains()
	if lg.Delimiter = s.RecipientDelimiter; lg.Delimiter == "none" {
		lg.Delimiter = ""
	}
	return lg, nil
}

// roles returns what listgate does with postmaster@ and abuse@ of every
// served domain (RFC 5321 §4.5.1): a list takes it, the domain file
// names its address, or neither (refused). The file named is the domain
// file that sets them: an alias domain's main domain's.
func roles(snap *lists.Snapshot, dir string) []postconf.Role {
	var out []postconf.Role
	for _, d := range snap.ServedDomains() {
		for _, local := range []string{"postmaster", "abuse"} {
			// An alias domain's postmaster and abuse are its main
			// domain's: that domain file sets them, and a domain file
			// of the alias's own would break the alias.
			main := snap.MainDomain(d)
			r := postconf.Role{Addr: local + "@" + d, File: filepath.Join(dir, "@"+main)}
			if dom := snap.Domain(main); dom != nil && dom.File != "" {
				r.File = dom.File
			}
			switch v := snap.Resolve(r.Addr); v.Status {
			case lists.Accept:
				r.List = true
			case lists.Alias:
				r.Target = v.Target
			}
			out = append(out, r)
		}
	}
	return out
}

// print writes the settings as main.cf lines or postconf -e commands,
// each under its reason.
func (f *postfixFlags) print(w io.Writer, lg postconf.Listgate, door postconf.Door, s config.Settings, d *postconf.Defaults) error {
	flags := fmt.Sprintf("--lists %s --lmtp %s", s.Lists, lg.LMTP)
	for _, dr := range postconf.Doors {
		if ep := lg.Endpoint(dr); config.On(ep) {
			flags += fmt.Sprintf(" --%s %s", dr, ep)
		}
	}
	if lg.Delimiter != lists.DefaultDelimiter {
		flags += " --recipient-delimiter " + s.RecipientDelimiter
	}
	if s.Mailman != "" {
		flags += " --mailman " + s.MailmanURL()
	}
	what, how := "lines for Postfix's main.cf", "Set each in /etc/postfix/main.cf, editing the line of a parameter it\nalready sets rather than adding a second one (Postfix uses the last;\n--check names both), or let postconf -e do it: listgate postfix --postconf."
	if f.postconf {
		what, how = "commands that set Postfix's main.cf", "Review them, then run them as root (sh -e FILE): postconf -e\nreplaces a parameter main.cf already sets rather than repeating it. For\nanother Postfix instance, run them with MAIL_CONFIG=/etc/postfix-other."
	}
	var b strings.Builder
	comment := func(text string) {
		for _, line := range strings.Split(wrap(text, commentWidth-2), "\n") {
			b.WriteString(strings.TrimRight("# "+line, " ") + "\n")
		}
	}
	newDomain := "A list in a new domain needs relay_domains updated and \"postfix reload\"."
	if door == postconf.DoorSocketmap {
		newDomain = "Nor does a list in a new domain, nor the removal of a domain's last list: Postfix asks listgate's socketmap which domains it serves."
	}
	header := fmt.Sprintf("listgate: %s,\nwritten by \"listgate postfix --door %s\" for\n  listgate serve %s --max-message-size %d\n"+
		"(%s in %s).\n\n%s\nThen check with \"listgate postfix --check\" and run \"postfix reload\".\ndocs/postfix.md explains every setting.\n\n"+
		"A new list in one of these domains needs no change here: listgate serves its file at once (a Mailman list at its next poll). %s\n\n%s",
		what, door, flags, lg.MaxMessageSize, plural(len(lg.Lists), "list"), plural(len(lg.Domains), "domain"), how, newDomain, postconf.SocketNote(lg, f.queueDir))
	if note := postconf.RolesNote(lg, door); note != "" {
		header += "\n\n" + note
	}
	comment(header)
	for _, s := range postconf.Recommend(lg, door, f.queueDir, d) {
		b.WriteString("\n")
		comment(s.Why)
		if f.postconf {
			b.WriteString(s.Command() + "\n")
		} else {
			b.WriteString(s.Line() + "\n")
		}
	}
	if lo := postconf.Leftovers(lg, door, f.queueDir); len(lo) > 0 {
		b.WriteString("\n")
		var names []string
		for _, l := range lo {
			names = append(names, fmt.Sprintf("  %s: %s", l.Name, l.What))
		}
		switchText := "Switching doors: these parameters belong to another door's setup. Where one names nothing but listgate's, delete its line (Postfix's default then applies); where it names your own tables or services too, delete only listgate's entry:\n" +
			strings.Join(names, "\n") + "\nlistgate postfix --postconf does it (postconf -X)."
		if f.postconf {
			switchText = "Switching doors: parameters that only another door's setup sets, left by an earlier \"listgate postfix --door ...\". listgate_unset removes each (postconf -X: Postfix's default again) where it names nothing but listgate's:\n" +
				strings.Join(names, "\n") + "\nWhere one names your own tables or services too, it removes nothing and says so: delete listgate's entry by hand."
		}
		comment(switchText)
		if f.postconf {
			b.WriteString(postconf.LeftoverFunc + "\n")
			for _, l := range lo {
				b.WriteString(l.Command() + "\n")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// commentWidth is the widest line of the comments listgate postfix
// prints, "# " included (main.cf lines break at 78 too).
const commentWidth = 78

// wrap breaks each line of text longer than width characters at its last
// space that fits, leaving indented lines (commands to copy) whole.
func wrap(text string, width int) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		for utf8.RuneCountInString(line) > width && !strings.HasPrefix(line, "  ") {
			cut := -1
			for i, r := range line {
				if utf8.RuneCountInString(line[:i]) > width {
					break
				}
				if r == ' ' {
					cut = i
				}
			}
			if cut <= 0 {
				break // one long word: left whole
			}
			out = append(out, line[:cut])
			line = line[cut+1:]
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// readConfig reads the configuration --check judges: FILE, stdin ("-"),
// or the running Postfix's (postconf -n, postconf -P and main.cf; its
// name is then "").
func readConfig(ctx context.Context, tools postconf.Tools, file string, stdin io.Reader) (string, *postconf.Config, []string, error) {
	if file == "" {
		cfg, notes, err := tools.Running(ctx)
		if err != nil {
			return "", nil, nil, fmt.Errorf("%w (give main.cf or postconf -n output as FILE instead)", err)
		}
		return "", cfg, notes, nil
	}
	var b []byte
	var err error
	if file == "-" {
		file = "stdin"
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return "", nil, nil, fmt.Errorf("read %s: %w", file, err)
	}
	cfg, err := postconf.Parse(string(b), file)
	return file, cfg, nil, err
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
