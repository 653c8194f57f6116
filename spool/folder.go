package spool

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// QuarantineDir is the directory beside new/ that holds the messages a
// next hop refused for good, each with a reason file (see Quarantine).
const QuarantineDir = "quarantine"

// ReasonSuffix ends the name of a quarantined message's reason file:
// quarantine/<name>.reason. No Maildir name ends so (they end in ",S=n").
const ReasonSuffix = ".reason"

// Folder is one Maildir folder of the spool: SPOOL/<Domain>/<Local>/<Kind>.
type Folder struct {
	Domain, Local, Kind string
	// Path is the folder's path: the spool root joined with the three.
	Path string
}

// List returns the canonical address of the folder's list, local@domain.
func (f Folder) List() string { return f.Local + "@" + f.Domain }

// Folders returns every folder under the spool root that has a new/ or
// a quarantine/ directory, sorted by list and then kind in lists.Kinds
// order. Entries whose names are not a kind, and names starting with a
// dot, are skipped. A missing root has no folders.
func Folders(root string) ([]Folder, error) {
	var out []Folder
	domains, err := readDirNames(root)
	if err != nil {
		return nil, err
	}
	for _, d := range domains {
		locals, err := readDirNames(filepath.Join(root, d))
		if err != nil {
			return nil, err
		}
		for _, l := range locals {
			ks, err := readDirNames(filepath.Join(root, d, l))
			if err != nil {
				return nil, err
			}
			for _, k := range ks {
				if !kinds[k] {
					continue
				}
				p := filepath.Join(root, d, l, k)
				if isDir(filepath.Join(p, "new")) || isDir(filepath.Join(p, QuarantineDir)) {
					out = append(out, Folder{Domain: d, Local: l, Kind: k, Path: p})
				}
			}
		}
	}
	order := map[string]int{"post": 0, "bounces": 1, "confirm": 2, "join": 3, "leave": 4, "owner": 5, "request": 6}
	slices.SortFunc(out, func(a, b Folder) int {
		return cmp.Or(cmp.Compare(a.List(), b.List()), cmp.Compare(order[a.Kind], order[b.Kind]))
	})
	return out, nil
}

// readDirNames returns the names of the directories in dir that do not
// start with a dot; none if dir does not exist.
func readDirNames(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var names []string
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") {
			continue
		}
		if de.IsDir() || (de.Type()&fs.ModeSymlink != 0 && isDir(filepath.Join(dir, de.Name()))) {
			names = append(names, de.Name())
		}
	}
	return names, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Pending returns the names of the messages in the folder's new/, oldest
// first: by the delivery time at the start of each name (seconds, then
// the microseconds of an M field), then by the Q counter, then by name.
// Names starting with a dot are skipped. A folder without new/ has none.
func Pending(folder string) ([]string, error) {
	return messages(filepath.Join(folder, "new"))
}

// messages lists the message files of dir in delivery order.
func messages(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	names := make([]string, 0, len(des))
	for _, de := range des {
		n := de.Name()
		if strings.HasPrefix(n, ".") || strings.HasSuffix(n, ReasonSuffix) || de.IsDir() {
			continue
		}
		names = append(names, n)
	}
	SortNames(names)
	return names, nil
}

// nameKey is the order of a Maildir name: <secs>.M<usec>P<pid>Q<n>...
type nameKey struct {
	secs, usec, q int64
}

// parseName reads the delivery time and Q counter at the start of a
// Maildir name; fields it cannot read are 0.
func parseName(name string) nameKey {
	var k nameKey
	secs, rest := leadingDigits(name)
	k.secs = secs
	if r, ok := strings.CutPrefix(rest, ".M"); ok {
		k.usec, rest = leadingDigits(r)
		if r, ok := strings.CutPrefix(rest, "P"); ok {
			_, rest = leadingDigits(r)
			if r, ok := strings.CutPrefix(rest, "Q"); ok {
				k.q, _ = leadingDigits(r)
			}
		}
	}
	return k
}

func leadingDigits(s string) (int64, string) {
	i := 0
	for i < len(s) && i < 18 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, _ := strconv.ParseInt(s[:i], 10, 64)
	return n, s[i:]
}

// SortNames sorts Maildir file names in delivery order (see Pending).
func SortNames(names []string) {
	slices.SortFunc(names, CompareNames)
}

// CompareNames orders two Maildir file names by delivery (see Pending):
// -1 if a was delivered before b, +1 if after, 0 if they are the same name.
func CompareNames(a, b string) int {
	ka, kb := parseName(a), parseName(b)
	return cmp.Or(cmp.Compare(ka.secs, kb.secs), cmp.Compare(ka.usec, kb.usec),
		cmp.Compare(ka.q, kb.q), cmp.Compare(a, b))
}

// NameTime returns the delivery time a Maildir name starts with, and
// false for a name that does not start with one.
func NameTime(name string) (time.Time, bool) {
	k := parseName(name)
	if k.secs == 0 {
		return time.Time{}, false
	}
	return time.Unix(k.secs, k.usec*1000), true
}

// Remove removes a forwarded message from the folder's new/ and flushes
// new/, so it is not forwarded again after a crash.
func Remove(folder, name string) error {
	p := filepath.Join(folder, "new", name)
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("spool: remove %s: %w", p, unwrapOS(err))
	}
	return syncDirPath(filepath.Join(folder, "new"))
}

// Keep moves a forwarded message from new/ into cur/ as a message that
// has been seen by its reader (the Maildir info ":2,"), and flushes both
// directories.
func Keep(folder, name string) error {
	from, to := filepath.Join(folder, "new", name), filepath.Join(folder, "cur", name+":2,")
	if err := os.MkdirAll(filepath.Join(folder, "cur"), 0o750); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("spool: rename %s: %w", from, unwrapOS(err))
	}
	if err := syncDirPath(filepath.Join(folder, "cur")); err != nil {
		return err
	}
	return syncDirPath(filepath.Join(folder, "new"))
}

// Quarantine moves a message from the folder's new/ into quarantine/ with
// reason written beside it (quarantine/<name>.reason), durably, in this
// order: the reason file is written under a temporary name, flushed and
// renamed into place; the message is renamed from new/ into quarantine/;
// quarantine/ and then new/ are flushed. A crash at any point leaves the
// message in new/ or in quarantine/, never neither; a reason file without
// its message is ignored.
func Quarantine(folder, name string, reason []byte) error {
	q := filepath.Join(folder, QuarantineDir)
	if err := os.Mkdir(q, 0o750); err == nil {
		if err := syncDirPath(folder); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("spool: %w", err)
	}
	tmp := filepath.Join(q, "."+name+ReasonSuffix)
	if err := writeSync(tmp, reason); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(q, name+ReasonSuffix)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("spool: rename %s: %w", tmp, unwrapOS(err))
	}
	from := filepath.Join(folder, "new", name)
	if err := os.Rename(from, filepath.Join(q, name)); err != nil {
		return fmt.Errorf("spool: rename %s: %w", from, unwrapOS(err))
	}
	if err := syncDirPath(q); err != nil {
		return err
	}
	return syncDirPath(filepath.Join(folder, "new"))
}

// Quarantined is one message in a folder's quarantine/.
type Quarantined struct {
	Name   string // the Maildir name, as it was in new/
	Reason []byte // the reason file's content; nil if it is missing
}

// QuarantinedIn returns the messages in the folder's quarantine/, oldest
// first, with their reasons.
func QuarantinedIn(folder string) ([]Quarantined, error) {
	q := filepath.Join(folder, QuarantineDir)
	names, err := messages(q)
	if err != nil {
		return nil, err
	}
	out := make([]Quarantined, len(names))
	for i, n := range names {
		out[i].Name = n
		if b, err := os.ReadFile(filepath.Join(q, n+ReasonSuffix)); err == nil {
			out[i].Reason = b
		}
	}
	return out, nil
}

// Release moves a quarantined message back into the folder's new/, under
// its own name (so it takes its place in delivery order again), flushes
// new/, then removes its reason file and flushes quarantine/.
func Release(folder, name string) error {
	q := filepath.Join(folder, QuarantineDir)
	if err := os.MkdirAll(filepath.Join(folder, "new"), 0o750); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	from := filepath.Join(q, name)
	if err := os.Rename(from, filepath.Join(folder, "new", name)); err != nil {
		return fmt.Errorf("spool: rename %s: %w", from, unwrapOS(err))
	}
	if err := syncDirPath(filepath.Join(folder, "new")); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(q, name+ReasonSuffix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	return syncDirPath(q)
}

// writeSync creates name (truncating it), writes b, flushes and closes it.
func writeSync(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("spool: create %s: %w", name, unwrapOS(err))
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("spool: write %s: %w", name, unwrapOS(err))
	}
	return nil
}

// syncDirPath flushes the directory dir.
func syncDirPath(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: fsync directory %s: %w", dir, unwrapOS(err))
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spool: fsync directory %s: %w", dir, unwrapOS(err))
	}
	return nil
}
