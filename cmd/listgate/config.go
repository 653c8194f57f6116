package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/listgate/listgate/config"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/mailman"
)

// settings parses args with the flag set cf was registered on (by
// config.AddFlags) and returns the settings the command runs with: the
// built-in defaults, then the config file (--config FILE, or
// /etc/listgate/listgate.toml if it exists), then the flags given. Every
// command gets its settings this way, so all of them read the same file:
//
//	fs := newFlagSet("check", stderr)
//	cf := config.AddFlags(fs, "lists", "recipient_delimiter")
//	s, err := settings(cf, args)
func settings(cf *config.Flags, args []string) (config.Settings, error) {
	s, err := cf.Parse(args)
	var ce *config.Error
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return s, err
	case errors.As(err, &ce):
		if ce.File == "" {
			return s, fmt.Errorf("%w: %v", errUsage, err) // a flag's value
		}
		return s, err
	}
	return s, errFlagsPrinted // the flag package said what was wrong
}

// loadLists reads the lists directory once, as the one-shot commands
// (check, lists, postfix) see it, with Mailman's lists when the mailman
// setting names Mailman: read now, or, when Mailman does not answer, as
// the daemon cached them (with a warning on stderr). The status is
// Mailman's, nil without it.
func loadLists(s config.Settings, stderr io.Writer) (*lists.Snapshot, *mailman.Status, error) {
	opts := s.ListsOptions()
	var st *mailman.Status
	if s.Mailman != "" {
		var err error
		if opts.External, st, err = readMailman(s, stderr); err != nil {
			return nil, nil, err
		}
	}
	snap, err := lists.Load(s.Lists, opts)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s %s: the directory does not exist", s.Origin("lists"), s.Lists)
	}
	return snap, st, err
}

// mailmanTimeout bounds a one-shot command's read of Mailman.
const mailmanTimeout = 20 * time.Second

// readMailman reads Mailman's lists once (docs/mailman.md). When Mailman
// does not answer, the daemon's cache stands in, with a warning; without
// a cache it is an error.
func readMailman(s config.Settings, stderr io.Writer) (*lists.External, *mailman.Status, error) {
	opts, err := s.MailmanOptions()
	if err != nil {
		return nil, nil, err
	}
	opts.ReadOnlyCache = true
	src, err := mailman.New(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.Origin("mailman"), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), mailmanTimeout)
	defer cancel()
	err = src.Refresh(ctx)
	st := src.Status()
	switch {
	case err == nil:
	case errors.Is(err, mailman.ErrUnauthorized):
		// A cache would hide it, and the daemon would then serve stale
		// lists for ever: a check of the settings must fail.
		where := "the URL's user:password"
		if s.MailmanCredentialsFile != "" {
			where = s.Origin("mailman_credentials_file") + " " + s.MailmanCredentialsFile
		}
		return nil, nil, fmt.Errorf("mailman %s: %w (from %s)", st.URL, err, where)
	case st.Cached.IsZero():
		return nil, nil, fmt.Errorf("mailman %s: %w; and no cache of its lists (%s)", st.URL, err, opts.CacheFile)
	default:
		fmt.Fprintf(stderr, "listgate: warning: mailman %s: %v; its lists as cached at %s (%s)\n",
			st.URL, err, st.Cached.Format(time.RFC3339), opts.CacheFile)
	}
	return src.External(), &st, nil
}
