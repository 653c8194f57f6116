package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/listgate/listgate/config"
	"github.com/listgate/listgate/lists"
)

// listLists prints every list with every address that reaches it, every
// served domain, and every problem of the lists directory.
// It returns exitRefused when there is any problem, so it can check a
// lists directory before it is deployed.
func listLists(args []string, stdout, stderr io.Writer) (int, error) {
	fs := newFlagSet("lists", stderr)
	cf := config.AddFlags(fs, append([]string{"lists", "recipient_delimiter", "default_next_hop", "observe"}, config.MailmanKeys()...)...)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: listgate lists [flags]\n\n"+
			"Prints every list, the addresses that reach it, the served domains and\n"+
			"every problem in the lists directory. Exits 1 if there is any problem.\n"+
			"With --mailman, Mailman's lists too, read from its REST API now.\n\nflags:\n")
		fs.PrintDefaults()
	}
	s, err := settings(cf, args)
	if err != nil {
		return 0, err
	}
	if fs.NArg() != 0 {
		return 0, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	snap, mm, err := loadLists(s, stderr)
	if err != nil {
		return 0, err
	}
	aliasDomains := make(map[string][]string)
	for _, d := range snap.Domains() {
		aliasDomains[d.Name] = d.Aliases
	}
	var hopProblems []string
	for _, l := range snap.Lists() {
		fmt.Fprintf(stdout, "%s\n", l.Address)
		if snap.External(l.Address) != nil {
			fmt.Fprintf(stdout, "  mailman:     %s\n", l.File)
		} else {
			fmt.Fprintf(stdout, "  file:        %s\n", l.File)
		}
		hop, why := listNextHop(snap, s.DefaultNextHop, l)
		fmt.Fprintf(stdout, "  next hop:    %s\n", hop)
		if why != "" {
			hopProblems = append(hopProblems, why)
		}
		if l.Description != "" {
			fmt.Fprintf(stdout, "  description: %s\n", l.Description)
		}
		fmt.Fprintf(stdout, "  list-id:     %s\n", l.ListID)
		if l.MaxMessageSize > 0 {
			fmt.Fprintf(stdout, "  max size:    %d bytes (posts)\n", l.MaxMessageSize)
		}
		for _, a := range append([]string{l.Address}, l.Aliases...) {
			local, domain, _ := strings.Cut(a, "@")
			domains := append([]string{domain}, aliasDomains[domain]...)
			for _, d := range domains {
				subs := make([]string, 0, len(lists.Kinds)+2)
				for _, k := range lists.Kinds[1:] {
					subs = append(subs, "-"+string(k))
				}
				fmt.Fprintf(stdout, "  address:     %s@%s (and %s -subscribe -unsubscribe)\n", local, d, strings.Join(subs, " "))
			}
		}
	}
	// postmaster@ and abuse@ that a domain file sends elsewhere (a list
	// of that name wins: Resolve says which holds).
	for _, d := range snap.Domains() {
		for _, local := range []string{"postmaster", "abuse"} {
			if v := snap.Resolve(local + "@" + d.Name); v.Status == lists.Alias {
				fmt.Fprintf(stdout, "%s@%s -> %s (alias, file %s", local, d.Name, v.Target, d.File)
				if len(d.Aliases) > 0 {
					fmt.Fprintf(stdout, "; also at %s", strings.Join(d.Aliases, " "))
				}
				fmt.Fprintf(stdout, ")\n")
			}
		}
	}
	if ds := snap.ObservedDomains(); len(ds) > 0 {
		fmt.Fprintf(stdout, "\nobserve mode (unknown addresses let through and counted): %s\n", strings.Join(ds, " "))
	}
	fmt.Fprintf(stdout, "\n%d lists; served domains: %s\n", len(snap.Lists()), strings.Join(snap.ServedDomains(), " "))
	if mm != nil {
		fmt.Fprintf(stdout, "mailman %s: %d lists, %d domains", mm.URL, mm.Lists, mm.Domains)
		if mm.Reached {
			fmt.Fprintf(stdout, ", read now\n")
		} else {
			fmt.Fprintf(stdout, " as cached at %s: not reached now (%v)\n", mm.Cached.Format(time.RFC3339), mm.Err)
		}
	}
	if ps := snap.Problems(); len(ps)+len(hopProblems) > 0 {
		fmt.Fprintf(stdout, "\n%s:\n", plural(len(ps)+len(hopProblems), "problem"))
		for _, p := range ps {
			fmt.Fprintf(stdout, "  %v\n", p)
		}
		for _, p := range hopProblems {
			fmt.Fprintf(stdout, "  %s\n", p)
		}
		return exitRefused, nil
	}
	return 0, nil
}

// listNextHop returns where l's accepted mail goes (its file's next_hop, its
// domain file's, or default_next_hop) and, when that cannot work, why: an
// exec: command that is not an executable file, or a Mailman list with no
// next hop (its LMTP runner would be listgate's own LMTP door).
func listNextHop(snap *lists.Snapshot, def lists.NextHop, l *lists.List) (string, string) {
	fw, _ := snap.Forwarding(l.Address)
	hop := fw.Hop
	if hop.Transport == lists.Unset {
		hop = def
	}
	if x := snap.External(l.Address); x != nil && x.NextHop == "" {
		return "none", fmt.Sprintf("%s: Mailman names no usable LMTP runner (is its [mta] lmtp_port listgate's own LMTP port? set mailman_lmtp): its mail stays in the spool", l.File)
	}
	if hop.Transport == lists.Unset {
		return "none", ""
	}
	if hop.Transport == lists.Exec {
		if fi, err := os.Stat(hop.Argv[0]); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return hop.String(), fmt.Sprintf("%s: next hop %s: %s is not an executable file: its mail would wait in the spool", l.File, hop, hop.Argv[0])
		}
	}
	return hop.String(), ""
}
