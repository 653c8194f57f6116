package lists_test

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/listgate/listgate/internal/corpus"
	"github.com/listgate/listgate/lists"
)

// FuzzParseList writes arbitrary content to a list file and loads it. The
// list either parses, and then answers at its address and every alias, or
// it has exactly one problem naming the file and tempfails, since it never
// parsed. Seeds: testdata/fuzz/FuzzParseList.
func FuzzParseList(f *testing.F) {
	const addr = "l@example.com"
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, addr)
		write(t, path, string(data))
		snap, err := lists.Load(dir, lists.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ps, ls := snap.Problems(), snap.Lists()
		v := snap.Resolve(addr)
		if len(ps) > 0 {
			if len(ps) != 1 || len(ls) != 0 {
				t.Fatalf("problems %v, lists %v: want one problem and no list", ps, ls)
			}
			p := ps[0]
			if p.File != path || !strings.HasPrefix(p.Error(), path+":") || p.Err == nil {
				t.Errorf("problem %q does not name %s", p, path)
			}
			if p.Line < 0 || p.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Errorf("problem %q: line %d outside the file's %d lines", p, p.Line, bytes.Count(data, []byte("\n"))+1)
			}
			if v.Status != lists.Broken || v.List != addr {
				t.Errorf("a file that never parsed: Resolve = %+v, want a 451 tempfail", v)
			}
			return
		}
		if len(ls) != 1 {
			t.Fatalf("no problem, lists %v: want the list", ls)
		}
		l := ls[0]
		if l.Address != addr || l.File != path || l.ListID == "" || l.MaxMessageSize < 0 {
			t.Errorf("list %+v", l)
		}
		if v.Status != lists.Accept || v.Kind != lists.Post || v.List != addr || v.MaxMessageSize != l.MaxMessageSize {
			t.Errorf("Resolve(%q) = %+v", addr, v)
		}
		for _, a := range l.Aliases {
			if a == addr || !strings.Contains(a, "@") {
				t.Errorf("alias %q", a)
			}
			// <> so that an alias starting with '<' is reached as a door
			// passes it.
			if v := snap.Resolve("<" + a + ">"); v.Status != lists.Accept || v.List != addr {
				t.Errorf("alias %q: Resolve = %+v", a, v)
			}
		}
	})
}

// FuzzResolve resolves arbitrary recipients against the corpus snapshot
// (testdata/lists) and checks what must hold for any recipient. Seeds:
// testdata/fuzz/FuzzResolve, and every recipient of the verdict corpus.
func FuzzResolve(f *testing.F) {
	cases, err := corpus.Load()
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		f.Add(c.Rcpt)
	}
	snap, err := lists.Load(corpus.ListsDir(), lists.Options{})
	if err != nil {
		f.Fatal(err)
	}
	served := snap.ServedDomains()
	doms := snap.Domains()
	byAddr := make(map[string]*lists.List)
	for _, l := range snap.Lists() {
		byAddr[l.Address] = l
	}
	f.Fuzz(func(t *testing.T, rcpt string) {
		v := snap.Resolve(rcpt)

		// Explain runs the same code: its verdict is Resolve's, and it
		// reports at least the steps every recipient goes through.
		if steps, w := snap.Explain(rcpt); w != v || len(steps) < 2 {
			t.Errorf("Explain(%q) = %+v in %d steps, Resolve = %+v", rcpt, w, len(steps), v)
		}

		// Angle brackets are stripped.
		if !strings.ContainsAny(rcpt, "<>") {
			if w := snap.Resolve("<" + rcpt + ">"); w != v {
				t.Errorf("Resolve(<%s>) = %+v, Resolve(%s) = %+v", rcpt, w, rcpt, v)
			}
		}
		// Case does not matter, except to the extension.
		if up := upperASCII(rcpt); up != rcpt {
			w := snap.Resolve(up)
			if w.Status != v.Status || w.List != v.List || w.Kind != v.Kind || w.MaxMessageSize != v.MaxMessageSize {
				t.Errorf("Resolve(%q) = %+v, Resolve(%q) = %+v", up, w, rcpt, v)
			}
		}
		if !strings.Contains(rcpt, v.Extension) {
			t.Errorf("extension %q is not part of %q", v.Extension, rcpt)
		}

		switch v.Status {
		case lists.Accept:
			l := byAddr[v.List]
			if l == nil || v.List != v.Local+"@"+v.Domain || l.Local != v.Local || l.Domain != v.Domain {
				t.Fatalf("Resolve(%q) = %+v: not a list of the snapshot", rcpt, v)
			}
			if !slices.Contains(lists.Kinds, v.Kind) {
				t.Errorf("Resolve(%q) = %+v: kind %q", rcpt, v, v.Kind)
			}
			if want := map[bool]int64{true: l.MaxMessageSize}[v.Kind == lists.Post]; v.MaxMessageSize != want {
				t.Errorf("Resolve(%q) = %+v: MaxMessageSize, want %d", rcpt, v, want)
			}
		case lists.Broken:
			// A broken list, or an unknown address in a domain where a
			// list file has never parsed (no list then).
			if v.List != "" && v.List != v.Local+"@"+v.Domain || v.Kind != "" || v.MaxMessageSize != 0 {
				t.Errorf("Resolve(%q) = %+v", rcpt, v)
			}
		case lists.Observed:
			// Unknown, in a domain whose file says observe.
			var mode lists.Mode
			for _, d := range doms {
				if d.Name == v.Domain {
					mode = d.Mode
				}
			}
			if mode != lists.ModeObserve || v.List != "" || v.Local != "" || v.Kind != "" || v.MaxMessageSize != 0 || v.Target != "" {
				t.Errorf("Resolve(%q) = %+v: not an unknown address of an observed domain", rcpt, v)
			}
		case lists.Unknown, lists.NotServed:
			if v.List != "" || v.Local != "" || v.Domain != "" || v.Kind != "" || v.MaxMessageSize != 0 || v.Target != "" {
				t.Errorf("Resolve(%q) = %+v", rcpt, v)
			}
		case lists.Alias:
			// postmaster@ or abuse@ of a domain file that says where
			// it goes; no list has the name.
			var want string
			for _, d := range doms {
				if d.Name == v.Domain {
					want = map[string]string{"postmaster": d.Postmaster, "abuse": d.Abuse}[v.Local]
				}
			}
			if want == "" || v.Target != want || v.List != "" || v.Kind != "" || v.MaxMessageSize != 0 ||
				byAddr[v.Local+"@"+v.Domain] != nil {
				t.Errorf("Resolve(%q) = %+v: not an alias of the snapshot", rcpt, v)
			}
		default:
			t.Fatalf("Resolve(%q) = %+v: status %v", rcpt, v, v.Status)
		}
		// The list reached answers at its canonical address.
		if v.List != "" {
			if w := snap.Resolve("<" + v.List + ">"); w.Status != v.Status || w.List != v.List {
				t.Errorf("Resolve(%q) = %+v, but Resolve(%q) = %+v", rcpt, v, v.List, w)
			}
		}

		// Not served exactly when the folded domain is not served.
		addr := strings.TrimPrefix(strings.TrimSuffix(rcpt, ">"), "<")
		at := strings.LastIndexByte(addr, '@')
		isServed := false
		if at >= 0 {
			d := strings.TrimSuffix(addr[at+1:], ".")
			if d != "" && utf8.ValidString(d) {
				if a, err := idna.Lookup.ToASCII(d); err == nil || isASCII(d) {
					if isASCII(d) {
						a = d
					}
					_, isServed = slices.BinarySearch(served, strings.ToLower(a))
				}
			}
		}
		if (v.Status == lists.NotServed) == isServed {
			t.Errorf("Resolve(%q) = %v, but its domain is served: %v", rcpt, v.Status, isServed)
		}
		// ServesDomain agrees, for the domain as Postfix would ask it.
		if at >= 0 {
			if got := snap.ServesDomain(addr[at+1:]); (got == lists.Accept) != isServed || got == lists.Broken {
				t.Errorf("ServesDomain(%q) = %v, but Resolve(%q) = %v", addr[at+1:], got, rcpt, v.Status)
			}
		}
	})
}

func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
