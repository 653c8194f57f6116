package lmtp

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
)

// TestMailmanWalkthrough follows Mailman's runners/docs/lmtp.rst and
// runners/tests/test_lmtp.py: the greeting, LHLO, a 550 for a list that
// does not exist yet, the posting address and the -request address once
// the list file is created (hot reload: same server, same connection),
// and a 550 for a bogus sub-address.
func TestMailmanWalkthrough(t *testing.T) {
	h := start(t, config{lists: map[string]string{}, watch: true})

	// Greeting and LHLO, on the wire.
	r, greeting := h.raw()
	if want := "220 lmtp.test LMTP Service Ready"; greeting != want {
		t.Errorf("greeting %q, want %q", greeting, want)
	}
	lhlo := r.cmd("LHLO remote.example.org")
	if !strings.HasPrefix(lhlo, "250-Hello remote.example.org\n") || !strings.Contains(lhlo, "\n250 ") {
		t.Errorf("LHLO reply %q", lhlo)
	}

	// test_lmtp.py, test_missing_mailing_list: no such list yet.
	if got := r.cmd("MAIL FROM:<anne.person@example.com>"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("MAIL: %q", got)
	}
	if got := r.cmd("RCPT TO:<mylist@example.com>"); got != unavailable {
		t.Errorf("RCPT before the list exists: %q, want %q", got, unavailable)
	}
	if got := r.cmd("RSET"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("RSET: %q", got)
	}

	// create_list('mylist@example.com'): add its file.
	gen := h.watcher.Generation()
	writeFile(t, filepath.Join(h.listsDir, "mylist@example.com"), "")
	testutil.WaitFor(t, 5*time.Second, "the watcher to load the new list", func() bool { return h.watcher.Generation() > gen })

	// The posting address, on the same connection.
	r.cmd("MAIL FROM:<anne.person@example.com>")
	if got := r.cmd("RCPT TO:<mylist@example.com>"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("RCPT after the list was created: %q", got)
	}
	if got := r.cmd("DATA"); !strings.HasPrefix(got, "354 ") {
		t.Fatalf("DATA: %q", got)
	}
	r.write(message(`From: anne.person@example.com
To: mylist@example.com
Subject: An interesting message
Message-ID: <badger>

This is an interesting message.
.
`))
	if got, want := r.reply(), ok("mylist@example.com"); got != want {
		t.Fatalf("after DATA: %q, want %q", got, want)
	}
	got := h.readOnly("mylist@example.com", lists.Post)
	for name, want := range map[string]string{
		"Message-ID":        "<badger>",
		"Message-ID-Hash":   "JYMZWSQ4IC2JPKK7ZUONRFRVC4ZYJGKJ", // as in lmtp.rst
		"X-Message-ID-Hash": "JYMZWSQ4IC2JPKK7ZUONRFRVC4ZYJGKJ",
		"X-MailFrom":        "anne.person@example.com",
		"Delivered-To":      "mylist@example.com",
		"Return-Path":       "<anne.person@example.com>",
	} {
		if v := header(got, name); v != want {
			t.Errorf("stored %s: %q, want %q", name, v, want)
		}
	}
	if !strings.HasSuffix(got, "\n\nThis is an interesting message.\n") {
		t.Errorf("stored message does not end with the body:\n%s", got)
	}

	// test_lmtp.py, test_missing_subaddress: a bogus sub-address.
	c := h.client()
	rr, _ := transact(t, c, "anne.person@example.com", nil, []string{"mylist-bogus@example.com"}, "")
	if rr[0] != unavailable {
		t.Errorf("RCPT mylist-bogus@example.com: %q, want %q", rr[0], unavailable)
	}

	// The -request sub-address lands in its own folder.
	rr, dr := transact(t, c, "anne.person@example.com", nil, []string{"mylist-request@example.com"}, message(`From: anne.person@example.com
To: mylist-request@example.com
Subject: Help
Message-ID: <dog>

Please help me.
`))
	if rr[0] != "" || dr["mylist-request@example.com"] != ok("mylist-request@example.com") {
		t.Fatalf("mylist-request@example.com: RCPT %q, DATA %q", rr[0], dr)
	}
	req := h.readOnly("mylist@example.com", lists.Request)
	if v := header(req, "Message-ID-Hash"); v != "4SKREUSPI62BHDMFBSOZ3BMXFETSQHNA" {
		t.Errorf("-request Message-ID-Hash %q", v)
	}
	if n := len(h.spoolFiles("new")); n != 2 {
		t.Errorf("%d files in the spool, want 2: %v", n, h.spoolFiles("new"))
	}
}

// TestSubaddresses checks that every sub-address reaches its own spool
// folder, that subscribe and unsubscribe are join and leave, that
// extensions and VERP resolve and Delivered-To keeps them, that lists
// whose names look like sub-addresses resolve to themselves, and that
// long local parts (confirmation tokens) are accepted.
func TestSubaddresses(t *testing.T) {
	token := strings.Repeat("0123456789abcdef", 5) // 80 octets: local part > 64
	tests := []struct {
		rcpt string
		list string
		kind lists.Kind // "" : refused with 550 5.1.1
	}{
		{"mylist@example.com", "mylist@example.com", lists.Post},
		{"mylist-bounces@example.com", "mylist@example.com", lists.Bounces},
		{"mylist-confirm@example.com", "mylist@example.com", lists.Confirm},
		{"mylist-join@example.com", "mylist@example.com", lists.Join},
		{"mylist-leave@example.com", "mylist@example.com", lists.Leave},
		{"mylist-owner@example.com", "mylist@example.com", lists.Owner},
		{"mylist-request@example.com", "mylist@example.com", lists.Request},
		{"mylist-subscribe@example.com", "mylist@example.com", lists.Join},
		{"mylist-unsubscribe@example.com", "mylist@example.com", lists.Leave},
		{"mylist+tag@example.com", "mylist@example.com", lists.Post},
		{"mylist-bounces+anne=example.org@example.com", "mylist@example.com", lists.Bounces},
		{"mylist-confirm+" + token + "@example.com", "mylist@example.com", lists.Confirm},
		{"test-join@example.com", "test-join@example.com", lists.Post},
		{"test-join-request@example.com", "test-join@example.com", lists.Request},
		{"join@example.com", "join@example.com", lists.Post},
		{"join-join@example.com", "join@example.com", lists.Join},
		{"-join@example.com", "", ""},
		{"mylist-@example.com", "", ""},
		{"mylist-bogus+tag@example.com", "", ""},
	}
	h := start(t, config{})
	c := h.client()
	for _, tt := range tests {
		t.Run(tt.rcpt, func(t *testing.T) {
			var before []string
			if tt.kind != "" {
				before = h.newFiles(tt.list, tt.kind)
			}
			msg := message("Subject: " + tt.rcpt + "\n\nhello\n")
			rr, dr := transact(t, c, "anne@example.org", nil, []string{tt.rcpt}, msg)
			if tt.kind == "" {
				if rr[0] != unavailable {
					t.Fatalf("RCPT: %q, want %q", rr[0], unavailable)
				}
				return
			}
			if rr[0] != "" || dr[tt.rcpt] != ok(tt.rcpt) {
				t.Fatalf("RCPT %q, DATA %q", rr[0], dr[tt.rcpt])
			}
			after := h.newFiles(tt.list, tt.kind)
			if len(after) != len(before)+1 {
				t.Fatalf("%s/%s: %d files, want %d", tt.list, tt.kind, len(after), len(before)+1)
			}
			var found bool
			for _, f := range after {
				if !slices.Contains(before, f) {
					found = header(readFile(t, f), "Delivered-To") == tt.rcpt
				}
			}
			if !found {
				t.Errorf("the new file in %s/%s has no Delivered-To: %s", tt.list, tt.kind, tt.rcpt)
			}
		})
	}
	// Nothing landed anywhere else: one file per accepted case.
	var accepted int
	for _, tt := range tests {
		if tt.kind != "" {
			accepted++
		}
	}
	if n := len(h.spoolFiles("new")); n != accepted {
		t.Errorf("%d files in the spool, want %d: %v", n, accepted, h.spoolFiles("new"))
	}
}

// TestCaseFoldingAndAliasDomain checks that recipients in any case, and at
// the domain's alias domain, reach the canonical folder, while
// Delivered-To keeps the recipient as received.
func TestCaseFoldingAndAliasDomain(t *testing.T) {
	tests := []struct {
		rcpt string
		kind lists.Kind
	}{
		{"MyList@Example.COM", lists.Post},
		{"MYLIST-REQUEST@EXAMPLE.COM", lists.Request},
		{"mylist@lists.example.com", lists.Post},
		{"MyList-Owner@LISTS.Example.com", lists.Owner},
		{"mylist@example.com.", lists.Post},
	}
	h := start(t, config{})
	c := h.client()
	for _, tt := range tests {
		t.Run(tt.rcpt, func(t *testing.T) {
			n := len(h.newFiles("mylist@example.com", tt.kind))
			rr, dr := transact(t, c, "anne@example.org", nil, []string{tt.rcpt}, message("Subject: x\n\nhi\n"))
			if rr[0] != "" || dr[tt.rcpt] != ok(tt.rcpt) {
				t.Fatalf("RCPT %q, DATA %q", rr[0], dr[tt.rcpt])
			}
			fs := h.newFiles("mylist@example.com", tt.kind)
			if len(fs) != n+1 {
				t.Fatalf("example.com/mylist/%s: %d files, want %d", tt.kind, len(fs), n+1)
			}
		})
	}
	if got := h.spoolFiles("new"); len(got) != len(tests) {
		t.Errorf("spool holds %v, want %d files under example.com/mylist", got, len(tests))
	}
	for _, f := range h.spoolFiles("new") {
		if !strings.HasPrefix(f, filepath.Join("example.com", "mylist")+string(filepath.Separator)) {
			t.Errorf("file outside the canonical folder: %s", f)
		}
	}
	// An unknown address at the alias domain is refused like at the domain.
	rr, _ := transact(t, c, "anne@example.org", nil, []string{"nobody@Lists.Example.COM"}, "")
	if rr[0] != unavailable {
		t.Errorf("nobody@Lists.Example.COM: %q", rr[0])
	}
}
