package lists

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// maxFileSize bounds a list file: list files are a few lines of TOML.
const maxFileSize = 1 << 20

// entry is one name in the lists directory and what reading it gave.
// Entries are immutable once built; a reload makes new ones.
type entry struct {
	name string // directory entry name
	path string // dir/name
	kind nameKind
	addr string // canonical "local@domain" or "@domain"
	id   fileID // what the file was when read, to skip unchanged files

	list *List   // last good settings, nil if the file never parsed
	dom  *Domain // likewise for a domain file
	err  *FileError
}

// fileID identifies a file's content cheaply: a changed file almost always
// changes one of these.
type fileID struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

func idOf(fi fs.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}

// readEntry reads the directory entry name afresh. prev is what the same
// name gave before (nil if nothing): a file that no longer parses keeps
// prev's settings. With force false, a file whose identity is unchanged is
// not read again. It returns nil when the name is gone or ignored.
func readEntry(dir, name, delims string, prev *entry, force bool) *entry {
	kind, addr, nameErr := classify(name, delims)
	path := filepath.Join(dir, name)
	switch kind {
	case nameIgnored:
		return nil
	case nameInvalid:
		if _, err := os.Lstat(path); err != nil {
			return nil
		}
		return &entry{name: name, path: path, kind: kind, err: &FileError{File: path, Err: fmt.Errorf("ignored: %w", nameErr)}}
	}
	e := &entry{name: name, path: path, kind: kind, addr: addr}
	if prev != nil && prev.addr == addr {
		e.list, e.dom = prev.list, prev.dom
	}
	fi, err := os.Stat(path) // follows symlinks: ConfigMap mounts are links
	if errors.Is(err, fs.ErrNotExist) {
		if _, lerr := os.Lstat(path); lerr != nil {
			return nil // removed
		}
		e.err = &FileError{File: path, Err: errors.New("dangling symlink")}
		return e
	}
	if err != nil {
		e.err = &FileError{File: path, Err: err}
		return e
	}
	if !fi.Mode().IsRegular() {
		e.err = &FileError{File: path, Err: errNotRegular}
		return e
	}
	e.id = idOf(fi)
	if !force && prev != nil && prev.addr == addr && prev.id == e.id {
		return prev
	}
	data, err := readFile(path)
	if err != nil {
		e.err = &FileError{File: path, Err: err}
		return e
	}
	if kind == nameDomain {
		d, err := parseDomain(path, addr[1:], data)
		if err != nil {
			e.err = asFileError(path, err)
			return e
		}
		e.dom = d
		return e
	}
	l, err := parseList(path, addr, data, delims)
	if err != nil {
		e.err = asFileError(path, err)
		return e
	}
	e.list = l
	return e
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return data, nil
}

func asFileError(path string, err error) *FileError {
	var fe *FileError
	if errors.As(err, &fe) {
		return fe
	}
	return &FileError{File: path, Err: err}
}

// scan reads the whole directory. prev holds the entries of the previous
// scan (nil on the first); with force false, files whose identity did not
// change are not read again.
func scan(dir, delims string, prev map[string]*entry, force bool) (map[string]*entry, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("lists: read directory %s: %w", dir, err)
	}
	entries := make(map[string]*entry, len(des))
	for _, de := range des {
		name := de.Name()
		if e := readEntry(dir, name, delims, prev[name], force); e != nil {
			entries[name] = e
		}
	}
	return entries, nil
}

// Options configure how a lists directory is read.
type Options struct {
	// Delimiters are the recipient delimiter characters, as Postfix's
	// recipient_delimiter: an extension starts at the first of any of
	// them. Empty means DefaultDelimiter; "none" turns extensions off.
	Delimiters string
}

func (o Options) delims() string {
	switch o.Delimiters {
	case "":
		return DefaultDelimiter
	case "none":
		return ""
	}
	return o.Delimiters
}

// Load reads the lists directory dir once and returns its snapshot. It
// fails only when the directory itself cannot be read; problems with
// single files are in Snapshot.Problems.
func Load(dir string, opts Options) (*Snapshot, error) {
	entries, err := scan(dir, opts.delims(), nil, true)
	if err != nil {
		return nil, err
	}
	return build(entries, opts.delims(), 1), nil
}
