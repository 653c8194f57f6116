package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/listgate/listgate/config"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/reply"
)

// check prints the verdict for each address, as every door would give it
// (the LMTP door's reply), and returns exitRefused if any address is not
// accepted.
func check(args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("check", stderr)
	cf := config.AddFlags(fs, append([]string{"lists", "recipient_delimiter"}, config.MailmanKeys()...)...)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: listgate check [flags] ADDRESS...\n\n"+
			"Prints the verdict for each recipient address, the reply the LMTP door\n"+
			"gives it and at which stage (RCPT, or end of DATA for an accepted one), and\n"+
			"the milter's answer where it differs. postmaster@ and abuse@ of a domain\n"+
			"whose domain file names where they go show as \"alias\", with target=.\n"+
			"Exits 1 if any address is refused, tempfails or is not served (an alias\n"+
			"is none of these).\n\n"+
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
	snap, _, err := loadLists(s, stderr)
	if err != nil {
		return 0, err
	}
	for _, p := range snap.Problems() {
		fmt.Fprintf(stderr, "listgate check: warning: %v\n", p)
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	status := 0
	for _, addr := range fs.Args() {
		v := snap.Resolve(addr)
		fmt.Fprintf(tw, "%s\t%s\t%s\n", addr, v.Status, describe(v))
		if v.Status != lists.Accept && v.Status != lists.Alias {
			status = exitRefused
		}
	}
	return status, tw.Flush()
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
	return b.String()
}

// stageName spells a reply stage for people: "RCPT" or "end of DATA".
func stageName(st reply.Stage) string {
	if st == reply.Data {
		return "end of DATA"
	}
	return st.String()
}
