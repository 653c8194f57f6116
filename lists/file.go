package lists

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// List is one list as its file declares it. A List is immutable once it is
// part of a Snapshot.
type List struct {
	// Address is the canonical posting address: lower case, domain in
	// ASCII (A-label) form.
	Address string
	// Local and Domain are the two halves of Address.
	Local, Domain string
	// File is the path of the list file, as found in the lists directory.
	File string
	// Description is free text (key `description`).
	Description string
	// ListID is the List-Id (key `list_id`); Mailman's form local.domain
	// by default.
	ListID string
	// Aliases are further posting addresses of the list, canonical (key
	// `aliases`). Each reaches the list's sub-addresses too.
	Aliases []string
	// MaxMessageSize is the largest post in bytes (key
	// `max_message_size`); 0 means only the global limit applies.
	MaxMessageSize int64
}

// Domain is a served domain as its domain file (`@domain`) declares it.
type Domain struct {
	// Name is the canonical domain (lower case, A-label).
	Name string
	// File is the path of the domain file.
	File string
	// Aliases are alias domains: every list of Name also answers at each.
	Aliases []string
}

// listFile is the TOML schema of a list file. Unknown keys are errors.
type listFile struct {
	Description    string   `toml:"description"`
	ListID         string   `toml:"list_id"`
	Aliases        []string `toml:"aliases"`
	MaxMessageSize any      `toml:"max_message_size"`
}

// domainFile is the TOML schema of a domain file.
type domainFile struct {
	Description string   `toml:"description"`
	Aliases     []string `toml:"aliases"`
}

// FileError is a problem with one file of the lists directory. Its message
// reads like compiler output: "lists/announce@example.org:3: unknown key
// \"descripton\"".
type FileError struct {
	File string // path of the file
	Line int    // 1-based line, 0 when the problem is not on one line
	Err  error
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// decodeStrict decodes TOML data into v, rejecting unknown keys, and turns
// go-toml's errors into FileErrors with a line number.
func decodeStrict(path string, data []byte, v any) error {
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		de := &strict.Errors[0]
		line, _ := de.Position()
		return &FileError{File: path, Line: line, Err: fmt.Errorf("unknown key %q", strings.Join(de.Key(), "."))}
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		return &FileError{File: path, Line: line, Err: errors.New(msg)}
	}
	return &FileError{File: path, Err: err}
}

// parseList parses the content of the list file at path, which declares
// the canonical address addr ("local@domain").
func parseList(path, addr string, data []byte, delims string) (*List, error) {
	var f listFile
	if err := decodeStrict(path, data, &f); err != nil {
		return nil, err
	}
	at := strings.LastIndexByte(addr, '@')
	l := &List{
		Address:     addr,
		Local:       addr[:at],
		Domain:      addr[at+1:],
		File:        path,
		Description: f.Description,
		ListID:      f.ListID,
	}
	if l.ListID == "" {
		l.ListID = l.Local + "." + l.Domain
	}
	for _, a := range f.Aliases {
		local, domain, err := canonicalAddress(a, delims)
		if err != nil {
			return nil, &FileError{File: path, Line: keyLine(data, "aliases"), Err: fmt.Errorf("aliases: %w", err)}
		}
		if c := local + "@" + domain; c != addr {
			l.Aliases = append(l.Aliases, c)
		}
	}
	if f.MaxMessageSize != nil {
		n, err := parseSize(f.MaxMessageSize)
		if err != nil {
			return nil, &FileError{File: path, Line: keyLine(data, "max_message_size"), Err: fmt.Errorf("max_message_size: %w", err)}
		}
		l.MaxMessageSize = n
	}
	return l, nil
}

// parseDomain parses the content of the domain file at path, which
// declares the canonical domain name.
func parseDomain(path, name string, data []byte) (*Domain, error) {
	var f domainFile
	if err := decodeStrict(path, data, &f); err != nil {
		return nil, err
	}
	d := &Domain{Name: name, File: path}
	for _, a := range f.Aliases {
		c, err := canonicalDomain(strings.TrimPrefix(a, "@"))
		if err != nil {
			return nil, &FileError{File: path, Line: keyLine(data, "aliases"), Err: fmt.Errorf("aliases: %w", err)}
		}
		if c != name {
			d.Aliases = append(d.Aliases, c)
		}
	}
	return d, nil
}

// keyLine returns the 1-based line on which key is set in a TOML document,
// or 0. It serves errors found after decoding, which go-toml cannot place.
func keyLine(data []byte, key string) int {
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if rest, ok := bytes.CutPrefix(line, []byte(key)); ok {
			if rest = bytes.TrimSpace(rest); len(rest) > 0 && rest[0] == '=' {
				return i + 1
			}
		}
	}
	return 0
}

// sizeUnits are the units max_message_size accepts, matched without regard
// to case: decimal (SI) and binary (IEC) multiples of a byte.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9},
	{"k", 1e3}, {"m", 1e6}, {"g", 1e9},
	{"b", 1},
}

// parseSize reads a size in bytes: a TOML integer, or a string with an
// optional unit ("10MB" is 10,000,000 bytes, "10MiB" 10,485,760).
func parseSize(v any) (int64, error) {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return 0, fmt.Errorf("size %d is negative", v)
		}
		return v, nil
	case string:
		return ParseSize(v)
	}
	return 0, fmt.Errorf("want bytes (an integer) or a string such as \"10MB\", got %v", v)
}

// ParseSize parses a size such as "65536", "10MB" (10,000,000 bytes) or
// "64MiB" (67,108,864 bytes) and returns it in bytes. Units, in any case:
// B, K/KB, M/MB, G/GB (powers of 1000) and KiB, MiB, GiB (powers of 1024).
// It returns an error for a negative, fractional-byte or overflowing size.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || t == "" || strings.ContainsAny(t, "eEnN") {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional unit such as MB or MiB", s)
	}
	n := f * float64(mult)
	switch {
	case n < 0:
		return 0, fmt.Errorf("invalid size %q: negative", s)
	case n > math.MaxInt64/2:
		return 0, fmt.Errorf("invalid size %q: too large", s)
	case n != math.Trunc(n):
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", s)
	}
	return int64(n), nil
}
