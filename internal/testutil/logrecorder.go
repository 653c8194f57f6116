package testutil

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// LogRecorder is a slog.Handler that keeps every record, for assertions
// on a door's log lines. It is safe for concurrent use.
type LogRecorder struct {
	mu   sync.Mutex
	recs []LogRecord
}

// LogRecord is one log line: its level, message and attributes as text.
type LogRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// Enabled implements slog.Handler: every level is kept.
func (r *LogRecorder) Enabled(context.Context, slog.Level) bool { return true }

// WithAttrs implements slog.Handler; the doors pass attributes per line.
func (r *LogRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }

// WithGroup implements slog.Handler.
func (r *LogRecorder) WithGroup(string) slog.Handler { return r }

// Handle implements slog.Handler.
func (r *LogRecorder) Handle(_ context.Context, rec slog.Record) error {
	attrs := make(map[string]string)
	rec.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, LogRecord{rec.Level, rec.Message, attrs})
	return nil
}

// Records returns every record so far, in order.
func (r *LogRecorder) Records() []LogRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs)
}

// Lines returns the records whose message is msg.
func (r *LogRecorder) Lines(msg string) []LogRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []LogRecord
	for _, rec := range r.recs {
		if rec.Msg == msg {
			out = append(out, rec)
		}
	}
	return out
}

// AtLevel returns the records at level l.
func (r *LogRecorder) AtLevel(l slog.Level) []LogRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(r.recs), func(rec LogRecord) bool { return rec.Level != l })
}

// String formats every record, for failure messages.
func (r *LogRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range r.recs {
		fmt.Fprintf(&b, "%v %s %v\n", rec.Level, rec.Msg, rec.Attrs)
	}
	return b.String()
}
