package milter

import (
	"io"
	"log/slog"
	"testing"

	gomilter "github.com/d--j/go-milter"
)

// BenchmarkRcpt measures the milter's RCPT round trip as the MTA sees it
// (issue 11): one SMFIC_RCPT packet sent over TCP on loopback with
// go-milter's client, listgate resolving the recipient against the
// corpus lists, and the answer read back. ns/op is one round trip; the
// transaction is aborted and begun again every rcptsPerTransaction
// recipients, untimed. The client and the server share the machine's
// cores. Run with
//
//	go test -run '^$' -bench Rcpt -count 6 ./milter/
func BenchmarkRcpt(b *testing.B) {
	const rcptsPerTransaction = 50
	for _, bc := range []struct {
		name, rcpt, want string
	}{
		{"accept", "mylist@example.com", "continue"},
		{"unknown", "nosuchlist@example.com", "550"},
		{"not-served", "anne@not-ours.example", "continue"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			// The door's log lines are formatted as the daemon's are
			// (text, level info) and thrown away, not kept in memory.
			ts := startServer(b, "tcp", Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			s, err := gomilter.NewClient(ts.network, ts.addr).Session(nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Conn("mx.example.net", gomilter.FamilyInet, 40000, "192.0.2.1"); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Helo(testHelo); err != nil {
				b.Fatal(err)
			}
			mail := func() {
				if _, err := s.Mail("sender@example.net", ""); err != nil {
					b.Fatal(err)
				}
			}
			mail()
			act, err := s.Rcpt(bc.rcpt, "")
			if err != nil {
				b.Fatal(err)
			}
			if got := answer(act); len(got) < len(bc.want) || got[:len(bc.want)] != bc.want {
				b.Fatalf("Rcpt(%q) = %q, want %s", bc.rcpt, got, bc.want)
			}
			b.ReportAllocs()
			n := 1
			for b.Loop() {
				if n == rcptsPerTransaction {
					b.StopTimer()
					if err := s.Abort(nil); err != nil {
						b.Fatal(err)
					}
					mail()
					n = 0
					b.StartTimer()
				}
				if _, err := s.Rcpt(bc.rcpt, ""); err != nil {
					b.Fatal(err)
				}
				n++
			}
		})
	}
}
