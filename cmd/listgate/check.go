package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/listgate/listgate/config"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/postconf"
	"github.com/listgate/listgate/postfix"
	"github.com/listgate/listgate/reply"
)

// check prints the verdict for each address, as every door would give it
// (the LMTP door's reply), and returns exitRefused if any address is not
// accepted.
func check(args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("check", stderr)
	cf := config.AddFlags(fs, append([]string{"lists", "recipient_delimiter", "observe", "lmtp"}, config.MailmanKeys()...)...)
	explain := fs.Bool("explain", false, "print each step of the resolution, the file (and line) that decided, and every door's answer")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: listgate check [flags] ADDRESS...\n\n"+
			"Prints the verdict for each recipient address, the reply the LMTP door\n"+
			"gives it and at which stage (RCPT, or end of DATA for an accepted one), and\n"+
			"the milter's answer where it differs. postmaster@ and abuse@ of a domain\n"+
			"whose domain file names where they go show as \"alias\", with target=.\n"+
			"An unknown address of a domain in observe mode shows as \"observed\".\n"+
			"With --explain, each step of the resolution follows, then the answer of\n"+
			"every door: LMTP, milter, policy service, and each socketmap map.\n"+
			"Exits 1 if any address is refused, tempfails, is observed (let through\n"+
			"at RCPT in observe mode, but not a list's) or is not served (an alias is\n"+
			"none of these); 2 if an ADDRESS is not local@domain: that one is named on\n"+
			"stderr, and the others are still checked.\n\n"+
			"check reads the list files as they are now: where a file is broken, a\n"+
			"running daemon that read it before still answers from its last good\n"+
			"settings, which check cannot know.\n\nflags:\n")
		fs.PrintDefaults()
	}
	s, err := settings(cf, args)
	if err != nil {
		return 0, err
	}
	if fs.NArg() == 0 {
		return 0, fmt.Errorf("%w: give at least one ADDRESS", errUsage)
	}
	// An ADDRESS that is no address is named and skipped: the others are
	// still checked, and the exit status is exitUsage.
	var addrs []string
	for _, addr := range fs.Args() {
		if err := checkSyntax(addr); err != nil {
			fmt.Fprintf(stderr, "listgate check: %v\n", fmt.Errorf("%w: %v", errUsage, err))
			continue
		}
		addrs = append(addrs, addr)
	}
	if len(addrs) == 0 {
		return exitUsage, nil
	}
	snap, _, err := loadLists(s, stderr)
	if err != nil {
		return 0, err
	}
	for _, p := range snap.Problems() {
		fmt.Fprintf(stderr, "listgate check: warning: %v\n", p)
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	status := 0
	for i, addr := range addrs {
		var v lists.Verdict
		if *explain {
			if i > 0 {
				fmt.Fprintln(tw)
			}
			var steps []lists.Step
			steps, v = snap.Explain(addr)
			explainSteps(tw, addr, steps, v, snap, s.LMTP)
		} else {
			v = snap.Resolve(addr)
			fmt.Fprintf(tw, "%s\t%s\t%s\n", addr, v.Status, describe(v))
		}
		if v.Status != lists.Accept && v.Status != lists.Alias {
			status = exitRefused
		}
	}
	if len(addrs) < fs.NArg() {
		status = exitUsage
	}
	return status, tw.Flush()
}

// checkSyntax refuses an ADDRESS that is no address at all: without an
// "@" (after <>), with nothing after it, or with a blank or a control
// character (a typo, or several addresses in one argument). The doors
// would let such a recipient pass as not listgate's; check says why.
func checkSyntax(addr string) error {
	a := strings.TrimPrefix(strings.TrimSuffix(addr, ">"), "<")
	at := strings.LastIndexByte(a, '@')
	switch {
	case strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("%q is not an address: it has a blank or a control character", addr)
	case at < 0:
		return fmt.Errorf("%q is not an address: want local@domain", addr)
	case strings.TrimSuffix(a[at+1:], ".") == "":
		return fmt.Errorf("%q is not an address: no domain after the @", addr)
	}
	return nil
}

// brokenOnDisk follows the step that says a broken file makes an address
// tempfail: check reads the files as they are now, a running daemon may
// not (docs/config.md).
const brokenOnDisk = " (as on disk now: a running listgate that parsed the file before keeps its last good settings until it parses again)"

// explainSteps prints addr's resolution step by step, its verdict, and
// every door's answer to it, from the verdict table (package reply) and,
// for the socketmap, from the door's own code (postfix.SocketmapAnswer),
// with lmtp as the socketmap's transport.
func explainSteps(w io.Writer, addr string, steps []lists.Step, v lists.Verdict, snap *lists.Snapshot, lmtp postconf.Endpoint) {
	fmt.Fprintf(w, "%s\n", addr)
	for _, st := range steps {
		text := st.Text
		// A broken file, not a name claimed twice (which a running
		// listgate tempfails too).
		if v.Status == lists.Broken && strings.Contains(text, "tempfail") &&
			!strings.Contains(text, "declared twice") && !strings.Contains(text, "also claimed by") &&
			(st.Name == lists.StepList || st.Name == lists.StepSubaddress || st.Name == lists.StepUnknown) {
			text += brokenOnDisk
		}
		fmt.Fprintf(w, "  %s\t%s\n", st.Name, text)
	}
	verdict := v.Status.String()
	for _, kv := range []struct{ k, v string }{{"list", v.List}, {"kind", string(v.Kind)}, {"extension", v.Extension},
		{"domain", map[bool]string{true: v.Domain}[v.Status == lists.Observed]}, {"target", v.Target}} {
		if kv.v != "" {
			verdict += " " + kv.k + "=" + kv.v
		}
	}
	if v.MaxMessageSize > 0 {
		verdict += fmt.Sprintf(" max_message_size=%d", v.MaxMessageSize)
	}
	fmt.Fprintf(w, "  verdict\t%s\n", verdict)
	o := reply.Of(v.Status)
	for _, d := range []reply.Door{reply.LMTP, reply.Milter, reply.Policy} {
		text := "RCPT: " + reply.For(d, reply.RCPT, o).String()
		if after := reply.For(d, reply.Data, o); after.Action != reply.None {
			end := "after DATA"
			if d == reply.Milter {
				end = "end of message"
			}
			text += "; " + end + ": " + after.String()
		}
		fmt.Fprintf(w, "  %s\t%s\n", d, text)
	}
	key := strings.TrimPrefix(strings.TrimSuffix(addr, ">"), "<")
	for _, name := range postfix.SocketmapMaps() {
		k := key
		if name == "domains" {
			k = strings.TrimSuffix(k[strings.LastIndexByte(k, '@')+1:], ".")
		}
		// NOTFOUND has an empty text on the wire; not here.
		fmt.Fprintf(w, "  socketmap %s\t%s: %s\n", name, k, strings.TrimRight(postfix.SocketmapAnswer(snap, lmtp, name, k), " "))
	}
}

// describe says what a verdict means: the reply the LMTP door gives and
// at which stage (an accepted recipient's 250 2.1.5 comes only after
// DATA), the milter's answer where it differs, for an accepted address
// the list, kind and extension, and for an alias (postmaster@, abuse@)
// the address it goes to.
func describe(v lists.Verdict) string {
	var b strings.Builder
	lmtp, milter := reply.ForDoor(reply.LMTP, v.Status), reply.For(reply.Milter, reply.RCPT, reply.Of(v.Status))
	fmt.Fprintf(&b, "%s (LMTP door, at %s", lmtp, stageName(lmtp.Stage))
	if v.Status == lists.Alias {
		b.WriteString(", should Postfix not have rewritten it; the milter and the policy service let it through, " +
			"the socketmap's aliases map gives Postfix's virtual_alias_maps the target)")
	} else if milter.Action == lmtp.Action && milter.Reply == lmtp.Reply && milter.Stage == lmtp.Stage {
		b.WriteString("; the milter alike)")
	} else if v.Status == lists.Observed {
		b.WriteString("; observe mode: the milter, the policy service and the socketmap let it through at RCPT, and count it)")
	} else if milter.Action == reply.Pass && v.Status == lists.NotServed {
		b.WriteString("; the milter lets it through at RCPT: not a domain of listgate's, Postfix decides)")
	} else if milter.Action == reply.Pass {
		b.WriteString("; the milter lets it through at RCPT)")
	} else {
		fmt.Fprintf(&b, "; milter at %s: %s)", stageName(milter.Stage), milter)
	}
	if v.List != "" {
		fmt.Fprintf(&b, " list=%s", v.List)
	}
	if v.Kind != "" {
		fmt.Fprintf(&b, " kind=%s", v.Kind)
	}
	if v.Extension != "" {
		fmt.Fprintf(&b, " extension=%s", v.Extension)
	}
	if v.MaxMessageSize > 0 {
		fmt.Fprintf(&b, " max_message_size=%d", v.MaxMessageSize)
	}
	if v.Target != "" {
		fmt.Fprintf(&b, " target=%s", v.Target)
	}
	if v.Status == lists.Observed {
		fmt.Fprintf(&b, " domain=%s", v.Domain)
	}
	return b.String()
}

// stageName spells a reply stage for people: "RCPT" or "end of DATA".
func stageName(st reply.Stage) string {
	if st == reply.Data {
		return "end of DATA"
	}
	return st.String()
}
