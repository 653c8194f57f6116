package lists

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
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

	ext *externalItem // what an External's entry was made from; nil for a directory entry

	// transient is set when err came from the file system (stat, open or
	// read failed: EMFILE, EIO, EACCES) rather than from the content: the
	// file is read again even when its identity did not change, and a
	// Watcher retries it with backoff until it reads.
	transient bool
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

// reader reads one lists directory: its path, the recipient delimiters
// in force, and how files are opened.
type reader struct {
	dir, delims string
	open        func(path string) (*os.File, error) // os.Open but in tests
}

func (o Options) reader(dir string) reader {
	r := reader{dir: dir, delims: o.delims(), open: o.open}
	if r.open == nil {
		r.open = os.Open
	}
	return r
}

// readEntry reads the directory entry name afresh. prev is what the same
// name gave before (nil if nothing): a file that no longer parses keeps
// prev's settings. With force false, a file whose identity is unchanged is
// not read again, unless its last read failed (prev.transient). It returns
// nil when the name is gone or ignored.
func (r reader) readEntry(name string, prev *entry, force bool) *entry {
	dir, delims := r.dir, r.delims
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
		e.err, e.transient = asFileError(path, err), true
		return e
	}
	if !fi.Mode().IsRegular() {
		e.err = &FileError{File: path, Err: errNotRegular}
		return e
	}
	e.id = idOf(fi)
	if !force && prev != nil && prev.addr == addr && prev.id == e.id && !prev.transient {
		return prev
	}
	data, err := r.readFile(path)
	if err != nil {
		e.err = asFileError(path, err)
		e.transient = !errors.Is(err, errTooLarge)
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

// errTooLarge is the one read error that comes from the content.
var errTooLarge = fmt.Errorf("larger than %d bytes", maxFileSize)

func (r reader) readFile(path string) ([]byte, error) {
	f, err := r.open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, errTooLarge
	}
	return data, nil
}

// asFileError makes err a problem of the file at path. An *fs.PathError
// loses its path, which the FileError already names: "lists/x@example.org:
// open: permission denied", not the path twice.
func asFileError(path string, err error) *FileError {
	var fe *FileError
	if errors.As(err, &fe) {
		return fe
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return &FileError{File: path, Err: err}
}

// scan reads the whole directory. prev holds the entries of the previous
// scan (nil on the first); with force false, files whose identity did not
// change are not read again. Files are read by a few goroutines at once:
// with 100,000 lists the time goes into system calls (stat, open, read,
// close), which run in parallel.
func (r reader) scan(prev map[string]*entry, force bool) (map[string]*entry, error) {
	dir := r.dir
	f, err := r.open(dir)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is said once, here
		}
		return nil, fmt.Errorf("lists: read directory %s: %w", dir, err)
	}
	names, err := f.Readdirnames(-1) // unsorted: the entries become a map
	f.Close()
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is said once, here
		}
		return nil, fmt.Errorf("lists: read directory %s: %w", dir, err)
	}
	read := make([]*entry, len(names))
	const chunk = 64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(2*runtime.GOMAXPROCS(0), len(names)/chunk+1) {
		wg.Go(func() {
			for {
				start := int(next.Add(chunk)) - chunk
				if start >= len(names) {
					return
				}
				for i := start; i < min(start+chunk, len(names)); i++ {
					read[i] = r.readEntry(names[i], prev[names[i]], force)
				}
			}
		})
	}
	wg.Wait()
	entries := make(map[string]*entry, len(names))
	for i, e := range read {
		if e != nil {
			entries[names[i]] = e
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
	// External, if set, is merged into the snapshot: lists and domains
	// from GNU Mailman, say. A Watcher takes later sets by SetExternal.
	External *External
	// Observe puts every served domain whose domain file sets no mode in
	// observe mode (Domain.Mode, Status Observed); a domain file's
	// `mode = "enforce"` still wins.
	Observe bool

	open func(path string) (*os.File, error) // nil: os.Open; tests inject faults
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
	entries, err := opts.reader(dir).scan(nil, true)
	if err != nil {
		return nil, err
	}
	entries = withExternal(entries, opts.External, opts.delims(), nil)
	return build(entries, opts.delims(), opts.Observe, 1), nil
}
