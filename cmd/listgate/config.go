package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/listgate/listgate/lists"
)

// defaultMaxMessageSize is --max-message-size's default: 64 MiB.
const defaultMaxMessageSize = 64 << 20

// listsFlags are the flags that say how to read the lists directory; every
// command that resolves addresses takes them, so all resolve alike.
type listsFlags struct {
	dir       string
	delimiter string
}

func (f *listsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "lists", "./lists", "the lists `directory`: one file per list")
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

// load reads the lists directory once, as the one-shot commands (check,
// lists) see it.
func (f *listsFlags) load() (*lists.Snapshot, error) {
	opts, err := f.options()
	if err != nil {
		return nil, err
	}
	return lists.Load(f.dir, opts)
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
