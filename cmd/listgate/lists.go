package main

import (
	"fmt"
	"io"
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
	cf := config.AddFlags(fs, append([]string{"lists", "recipient_delimiter"}, config.MailmanKeys()...)...)
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
	for _, l := range snap.Lists() {
		fmt.Fprintf(stdout, "%s\n", l.Address)
		if x := snap.External(l.Address); x != nil {
			fmt.Fprintf(stdout, "  mailman:     %s\n", l.File)
			if x.NextHop != "" {
				fmt.Fprintf(stdout, "  next hop:    %s\n", x.NextHop)
			}
		} else {
			fmt.Fprintf(stdout, "  file:        %s\n", l.File)
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
	fmt.Fprintf(stdout, "\n%d lists; served domains: %s\n", len(snap.Lists()), strings.Join(snap.ServedDomains(), " "))
	if mm != nil {
		fmt.Fprintf(stdout, "mailman %s: %d lists, %d domains", mm.URL, mm.Lists, mm.Domains)
		if mm.Reached {
			fmt.Fprintf(stdout, ", read now\n")
		} else {
			fmt.Fprintf(stdout, " as cached at %s: not reached now (%v)\n", mm.Cached.Format(time.RFC3339), mm.Err)
		}
	}
	if ps := snap.Problems(); len(ps) > 0 {
		fmt.Fprintf(stdout, "\n%d problems:\n", len(ps))
		for _, p := range ps {
			fmt.Fprintf(stdout, "  %v\n", p)
		}
		return exitRefused, nil
	}
	return 0, nil
}
