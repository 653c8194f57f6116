package forward

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/listgate/listgate/spool"
)

// BenchmarkForwardOne measures one forward as a list folder's worker does
// it (issue 11): open the stored file, read its envelope, send it to an
// LMTP next hop on a new connection (a go-smtp server on 127.0.0.1, in
// the benchmark's process), and on its 250 remove the file from new/
// (an unlink and an fsync of new/). The delivery that puts each message
// in new/ is not timed; the next hop's own work (and its allocations:
// B/op counts both sides) is. Run with
//
//	go test -run '^$' -bench ForwardOne -count 6 ./forward/
func BenchmarkForwardOne(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"2KiB", 2 << 10}, {"100KiB", 100 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			hop := startHop(b, nil)
			hop.forget = true
			const list = "a@example.org"
			e := newEnv(b, map[string]string{list: `next_hop = "` + hop.hop() + `"` + "\n"}, nil)
			// A spool that announces nothing: the forwarder's workers
			// never see these messages; the benchmark forwards them.
			sp, err := spool.New(spool.Options{Dir: e.root, Hostname: "lg.test"})
			if err != nil {
				b.Fatal(err)
			}
			e.sp = sp
			msg := benchMessage(bc.size)
			fo := spool.Folder{Domain: "example.org", Local: "a", Kind: "post", Path: e.folder(list, "post")}
			nh, keep, ok := hopFor(e.w.Snapshot(), e.opts.Default, list)
			if !ok || nh.String() != hop.hop() {
				b.Fatalf("next hop of %s: %v (ok %v), want %s", list, nh, ok, hop.hop())
			}
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				name := e.deliver("anne@example.net", list, msg)
				b.StartTimer()
				if r := e.f.forwardOne(fo, nh, keep, name); !r.ok || r.gone {
					b.Fatalf("forward %s: %+v", filepath.Join(fo.Path, "new", name), r)
				}
			}
			b.StopTimer()
			if n := e.count(list, "post", "new"); n != 0 {
				b.Fatalf("%d messages left in new/", n)
			}
		})
	}
}

// benchMessage is a message of about size octets, CRLF line ends.
func benchMessage(size int) string {
	head := "From: anne@example.net\r\nTo: a@example.org\r\nSubject: bench\r\nMessage-ID: <bench@example.net>\r\n\r\n"
	line := strings.Repeat("x", 76) + "\r\n"
	return head + strings.Repeat(line, max(1, (size-len(head))/len(line)))
}
