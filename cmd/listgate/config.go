package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

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

// defaultMaxMessageSize is --max-message-size's default: 64 MiB.
const defaultMaxMessageSize = config.DefaultMaxMessageSize

// listsFlags are `listgate postfix`'s flags for the lists directory, until
// it reads its settings through settings() as the other commands do.
type listsFlags struct {
	dir       string
	delimiter string
}

func (f *listsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "lists", config.DefaultLists, "the lists `directory`: one file per list")
	fs.StringVar(&f.delimiter, "recipient-delimiter", lists.DefaultDelimiter,
		"characters that start an address extension, as Postfix's recipient_delimiter (\"none\": no extensions)")
}

func (f *listsFlags) options() (lists.Options, error) {
	if f.delimiter == "" {
		return lists.Options{}, fmt.Errorf("%w: --recipient-delimiter is empty; say \"none\" to turn extensions off", errUsage)
	}
	if f.delimiter != "none" && strings.ContainsAny(f.delimiter, "@<> \t") {
		return lists.Options{}, fmt.Errorf("%w: --recipient-delimiter %q: '@', '<', '>' and blanks cannot be delimiters", errUsage, f.delimiter)
	}
	if f.delimiter != "none" && strings.Contains(f.delimiter, "-") {
		return lists.Options{}, fmt.Errorf("%w: --recipient-delimiter %q: '-' separates a list from its sub-address (list-request@, list-bounces@); "+
			"as a delimiter it would turn every sub-address into an extension of the posting address", errUsage, f.delimiter)
	}
	if f.dir == "" {
		return lists.Options{}, fmt.Errorf("%w: --lists is empty", errUsage)
	}
	return lists.Options{Delimiters: f.delimiter}, nil
}

// sizeFlag is a flag.Value for a size in bytes with an optional unit.
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }

func (s *sizeFlag) Set(v string) error {
	n, err := lists.ParseSize(v)
	if err != nil {
		return err
	}
	if n <= 0 {
		return fmt.Errorf("size must be positive")
	}
	*s = sizeFlag(n)
	return nil
}
