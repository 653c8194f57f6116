//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/internal/daemontest"
	"github.com/listgate/listgate/lists"
)

// soak is set (LISTGATE_SOAK=1) to run the long forms of the tests:
// TestMemoryBound with 20 messages of the maximum size and 1,000 idle
// connections, the figures of docs/reliability.md ("Memory").
var soak = os.Getenv("LISTGATE_SOAK") == "1"

// TestMemoryBound: `listgate serve` delivers concurrent large messages
// with its peak resident memory (VmHWM of the process) growing by a small
// constant per connection, not by the size of the messages, and holds
// idle connections cheaply (measured first, on a fresh process). In CI: 4 concurrent messages of 16 MiB, peak
// growth under 48 MiB (reading each message whole took it past 100 MiB).
// With LISTGATE_SOAK=1: 20 concurrent messages of the maximum size (64
// MiB) under 200 MiB, then 1,000 idle connections; it logs the figures
// docs/reliability.md gives. Run the binary without -race for figures
// that mean anything (the race detector's shadow memory counts too).
func TestMemoryBound(t *testing.T) {
	clients, size, bound, idle := 4, 16<<20, int64(48<<20), 0
	if soak {
		clients, size, bound, idle = 20, lists.DefaultMaxMessageSize-4096, 200<<20, 1000
	}
	listsDir, spoolDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(listsDir, "mem@example.org"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The idle connections all come from 127.0.0.1: above the default
	// per-client cap (max_connections_per_client, 500), so raise both caps.
	d := daemontest.Start(t, []string{"lmtp"}, "--lists", listsDir, "--spool", spoolDir,
		"--lmtp", "inet:127.0.0.1:0", "--milter", "", "--log-level", "info",
		"--max-connections", "2000", "--max-connections-per-client", "2000")
	addr := strings.TrimPrefix(d.Addr("lmtp"), "inet:")
	pid := d.Pid()

	// One message first, so that what every delivery needs once (the
	// folder, the pools, the runtime's first growth) is in the baseline.
	if err := sendSized(addr, 1<<20); err != nil {
		t.Fatal(err)
	}
	if idle > 0 {
		idleConns(t, addr, pid, idle)
	}
	base := procStatus(t, pid, "VmHWM")
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() { errs <- sendSized(addr, size) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	peak := procStatus(t, pid, "VmHWM")
	t.Logf("%d concurrent messages of %.2f MiB in %v: VmHWM %d MiB before, %d MiB after (+%d MiB); VmRSS now %d MiB",
		clients, float64(size)/(1<<20), time.Since(start).Round(time.Second), base>>20, peak>>20, (peak-base)>>20, procStatus(t, pid, "VmRSS")>>20)
	if peak-base > bound {
		t.Errorf("peak RSS grew by %d MiB for %d concurrent messages of %.2f MiB, want under %d MiB",
			(peak-base)>>20, clients, float64(size)/(1<<20), bound>>20)
	}
	files, err := os.ReadDir(filepath.Join(spoolDir, "example.org", "mem", "post", "new"))
	if err != nil || len(files) != clients+1 {
		t.Fatalf("new/ holds %d files (%v), want %d", len(files), err, clients+1)
	}
	for _, f := range files {
		if fi, err := f.Info(); err != nil || fi.Size() < 1<<19 {
			t.Errorf("%s: %v, %d bytes", f.Name(), err, fi.Size())
		}
	}
	ents, _ := os.ReadDir(spoolDir)
	if len(ents) != 1 {
		t.Errorf("spool root holds %d entries, want only example.org (no spill file left)", len(ents))
	}
}

// idleConns opens n connections to addr, each greeted (LHLO answered)
// and then left open until the test ends, and logs how much resident
// memory of process pid they took.
func idleConns(t *testing.T, addr string, pid, idle int) {
	t.Helper()

	// Idle connections: each greeted (LHLO answered), then left open.
	rss := procStatus(t, pid, "VmRSS")
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range idle {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		br := bufio.NewReader(c)
		if _, err := fmt.Fprintf(c, "LHLO idle%d.test\r\n", i); err != nil {
			t.Fatal(err)
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			if strings.HasPrefix(line, "250 ") {
				break
			}
			if !strings.HasPrefix(line, "2") {
				t.Fatalf("connection %d: %q", i, line)
			}
		}
	}
	after := procStatus(t, pid, "VmRSS")
	t.Logf("%d idle connections: VmRSS %d MiB before, %d MiB after (%d KiB each)",
		idle, rss>>20, after>>20, (after-rss)/int64(idle)>>10)
}

// sendSized delivers one message of about size bytes to mem@example.org,
// generated as it is sent (the client holds none of it).
func sendSized(addr string, size int) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	cl := smtp.NewClientLMTP(conn)
	defer cl.Close()
	if err := cl.Hello("mem.test"); err != nil {
		return err
	}
	if err := cl.Mail("anne@example.net", &smtp.MailOptions{Size: int64(size)}); err != nil {
		return err
	}
	if err := cl.Rcpt("mem@example.org", nil); err != nil {
		return err
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	head := "Message-ID: <" + strconv.Itoa(size) + "." + strconv.FormatInt(time.Now().UnixNano(), 10) + "@mem.test>\r\nSubject: big\r\n\r\n"
	line := strings.Repeat("0123456789abcdef", 4) + "0123456789abcd\r\n" // 80 bytes
	body := io.LimitReader(&lineRepeater{line: line}, int64(size-len(head)))
	if _, err := io.Copy(w, io.MultiReader(strings.NewReader(head), body)); err != nil {
		return err
	}
	return w.Close() // an error unless the recipient got 250
}

// lineRepeater repeats line forever.
type lineRepeater struct {
	line string
	off  int
}

func (r *lineRepeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], r.line[r.off:])
		n += k
		r.off = (r.off + k) % len(r.line)
	}
	return n, nil
}

// procStatus returns a field of /proc/PID/status given in kB, in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
