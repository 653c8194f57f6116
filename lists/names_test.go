package lists_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/listgate/listgate/lists"
)

// loadDir writes files (name → content) into a new directory and loads it.
func loadDir(t *testing.T, opts lists.Options, files map[string]string) (string, *lists.Snapshot) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		write(t, filepath.Join(dir, name), content)
	}
	snap, err := lists.Load(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return dir, snap
}

func addresses(snap *lists.Snapshot) []string {
	var as []string
	for _, l := range snap.Lists() {
		as = append(as, l.Address)
	}
	return as
}

// TestNames classifies single directory entries by their name alone: a
// list (and its canonical address), ignored silently, or a problem.
func TestNames(t *testing.T) {
	const (
		list    = "list"
		ignored = "ignored"
		problem = "problem"
	)
	tests := []struct {
		name string
		opts lists.Options
		want string // list, ignored or problem
		addr string // canonical address of a list
		msg  string // part of the problem's message
	}{
		{name: "announce@example.org", want: list, addr: "announce@example.org"},
		{name: "My-LIST@Example.COM", want: list, addr: "my-list@example.com"},
		{name: "x@example.com.", want: list, addr: "x@example.com"},
		{name: "x@bücher.example", want: list, addr: "x@xn--bcher-kva.example"},
		{name: "x@BÜCHER.Example", want: list, addr: "x@xn--bcher-kva.example"},
		{name: "x@xn--bcher-kva.example", want: list, addr: "x@xn--bcher-kva.example"},
		{name: "Straße@example.com", want: list, addr: "straße@example.com"},
		{name: "a+b@example.com", opts: lists.Options{Delimiters: "none"}, want: list, addr: "a+b@example.com"},
		{name: "a+b@example.com", opts: lists.Options{Delimiters: "-"}, want: list, addr: "a+b@example.com"},

		{name: ".hidden", want: ignored},
		{name: "..data", want: ignored},
		{name: "..2024_01_01_00_00_00.123", want: ignored},
		{name: ".@example.com", want: ignored},
		{name: "..@example.com", want: ignored},
		{name: ".x@example.com.swp", want: ignored},
		{name: "x@example.com~", want: ignored},
		{name: "x@example.com.swp", want: ignored},
		{name: "x@example.com.tmp", want: ignored},
		{name: "x@example.com.bak", want: ignored},
		{name: "x@example.com.BAK", want: ignored},
		{name: "x@example.com.orig", want: ignored},
		{name: "x@example.com.rej", want: ignored},
		{name: "x@example.com.dpkg-old", want: ignored},
		{name: "x@example.com.dpkg-dist", want: ignored},
		{name: "x@example.com.dpkg-new", want: ignored},
		{name: "x@example.com.rpmnew", want: ignored},
		{name: "x@example.com.rpmsave", want: ignored},
		{name: "note~", want: ignored},

		{name: "README", want: problem, msg: "not a list name"},
		{name: "README.txt", want: problem, msg: "not a list name"},
		{name: "evil@..", want: problem, msg: "empty label"},
		{name: "evil@...", want: problem, msg: "empty label"},
		{name: "@", want: problem, msg: "empty domain"},
		{name: "x@", want: problem, msg: "empty domain"},
		{name: "x@-bad-.com", want: problem, msg: "hyphen"},
		{name: "x@a..b", want: problem, msg: "empty label"},
		{name: "x@.example.com", want: problem, msg: "empty label"},
		{name: "x@example.com..", want: problem, msg: "empty label"},
		{name: "x@exa_mple.com", want: problem, msg: `contains '_'`},
		{name: "x@[127.0.0.1]", want: problem, msg: `contains '['`},
		{name: "x@" + strings.Repeat("a", 64) + ".com", want: problem, msg: "longer than 63"},
		{name: "x@\u200d.example", want: problem, msg: "idna"},
		{name: "x@\xff.example", want: problem, msg: "not valid UTF-8"},
		{name: "\xff@example.com", want: problem, msg: "not valid UTF-8"},
		{name: "a\tb@example.com", want: problem, msg: `contains '\t'`},
		{name: "a\nb@example.com", want: problem, msg: `contains '\n'`},
		{name: "a\x7fb@example.com", want: problem, msg: `contains '\x7f'`},
		{name: "a\u0085b@example.com", want: problem, msg: `contains`},
		{name: `a\b@example.com`, want: problem, msg: `contains '\\'`},
		{name: "a+b@example.com", want: problem, msg: `contains the recipient delimiter '+': mail to it would be cut at "a"`},
		{name: "a.b§c@example.com", opts: lists.Options{Delimiters: "§"}, want: problem, msg: `delimiter '§'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, snap := loadDir(t, tt.opts, map[string]string{tt.name: ""})
			as, ps := addresses(snap), snap.Problems()
			switch tt.want {
			case list:
				if len(as) != 1 || as[0] != tt.addr || len(ps) != 0 {
					t.Errorf("lists %q, problems %v; want the list %s and no problem", as, ps, tt.addr)
				}
				if v := snap.Resolve(tt.addr); v.Status != lists.Accept || v.List != tt.addr {
					t.Errorf("Resolve(%q) = %+v", tt.addr, v)
				}
				if l := snap.Lists(); len(l) == 1 && l[0].File != filepath.Join(dir, tt.name) {
					t.Errorf("File = %q", l[0].File)
				}
			case ignored:
				if len(as) != 0 || len(ps) != 0 {
					t.Errorf("lists %q, problems %v; want the name ignored", as, ps)
				}
			case problem:
				if len(as) != 0 || len(ps) != 1 {
					t.Fatalf("lists %q, problems %v; want one problem and no list", as, ps)
				}
				path := filepath.Join(dir, tt.name)
				if p := ps[0]; p.File != path || !strings.HasPrefix(p.Error(), path+": ") || !strings.Contains(p.Error(), tt.msg) {
					t.Errorf("problem %q (file %q), want it to name %s and say %q", p, p.File, path, tt.msg)
				}
				if got := snap.ServedDomains(); len(got) != 0 {
					t.Errorf("served domains %q from a name that is not a list", got)
				}
			}
		})
	}
}

// TestNamesDomainFile: "@domain" serves the domain with no list.
func TestNamesDomainFile(t *testing.T) {
	_, snap := loadDir(t, lists.Options{}, map[string]string{"@Example.ORG": ""})
	if got := snap.ServedDomains(); len(got) != 1 || got[0] != "example.org" {
		t.Errorf("served domains %q", got)
	}
	if d := snap.Domains(); len(d) != 1 || d[0].Name != "example.org" {
		t.Errorf("domains %+v", d)
	}
	if v := snap.Resolve("anyone@example.org"); v.Status != lists.Unknown {
		t.Errorf("Resolve = %+v, want unknown", v)
	}
}

// TestNamesFileTypes: only regular files count; symlinks are followed.
func TestNamesFileTypes(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir, path string)
		want  lists.Status
		msg   string // the problem, "" for none
	}{
		{"regular file", func(t *testing.T, dir, path string) { write(t, path, "") }, lists.Accept, ""},
		{"symlink to a regular file", func(t *testing.T, dir, path string) {
			target := filepath.Join(t.TempDir(), "target")
			write(t, target, "max_message_size = 5\n")
			symlink(t, target, path)
		}, lists.Accept, ""},
		{"relative symlink", func(t *testing.T, dir, path string) {
			write(t, filepath.Join(dir, ".target"), "")
			symlink(t, ".target", path)
		}, lists.Accept, ""},
		{"directory", func(t *testing.T, dir, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, lists.Broken, "not a regular file"},
		{"symlink to a directory", func(t *testing.T, dir, path string) { symlink(t, t.TempDir(), path) }, lists.Broken, "not a regular file"},
		{"dangling symlink", func(t *testing.T, dir, path string) { symlink(t, filepath.Join(dir, ".gone"), path) }, lists.Broken, "dangling symlink"},
		{"symlink loop", func(t *testing.T, dir, path string) { symlink(t, path, path) }, lists.Broken, "stat: too many levels of symbolic links"},
		{"unreadable", func(t *testing.T, dir, path string) {
			if os.Geteuid() == 0 {
				t.Skip("root reads any file")
			}
			write(t, path, "")
			if err := os.Chmod(path, 0); err != nil {
				t.Fatal(err)
			}
		}, lists.Broken, "open: permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "list@example.com")
			tt.setup(t, dir, path)
			snap, err := lists.Load(dir, lists.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if v := snap.Resolve("list@example.com"); v.Status != tt.want {
				t.Errorf("Resolve = %+v, want %v", v, tt.want)
			}
			ps := snap.Problems()
			switch {
			case tt.msg == "" && len(ps) != 0:
				t.Errorf("problems %v, want none", ps)
			case tt.msg != "" && (len(ps) != 1 || ps[0].File != path || ps[0].Error() != path+": "+tt.msg):
				t.Errorf("problems %v, want one: %s: %s", ps, path, tt.msg)
			}
		})
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestNamesFoldTwice: two files that fold to the same address are a
// problem naming both, and the address (sub-addresses too) tempfails.
func TestNamesFoldTwice(t *testing.T) {
	tests := []struct {
		files []string
		rcpt  []string
	}{
		{[]string{"dup@example.org", "DUP@example.org"}, []string{"dup@example.org", "Dup-Request@example.org"}},
		{[]string{"x@bücher.example", "X@xn--bcher-kva.example"}, []string{"x@bücher.example", "x-owner@xn--bcher-kva.example"}},
		{[]string{"x@example.org", "x@example.org."}, []string{"x@example.org"}},
		{[]string{"a@example.org", "A@Example.org", "a@EXAMPLE.ORG"}, []string{"a@example.org"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.files, ","), func(t *testing.T) {
			files := make(map[string]string)
			for _, f := range tt.files {
				files[f] = ""
			}
			dir, snap := loadDir(t, lists.Options{}, files)
			for _, rcpt := range tt.rcpt {
				if v := snap.Resolve(rcpt); v.Status != lists.Broken {
					t.Errorf("Resolve(%q) = %+v, want a 451 tempfail", rcpt, v)
				}
			}
			if as := addresses(snap); len(as) != 0 {
				t.Errorf("lists %q, want none", as)
			}
			ps := snap.Problems()
			if len(ps) == 0 {
				t.Fatal("no problem reported")
			}
			for _, p := range ps {
				if !strings.Contains(p.Error(), "declared twice") {
					t.Errorf("problem %q does not say the address is declared twice", p)
				}
				for _, f := range tt.files {
					if !strings.Contains(p.Error(), filepath.Join(dir, f)) {
						t.Errorf("problem %q does not name %s", p, f)
					}
				}
			}
		})
	}
}
