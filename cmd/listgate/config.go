package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"

	"github.com/listgate/listgate/config"
	"github.com/listgate/listgate/lists"
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
// (check, lists) see it.
func loadLists(s config.Settings) (*lists.Snapshot, error) {
	snap, err := lists.Load(s.Lists, s.ListsOptions())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s %s: the directory does not exist", s.Origin("lists"), s.Lists)
	}
	return snap, err
}
