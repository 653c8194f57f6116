package spool

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// streamInputs are messages whose header section crosses buffer
// boundaries in every way the streaming scanner can meet: hash fields
// (to take back) split anywhere, a long white space run before a colon,
// long names, a header section far larger than the buffer, a Message-ID
// larger than the buffer, CRLFs split between reads.
func streamInputs() map[string]string {
	long := strings.Repeat("x", 3000)
	wsp := strings.Repeat(" \t", 2000)
	return map[string]string{
		"plain":              "Message-ID: <ant>\r\nSubject: hi\r\n\r\nbody\r\n",
		"hash fields":        "Subject: a\r\nMessage-ID-Hash: X\r\n Y\r\nMessage-ID: <ant>\r\nx-message-id-hash: Z\r\n\r\nMessage-ID-Hash: body\r\n",
		"hash field first":   "Message-ID-Hash: X\r\n\r\nbody",
		"hash wsp colon":     "Message-ID-Hash" + wsp + ": X\r\nSubject: s\r\n\r\n",
		"hash wsp no colon":  "Subject: s\r\nMessage-ID-Hash" + wsp + "X\r\n\r\n",
		"long name":          "Subject: s\r\nMessage-ID-Hash" + long + ": X\r\n\r\n",
		"long name no colon": "Message-ID-Hash" + long + "\r\n\r\n",
		"huge header": strings.Repeat("Received: from a by b; "+long+"\r\n\t"+long+"\r\n", 100) +
			"Message-ID-Hash: X\r\nMessage-ID: <big>\r\n\r\nbody\r\n",
		"huge message-id":   "Message-ID: \r\n <" + strings.Repeat("a\r\n ", 20000) + ">\t\r\n\r\nbody",
		"message-id spaces": "Message-ID:  \r\n \t\r\n\r\n",
		"message-id one":    "Message-ID: <\r\n\r\n",
		"headerless":        " folded\r\n" + long,
		"empty line first":  "\r\nMessage-ID-Hash: X\r\n",
		"lone cr":           "Subject: a\rb\r\r\n\r\n\r\r\r",
		"no line end":       "Message-ID-Hash: x",
		"empty":             "",
		"big body":          "Subject: s\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 20000) + "\r",
	}
}

// TestStreamBufferSizes: whatever the buffer size, from one byte on (so
// every field is taken back across a flush to the spill file), the stored
// bytes, Message-ID and hash are those of the whole message held in
// memory, which the model of fuzz_test.go checks.
func TestStreamBufferSizes(t *testing.T) {
	for name, in := range streamInputs() {
		t.Run(name, func(t *testing.T) {
			ref, err := readMessageIn(strings.NewReader(in), t.TempDir(), len(in)+1, fixedID)
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			if ref.f != nil {
				t.Fatal("a message smaller than the buffer was spilled")
			}
			want := render(ref, testEnv)
			checkStored(t, []byte(in), ref, want, addedNames(ref))
			sizes := []int{1, 2, 3, 7, 16, 4096}
			if len(in) > 50000 {
				sizes = sizes[3:] // a byte at a time is slow
			}
			for _, size := range sizes {
				dir := t.TempDir()
				m, err := readMessageIn(iotestHalf(in), dir, size, fixedID)
				if err != nil {
					t.Fatal(err)
				}
				if got := render(m, testEnv); !bytes.Equal(got, want) {
					t.Errorf("buffer %d: stored\n%.300q\nwant\n%.300q", size, got, want)
				}
				if m.MessageID() != ref.MessageID() || m.Hash() != ref.Hash() || m.Size() != ref.Size() {
					t.Errorf("buffer %d: MessageID %.40q Hash %s Size %d, want %.40q %s %d", size,
						m.MessageID(), m.Hash(), m.Size(), ref.MessageID(), ref.Hash(), ref.Size())
				}
				if len(m.tail) > size {
					t.Errorf("buffer %d: %d bytes held in memory", size, len(m.tail))
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Errorf("buffer %d: the spill file is still in its directory", size)
				}
				if err := m.Close(); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// iotestHalf returns a reader of in that returns at most 5 bytes at a
// time, so CRLFs are split between reads.
func iotestHalf(in string) io.Reader { return &smallReader{s: in} }

type smallReader struct{ s string }

func (r *smallReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 5)], r.s)
	r.s = r.s[n:]
	return n, nil
}

// TestLongMessageID: the hash is of the whole Message-ID, however long;
// MessageID returns its first maxMsgIDKept bytes.
func TestLongMessageID(t *testing.T) {
	id := "<" + strings.Repeat("a", maxMsgIDKept) + "@example.org>"
	m, err := readMessageIn(strings.NewReader("Message-ID: "+id+"\r\n\r\n"), t.TempDir(), 1024, fixedID)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Hash() != MessageIDHash(id) {
		t.Errorf("Hash() = %s, want %s", m.Hash(), MessageIDHash(id))
	}
	if m.MessageID() != id[:maxMsgIDKept] {
		t.Errorf("MessageID() has %d bytes, want the first %d", len(m.MessageID()), maxMsgIDKept)
	}
}

// TestReadMessageMemory: reading and delivering a 16 MiB message
// allocates a small constant, not the message (it allocated more than
// 16 MiB when the message was read whole).
func TestReadMessageMemory(t *testing.T) {
	s := newTestSpool(t, nil)
	const size = 16 << 20
	line := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"
	in := io.MultiReader(strings.NewReader("Message-ID: <big>\r\nSubject: s\r\n\r\n"),
		&repeatReader{line: line, n: size / len(line)})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := s.ReadMessage(in)
	if err != nil {
		t.Fatal(err)
	}
	path, err := s.Deliver(m, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("reading and delivering a %d MiB message allocated %d KiB, want at most 1 MiB", size>>20, got>>10)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(size/len(line)*(len(line)-1)) + 31; fi.Size() < want {
		t.Errorf("stored %d bytes, want more than %d", fi.Size(), want)
	}
}

// repeatReader returns line n times.
type repeatReader struct {
	line string
	n    int
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	done := 0
	for done < len(p) && r.n > 0 {
		k := copy(p[done:], r.line[r.off:])
		done += k
		if r.off += k; r.off == len(r.line) {
			r.off, r.n = 0, r.n-1
		}
	}
	if done == 0 {
		return 0, io.EOF
	}
	return done, nil
}

// TestSpillFileOnError: a read that fails (the size limit, the client
// gone) leaves no spill file and no descriptor open; a message read whole
// keeps its spill file open until Close, out of the spool's listing.
func TestSpillFileOnError(t *testing.T) {
	s := newTestSpool(t, nil)
	before := spillFDs(t, s.Dir())
	big := strings.Repeat("x", 3*SpillBuffer)
	_, err := s.ReadMessage(&errReader{data: []byte("Subject: s\r\n\r\n" + big), err: &tooLarge{552}})
	if err == nil {
		t.Fatal("no error")
	}
	if got := spillFDs(t, s.Dir()); got != before {
		t.Errorf("%d spill files open after a failed read, want %d", got, before)
	}
	m, err := s.ReadMessage(strings.NewReader("Subject: s\r\n\r\n" + big))
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(s.Dir()); len(ents) != 0 {
		t.Errorf("spool root holds %d entries", len(ents))
	}
	if got := spillFDs(t, s.Dir()); got != before+1 {
		t.Errorf("%d spill files open while the message is held, want %d", got, before+1)
	}
	m.Close()
	if got := spillFDs(t, s.Dir()); got != before {
		t.Errorf("%d spill files open after Close, want %d", got, before)
	}
	if _, err := s.Deliver(m, testEnv); err == nil {
		t.Error("Deliver after Close succeeded")
	}
	m.Close() // twice is fine
}

// spillFDs counts this process's descriptors open on a removed spill file
// in dir (Linux's /proc/self/fd), or skips the test elsewhere.
func spillFDs(t *testing.T, dir string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, filepath.Join(dir, SpillPrefix)) && strings.HasSuffix(target, " (deleted)") {
			n++
		}
	}
	return n
}

// TestSpillDiskBound: while a message is read, its spill file is never
// larger than what was read so far: a reader that stops at a size limit
// (go-smtp's, at max_message_size) bounds the disk used as well.
func TestSpillDiskBound(t *testing.T) {
	s := newTestSpool(t, nil)
	const limit = 1 << 20
	r := &watchReader{t: t, dir: s.Dir(), r: &repeatReader{line: strings.Repeat("y", 998) + "\r\n", n: 1 << 20}, limit: limit}
	if _, err := s.ReadMessage(r); err == nil {
		t.Fatal("no error past the limit")
	}
	if r.max == 0 || r.max > limit {
		t.Errorf("spill file grew to %d bytes with a %d-byte limit", r.max, limit)
	}
}

// watchReader passes limit bytes of r on, then fails as go-smtp's DATA
// reader does past MaxMessageBytes; at each read it records the size of
// the spill file in dir.
type watchReader struct {
	t     *testing.T
	dir   string
	r     io.Reader
	limit int
	read  int
	max   int64
}

func (w *watchReader) Read(p []byte) (int, error) {
	if size := spillSize(w.t, w.dir); size > w.max {
		w.max = size
	}
	if w.read >= w.limit {
		return 0, fmt.Errorf("552 5.3.4 too large")
	}
	n, err := w.r.Read(p[:min(len(p), w.limit-w.read)])
	w.read += n
	return n, err
}

// spillSize returns the size of the spill file open in dir, or 0.
func spillSize(t *testing.T, dir string) int64 {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	for _, fd := range fds {
		p := filepath.Join("/proc/self/fd", fd.Name())
		target, err := os.Readlink(p)
		if err == nil && strings.HasPrefix(target, filepath.Join(dir, SpillPrefix)) {
			if fi, err := os.Stat(p); err == nil {
				return fi.Size()
			}
		}
	}
	return 0
}
