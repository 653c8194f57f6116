package lmtp

import (
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/spool"
)

// TestNilLists checks the doors' convention for Options without Lists:
// every recipient, of any domain, gets the local-error tempfail (the
// sender retries; nothing is lost), counted and logged as verdict
// "error", and New warns once.
func TestNilLists(t *testing.T) {
	h := start(t, config{options: func(o *Options) { o.Lists = nil }})
	r := h.lhlo()
	r.cmd("MAIL FROM:<anne@example.org>")
	const want = "451 4.3.0 Requested action aborted: local error in processing"
	addrs := []string{"mylist@example.com", "nosuchlist@example.com", "someone@not-ours.example"}
	for _, addr := range addrs {
		if got := r.cmd("RCPT TO:<" + addr + ">"); got != want {
			t.Errorf("RCPT %s: %q, want %q", addr, got, want)
		}
	}
	if n := h.metric("listgate_lmtp_recipients_total", "verdict", "error"); n != 3 {
		t.Errorf(`listgate_lmtp_recipients_total{verdict="error"} = %v, want 3`, n)
	}
	for _, l := range h.logLines("rcpt") {
		if l["verdict"] != "error" {
			t.Errorf("rcpt line %v, want verdict=error", l)
		}
	}
	if n := len(h.logLines("no lists: every recipient is answered 451 4.3.0")); n != 1 {
		t.Errorf("%d warnings from New, want 1", n)
	}
}

// TestNilLogger checks that a nil Logger discards: nothing of the door's
// reaches slog's default logger.
func TestNilLogger(t *testing.T) {
	var def testutil.SyncBuffer
	prev := slog.Default()
	slog.SetDefault(newLogger(&def))
	t.Cleanup(func() { slog.SetDefault(prev) })

	h := start(t, config{options: func(o *Options) { o.Logger = nil }})
	c := h.client()
	transact(t, c, "anne@example.org", nil, []string{"mylist@example.com", "nosuchlist@example.com"}, message("Subject: x\n\nhi\n"))
	h.stop()
	if strings.Contains(def.String(), `"door"`) {
		t.Errorf("the door logged to slog.Default:\n%s", def.String())
	}
}

// TestDefaultMaxMessageSize checks that a zero MaxMessageSize is
// lists.DefaultMaxMessageSize, the same global limit as the milter's:
// LHLO advertises it.
func TestDefaultMaxMessageSize(t *testing.T) {
	h := start(t, config{options: func(o *Options) { o.MaxMessageSize = 0 }})
	r, _ := h.raw()
	if got := r.cmd("LHLO remote.example.org"); !strings.Contains(got+"\n", "SIZE 67108864\n") ||
		lists.DefaultMaxMessageSize != 67108864 {
		t.Errorf("LHLO: %q, want SIZE %d", got, lists.DefaultMaxMessageSize)
	}
}

// TestMetricNames checks the door's metrics as every door names them:
// listgate_lmtp_<what>_total with a "verdict" label per recipient and a
// "result" label per delivery, every value there from the start, and a
// gauge of open connections.
func TestMetricNames(t *testing.T) {
	h := start(t, config{})
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string][]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := ""
			for _, l := range m.GetLabel() {
				v += l.GetName() + "=" + l.GetValue()
			}
			series[mf.GetName()] = append(series[mf.GetName()], v)
		}
	}
	want := map[string]string{
		"listgate_lmtp_recipients_total": "verdict=accept verdict=alias verdict=error verdict=no-space verdict=not-served verdict=observed verdict=tempfail verdict=too-large verdict=too-many-recipients verdict=unknown",
		"listgate_lmtp_deliveries_total": "result=delivered result=error result=no-space result=too-large",
		"listgate_lmtp_panics_total":     "",
		"listgate_lmtp_connections":      "",

		"listgate_lmtp_connections_refused_total": "reason=max_connections reason=max_connections_per_client",
		"listgate_lmtp_timeouts_total":            "phase=command phase=data",
	}
	for name, labels := range want {
		if got := strings.Join(series[name], " "); got != labels {
			t.Errorf("%s: series %q, want %q", name, got, labels)
		}
	}
	if len(series) != len(want) {
		t.Errorf("metrics %v, want %d", series, len(want))
	}

	gauge := func() float64 { return promtestutil.ToFloat64(h.srv.m.connections) }
	r := h.lhlo()
	testutil.WaitFor(t, 5*time.Second, "the connection counted", func() bool { return gauge() == 1 })
	r.cmd("QUIT")
	testutil.WaitFor(t, 5*time.Second, "the connection gone", func() bool { return gauge() == 0 })
}

// postfixReceived is the Received: field Postfix's smtpd puts on top of
// a message it hands the LMTP door (Postfix 3.7, long queue ids).
const postfixReceived = "Received: from mx.sender.example (mx.sender.example [192.0.2.1])\n" +
	"\tby mx.example.org (Postfix) with ESMTP id 4jfSv46qk3z1SQbl\n" +
	"\tfor <mylist@example.com>; Wed,  2 Dec 2026 06:45:36 +0000 (UTC)\n"

// TestLogQueueID checks that the log lines after DATA carry Postfix's
// queue id (queue_id, from its Received: field) beside the door's own id
// (lmtp_id), so they join with Postfix's log lines; the lines at RCPT,
// before the message, carry the door's id.
func TestLogQueueID(t *testing.T) {
	h := start(t, config{})
	c := h.client()
	h.setFault(func(op spool.Op, path string) error {
		if strings.Contains(path, "/owner/") {
			return syscall.EIO
		}
		return nil
	})
	msg := message(postfixReceived + "Subject: queue id\n\n" + strings.Repeat("x", 1200) + "\n")
	transact(t, c, "anne@example.org", nil,
		[]string{"mylist@example.com", "small@example.com", "mylist-owner@example.com"}, msg)

	const qid = "4jfSv46qk3z1SQbl"
	rcpts := h.logLines("rcpt")
	delivered := h.logLines("delivered")
	failed := h.logLines("delivery failed")
	if len(rcpts) != 4 || len(delivered) != 1 || len(failed) != 1 {
		t.Fatalf("%d rcpt, %d delivered, %d failed lines; want 4 (3 at RCPT, 1 too large after DATA), 1, 1:\n%s",
			len(rcpts), len(delivered), len(failed), h.logs.String())
	}
	id, _ := rcpts[0]["lmtp_id"].(string)
	if id == "" || id == qid {
		t.Fatalf("rcpt line %v: want the door's own lmtp_id", rcpts[0])
	}
	for i, l := range rcpts[:3] {
		if l["lmtp_id"] != id || l["queue_id"] != "" {
			t.Errorf("rcpt line %d at RCPT: %v, want lmtp_id=%s and no queue id yet", i, l, id)
		}
	}
	for _, l := range []map[string]any{rcpts[3], delivered[0], failed[0]} {
		if l["lmtp_id"] != id || l["queue_id"] != qid {
			t.Errorf("line after DATA %v: want lmtp_id=%s queue_id=%s", l, id, qid)
		}
	}
	if rcpts[3]["verdict"] != "too-large" || delivered[0]["rcpt"] != "mylist@example.com" || failed[0]["result"] != "error" {
		t.Errorf("lines after DATA: %v, %v, %v", rcpts[3], delivered[0], failed[0])
	}
}
