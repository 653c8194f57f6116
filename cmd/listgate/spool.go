package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/listgate/listgate/config"
	"github.com/listgate/listgate/forward"
)

// spoolCmd prints each spool folder's next hop, backlog and quarantine
// (`listgate spool`), or puts quarantined mail back into new/ (`listgate
// spool retry [LIST|all]`), where the running daemon's next scan
// (forward_scan_interval) finds it.
func spoolCmd(args []string, stdout, stderr io.Writer) error {
	retry := len(args) > 0 && args[0] == "retry"
	if retry {
		args = args[1:]
	}
	fs := newFlagSet("spool", stderr)
	cf := config.AddFlags(fs, "lists", "recipient_delimiter", "spool", "default_next_hop")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: listgate spool [flags]\n       listgate spool retry [flags] [LIST|all]\n\n"+
			"Prints, per list and kind, the next hop, the messages waiting in new/ and\n"+
			"the age of the oldest, then every quarantined message with its reason.\n"+
			"retry puts the quarantined messages of LIST (or of all lists) back into\n"+
			"new/; the daemon sends them again within forward_scan_interval. Flags come\n"+
			"before LIST; without LIST, retry puts back every list's.\n\nflags:\n")
		fs.PrintDefaults()
	}
	s, err := settings(cf, args)
	if err != nil {
		return err
	}
	if retry {
		if fs.NArg() > 1 {
			return fmt.Errorf("%w: retry takes one list address or all, after the flags (listgate spool retry --config FILE LIST); got %q", errUsage, fs.Args())
		}
		n, err := forward.Retry(s.Spool, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d quarantined message(s) put back into new/\n", n)
		return nil
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	snap, _, err := loadLists(s, stderr)
	if err != nil {
		return err
	}
	st, err := forward.Status(s.Spool, snap, s.DefaultNextHop)
	if err != nil {
		return err
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "LIST\tKIND\tNEXT HOP\tBACKLOG\tOLDEST\tQUARANTINED")
	for _, f := range st {
		age := "-"
		if !f.Oldest.IsZero() {
			age = now.Sub(f.Oldest).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\n", f.List(), f.Kind, f.NextHop, f.Backlog, age, len(f.Quarantine))
	}
	tw.Flush()
	for _, f := range st {
		for _, q := range f.Quarantine {
			fmt.Fprintf(stdout, "\nquarantined %s %s %s\n  date:      %s\n  next hop:  %s\n  envelope:  %s -> %s\n  reply:     %s\n",
				f.List(), f.Kind, q.Name, q.Reason.Date.Format(time.RFC3339), q.Reason.NextHop,
				q.Reason.Sender, q.Reason.Recipient, q.Reason.Reply)
		}
	}
	return nil
}
