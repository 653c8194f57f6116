package lists

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
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
	// NextHop is where the list's accepted mail goes (key `next_hop`);
	// Unset means the domain file's, else the default_next_hop setting.
	NextHop NextHop
	// Keep, when set (key `keep`), says whether a forwarded message is
	// kept in cur/ (true) or removed (false); nil means the domain
	// file's, else removed.
	Keep *bool
}

// Domain is a served domain as its domain file (`@domain`) declares it.
type Domain struct {
	// Name is the canonical domain (lower case, A-label).
	Name string
	// File is the path of the domain file.
	File string
	// Aliases are alias domains: every list of Name also answers at each.
	Aliases []string
	// NextHop and Keep are the defaults of the domain's lists (keys
	// `next_hop` and `keep`); a list file's own setting wins.
	NextHop NextHop
	Keep    *bool
	// Postmaster and Abuse are where postmaster@ and abuse@ of the
	// domain and of its alias domains go (keys `postmaster`, `abuse`;
	// RFC 5321 §4.5.1, RFC 2142 §2): an address of any domain, as the
	// file writes it ("hostmaster@example.net"), checked. Empty when not
	// set. A list of that name wins over the setting.
	Postmaster, Abuse string
	// Mode is the domain's mode (key `mode`): ModeEnforce or
	// ModeObserve; "" when the file sets none, and Options.Observe
	// decides.
	Mode Mode

	// The lines of the keys postmaster and abuse, for problems found
	// when the snapshot is built, and of mode, for Explain.
	postmasterLine, abuseLine, modeLine int
}

// Mode is how a domain's unknown addresses are answered.
type Mode string

// The modes of a domain (key `mode` of a domain file).
const (
	// ModeEnforce refuses an unknown address (Unknown: 550 5.1.1 at
	// RCPT). The default.
	ModeEnforce Mode = "enforce"
	// ModeObserve lets an unknown address through the doors that answer
	// at RCPT (Observed), which log and count it: a domain that accepts
	// every address today can be watched before it is enforced.
	ModeObserve Mode = "observe"
)

// listFile is the TOML schema of a list file. Unknown keys are errors.
type listFile struct {
	Description    string   `toml:"description"`
	ListID         string   `toml:"list_id"`
	Aliases        []string `toml:"aliases"`
	MaxMessageSize any      `toml:"max_message_size"`
	NextHop        string   `toml:"next_hop"`
	Keep           *bool    `toml:"keep"`
}

// domainFile is the TOML schema of a domain file.
type domainFile struct {
	Description string   `toml:"description"`
	Aliases     []string `toml:"aliases"`
	NextHop     string   `toml:"next_hop"`
	Keep        *bool    `toml:"keep"`
	Postmaster  string   `toml:"postmaster"`
	Abuse       string   `toml:"abuse"`
	Mode        string   `toml:"mode"`
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
// go-toml's errors into FileErrors with a line number. want says, per key,
// what the key holds ("a string"), for the message of a wrong type.
func decodeStrict(path string, data []byte, v any, want map[string]string) error {
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
		if key := de.Key(); len(key) > 0 && want[key[0]] != "" {
			if got, ok := mismatch(msg); ok {
				// go-toml names Go types ("struct field
				// lists.listFile.Description of type string"); say it
				// in the file's own terms.
				msg = fmt.Sprintf("%s: want %s, got %s", key[0], want[key[0]], got)
			}
		}
		return &FileError{File: path, Line: line, Err: errors.New(msg)}
	}
	return &FileError{File: path, Err: err}
}

// mismatch recognises go-toml's type mismatch messages and returns the
// TOML type that was found, with its article ("an integer").
func mismatch(msg string) (string, bool) {
	var got string
	switch {
	case strings.HasPrefix(msg, "cannot decode TOML "):
		got, _, _ = strings.Cut(strings.TrimPrefix(msg, "cannot decode TOML "), " into ")
	case strings.HasPrefix(msg, "cannot store an array table "):
		got = "array of tables"
	case strings.HasPrefix(msg, "cannot store a table "):
		got = "table"
	default:
		return "", false
	}
	if got == "" {
		return "", false
	}
	if strings.ContainsRune("aeiou", rune(got[0])) {
		return "an " + got, true
	}
	return "a " + got, true
}

// The types of the keys of list and domain files, as errors name them.
var (
	listKeyTypes = map[string]string{
		"description":      "a string",
		"list_id":          "a string",
		"aliases":          "an array of address strings",
		"max_message_size": "an integer or a string such as \"10MB\"",
		"next_hop":         "a string such as \"lmtp:inet:127.0.0.1:8024\"",
		"keep":             "a boolean",
	}
	domainKeyTypes = map[string]string{
		"description": "a string",
		"aliases":     "an array of domain strings",
		"next_hop":    "a string such as \"lmtp:inet:127.0.0.1:8024\"",
		"keep":        "a boolean",
		"postmaster":  "an address string such as \"hostmaster@example.net\"",
		"abuse":       "an address string such as \"hostmaster@example.net\"",
		"mode":        "a string: \"enforce\" or \"observe\"",
	}
)

// domainKeyHint adds to err, a list file's unknown key, where the key
// belongs when it is one of the domain file's alone (mode, postmaster,
// abuse): in domainFile, the domain file of the list's domain.
func domainKeyHint(err error, domainFile string) error {
	var fe *FileError
	if !errors.As(err, &fe) {
		return err
	}
	for key := range domainKeyTypes {
		if _, ok := listKeyTypes[key]; !ok && fe.Err.Error() == fmt.Sprintf("unknown key %q", key) {
			return &FileError{File: fe.File, Line: fe.Line,
				Err: fmt.Errorf("%w: %s belongs in the domain file %s, for every list of the domain", fe.Err, key, domainFile)}
		}
	}
	return err
}

// parseList parses the content of the list file at path, which declares
// the canonical address addr ("local@domain").
func parseList(path, addr string, data []byte, delims string) (*List, error) {
	var f listFile
	at := strings.LastIndexByte(addr, '@')
	if err := decodeStrict(path, data, &f, listKeyTypes); err != nil {
		return nil, domainKeyHint(err, filepath.Join(filepath.Dir(path), "@"+addr[at+1:]))
	}
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
	for i, a := range f.Aliases {
		local, domain, err := canonicalAddress(a, delims)
		if err != nil {
			return nil, &FileError{File: path, Line: valueLine(data, "aliases", i), Err: fmt.Errorf("aliases: %w", err)}
		}
		if c := local + "@" + domain; c != addr && !slices.Contains(l.Aliases, c) {
			l.Aliases = append(l.Aliases, c)
		}
	}
	if f.MaxMessageSize != nil {
		n, err := parseSize(f.MaxMessageSize)
		if err != nil {
			return nil, &FileError{File: path, Line: valueLine(data, "max_message_size", -1), Err: fmt.Errorf("max_message_size: %w", err)}
		}
		l.MaxMessageSize = n
	}
	hop, err := parseNextHopKey(path, data, f.NextHop)
	if err != nil {
		return nil, err
	}
	l.NextHop, l.Keep = hop, f.Keep
	return l, nil
}

// parseDomain parses the content of the domain file at path, which
// declares the canonical domain name.
func parseDomain(path, name string, data []byte) (*Domain, error) {
	var f domainFile
	if err := decodeStrict(path, data, &f, domainKeyTypes); err != nil {
		return nil, err
	}
	d := &Domain{Name: name, File: path, Keep: f.Keep}
	var err error
	if d.NextHop, err = parseNextHopKey(path, data, f.NextHop); err != nil {
		return nil, err
	}
	switch m := Mode(f.Mode); m {
	case "":
	case ModeEnforce, ModeObserve:
		d.Mode, d.modeLine = m, valueLine(data, "mode", -1)
	default:
		return nil, &FileError{File: path, Line: valueLine(data, "mode", -1),
			Err: fmt.Errorf("mode: want \"enforce\" or \"observe\", got %q", f.Mode)}
	}
	for i, a := range f.Aliases {
		c, err := canonicalDomain(strings.TrimPrefix(a, "@"))
		if err != nil {
			return nil, &FileError{File: path, Line: valueLine(data, "aliases", i), Err: fmt.Errorf("aliases: %w", err)}
		}
		if c != name && !slices.Contains(d.Aliases, c) {
			d.Aliases = append(d.Aliases, c)
		}
	}
	for _, k := range []struct {
		key, v string
		dst    *string
		line   *int
	}{
		{"postmaster", f.Postmaster, &d.Postmaster, &d.postmasterLine},
		{"abuse", f.Abuse, &d.Abuse, &d.abuseLine},
	} {
		if k.v == "" {
			continue
		}
		*k.line = valueLine(data, k.key, -1)
		if err := checkTarget(k.v, k.key, d); err != nil {
			return nil, &FileError{File: path, Line: *k.line, Err: fmt.Errorf("%s: %w", k.key, err)}
		}
		*k.dst = k.v
	}
	return d, nil
}

// checkTarget checks addr, the value of the key postmaster or abuse
// (local) of the domain file of d: one address, local@domain, that
// Postfix's virtual_alias_maps can return as it is. The local part obeys
// a list name's rules, and may hold a recipient delimiter
// ("hostmaster+lists@example.net"); the domain may be any. It must not
// be local@ d's domain or one of its alias domains: that would rewrite
// the address to itself.
func checkTarget(addr, local string, d *Domain) error {
	if addr != strings.TrimSpace(addr) {
		return fmt.Errorf("%q has leading or trailing space", addr)
	}
	// One address, unquoted: no list (","), no comment, no brackets.
	if i := strings.IndexAny(addr, " \t,;:<>()[]\""); i >= 0 || strings.Count(addr, "@") > 1 {
		return fmt.Errorf("%q is not one plain address: want local@domain", addr)
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return fmt.Errorf("%q is not an address: want local@domain", addr)
	}
	domain, err := canonicalDomain(addr[at+1:])
	if err != nil {
		return err
	}
	l, err := canonicalLocal(addr[:at], "")
	if err != nil {
		return err
	}
	if l == local && (domain == d.Name || slices.Contains(d.Aliases, domain)) {
		return fmt.Errorf("%s is the address itself", addr)
	}
	return nil
}

// parseNextHopKey parses the value v of the key next_hop of the file at
// path, placing an error on its line.
func parseNextHopKey(path string, data []byte, v string) (NextHop, error) {
	h, err := ParseNextHop(v)
	if err != nil {
		return NextHop{}, &FileError{File: path, Line: valueLine(data, "next_hop", -1), Err: fmt.Errorf("next_hop %q: %w", v, err)}
	}
	return h, nil
}

// valueLine returns the 1-based line of the value of the top-level key in
// a TOML document that has decoded, or of its elem'th element when elem >=
// 0 and the value is an array; 0 if not found. It places errors found
// after decoding, which go-toml cannot place.
func valueLine(data []byte, key string, elem int) int {
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		expr := p.Expression()
		k := expr.Key()
		match := k.Next() && string(k.Node().Data) == key && k.IsLast()
		switch expr.Kind {
		case unstable.Table, unstable.ArrayTable:
			if match {
				return p.Shape(k.Node().Raw).Start.Line // [key]: a table
			}
			return 0 // past the top-level keys
		case unstable.KeyValue:
		default:
			continue
		}
		if !match {
			continue
		}
		line := p.Shape(k.Node().Raw).Start.Line
		v := expr.Value()
		if elem < 0 || v.Kind != unstable.Array {
			return line
		}
		for i, it := 0, v.Children(); it.Next(); i++ {
			if n := it.Node(); i == elem && n.Raw.Length > 0 {
				return p.Shape(n.Raw).Start.Line
			}
		}
		return line
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
			return 0, fmt.Errorf("invalid size %d: negative", v)
		}
		return v, nil
	case string:
		return ParseSize(v)
	}
	return 0, fmt.Errorf("want bytes (an integer) or a string such as \"10MB\", got %s", tomlType(v))
}

// tomlType names the TOML type of a value go-toml decoded into an any.
func tomlType(v any) string {
	switch v.(type) {
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return "a date or time"
}

// ParseSize parses a size such as "65536", "10MB" (10,000,000 bytes),
// "64MiB" (67,108,864 bytes) or "1.5KiB" (1,536 bytes) and returns it in
// bytes. The number is decimal digits with an optional fraction; units, in
// any case: B, K/KB, M/MB, G/GB (powers of 1000) and KiB, MiB, GiB (powers
// of 1024). It returns an error for a negative, fractional-byte or
// overflowing size. The arithmetic is exact: "1.001KB" is 1,001 bytes.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	if strings.HasPrefix(t, "-") && decimal(t[1:]) {
		return 0, fmt.Errorf("invalid size %q: negative", s)
	}
	if !decimal(t) {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional unit such as MB or MiB", s)
	}
	n, ok := new(big.Rat).SetString(t)
	if !ok {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional unit such as MB or MiB", s)
	}
	n.Mul(n, new(big.Rat).SetInt64(mult))
	switch {
	case !n.IsInt():
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", s)
	case !n.Num().IsInt64():
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n.Num().Int64(), nil
}

// decimal reports whether s is digits with at most one '.' among or after
// them: "10", "1.5", "2.". No sign, exponent, base prefix or '_'.
func decimal(s string) bool {
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && dots == 0:
			dots++
		default:
			return false
		}
	}
	return digits > 0
}
