package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// newTestSpool returns a Spool in a fresh directory with the fixed host
// name and clock.
func newTestSpool(t testing.TB, fault func(Op, string) error) *Spool {
	t.Helper()
	s, err := New(Options{Dir: t.TempDir(), Hostname: testHost, Now: func() time.Time { return testNow }, Fault: fault})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testMessage(t testing.TB, in string) *Message {
	t.Helper()
	m, err := readMessage(strings.NewReader(in), fixedID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// names returns the names in dir, sorted; none for a missing dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// nameRE is the Maildir file name Deliver makes for testHost.
var nameRE = regexp.MustCompile(`^(\d+)\.M(\d+)P(\d+)Q(\d+)R([0-9a-f]{16})\.lists\.example\.org,S=(\d+)$`)

func TestDeliver(t *testing.T) {
	s := newTestSpool(t, nil)
	in := "Subject: hi\r\nMessage-ID: <ant>\r\n\r\nbody\r\n"
	m := testMessage(t, in)
	path, err := s.Deliver(m, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(s.Dir(), "example.org", "announce", "post")
	if filepath.Dir(path) != filepath.Join(folder, "new") {
		t.Errorf("path %s is not in %s/new", path, folder)
	}
	for _, d := range []string{"tmp", "new", "cur"} {
		fi, err := os.Stat(filepath.Join(folder, d))
		if err != nil || !fi.IsDir() {
			t.Errorf("%s/%s: not a directory (%v)", folder, d, err)
		}
	}
	if got := names(t, filepath.Join(folder, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ holds %q after delivery", got)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := top("", antHash) + "Subject: hi\nMessage-ID: <ant>\n\nbody\n"; string(got) != want {
		t.Errorf("stored\n%q\nwant\n%q", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&^0o640 != 0 {
		t.Errorf("file mode %v, want at most 0640", perm)
	}
	sub := nameRE.FindStringSubmatch(filepath.Base(path))
	if sub == nil {
		t.Fatalf("file name %q does not match %s", filepath.Base(path), nameRE)
	}
	if sub[1] != strconv.FormatInt(testNow.Unix(), 10) || sub[3] != strconv.Itoa(os.Getpid()) {
		t.Errorf("file name %q: wrong time or pid", filepath.Base(path))
	}
	if sub[6] != strconv.Itoa(len(got)) {
		t.Errorf("file name %q: S=%s, file has %d bytes", filepath.Base(path), sub[6], len(got))
	}
}

// TestDeliverManyRecipients delivers one message to three folders: each
// gets the same message with its own envelope headers and the same
// Message-ID and hash (generated once, as Mailman does).
func TestDeliverManyRecipients(t *testing.T) {
	s := newTestSpool(t, nil)
	m := testMessage(t, "Subject: no id\r\n\r\nbody\r\n")
	var hashLines []string
	for _, kind := range []string{"post", "owner", "bounces"} {
		env := testEnv
		env.Kind = kind
		env.Rcpt = "announce-" + kind + "@example.org"
		path, err := s.Deliver(m, env)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(got, []byte("\nDelivered-To: "+env.Rcpt+"\n")) {
			t.Errorf("%s: no Delivered-To for %s", path, env.Rcpt)
		}
		if !bytes.HasSuffix(got, []byte("X-MailFrom: anne@example.com\nSubject: no id\n\nbody\n")) {
			t.Errorf("%s: message not stored whole:\n%s", path, got)
		}
		hashLines = append(hashLines, string(regexp.MustCompile(`(?m)^Message-ID: .*\nMessage-ID-Hash: .*$`).Find(got)))
	}
	if hashLines[0] == "" || hashLines[0] != hashLines[1] || hashLines[1] != hashLines[2] {
		t.Errorf("recipients got different Message-IDs or hashes: %q", hashLines)
	}
}

var allOps = []Op{OpMkdir, OpCreate, OpWrite, OpFsync, OpRename, OpDirFsync}

// TestDeliverFault fails each durable step in turn, on the first delivery
// to a folder and on a later one: Deliver must fail, name the step, leave
// new/ and tmp/ as they were, and the next delivery must succeed.
func TestDeliverFault(t *testing.T) {
	injected := errors.New("injected")
	for _, op := range allOps {
		for _, warm := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/warm=%v", op, warm), func(t *testing.T) {
				var armed, fired atomic.Bool
				s := newTestSpool(t, func(o Op, path string) error {
					if armed.Load() && o == op {
						fired.Store(true)
						return injected
					}
					return nil
				})
				m := testMessage(t, "Message-ID: <ant>\r\n\r\nbody\r\n")
				folder := filepath.Join(s.Dir(), "example.org", "announce", "post")
				wantNew := 0
				if warm {
					if _, err := s.Deliver(m, testEnv); err != nil {
						t.Fatal(err)
					}
					wantNew = 1
				}

				armed.Store(true)
				path, err := s.Deliver(m, testEnv)
				armed.Store(false)
				if warm && op == OpMkdir {
					// A folder that exists is not made again.
					if err != nil || fired.Load() {
						t.Fatalf("Deliver to a made folder: err %v, mkdir called: %v", err, fired.Load())
					}
					return
				}
				if !fired.Load() {
					t.Fatalf("Fault was never called with %s", op)
				}
				if err == nil {
					t.Fatalf("Deliver returned %s and no error despite a failed %s", path, op)
				}
				if path != "" {
					t.Errorf("Deliver returned path %q with error", path)
				}
				if !errors.Is(err, injected) {
					t.Errorf("error %v does not wrap the injected error", err)
				}
				if !strings.HasPrefix(err.Error(), "spool: "+op.String()+" "+s.Dir()) {
					t.Errorf("error %q does not name the step %q and a path", err, op)
				}
				if IsNoSpace(err) {
					t.Errorf("IsNoSpace(%v) = true", err)
				}
				if got := names(t, filepath.Join(folder, "new")); len(got) != wantNew {
					t.Errorf("new/ holds %q after a failed %s, want %d files", got, op, wantNew)
				}
				if got := names(t, filepath.Join(folder, "tmp")); len(got) != 0 {
					t.Errorf("tmp/ holds %q after a failed %s", got, op)
				}

				// The spool recovers: the next delivery goes through.
				if _, err := s.Deliver(m, testEnv); err != nil {
					t.Fatalf("delivery after a failed %s: %v", op, err)
				}
				if got := names(t, filepath.Join(folder, "new")); len(got) != wantNew+1 {
					t.Errorf("new/ holds %q, want %d files", got, wantNew+1)
				}
			})
		}
	}
}

// TestDeliverFaultEveryCall fails the nth durable step of a first
// delivery, for every n, so every dir fsync of folder making is covered.
func TestDeliverFaultEveryCall(t *testing.T) {
	// Count the steps of a clean first delivery.
	var steps int
	s := newTestSpool(t, func(Op, string) error { steps++; return nil })
	m := testMessage(t, "Message-ID: <ant>\r\n\r\nbody\r\n")
	if _, err := s.Deliver(m, testEnv); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= steps; n++ {
		var calls int
		var failed string
		s := newTestSpool(t, func(op Op, path string) error {
			calls++
			if calls == n {
				failed = op.String() + " " + path
				return syscall.EIO
			}
			return nil
		})
		if _, err := s.Deliver(m, testEnv); err == nil {
			t.Errorf("step %d (%s) failed, Deliver did not", n, failed)
			continue
		}
		folder := filepath.Join(s.Dir(), "example.org", "announce", "post")
		if got := append(names(t, filepath.Join(folder, "new")), names(t, filepath.Join(folder, "tmp"))...); len(got) != 0 {
			t.Errorf("step %d (%s) failed, files left: %q", n, failed, got)
		}
	}
}

func TestDeliverNoSpace(t *testing.T) {
	tests := []struct {
		op      Op
		err     error
		noSpace bool
	}{
		{OpWrite, syscall.ENOSPC, true},
		{OpFsync, syscall.ENOSPC, true},
		{OpCreate, syscall.EDQUOT, true},
		{OpDirFsync, syscall.ENOSPC, true},
		{OpWrite, syscall.EIO, false},
		{OpRename, syscall.EROFS, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v", tt.op, tt.err), func(t *testing.T) {
			s := newTestSpool(t, func(op Op, _ string) error {
				if op == tt.op {
					return tt.err
				}
				return nil
			})
			_, err := s.Deliver(testMessage(t, "Message-ID: <ant>\r\n\r\n"), testEnv)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Deliver: %v, want %v", err, tt.err)
			}
			if IsNoSpace(err) != tt.noSpace {
				t.Errorf("IsNoSpace(%v) = %v, want %v", err, !tt.noSpace, tt.noSpace)
			}
		})
	}
}

func TestIsNoSpace(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("no space left on device"), false},
		{syscall.ENOSPC, true},
		{syscall.EDQUOT, true},
		{syscall.EIO, false},
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, true},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", syscall.EDQUOT)), true},
	}
	for _, tt := range tests {
		if got := IsNoSpace(tt.err); got != tt.want {
			t.Errorf("IsNoSpace(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestDeliverUnwritable makes a component of the folder path a regular
// file, which fails even for root (tests run as root in CI, where a
// read-only mode would not stop anything).
func TestDeliverUnwritable(t *testing.T) {
	tests := []struct {
		name string
		file string // relative to the spool root, made a regular file
	}{
		{"domain", "example.org"},
		{"local", "example.org/announce"},
		{"kind", "example.org/announce/post"},
		{"tmp", "example.org/announce/post/tmp"},
		{"new", "example.org/announce/post/new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSpool(t, nil)
			file := filepath.Join(s.Dir(), tt.file)
			if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, nil, 0o640); err != nil {
				t.Fatal(err)
			}
			path, err := s.Deliver(testMessage(t, "Message-ID: <ant>\r\n\r\n"), testEnv)
			if err == nil {
				t.Fatalf("Deliver stored %s with %s a regular file", path, tt.file)
			}
			if !strings.Contains(err.Error(), file) {
				t.Errorf("error %q does not name %s", err, file)
			}
			var files []string
			filepath.WalkDir(s.Dir(), func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && p != file {
					files = append(files, p)
				}
				return nil
			})
			if len(files) != 0 {
				t.Errorf("files left in the spool: %q", files)
			}
		})
	}
}

func TestDeliverInvalidEnvelope(t *testing.T) {
	bad := []struct{ domain, local, kind string }{
		{"", "announce", "post"},
		{".", "announce", "post"},
		{"..", "announce", "post"},
		{"example.org", "", "post"},
		{"example.org", ".", "post"},
		{"example.org", "..", "post"},
		{"example.org", "a/b", "post"},
		{"example.org/..", "x", "post"},
		{"example.org", "a\x00b", "post"},
		{"example.org", "a\nb", "post"},
		{"example.org", "a\x7fb", "post"},
		{"example.org", "announce", ""},
		{"example.org", "announce", "posts"},
		{"example.org", "announce", "../post"},
		{"example.org", "announce", "new"},
		{"example.org", "announce", "subscribe"}, // spelled join in the spool
	}
	s := newTestSpool(t, nil)
	m := testMessage(t, "Message-ID: <ant>\r\n\r\n")
	for _, b := range bad {
		env := testEnv
		env.Domain, env.Local, env.Kind = b.domain, b.local, b.kind
		if path, err := s.Deliver(m, env); err == nil {
			t.Errorf("Deliver to %q/%q/%q stored %s", b.domain, b.local, b.kind, path)
		}
	}
	if got := names(t, s.Dir()); len(got) != 0 {
		t.Errorf("spool root holds %q after invalid envelopes", got)
	}
	if _, err := s.Deliver(nil, testEnv); err == nil {
		t.Error("Deliver(nil) succeeded")
	}
}

func TestNew(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dir     string
		wantErr string // substring; "" for success
	}{
		{"missing dir is made", filepath.Join(base, "a", "b", "spool"), ""},
		{"existing dir", base, ""},
		{"empty", "", "no spool directory"},
		{"regular file", file, file + ": not a directory"},
		{"below a regular file", filepath.Join(file, "spool"), filepath.Join(file, "spool")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Options{Dir: tt.dir})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if fi, err := os.Stat(tt.dir); err != nil || !fi.IsDir() {
					t.Errorf("%s not made: %v", tt.dir, err)
				}
				if got := names(t, tt.dir); len(got) != 0 && tt.dir != base {
					t.Errorf("New left %q in %s", got, tt.dir)
				}
				if s.Dir() != tt.dir {
					t.Errorf("Dir() = %s, want %s", s.Dir(), tt.dir)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New(%q) error %v, want one containing %q", tt.dir, err, tt.wantErr)
			}
		})
	}
}

func TestEncodeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"lists.example.org", "lists.example.org"},
		{"a/b:c", `a\057b\072c`},
		{"x,S=1", `x\054S\0751`},
		{"h\n", `h\012`},
	}
	for _, tt := range tests {
		if got := encodeHost(tt.in); got != tt.want {
			t.Errorf("encodeHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	s, err := New(Options{Dir: t.TempDir(), Hostname: "a/b:c"})
	if err != nil {
		t.Fatal(err)
	}
	path, err := s.Deliver(testMessage(t, ""), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(filepath.Base(path), `.a\057b\072c,S=`) {
		t.Errorf("file name %q does not encode the host name", filepath.Base(path))
	}
}

// TestDeliverConcurrent delivers from 50 goroutines at once, all with the
// same clock reading: 50 distinct files, nothing left in tmp/.
func TestDeliverConcurrent(t *testing.T) {
	const n = 50
	s := newTestSpool(t, nil)
	m := testMessage(t, "Message-ID: <ant>\r\n\r\nbody\r\n")
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { paths[i], errs[i] = s.Deliver(m, testEnv) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("delivery %d: %v", i, errs[i])
		}
		if seen[paths[i]] {
			t.Errorf("path %s returned twice", paths[i])
		}
		seen[paths[i]] = true
	}
	folder := filepath.Join(s.Dir(), "example.org", "announce", "post")
	if got := names(t, filepath.Join(folder, "new")); len(got) != n {
		t.Errorf("new/ holds %d files, want %d", len(got), n)
	}
	if got := names(t, filepath.Join(folder, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ holds %q", got)
	}
}

// TestDeliverLarge stores a 64 MiB message (the default size limit) for
// three recipients and checks every byte.
func TestDeliverLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 192 MiB")
	}
	line := "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\xe9\r\n"
	in := "Message-ID: <ant>\r\n\r\n" + strings.Repeat(line, (64<<20)/len(line))
	want := strings.ReplaceAll(in, "\r\n", "\n")
	s := newTestSpool(t, nil)
	m, err := readMessage(strings.NewReader(in), fixedID)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"post", "owner", "request"} {
		env := testEnv
		env.Kind = kind
		path, err := s.Deliver(m, env)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != top("", antHash)+want {
			t.Fatalf("%s: stored bytes differ (%d bytes, want %d)", path, len(got), len(top("", antHash))+len(want))
		}
	}
}

func BenchmarkDeliver(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"1KiB", 1 << 10}, {"1MiB", 1 << 20}} {
		size := bc.size
		b.Run(bc.name, func(b *testing.B) {
			head := "From: anne@example.com\r\nSubject: bench\r\nMessage-ID: <ant>\r\n\r\n"
			line := strings.Repeat("x", 76) + "\r\n"
			in := head + strings.Repeat(line, (size-len(head))/len(line))
			in += strings.Repeat("y", size-len(in))
			s := newTestSpool(b, nil)
			m := testMessage(b, in)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Deliver(m, testEnv); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadMessage(b *testing.B) {
	line := strings.Repeat("x", 76) + "\r\n"
	in := "Subject: bench\r\nMessage-ID: <ant>\r\n\r\n" + strings.Repeat(line, (1<<20)/len(line))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadMessage(strings.NewReader(in)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDeliverFolderRemoved removes a folder between deliveries, as an
// admin might: the next delivery makes it again instead of failing.
func TestDeliverFolderRemoved(t *testing.T) {
	var dirSyncs []string
	s := newTestSpool(t, func(op Op, path string) error {
		if op == OpDirFsync {
			dirSyncs = append(dirSyncs, path)
		}
		return nil
	})
	m := testMessage(t, "Message-ID: <ant>\r\n\r\n")
	if _, err := s.Deliver(m, testEnv); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(s.Dir(), "example.org", "announce", "post")
	want := []string{folder, filepath.Dir(folder), filepath.Dir(filepath.Dir(folder)), s.Dir(), filepath.Join(folder, "new")}
	if strings.Join(dirSyncs, " ") != strings.Join(want, " ") {
		t.Errorf("first delivery flushed directories\n%q\nwant\n%q", dirSyncs, want)
	}
	if err := os.RemoveAll(filepath.Join(s.Dir(), "example.org")); err != nil {
		t.Fatal(err)
	}
	path, err := s.Deliver(m, testEnv)
	if err != nil {
		t.Fatalf("delivery after the folder was removed: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Error(err)
	}
}
