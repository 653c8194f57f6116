package lmtp

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/listgate/listgate/lists"
)

// receivedTests are header sections and the queue id receivedQueueID
// must find in them. The first four were written by Postfix 3.7.11
// (smtpd, and pickup for mail from the local sendmail command) with short
// and with long queue ids (enable_long_queue_ids = yes) in front of
// listgate's own e2e tests; the others follow smtpd's format for TLS,
// authenticated and SMTPUTF8 sessions and for messages with several
// recipients.
var receivedTests = []struct {
	name, head, want string
}{
	{"smtpd ESMTP, short id", "Received: from mx.sender.example (localhost [127.0.0.1])\n" +
		"\tby mx.postfixtest.invalid (Postfix) with ESMTP id A253398A113\n" +
		"\tfor <announce@example.org>; Wed,  2 Dec 2026 06:45:33 +0000 (UTC)\n" +
		"From: alice@sender.example\n\nhi\n", "A253398A113"},
	{"smtpd ESMTP, long id", "Received: from mx.sender.example (localhost [127.0.0.1])\n" +
		"\tby mx.postfixtest.invalid (Postfix) with ESMTP id 4jfSv46qk3z1SQbl\n" +
		"\tfor <announce@example.org>; Wed,  2 Dec 2026 06:45:36 +0000 (UTC)\n", "4jfSv46qk3z1SQbl"},
	{"pickup, short id", "Received: by mx.postfixtest.invalid (Postfix, from userid 0)\n" +
		"\tid D721B98AFB4; Wed,  2 Dec 2026 06:45:34 +0000 (UTC)\n" +
		"Subject: local\n", "D721B98AFB4"},
	{"pickup, long id", "Received: by mx.postfixtest.invalid (Postfix, from userid 0)\n" +
		"\tid 4jfSv554JLz1SQCk; Wed,  2 Dec 2026 06:45:37 +0000 (UTC)\n", "4jfSv554JLz1SQCk"},
	{"smtpd ESMTPS with TLS details", "Received: from mail.sender.example (mail.sender.example [192.0.2.54])\r\n" +
		"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\r\n" +
		"\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\r\n" +
		"\t(No client certificate requested)\r\n" +
		"\tby mx.example.org (Postfix) with ESMTPS id 4TvJkQ1Z5Bz9sW0\r\n" +
		"\tfor <announce@example.org>; Tue, 12 Mar 2024 10:00:00 +0100 (CET)\r\n" +
		"Subject: hi\r\n\r\nbody\r\n", "4TvJkQ1Z5Bz9sW0"},
	{"smtpd ESMTPSA, authenticated", "Received: from [192.0.2.7] (unknown [192.0.2.7])\n" +
		"\t(Authenticated sender: alice)\n" +
		"\tby submission.example.org (Postfix) with ESMTPSA id 3F1A2B4C5D\n" +
		"\tfor <announce@example.org>; Tue, 12 Mar 2024 10:00:00 +0100 (CET)\n", "3F1A2B4C5D"},
	{"smtpd SMTP (HELO)", "Received: from old.sender.example (old.sender.example [192.0.2.8])\n" +
		"\tby mx.example.org (Postfix) with SMTP id 9C0DE12F34\n" +
		"\tfor <announce@example.org>; Tue, 12 Mar 2024 10:00:00 +0100 (CET)\n", "9C0DE12F34"},
	{"smtpd UTF8SMTPS", "Received: from mx.sender.example (mx.sender.example [2001:db8::1])\n" +
		"\t(using TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits))\n" +
		"\tby mx.example.org (Postfix) with UTF8SMTPS id 4Xz9Lk2Q5Nz1Rk7\n" +
		"\tfor <anné@example.org>; Tue, 12 Mar 2024 10:00:00 +0100 (CET)\n", "4Xz9Lk2Q5Nz1Rk7"},
	{"smtpd, several recipients: no for clause", "Received: from mx.sender.example (mx.sender.example [192.0.2.1])\n" +
		"\tby mx.example.org (Postfix) with ESMTP id 4Xz9Lk2Q5Nz1Rk8;\n" +
		"\tTue, 12 Mar 2024 10:00:00 +0100 (CET)\n", "4Xz9Lk2Q5Nz1Rk8"},
	{"LMTP (listgate's own field on a stored message)", "Received: from mx.postfixtest.invalid (127.0.0.1:46746)\n" +
		"\tby lg.e2e.invalid (listgate) with LMTP id UUJVYAB4Q44B\n" +
		"\tfor <announce@example.org>; Wed, 02 Dec 2026 06:45:33 +0000\n", "UUJVYAB4Q44B"},
	{"keywords in any case", "received: FROM a.example (a.example [192.0.2.1]) BY b.example (Postfix) WITH ESMTP ID AbC123; date\n", "AbC123"},
	{"HELO named id", "Received: from id (unknown [192.0.2.9])\n\tby mx.example.org (Postfix) with SMTP id 5D6E7F8A9B\n\tfor <x@example.org>; date\n", "5D6E7F8A9B"},
	{"HELO named by", "Received: from by (unknown [192.0.2.9])\n\tby mx.example.org (Postfix) with SMTP id 5D6E7F8A9C; date\n", "5D6E7F8A9C"},
	{"a comment that says id", "Received: from a.example (by x id BOGUS (nested) \\) id BOGUS2)\n\tby b.example (Postfix) with ESMTP id REAL1; date\n", "REAL1"},
	{"after other fields", "X-Original-To: announce@example.org\nDelivered-To: announce@example.org\n" +
		"Received: from a.example (a.example [192.0.2.1])\n\tby b.example (Postfix) with ESMTP id 7E8F9A0B1C; date\n", "7E8F9A0B1C"},
	{"only the topmost counts", "Received: from a.example by b.example; Tue, 12 Mar 2024 10:00:00 +0100\n" +
		"Received: from c.example (c.example [192.0.2.1])\n\tby d.example (Postfix) with ESMTP id 1A2B3C4D5E; date\n", ""},
	{"an id that is a msg-id", "Received: from a.example by b.example with ESMTP id <20240312.1@b.example>; date\n", ""},
	{"an id with dots (not Postfix's)", "Received: from a.example by b.example with Microsoft SMTP Server id 15.1.2507.39; date\n", ""},
	{"no id clause", "Received: from a.example (a.example [192.0.2.1]) by b.example (Postfix) with ESMTP; date\n", ""},
	{"id after the date", "Received: from a.example by b.example; Tue, 12 Mar 2024 id X1\n", ""},
	{"id without a value", "Received: from a.example by b.example with ESMTP id", ""},
	{"id before by", "Received: from a.example id X1 by b.example; date\n", ""},
	{"an id too long", "Received: by b.example id " + strings.Repeat("A", maxQueueID+1) + "; date\n", ""},
	{"the longest id", "Received: by b.example id " + strings.Repeat("A", maxQueueID) + "; date\n", strings.Repeat("A", maxQueueID)},
	{"an unclosed comment", "Received: from a.example (oops by b.example with ESMTP id X1; date\n", ""},
	{"no Received field", "Subject: hi\nFrom: alice@example.org\n\nReceived: by x id Y; date\n", ""},
	{"no header section", "\nReceived: by x id Y; date\n", ""},
	{"body only", "hello world\nReceived: by x id Y; date\n", ""},
	{"empty", "", ""},
	{"cut off in the id", "Received: from a.example\r\n\tby b.example (Postfix) with ESMTP id 4Xz9", "4Xz9"},
}

// TestReceivedQueueID checks the queue id taken from real Received:
// fields of Postfix, and what is not taken.
func TestReceivedQueueID(t *testing.T) {
	for _, tt := range receivedTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := receivedQueueID([]byte(tt.head)); got != tt.want {
				t.Errorf("receivedQueueID(%q) = %q, want %q", tt.head, got, tt.want)
			}
		})
	}
}

// TestHeadReader checks that headReader passes every byte through, in
// reads of any size, and keeps the first maxHead.
func TestHeadReader(t *testing.T) {
	msg := bytes.Repeat([]byte("Received: by x id Y; date\r\n"), 2*maxHead/27)
	for _, r := range []func(io.Reader) io.Reader{
		func(r io.Reader) io.Reader { return r },
		iotest.OneByteReader,
		iotest.HalfReader,
	} {
		h := &headReader{r: r(bytes.NewReader(msg))}
		all, err := io.ReadAll(h)
		if err != nil || !bytes.Equal(all, msg) {
			t.Fatalf("read %d bytes, %v; want the %d bytes given", len(all), err, len(msg))
		}
		if !bytes.Equal(h.head, msg[:maxHead]) {
			t.Errorf("kept %d bytes, want the first %d", len(h.head), maxHead)
		}
	}
}

// FuzzReceivedQueueID checks receivedQueueID on any header section: an id
// found is 1 to maxQueueID letters and digits that are in the input; LF and
// CRLF line ends give the same id; a field before the Received: field
// does not change it. The seeds are in testdata/fuzz/FuzzReceivedQueueID
// and receivedTests.
func FuzzReceivedQueueID(f *testing.F) {
	for _, tt := range receivedTests {
		f.Add([]byte(tt.head))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		id := receivedQueueID(head)
		if id != "" && (!validQueueID([]byte(id)) || !bytes.Contains(head, []byte(id))) {
			t.Fatalf("receivedQueueID(%q) = %q: not an id of the input", head, id)
		}
		if !bytes.Contains(head, []byte("\r")) {
			crlf := bytes.ReplaceAll(head, []byte("\n"), []byte("\r\n"))
			if got := receivedQueueID(crlf); got != id {
				t.Fatalf("with CRLF line ends %q, without %q", got, id)
			}
		}
		if got := receivedQueueID(append([]byte("X-Seed: 1\n"), head...)); got != id {
			t.Fatalf("after another field %q, alone %q", got, id)
		}
	})
}

// TestControlBytesNeverInHeaders: control bytes in a recipient's
// extension, the sender or the LHLO name (which Postfix's smtpd accepts
// and its lmtp client passes on, quoting the local part) are accepted, as
// Postfix accepts them,
// and reach the stored fields as '?', as Postfix's log shows them; no
// added field holds one raw.
func TestControlBytesNeverInHeaders(t *testing.T) {
	h := start(t, config{})
	r, _ := h.raw()
	r.cmd("LHLO mx\x1b]0;title\x07.example")
	if got := r.cmd("MAIL FROM:<\"s\x1b[31m\"@sender.example>"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("MAIL: %q", got)
	}
	ctl := "\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"
	for _, rcpt := range []string{"mylist+a" + ctl + "b@example.com", "\"mylist-request+x\x1b[2Jy\"@example.com"} {
		if got := r.cmd("RCPT TO:<" + rcpt + ">"); !strings.HasPrefix(got, "250 ") {
			t.Fatalf("RCPT TO:<%q>: %q", rcpt, got)
		}
	}
	if got := r.cmd("DATA"); !strings.HasPrefix(got, "354 ") {
		t.Fatalf("DATA: %q", got)
	}
	r.write("Subject: hi\r\n\r\nbody\r\n.\r\n")
	for range 2 {
		if got := r.reply(); !strings.HasPrefix(got, "250 ") {
			t.Fatalf("after DATA: %q", got)
		}
	}
	want := map[string]string{
		"post":    "Delivered-To: mylist+a" + strings.Repeat("?", len(ctl)) + "b@example.com\n",
		"request": "Delivered-To: mylist-request+x?[2Jy@example.com\n",
	}
	for kind, delivered := range want {
		files := h.newFiles("mylist@example.com", lists.Kind(kind))
		if len(files) != 1 {
			t.Fatalf("%s: %d files", kind, len(files))
		}
		stored := readFile(t, files[0])
		head, _, _ := strings.Cut(stored, "\nSubject: hi\n")
		for i := 0; i < len(head); i++ {
			if c := head[i]; (c < ' ' || c == 0x7f) && c != '\n' && !(c == '\t' && head[i-1] == '\n') {
				t.Errorf("%s: control byte %#x in the added fields:\n%q", kind, c, head)
				break
			}
		}
		for _, w := range []string{"Return-Path: <s?[31m@sender.example>\n", delivered, "Received: from mx?]0;title?.example ("} {
			if !strings.Contains(head, w) {
				t.Errorf("%s: no %q in\n%q", kind, w, head)
			}
		}
	}
}
