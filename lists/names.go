package lists

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// nameKind says what a directory entry's name declares.
type nameKind uint8

const (
	nameIgnored nameKind = iota // editor, package-manager or ConfigMap artefact
	nameList                    // local@domain
	nameDomain                  // @domain
	nameInvalid                 // anything else: a problem, never a list
)

// ignoredSuffixes are the endings of names that are never lists: editor
// backups and swap files, patch rejects, package-manager leftovers.
var ignoredSuffixes = []string{"~", ".swp", ".tmp", ".bak", ".orig", ".rej", ".rpmnew", ".rpmsave"}

// ignoredName reports whether a directory entry is skipped silently. The
// suffixes match in any case, as names do: "x@example.org.BAK" is a backup,
// not a list of the domain "example.org.bak".
func ignoredName(name string) bool {
	if name == "" || name[0] == '.' {
		return true // dotfiles, Kubernetes ..data and ..2024_… directories
	}
	for _, s := range ignoredSuffixes {
		if len(name) >= len(s) && strings.EqualFold(name[len(name)-len(s):], s) {
			return true
		}
	}
	// foo.dpkg-old, foo.dpkg-dist, foo.dpkg-new, foo.dpkg-tmp, ...
	if i := lastIndexFold(name, ".dpkg-"); i >= 0 && !strings.Contains(name[i:], "@") {
		return true
	}
	return false
}

// lastIndexFold is strings.LastIndex for an ASCII lower-case sub, matching
// s in any case.
func lastIndexFold(s, sub string) int {
	for i := len(s) - len(sub); i >= 0; i-- {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// classify judges a directory entry by its name alone and, for a list or
// domain file, returns the canonical address ("local@domain" or
// "@domain": lower case, domain in A-label form).
func classify(name, delims string) (nameKind, string, error) {
	if ignoredName(name) {
		return nameIgnored, "", nil
	}
	at := strings.LastIndexByte(name, '@')
	if at < 0 {
		return nameInvalid, "", errors.New("not a list name: want local@domain or @domain")
	}
	domain, err := canonicalDomain(name[at+1:])
	if err != nil {
		return nameInvalid, "", err
	}
	if at == 0 {
		return nameDomain, "@" + domain, nil
	}
	local, err := canonicalLocal(name[:at], delims)
	if err != nil {
		return nameInvalid, "", err
	}
	return nameList, local + "@" + domain, nil
}

// canonicalAddress checks and folds a full address as found in an aliases
// setting.
func canonicalAddress(addr, delims string) (local, domain string, err error) {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return "", "", fmt.Errorf("%q is not an address: want local@domain", addr)
	}
	if domain, err = canonicalDomain(addr[at+1:]); err != nil {
		return "", "", err
	}
	if local, err = canonicalLocal(addr[:at], delims); err != nil {
		return "", "", err
	}
	return local, domain, nil
}

// canonicalLocal folds a list's local part to lower case and checks that it
// is safe as a spool folder name and reachable by Resolve.
func canonicalLocal(local, delims string) (string, error) {
	switch local {
	case "":
		return "", errors.New("empty local part")
	case ".", "..":
		return "", fmt.Errorf("local part %q is not a safe folder name", local)
	}
	if !utf8.ValidString(local) {
		return "", fmt.Errorf("local part %q is not valid UTF-8", local)
	}
	for _, r := range local {
		if r == '/' || r == '\\' || r == 0 || unicode.IsControl(r) {
			return "", fmt.Errorf("local part %q contains %q", local, r)
		}
	}
	if i := strings.IndexAny(local, delims); delims != "" && i >= 0 {
		r, _ := utf8.DecodeRuneInString(local[i:])
		return "", fmt.Errorf("local part %q contains the recipient delimiter %q: mail to it would be cut at %q", local, r, local[:i])
	}
	return strings.ToLower(local), nil
}

// canonicalDomain checks that d is a DNS name (letters, digits, hyphens,
// dots between non-empty labels; IDNA U-labels allowed) and returns its
// lower-case A-label form, without a trailing dot.
func canonicalDomain(d string) (string, error) {
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return "", errors.New("empty domain")
	}
	if !utf8.ValidString(d) {
		return "", fmt.Errorf("domain %q is not valid UTF-8", d)
	}
	if isLowerASCII(d) {
		if err := checkLDH(d); err != nil {
			return "", err
		}
		return d, nil
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("domain %q: %w", d, err)
	}
	a = strings.ToLower(a)
	if err := checkLDH(a); err != nil {
		return "", err
	}
	return a, nil
}

// checkLDH checks an ASCII domain: labels of letters, digits and hyphens,
// non-empty, at most 63 octets, not starting or ending with a hyphen.
func checkLDH(d string) error {
	if len(d) > 253 {
		return fmt.Errorf("domain %q is longer than 253 octets", d)
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" {
			return fmt.Errorf("domain %q has an empty label", d)
		}
		if len(label) > 63 {
			return fmt.Errorf("domain %q has a label longer than 63 octets", d)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("domain %q has a label starting or ending with a hyphen", d)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c >= 'A' && c <= 'Z') {
				return fmt.Errorf("domain %q contains %q", d, c)
			}
		}
	}
	return nil
}

// isLowerASCII reports whether s has no upper-case ASCII letter and no
// byte outside ASCII.
func isLowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || c >= 'A' && c <= 'Z' {
			return false
		}
	}
	return true
}
