package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/internal/daemontest"
	"github.com/listgate/listgate/internal/testutil"
)

// TestKillDuringDeliveries: `listgate serve` is killed with SIGKILL while
// two clients deliver a stream of messages. Every message that got its
// 250 is afterwards in new/, whole; no file in new/ is partial or
// unacknowledged beyond the one message whose 250 may have been lost
// with the connection; tmp/ holds at most what was in flight. This is
// the "a 250 means the message is on disk" promise as far as a process
// crash can test it: the order of write, rename and reply.
//
// It cannot see a missing fsync: it passes with every fsync of the spool
// deleted, since after SIGKILL the kernel's page cache still holds what
// was never flushed (only a power cut or a kernel crash loses it). The
// fsyncs are proved in package spool: TestFsyncReachesTheKernel makes
// fsync(2) itself fail at each fsync step and needs the delivery to fail
// there; TestDurableStepOrder checks fsync(file) before the rename into
// new/ and fsync(new/) before Deliver returns; TestDeliverFault fails each
// step in turn; and lmtp's TestStorageFaults shows each such failure
// answered 451 or 452, never 250. TestFsyncOrder sees the fsyncs of the
// running daemon, under strace.
//
// LISTGATE_SOAK_KILLS=N (default 1) runs N rounds on the same spool, each
// a fresh daemon killed mid-stream, and checks every round's
// acknowledgements against the spool afterwards: the soak form, off in CI
// (docs/reliability.md).
func TestKillDuringDeliveries(t *testing.T) {
	rounds := 1
	if v := os.Getenv("LISTGATE_SOAK_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("LISTGATE_SOAK_KILLS=%q: want a number of kills, 1 or more", v)
		}
		rounds = n
	}
	listsDir, spoolDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(listsDir, "crash@example.org"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	const clients = 2
	var acked []string
	inFlight := map[string]bool{}
	for round := range rounds {
		a, in := killRound(t, listsDir, spoolDir, round, clients)
		acked = append(acked, a...)
		for _, tok := range in {
			inFlight[tok] = true
		}
	}

	newDir := filepath.Join(spoolDir, "example.org", "crash", "post", "new")
	files, err := os.ReadDir(newDir)
	if err != nil {
		t.Fatal(err)
	}
	tokRE := regexp.MustCompile(`(?m)^Subject: (tok-\d+-\d-\d{4})$`)
	stored := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(newDir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m := tokRE.FindSubmatch(b)
		if m == nil {
			t.Errorf("%s: no token; a partial file?", f.Name())
			continue
		}
		tok := string(m[1])
		if !strings.HasSuffix(string(b), "\nend "+tok+"\n") {
			t.Errorf("%s (%s) is not whole: %d bytes", f.Name(), tok, len(b))
		}
		stored[tok] = true
	}
	ackedSet := map[string]bool{}
	for _, tok := range acked {
		ackedSet[tok] = true
		if !stored[tok] {
			t.Errorf("%s got a 250 but is not in new/", tok)
		}
	}
	for tok := range stored {
		if !ackedSet[tok] && !inFlight[tok] {
			t.Errorf("%s is in new/ but was neither acknowledged nor in flight", tok)
		}
	}
	tmp, _ := os.ReadDir(filepath.Join(spoolDir, "example.org", "crash", "post", "tmp"))
	if len(tmp) > clients*rounds {
		t.Errorf("%d files left in tmp/, more than the %d deliveries in flight at %d kills", len(tmp), clients*rounds, rounds)
	}
	t.Logf("%d kills: %d acknowledged deliveries; %d files in new/, %d in tmp/", rounds, len(acked), len(files), len(tmp))
}

// killRound starts a daemon on the spool, has clients stream messages
// to it and kills it with SIGKILL once 20 more files are in new/. It
// returns the tokens that got a 250 and those in flight at the kill.
func killRound(t *testing.T, listsDir, spoolDir string, round, clients int) (acked, inFlight []string) {
	t.Helper()
	newDir := filepath.Join(spoolDir, "example.org", "crash", "post", "new")
	before, _ := os.ReadDir(newDir)
	d := daemontest.Start(t, []string{"lmtp"}, "--lists", listsDir, "--spool", spoolDir,
		"--lmtp", "inet:127.0.0.1:0", "--milter", "")
	addr := strings.TrimPrefix(d.Addr("lmtp"), "inet:")

	const perClient = 400
	body := strings.Repeat("0123456789abcdef", 4096) // 64 KiB: writes take a while
	type result struct {
		acked []string // message tokens that got 250
		sent  string   // the token in flight when the connection died
	}
	results := make(chan result, clients)
	for c := range clients {
		go func() {
			var r result
			defer func() { results <- r }()
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			cl := smtp.NewClientLMTP(conn)
			defer cl.Close()
			if cl.Hello("crash.test") != nil {
				return
			}
			for i := range perClient {
				tok := fmt.Sprintf("tok-%d-%d-%04d", round, c, i)
				r.sent = tok
				msg := "Message-ID: <" + tok + "@crash.test>\r\nSubject: " + tok + "\r\n\r\n" + body + "\r\nend " + tok + "\r\n"
				if cl.SendMail("anne@example.net", []string{"crash@example.org"}, strings.NewReader(msg)) != nil {
					return
				}
				r.acked = append(r.acked, tok)
			}
		}()
	}
	// Kill once some deliveries are through, while others are in flight.
	testutil.WaitFor(t, 30*time.Second, "20 deliveries", func() bool {
		files, _ := os.ReadDir(newDir)
		return len(files) >= len(before)+20
	})
	d.Signal(t, syscall.SIGKILL)

	n := 0
	for range clients {
		r := <-results
		acked = append(acked, r.acked...)
		n += len(r.acked)
		if r.sent != "" {
			inFlight = append(inFlight, r.sent)
		}
	}
	if n == 0 || n == clients*perClient {
		t.Fatalf("round %d: %d messages acknowledged: the kill did not land mid-stream", round, n)
	}
	return acked, inFlight
}
