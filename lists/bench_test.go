package lists_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/corpus"
	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
)

// The speed targets (issue 3, "Speed"; figures in docs/performance.md):
// Resolve with 100,000 lists under 1 µs and at most 1 allocation; Load of
// 100,000 list files under 2 s; a one-file change with 100,000 lists in
// place visible under 100 ms after the debounce. Tests assert no times;
// these benchmarks measure them:
//
//	go test -run '^$' -bench . -benchmem -count 6 ./lists/

const benchLists = 100_000

var benchDomains = []string{"example.com", "example.org", "example.net", "lists.example.edu"}

func benchName(i int) string {
	return fmt.Sprintf("list-%06d@%s", i, benchDomains[i%len(benchDomains)])
}

// makeLists creates a directory of n empty list files over a few domains.
func makeLists(b *testing.B, n int) string {
	b.Helper()
	if testing.Short() {
		b.Skip("-short: no directory of 100,000 lists")
	}
	dir := b.TempDir()
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := os.WriteFile(filepath.Join(dir, benchName(i)), nil, 0o644); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkResolve resolves recipients against a snapshot of 100,000
// lists: posting addresses, sub-addresses, VERP extensions, upper case,
// unknown addresses and domains not served.
func BenchmarkResolve(b *testing.B) {
	snap, err := lists.Load(makeLists(b, benchLists), lists.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if n := len(snap.Lists()); n != benchLists {
		b.Fatalf("%d lists, want %d", n, benchLists)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	pick := func(format string) []string {
		rs := make([]string, 4096)
		for i := range rs {
			n := rnd.IntN(benchLists)
			rs[i] = fmt.Sprintf(format, n, benchDomains[n%len(benchDomains)])
		}
		return rs
	}
	for _, bc := range []struct {
		name   string
		format string
		want   lists.Status
	}{
		{"hit", "list-%06d@%s", lists.Accept},
		{"hit-brackets", "<list-%06d@%s>", lists.Accept},
		{"hit-upper", "LIST-%06d@%s", lists.Accept},
		{"subaddress", "list-%06d-request@%s", lists.Accept},
		{"verp", "list-%06d-bounces+anne=example.org@%s", lists.Accept},
		{"miss", "nolist-%06d@%s", lists.Unknown},
		{"miss-subaddress", "nolist-%06d-owner@%s", lists.Unknown},
		{"not-served", "list-%06d@not-%s", lists.NotServed},
	} {
		rcpts := pick(bc.format)
		for _, r := range rcpts {
			if got := snap.Resolve(r).Status; got != bc.want {
				b.Fatalf("Resolve(%q) = %v, want %v", r, got, bc.want)
			}
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				snap.Resolve(rcpts[i%len(rcpts)])
				i++
			}
		})
	}
}

// BenchmarkLoad100k loads a directory of 100,000 list files.
func BenchmarkLoad100k(b *testing.B) {
	dir := makeLists(b, benchLists)
	b.ReportAllocs()
	for b.Loop() {
		snap, err := lists.Load(dir, lists.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if n := len(snap.Lists()); n != benchLists {
			b.Fatalf("%d lists, want %d", n, benchLists)
		}
	}
}

// BenchmarkReloadOneFile100k changes one list file in a watched directory
// of 100,000 lists and waits until the change is visible. It reports the
// whole delay (ms/op: event, debounce, reload) and the reload alone, from
// the watcher's own log line (reload-ms/op): the target is for the latter.
func BenchmarkReloadOneFile100k(b *testing.B) {
	dir := makeLists(b, benchLists)
	const debounce = 10 * time.Millisecond
	reloads := &reloadTimes{}
	w, err := lists.Watch(dir, lists.WatchOptions{Logger: slog.New(reloads), Debounce: debounce, Rescan: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	path := filepath.Join(dir, benchName(4242))
	rcpt := benchName(4242)
	var total time.Duration
	n := 0
	for b.Loop() {
		n++
		gen := w.Generation()
		start := time.Now()
		write(b, path, fmt.Sprintf("max_message_size = %d\n", n))
		testutil.WaitFor(b, 10*time.Second, "change visible", func() bool { return w.Generation() > gen })
		total += time.Since(start)
		if got := w.Snapshot().Resolve(rcpt).MaxMessageSize; got != int64(n) {
			b.Fatalf("after reload: max_message_size %d, want %d", got, n)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/1e3/float64(n), "ms/op")
	b.ReportMetric(float64(reloads.mean().Microseconds())/1e3, "reload-ms/op")
}

// reloadTimes is a slog.Handler that keeps the duration of each "change"
// reload the watcher logs.
type reloadTimes struct {
	mu sync.Mutex
	d  []time.Duration
}

func (r *reloadTimes) Enabled(context.Context, slog.Level) bool { return true }
func (r *reloadTimes) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *reloadTimes) WithGroup(string) slog.Handler            { return r }

func (r *reloadTimes) Handle(_ context.Context, rec slog.Record) error {
	var change bool
	var d time.Duration
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "reason":
			change = a.Value.String() == "change"
		case "duration_ms":
			d = time.Duration(a.Value.Float64() * float64(time.Millisecond))
		}
		return true
	})
	if change {
		r.mu.Lock()
		r.d = append(r.d, d)
		r.mu.Unlock()
	}
	return nil
}

func (r *reloadTimes) mean() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range r.d {
		sum += d
	}
	return sum / time.Duration(len(r.d))
}

// TestResolveAllocs: Resolve promises not to allocate for an all-ASCII
// recipient, whatever the verdict.
func TestResolveAllocs(t *testing.T) {
	snap, err := lists.Load(corpus.ListsDir(), lists.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{
		"mylist@example.com",
		"<mylist@example.com>",
		"MyList@Example.COM.",
		"mylist-request@example.com",
		"mylist-unsubscribe@lists.example.com",
		"mylist-bounces+anne=example.org@example.com",
		"news-request@example.org",
		"test-join@example.com",
		"broken-request@broken.example",
		"nosuchlist@example.com",
		"nosuchlist-owner@example.com",
		"mylist-averyveryveryveryverylongsuffixthatisnoaddress@example.com",
		"mylist-confirm+" + strings.Repeat("0123456789abcdef", 16) + "@example.com",
		strings.Repeat("x", 255-len("@example.com")) + "@example.com",
		"mylist@not-ours.example",
		"postmaster",
		"",
	} {
		if n := testing.AllocsPerRun(100, func() { snap.Resolve(rcpt) }); n != 0 {
			t.Errorf("Resolve(%q): %v allocations, want 0", rcpt, n)
		}
	}
}
