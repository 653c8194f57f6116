package spool

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Op names one step of a delivery that touches the file system. Options.Fault
// is called with it before the step runs; errors name it.
type Op uint8

// The steps of a delivery, in the order Deliver takes them (see the package
// documentation).
const (
	// OpMkdir creates one directory of a Maildir folder (first delivery
	// to the folder only).
	OpMkdir Op = iota + 1
	// OpCreate creates the message file in tmp/ (O_CREATE|O_EXCL).
	OpCreate
	// OpWrite writes the whole message into the file in tmp/.
	OpWrite
	// OpFsync flushes the file in tmp/ to stable storage.
	OpFsync
	// OpRename moves the file from tmp/ into new/; the path given to
	// Options.Fault is the destination in new/.
	OpRename
	// OpDirFsync flushes a directory: new/ after the rename, and the
	// directories that hold a folder's entries on its first delivery.
	OpDirFsync
)

// String returns the step as errors name it: "mkdir", "create", "write",
// "fsync", "rename" or "fsync directory".
func (op Op) String() string {
	switch op {
	case OpMkdir:
		return "mkdir"
	case OpCreate:
		return "create"
	case OpWrite:
		return "write"
	case OpFsync:
		return "fsync"
	case OpRename:
		return "rename"
	case OpDirFsync:
		return "fsync directory"
	}
	return "op(" + strconv.Itoa(int(op)) + ")"
}

// Options configures a Spool.
type Options struct {
	// Dir is the spool root (--spool). New creates it if it is missing.
	Dir string
	// Hostname names this host in Maildir file names, in the Received
	// field and in generated Message-IDs. Default: os.Hostname().
	Hostname string
	// Logger receives a debug line per delivery and a warning when a
	// failed delivery's file cannot be removed. Default: discard.
	Logger *slog.Logger
	// Now returns the current time, for file names and the Received
	// field's date. Default: time.Now.
	Now func() time.Time
	// Fault, if set, is called before each durable step with the step and
	// the path it acts on; a non-nil error makes that step fail as if the
	// operating system had returned it (the step is not performed). For
	// fault-injection tests.
	Fault func(op Op, path string) error
	// Delivered, if set, is called after each successful delivery, once
	// the message is durable, with its path
	// (SPOOL/<domain>/<local>/<kind>/new/<name>): the forwarder's cue to
	// pick it up at once. It must not block.
	Delivered func(path string)
	// Reserve is the free space (and share of inodes) that deliveries
	// leave on the spool's file system: Room reports when it is reached.
	// The zero Reserve keeps nothing; Auto is
	// DefaultReserve(lists.DefaultMaxMessageSize) (resolve it with the
	// real largest message first, as the daemon does).
	Reserve Reserve
	// SpaceTTL is how long a reading of the free space is reused by Room
	// and Space. Zero means DefaultSpaceTTL.
	SpaceTTL time.Duration
	// Statfs reads the free space of the file system holding a path.
	// Default: Statfs. For tests.
	Statfs func(path string) (Space, error)
	// Registerer, if set, gets the gauges of the spool's file system:
	// listgate_spool_free_bytes, listgate_spool_free_inodes,
	// listgate_spool_reserve_bytes and listgate_spool_reserve_inodes.
	Registerer prometheus.Registerer
}

// kinds are the folder names a list has in the spool, one per kind of
// recipient: the posting address and the canonical sub-addresses.
var kinds = map[string]bool{
	"post": true, "bounces": true, "confirm": true, "join": true,
	"leave": true, "owner": true, "request": true,
}

// Spool delivers messages into the Maildir folders under one spool root.
// It is safe for concurrent use.
type Spool struct {
	dir      string
	hostname string // as given, for the Received field
	fileHost string // hostname encoded for file names
	pid      int
	log      *slog.Logger
	now      func() time.Time
	fault    func(Op, string) error
	notify   func(string)

	counter atomic.Uint64 // the Q part of file names
	ready   sync.Map      // folder path -> struct{}: made and flushed
	space   space         // the file system's free space, cached
}

// New returns a Spool rooted at opts.Dir. It creates the directory (and
// its parents, mode 0o750 before umask) if it is missing, and checks that
// it is a directory in which files can be created. Errors name the path.
func New(opts Options) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: no spool directory given")
	}
	dir := filepath.Clean(opts.Dir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", dir, unwrapOS(err))
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %s: %w", dir, unwrapOS(err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("spool: %s is not a directory", dir)
	}
	probe, err := os.CreateTemp(dir, ".listgate-probe-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %s is not writable: %w", dir, unwrapOS(err))
	}
	probe.Close()
	if err := os.Remove(probe.Name()); err != nil {
		return nil, fmt.Errorf("spool: remove %s: %w", probe.Name(), unwrapOS(err))
	}

	s := &Spool{
		dir:      dir,
		hostname: opts.Hostname,
		pid:      os.Getpid(),
		log:      opts.Logger,
		now:      opts.Now,
		fault:    opts.Fault,
		notify:   opts.Delivered,
	}
	if s.hostname == "" {
		s.hostname, _ = os.Hostname()
		if s.hostname == "" {
			s.hostname = "localhost"
		}
	}
	s.fileHost = encodeHost(s.hostname)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.space.statfs, s.space.ttl = opts.Statfs, opts.SpaceTTL
	s.space.reserve = opts.Reserve.Resolve(0)
	if s.space.statfs == nil {
		s.space.statfs = Statfs
	}
	if s.space.ttl <= 0 {
		s.space.ttl = DefaultSpaceTTL
	}
	s.Space() // logs, at the start, a spool already below its reserve
	if opts.Registerer != nil {
		s.registerSpace(opts.Registerer)
	}
	return s, nil
}

// Dir returns the spool root.
func (s *Spool) Dir() string { return s.dir }

// Envelope is what the LMTP transaction says about one recipient of a
// message: who sent it, to whom, and which folder it goes to.
type Envelope struct {
	// Sender is the envelope sender (MAIL FROM) without angle brackets;
	// "" for the null sender.
	Sender string
	// Rcpt is the recipient exactly as received (RCPT TO, without angle
	// brackets, extension included). It becomes Delivered-To.
	Rcpt string
	// Domain and Local are the halves of the list's canonical address
	// (lower case, domain in A-label form); with Kind they name the
	// folder SPOOL/<Domain>/<Local>/<Kind>.
	Domain, Local string
	// Kind is "post" for the posting address or the canonical sub-address:
	// "bounces", "confirm", "join", "leave", "owner" or "request".
	Kind string
	// Helo is the name the client gave in LHLO.
	Helo string
	// RemoteAddr is the client's address, e.g. "127.0.0.1:41234".
	RemoteAddr string
	// ID is the transaction id, for the Received field's "id" clause.
	ID string
}

// checkEnvelope makes sure the folder names are single, harmless path
// components, whatever the caller passed (defence in depth: lists already
// refuses names that are not).
func checkEnvelope(env Envelope) error {
	for _, c := range []struct{ what, v string }{{"domain", env.Domain}, {"local part", env.Local}} {
		if c.v == "" || c.v == "." || c.v == ".." {
			return fmt.Errorf("spool: invalid %s %q for a folder name", c.what, c.v)
		}
		for i := 0; i < len(c.v); i++ {
			if b := c.v[i]; b == '/' || b < ' ' || b == 0x7f {
				return fmt.Errorf("spool: invalid %s %q for a folder name", c.what, c.v)
			}
		}
	}
	if !kinds[env.Kind] {
		return fmt.Errorf("spool: invalid kind %q", env.Kind)
	}
	return nil
}

// Deliver stores m for one recipient in the Maildir folder
// SPOOL/<env.Domain>/<env.Local>/<env.Kind>, with the headers of the
// package documentation added on top, and returns the path of the file in
// new/.
//
// When Deliver returns a nil error the message is on stable storage: the
// file was written in tmp/ and flushed, renamed into new/, and new/ was
// flushed. When it returns an error, nothing was added to new/ (a file
// moved there before a failing directory flush is removed again) and the
// file in tmp/ is removed: the LMTP door must answer 451 4.3.0, or
// 452 4.3.1 when IsNoSpace(err). Errors wrap the operating system's error
// with %w and name the step and the path, e.g.
// "spool: fsync SPOOL/example.org/announce/post/tmp/...: no space left on device".
// An envelope whose Domain, Local or Kind is not a safe folder name is an
// error too (no file is made).
func (s *Spool) Deliver(m *Message, env Envelope) (path string, err error) {
	if m == nil {
		return "", errors.New("spool: no message")
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return "", errors.New("spool: message closed")
	}
	if err := checkEnvelope(env); err != nil {
		return "", err
	}
	folder := filepath.Join(s.dir, env.Domain, env.Local, env.Kind)
	var size int64
	defer func() {
		if err != nil {
			// Make and flush the folder again next time: it may have been
			// removed or never flushed completely.
			s.ready.Delete(folder)
		}
		s.used(size, err)
	}()
	if err := s.makeFolder(folder); err != nil {
		return "", err
	}

	now := s.now()
	var added []byte
	added, size = m.compose(env, s.hostname, now)
	var tmp string
	for try := 0; ; try++ {
		name := s.uniqueName(now, size)
		tmp = filepath.Join(folder, "tmp", name)
		path = filepath.Join(folder, "new", name)
		err = s.writeFile(tmp, added, &m.content)
		if err == nil || try == 3 {
			break
		}
		switch {
		case errors.Is(err, fs.ErrExist):
			// Cannot happen unless the clock and the random numbers
			// both repeat; take another name rather than fail.
		case errors.Is(err, fs.ErrNotExist) && try == 0:
			// The folder was removed since it was made (by an admin):
			// make it again rather than tempfail this message.
			s.ready.Delete(folder)
			if err = s.makeFolder(folder); err != nil {
				return "", err
			}
		default:
			return "", err
		}
	}
	if err != nil {
		return "", err
	}
	if err := s.step(OpRename, path, func() error { return os.Rename(tmp, path) }); err != nil {
		s.remove(tmp)
		s.remove(path) // in case the rename happened after all (NFS)
		return "", err
	}
	if err := s.syncDir(filepath.Join(folder, "new")); err != nil {
		s.remove(path)
		return "", err
	}
	s.log.Debug("stored", "rcpt", env.Rcpt, "list", env.Local+"@"+env.Domain,
		"kind", env.Kind, "file", path, "file_bytes", size)
	if s.notify != nil {
		s.notify(path)
	}
	return path, nil
}

// IsNoSpace reports whether err says the file system is full or the quota
// is exceeded (ENOSPC or EDQUOT anywhere in its chain), or that the free
// space is below the reserve (ErrBelowReserve, from Room): the LMTP door
// answers 452 4.3.1 (RFC 3463: mail system full) instead of 451 4.3.0.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, ErrBelowReserve)
}

// step runs fn as the durable step op on path, unless Options.Fault fails
// it first, and names op and path in its error.
func (s *Spool) step(op Op, path string, fn func() error) error {
	var err error
	if s.fault != nil {
		err = s.fault(op, path)
	}
	if err == nil {
		err = fn()
	}
	if err != nil {
		return fmt.Errorf("spool: %s %s: %w", op, path, unwrapOS(err))
	}
	return nil
}

// unwrapOS returns the errno inside an *os.PathError, *os.LinkError or
// *os.SyscallError, whose text would repeat the path our errors give.
func unwrapOS(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	var se *os.SyscallError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	case errors.As(err, &se):
		return se.Err
	}
	return err
}

// makeFolder makes the Maildir folder (its tmp/, new/ and cur/ and any
// missing parent up to the spool root) and flushes every directory that
// holds one of their entries, so the folder survives a crash. It does
// this once per folder while deliveries to it succeed.
func (s *Spool) makeFolder(folder string) error {
	if _, ok := s.ready.Load(folder); ok {
		return nil
	}
	rel, err := filepath.Rel(s.dir, folder)
	if err != nil {
		return fmt.Errorf("spool: folder %s: %w", folder, err)
	}
	var dirs []string // root/domain, root/domain/local, folder, folder/tmp, ...
	p := s.dir
	for _, c := range strings.Split(rel, string(filepath.Separator)) {
		p = filepath.Join(p, c)
		dirs = append(dirs, p)
	}
	for _, c := range []string{"tmp", "new", "cur"} {
		dirs = append(dirs, filepath.Join(folder, c))
	}
	for _, d := range dirs {
		err := s.step(OpMkdir, d, func() error { return os.Mkdir(d, 0o750) })
		if err == nil {
			continue
		}
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		if fi, serr := os.Stat(d); serr != nil {
			return fmt.Errorf("spool: %s: %w", d, unwrapOS(serr))
		} else if !fi.IsDir() {
			return fmt.Errorf("spool: %s is not a directory", d)
		}
	}
	// Flush the directories holding the new entries, deepest first: the
	// folder (tmp, new, cur), then each parent up to the spool root. This
	// is done even for directories another process made, because nothing
	// tells us that it flushed them.
	for d := folder; ; d = filepath.Dir(d) {
		if err := s.syncDir(d); err != nil {
			return err
		}
		if d == s.dir {
			break
		}
	}
	s.ready.Store(folder, struct{}{})
	return nil
}

// writeFile creates name with O_EXCL, writes added and then c into it
// (copying c's spill file with a buffer of SpillBuffer bytes), flushes and
// closes it. On failure it removes the file.
func (s *Spool) writeFile(name string, added []byte, c *content) (err error) {
	var f *os.File
	err = s.step(OpCreate, name, func() (err error) {
		f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		return err
	})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if f != nil {
				f.Close()
			}
			s.remove(name)
		}
	}()
	err = s.step(OpWrite, name, func() error {
		buf := spillPool.Get().(*[]byte)
		defer spillPool.Put(buf)
		if c.n == 0 && len(added)+len(c.tail) <= cap(*buf) {
			// The whole file in one write(2): most list mail is small.
			b := append(append((*buf)[:0], added...), c.tail...)
			_, err := f.Write(b)
			return err
		}
		if _, err := f.Write(added); err != nil {
			return err
		}
		return c.writeTo(f, (*buf)[:cap(*buf)])
	})
	if err != nil {
		return err
	}
	if err = s.step(OpFsync, name, f.Sync); err != nil {
		return err
	}
	// After a successful fsync a failing close reports nothing new, but
	// take no chances: it is a failed delivery too.
	closeErr := f.Close()
	f = nil
	if closeErr != nil {
		return fmt.Errorf("spool: close %s: %w", name, unwrapOS(closeErr))
	}
	return nil
}

// syncDir flushes the directory dir, so the entries made or renamed in it
// are on stable storage.
func (s *Spool) syncDir(dir string) error {
	return s.step(OpDirFsync, dir, func() error {
		d, err := os.Open(dir)
		if err != nil {
			return err
		}
		err = d.Sync()
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// remove removes a file of a failed delivery; it logs when that fails.
func (s *Spool) remove(name string) {
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("cannot remove file of failed delivery", "file", name, "err", err)
	}
}

// uniqueName returns a new Maildir file name (https://cr.yp.to/proto/maildir.html,
// with Dovecot's additions): "<secs>.M<usec>P<pid>Q<n>R<random>.<host>,S=<size>".
// M and P make it unique per process and microsecond, Q per delivery within
// the process (a counter), R (64 random bits) across processes and
// restarts that reuse a pid; S is the file size in bytes, which Dovecot
// reads without a stat.
func (s *Spool) uniqueName(now time.Time, size int64) string {
	var r [8]byte
	rand.Read(r[:])
	var b strings.Builder
	b.Grow(96)
	b.WriteString(strconv.FormatInt(now.Unix(), 10))
	b.WriteString(".M")
	b.WriteString(strconv.Itoa(now.Nanosecond() / 1000))
	b.WriteString("P")
	b.WriteString(strconv.Itoa(s.pid))
	b.WriteString("Q")
	b.WriteString(strconv.FormatUint(s.counter.Add(1), 10))
	b.WriteString("R")
	b.WriteString(hex.EncodeToString(r[:]))
	b.WriteString(".")
	b.WriteString(s.fileHost)
	b.WriteString(",S=")
	b.WriteString(strconv.FormatInt(size, 10))
	return b.String()
}

// encodeHost encodes a host name for a Maildir file name: '/' and ':' (and
// any other byte that is not a letter, digit, '.', '-' or '_', such as ','
// that Dovecot reads as the start of a field) become a backslash and three
// octal digits, as the Maildir convention writes '/' as \057 and ':' as
// \072.
func encodeHost(h string) string {
	var b strings.Builder
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\%03o`, c)
		}
	}
	return b.String()
}
