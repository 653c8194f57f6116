package milter

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	gomilter "github.com/d--j/go-milter"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/reply"
)

// TestNilLists checks the doors' convention for Options without Lists:
// every recipient, of any domain, gets the local-error tempfail (the
// sender retries; nothing is lost), counted and logged as verdict
// "error", and New warns once.
func TestNilLists(t *testing.T) {
	reg := prometheus.NewRegistry()
	logs := &recorder{}
	ts := startExactly(t, "tcp", Options{Logger: slog.New(logs), Registerer: reg})
	s := ts.client(t, nil)
	mail(t, s, "")
	const want = "451 4.3.0 Requested action aborted: local error in processing"
	for _, addr := range []string{"mylist@example.com", "nosuchlist@example.com", "someone@not-ours.example"} {
		if got := rcpt(t, s, addr); got != want {
			t.Errorf("RCPT %s: got %q, want %q", addr, got, want)
		}
	}
	if err := s.Abort(nil); err != nil {
		t.Fatal(err)
	}
	if got := promtestutil.ToFloat64(ts.metrics.rcpt.WithLabelValues("error")); got != 3 {
		t.Errorf(`listgate_milter_recipients_total{verdict="error"} = %v, want 3`, got)
	}
	if n := len(logs.AtLevel(slog.LevelWarn)); n != 1 {
		t.Errorf("%d warnings, want the one of New:\n%s", n, logs)
	}
	for _, rec := range logs.Lines("rcpt") {
		if rec.Attrs["verdict"] != "error" {
			t.Errorf("rcpt line %v, want verdict=error", rec.Attrs)
		}
	}
}

// TestNilLogger checks that a nil Logger discards: nothing of the door's
// reaches slog's default logger.
func TestNilLogger(t *testing.T) {
	def := &recorder{}
	prev := slog.Default()
	slog.SetDefault(slog.New(def))
	t.Cleanup(func() { slog.SetDefault(prev) })

	ts := startExactly(t, "tcp", Options{Lists: corpusSource(t)})
	s := ts.client(t, nil)
	mail(t, s, "SIZE=100")
	rcpt(t, s, "mylist@example.com")
	rcpt(t, s, "nosuchlist@example.com")
	if act, _ := message(t, s, 100); answer(act) != "accept" {
		t.Errorf("message: %v", act)
	}
	ts.shutdown(t)
	for _, rec := range def.Records() {
		if rec.Attrs["door"] != "" {
			t.Errorf("the door logged to slog.Default: %v %s %v", rec.Level, rec.Msg, rec.Attrs)
		}
	}
}

// TestDefaultMaxMessageSize checks that a zero MaxMessageSize is
// lists.DefaultMaxMessageSize, the same global limit as the LMTP door's:
// a SIZE= that, with the margin, is at it passes, one octet more does not.
func TestDefaultMaxMessageSize(t *testing.T) {
	ts := startServer(t, "tcp", Options{})
	s := ts.client(t, nil)
	const addr = "mylist@example.com"
	atLimit := lists.DefaultMaxMessageSize - marginFor(addr)
	for _, tt := range []struct {
		size int64
		want string
	}{
		{atLimit, "continue"},
		{atLimit + 1, refusal(reply.TooLarge)},
	} {
		mail(t, s, fmt.Sprintf("SIZE=%d", tt.size))
		if got := rcpt(t, s, addr); got != tt.want {
			t.Errorf("SIZE=%d: got %q, want %q", tt.size, got, tt.want)
		}
		if err := s.Abort(nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLogLibraryWarnings checks that go-milter's own warnings reach the
// logger given to LogLibraryWarnings, with the door's keys.
func TestLogLibraryWarnings(t *testing.T) {
	prev := gomilter.LogWarning
	t.Cleanup(func() { gomilter.LogWarning = prev })
	lib := &recorder{}
	LogLibraryWarnings(slog.New(lib))

	ts := startServer(t, "tcp", Options{})
	c := rawSession(t, ts)
	// A command code go-milter does not know: it warns and hangs up.
	if _, err := c.Write(packet('Z', "")); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes after an unknown command; want the connection closed", n)
	}
	warned := lib.Lines("milter library")
	if len(warned) != 1 || warned[0].Level != slog.LevelWarn || warned[0].Attrs["door"] != "milter" ||
		warned[0].Attrs["source"] != "go-milter" || !strings.Contains(warned[0].Attrs["err"], "Unrecognized command code") {
		t.Errorf("library warnings logged: %s", lib)
	}
}
