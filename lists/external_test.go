package lists_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
)

// mailmanSet is an External as package mailman makes it: one list per
// address, the domain example.org with its alias domain.
func mailmanSet(settled bool, addrs ...string) *lists.External {
	x := &lists.External{Source: "mailman", Settled: settled,
		Domains: []lists.ExternalDomain{{Name: "example.org", Aliases: []string{"lists.example.org"},
			Origin: "http://127.0.0.1:8001/3.1/domains/example.org"}}}
	for _, a := range addrs {
		local, domain, _ := strings.Cut(a, "@")
		x.Lists = append(x.Lists, lists.ExternalList{Address: a, ListID: local + "." + domain,
			Origin: "http://127.0.0.1:8001/3.1/lists/" + local + "." + domain, NextHop: "lmtp:inet:127.0.0.1:8026"})
	}
	return x
}

// externalRcpts are recipients that exercise every step of Resolve.
var externalRcpts = []string{
	"announce@example.org", "Announce-Request@Example.ORG", "announce+x@example.org",
	"announce-bounces+anne=example.net@example.org", "announce-confirm+0123abcd@lists.example.org.",
	"<announce-subscribe@lists.example.org>", "announce-unsubscribe@example.org", "announce-owner@example.org",
	"announce-bogus@example.org", "bogus@example.org", "bogus@lists.example.org", "announce@example.net",
	"-join@example.org", "announce-bounces-request@example.org",
}

// TestExternalAsFiles: a list from an External answers every recipient
// exactly as the same list declared by a list file and a domain file.
func TestExternalAsFiles(t *testing.T) {
	_, files := loadDir(t, lists.Options{}, map[string]string{
		"announce@example.org": "",
		"@example.org":         "aliases = [\"lists.example.org\"]\n",
	})
	_, ext := loadDir(t, lists.Options{External: mailmanSet(true, "announce@example.org")}, nil)
	for _, rcpt := range externalRcpts {
		if got, want := ext.Resolve(rcpt), files.Resolve(rcpt); got != want {
			t.Errorf("Resolve(%q) = %+v from Mailman, %+v from files", rcpt, got, want)
		}
	}
	if got, want := ext.ServedDomains(), files.ServedDomains(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("served domains %q, want %q", got, want)
	}
	if ps := ext.Problems(); len(ps) != 0 {
		t.Errorf("problems %v", ps)
	}
	x := ext.External("announce@example.org")
	if x == nil || x.NextHop != "lmtp:inet:127.0.0.1:8026" {
		t.Errorf("External(announce@example.org) = %+v, want Mailman's list with its next hop", x)
	}
	if l := ext.Lists(); len(l) != 1 || l[0].File != x.Origin || l[0].ListID != "announce.example.org" {
		t.Errorf("lists %+v, want announce@example.org from %s", l, x.Origin)
	}
	if files.External("announce@example.org") != nil {
		t.Error("External finds a list file's list")
	}
}

// TestExternalConflict: the same address from a list file and from
// Mailman is a problem naming both, and tempfails, as two files do; a
// domain both declare is no conflict and gets the alias domains of both.
func TestExternalConflict(t *testing.T) {
	x := mailmanSet(true, "dev@example.org", "users@example.org")
	dir, snap := loadDir(t, lists.Options{External: x}, map[string]string{
		"Dev@example.org": "",
		"@example.org":    "aliases = [\"old.example.org\"]\n",
	})
	for _, rcpt := range []string{"dev@example.org", "dev-request@lists.example.org"} {
		if v := snap.Resolve(rcpt); v.Status != lists.Broken {
			t.Errorf("Resolve(%q) = %+v, want a tempfail", rcpt, v)
		}
	}
	for _, rcpt := range []string{"users@old.example.org", "users-owner@lists.example.org"} {
		if v := snap.Resolve(rcpt); v.Status != lists.Accept || v.List != "users@example.org" {
			t.Errorf("Resolve(%q) = %+v, want users@example.org", rcpt, v)
		}
	}
	ps := snap.Problems()
	if len(ps) != 1 {
		t.Fatalf("problems %v, want one", ps)
	}
	for _, want := range []string{"dev@example.org is declared twice", filepath.Join(dir, "Dev@example.org"), x.Lists[0].Origin} {
		if !strings.Contains(ps[0].Error(), want) {
			t.Errorf("problem %q does not say %q", ps[0], want)
		}
	}
	if snap.External("dev@example.org") != nil {
		t.Error("External finds a conflicting address")
	}
}

// TestExternalUnsettled: before the source is reached (a cached set), its
// lists are served and an unknown address of its domains tempfails, never
// 550; once settled, unknown is unknown. A list file's domain is not
// affected.
func TestExternalUnsettled(t *testing.T) {
	files := map[string]string{"dev@example.com": ""}
	for _, tt := range []struct {
		settled bool
		unknown lists.Status
	}{{false, lists.Broken}, {true, lists.Unknown}} {
		_, snap := loadDir(t, lists.Options{External: mailmanSet(tt.settled, "announce@example.org")}, files)
		for rcpt, want := range map[string]lists.Status{
			"announce@example.org":      lists.Accept,
			"announce-join@example.org": lists.Accept,
			"new@example.org":           tt.unknown,
			"new@lists.example.org":     tt.unknown,
			"dev@example.com":           lists.Accept,
			"new@example.com":           lists.Unknown,
			"new@example.net":           lists.NotServed,
		} {
			if v := snap.Resolve(rcpt); v.Status != want {
				t.Errorf("settled %v: Resolve(%q) = %v, want %v", tt.settled, rcpt, v.Status, want)
			}
		}
	}
}

// TestExternalBadNames: a Mailman list or domain listgate cannot serve
// safely is a problem naming its origin, never a list.
func TestExternalBadNames(t *testing.T) {
	x := &lists.External{Source: "mailman", Settled: true,
		Lists: []lists.ExternalList{
			{Address: "a+b@example.org", Origin: "mm/lists/a+b.example.org"},
			{Address: "../x@example.org", Origin: "mm/lists/dots"},
			{Address: "ok@example.org"},
		},
		Domains: []lists.ExternalDomain{{Name: "example.org", Aliases: []string{"bad..example"}, Origin: "mm/domains/example.org"},
			{Name: "evil/..", Origin: "mm/domains/evil"}},
	}
	_, snap := loadDir(t, lists.Options{External: x}, nil)
	if as := addresses(snap); fmt.Sprint(as) != "[ok@example.org]" {
		t.Errorf("lists %q, want ok@example.org alone", as)
	}
	var got []string
	for _, p := range snap.Problems() {
		got = append(got, p.File)
	}
	if want := "[mm/domains/evil mm/domains/example.org mm/lists/a+b.example.org mm/lists/dots]"; fmt.Sprint(got) != want {
		t.Errorf("problems of %q, want %s", got, want)
	}
	if v := snap.Resolve("ok@example.org"); v.Status != lists.Accept {
		t.Errorf("ok@example.org: %+v", v)
	}
	if snap.Lists()[0].File != "mailman: ok@example.org" {
		t.Errorf("a list without an origin is named %q", snap.Lists()[0].File)
	}
}

// TestWatcherSetExternal: lists the source adds and removes are seen at
// once, a set that changes nothing makes no reload, and neither a file's
// change nor a full rescan loses the source's lists.
func TestWatcherSetExternal(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "dev@example.com"), "")
	logs := &testutil.SyncBuffer{}
	w, err := lists.Watch(dir, lists.WatchOptions{
		Options:  lists.Options{External: mailmanSet(false, "announce@example.org")},
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
		Debounce: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if s := status(w, "new@example.org"); s != lists.Broken {
		t.Errorf("before the source is reached: new@example.org %v, want tempfail", s)
	}
	gen := w.Generation()
	w.SetExternal(mailmanSet(true, "announce@example.org", "new@example.org"))
	if s := status(w, "new-request@example.org"); s != lists.Accept {
		t.Errorf("added list: %v", s)
	}
	if w.Generation() != gen+1 {
		t.Errorf("generation %d, want %d", w.Generation(), gen+1)
	}
	w.SetExternal(mailmanSet(true, "announce@example.org", "new@example.org"))
	if w.Generation() != gen+1 {
		t.Error("an unchanged set made a reload")
	}
	w.SetExternal(mailmanSet(true, "new@example.org"))
	if s := status(w, "announce@example.org"); s != lists.Unknown {
		t.Errorf("removed list: %v, want unknown", s)
	}
	if !strings.Contains(logs.String(), "reason=mailman") {
		t.Errorf("no reload logged for mailman:\n%s", logs)
	}

	write(t, filepath.Join(dir, "users@example.com"), "")
	testutil.WaitFor(t, 5*time.Second, "users@example.com", func() bool { return status(w, "users@example.com") == lists.Accept })
	gen = w.Generation() // before Rescan: the reload may be done before Rescan returns
	w.Rescan()
	testutil.WaitFor(t, 5*time.Second, "the rescan", func() bool { return w.Generation() > gen })
	for _, rcpt := range []string{"new@example.org", "new-owner@lists.example.org", "dev@example.com", "users@example.com"} {
		if s := status(w, rcpt); s != lists.Accept {
			t.Errorf("after a change and a rescan: %s %v", rcpt, s)
		}
	}
	w.SetExternal(nil)
	if s := status(w, "new@example.org"); s != lists.NotServed {
		t.Errorf("without the source: new@example.org %v, want not served", s)
	}
	// The domain warning names Mailman's domain, not the lists directory.
	for _, d := range []string{"example.org", "lists.example.org"} {
		if want := "domain=" + d + " file=http://127.0.0.1:8001/3.1/domains/example.org"; !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, logs)
		}
	}
}

// TestExternalResolveAllocs: Resolve allocates nothing for a Mailman list
// either.
func TestExternalResolveAllocs(t *testing.T) {
	_, snap := loadDir(t, lists.Options{External: mailmanSet(false, "announce@example.org")}, nil)
	for _, rcpt := range []string{"announce-bounces+anne=example.net@lists.example.org", "bogus@example.org"} {
		if n := testing.AllocsPerRun(100, func() { snap.Resolve(rcpt) }); n != 0 {
			t.Errorf("Resolve(%q): %v allocations", rcpt, n)
		}
	}
}
