package lists_test

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/listgate/listgate/lists"
)

// TestBadFiles loads testdata/bad, one bad file per case, and checks each
// file's problem against the exact line in testdata/bad/errors.txt. A file
// that never parsed tempfails its list; a domain file that never parsed
// still serves its domain.
func TestBadFiles(t *testing.T) {
	const dir = "testdata/bad"
	want := readGolden(t, filepath.Join(dir, "errors.txt"))
	snap, err := lists.Load(dir, lists.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]string)
	for _, p := range snap.Problems() {
		if prev, ok := got[p.File]; ok {
			t.Errorf("%s has two problems:\n%s\n%s", p.File, prev, p)
		}
		got[p.File] = p.Error()
	}
	for file, line := range want {
		if got[file] != line {
			t.Errorf("%s:\n got %q\nwant %q", file, got[file], line)
		}
	}
	for file, line := range got {
		if _, ok := want[file]; !ok {
			t.Errorf("unexpected problem (add it to errors.txt if it is right):\n%s", line)
		}
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		name := de.Name()
		if _, ok := want[filepath.Join(dir, name)]; !ok {
			t.Errorf("%s has no line in errors.txt", name)
		}
		switch {
		case strings.HasPrefix(name, "@"):
			domain := name[1:]
			if !slices.Contains(snap.ServedDomains(), domain) {
				t.Errorf("%s: domain %s not served", name, domain)
			}
			if v := snap.Resolve("anyone@lists." + domain); v.Status != lists.NotServed {
				t.Errorf("%s: an alias domain of a file that never parsed answers: %+v", name, v)
			}
		case strings.Contains(name, "@"):
			if v := snap.Resolve(name); v.Status != lists.Broken || v.List != name {
				t.Errorf("Resolve(%q) = %+v, want a tempfail for a file that never parsed", name, v)
			}
		}
	}
	if len(snap.Lists()) != 0 || len(snap.Domains()) != 0 {
		t.Errorf("lists %v, domains %v: a file that never parsed is neither", snap.Lists(), snap.Domains())
	}
}

// readGolden reads the expected problems, one a line, keyed by file.
func readGolden(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := make(map[string]string)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		file, _, ok := strings.Cut(line, ":") // no name in testdata/bad has a ':'
		if !ok {
			t.Fatalf("%s:%d: no file name: %q", path, n, line)
		}
		if _, dup := want[file]; dup {
			t.Fatalf("%s:%d: second line for %s", path, n, file)
		}
		want[file] = line
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return want
}

// TestListFile reads good list files.
func TestListFile(t *testing.T) {
	tests := []struct {
		name    string
		file    string // name in the directory
		content string
		want    lists.List // File is filled in
	}{
		{"empty", "l@example.com", "",
			lists.List{Address: "l@example.com", Local: "l", Domain: "example.com", ListID: "l.example.com"}},
		{"comments only", "l@example.com", "# nothing set\n\n",
			lists.List{Address: "l@example.com", Local: "l", Domain: "example.com", ListID: "l.example.com"}},
		{"list_id default from the canonical name", "My-List@Bücher.Example", "",
			lists.List{Address: "my-list@xn--bcher-kva.example", Local: "my-list", Domain: "xn--bcher-kva.example", ListID: "my-list.xn--bcher-kva.example"}},
		{"every key", "l@example.com", `description = "The L list"
list_id = "l.lists.example.com"
aliases = ["old-l@example.com"]
max_message_size = 1000
`, lists.List{Address: "l@example.com", Local: "l", Domain: "example.com", Description: "The L list",
			ListID: "l.lists.example.com", Aliases: []string{"old-l@example.com"}, MaxMessageSize: 1000}},
		{"aliases canonical, own address and repeats dropped", "l@example.com", `aliases = [
  "Old-L@Example.COM",
  "l@bücher.example",
  "L@EXAMPLE.COM",
  "old-l@example.com.",
  "a@b@example.net",
]
`, lists.List{Address: "l@example.com", Local: "l", Domain: "example.com", ListID: "l.example.com",
			Aliases: []string{"old-l@example.com", "l@xn--bcher-kva.example", "a@b@example.net"}}},
		{"empty aliases", "l@example.com", "aliases = []\n",
			lists.List{Address: "l@example.com", Local: "l", Domain: "example.com", ListID: "l.example.com"}},
		{"literal strings and quoted keys", "l@example.com", "'description' = 'C:\\lists'\n\"list_id\" = '''x.y'''\n",
			lists.List{Address: "l@example.com", Local: "l", Domain: "example.com", Description: `C:\lists`, ListID: "x.y"}},
		{"max_message_size 0 is no list limit", "l@example.com", "max_message_size = 0\n",
			lists.List{Address: "l@example.com", Local: "l", Domain: "example.com", ListID: "l.example.com"}},
		{"max_message_size MB", "l@example.com", `max_message_size = "10MB"`,
			lists.List{Address: "l@example.com", Local: "l", Domain: "example.com", ListID: "l.example.com", MaxMessageSize: 10_000_000}},
		{"max_message_size MiB", "l@example.com", `max_message_size = "10MiB"`,
			lists.List{Address: "l@example.com", Local: "l", Domain: "example.com", ListID: "l.example.com", MaxMessageSize: 10_485_760}},
		{"max_message_size KiB", "l@example.com", `max_message_size = "64KiB"`,
			lists.List{Address: "l@example.com", Local: "l", Domain: "example.com", ListID: "l.example.com", MaxMessageSize: 65_536}},
		{"max_message_size hex integer", "l@example.com", `max_message_size = 0x100`,
			lists.List{Address: "l@example.com", Local: "l", Domain: "example.com", ListID: "l.example.com", MaxMessageSize: 256}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, snap := loadDir(t, lists.Options{}, map[string]string{tt.file: tt.content})
			if ps := snap.Problems(); len(ps) != 0 {
				t.Fatalf("problems: %v", ps)
			}
			ls := snap.Lists()
			if len(ls) != 1 {
				t.Fatalf("lists: %v", ls)
			}
			want := tt.want
			want.File = filepath.Join(dir, tt.file)
			if got := *ls[0]; !equalList(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			// Every alias is the list, sub-addresses included.
			for _, a := range want.Aliases {
				at := strings.LastIndexByte(a, '@')
				for _, rcpt := range []string{a, a[:at] + "-owner@" + a[at+1:]} {
					if v := snap.Resolve(rcpt); v.Status != lists.Accept || v.List != want.Address {
						t.Errorf("Resolve(%q) = %+v, want the list %s", rcpt, v, want.Address)
					}
				}
			}
			if v := snap.Resolve(want.Address); v.MaxMessageSize != want.MaxMessageSize {
				t.Errorf("verdict MaxMessageSize = %d, want %d", v.MaxMessageSize, want.MaxMessageSize)
			}
		})
	}
}

func equalList(a, b lists.List) bool {
	return a.Address == b.Address && a.Local == b.Local && a.Domain == b.Domain && a.File == b.File &&
		a.Description == b.Description && a.ListID == b.ListID && slices.Equal(a.Aliases, b.Aliases) &&
		a.MaxMessageSize == b.MaxMessageSize
}

// TestDomainFile reads good domain files: alias domains answer for every
// list of the domain.
func TestDomainFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		aliases []string
	}{
		{"empty", "", nil},
		{"description only", `description = "ours"`, nil},
		{"aliases canonical, own name and repeats dropped",
			`aliases = ["Lists.Example.COM", "@alt.example", "bücher.example", "example.com", "alt.example."]`,
			[]string{"lists.example.com", "alt.example", "xn--bcher-kva.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, snap := loadDir(t, lists.Options{}, map[string]string{
				"@Example.com":       tt.content,
				"mylist@example.com": "",
			})
			if ps := snap.Problems(); len(ps) != 0 {
				t.Fatalf("problems: %v", ps)
			}
			ds := snap.Domains()
			if len(ds) != 1 || ds[0].Name != "example.com" || ds[0].File != filepath.Join(dir, "@Example.com") ||
				!slices.Equal(ds[0].Aliases, tt.aliases) {
				t.Fatalf("domains %+v, want example.com with aliases %q", ds, tt.aliases)
			}
			served := append([]string{"example.com"}, tt.aliases...)
			slices.Sort(served)
			if got := snap.ServedDomains(); !slices.Equal(got, served) {
				t.Errorf("served domains %q, want %q", got, served)
			}
			for _, d := range tt.aliases {
				for _, rcpt := range []string{"mylist@" + d, "MyList-Request@" + strings.ToUpper(d)} {
					if v := snap.Resolve(rcpt); v.Status != lists.Accept || v.List != "mylist@example.com" || v.Domain != "example.com" {
						t.Errorf("Resolve(%q) = %+v, want mylist@example.com", rcpt, v)
					}
				}
				if v := snap.Resolve("nobody@" + d); v.Status != lists.Unknown {
					t.Errorf("Resolve(nobody@%s) = %+v, want unknown", d, v)
				}
			}
		})
	}
}

// TestParseSize: sizes are exact, in decimal or binary units.
func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string // part of the error, "" for none
	}{
		{"0", 0, ""},
		{"65536", 65536, ""},
		{" 42 ", 42, ""},
		{"1B", 1, ""},
		{"1k", 1000, ""},
		{"1KB", 1000, ""},
		{"1kib", 1024, ""},
		{"64KiB", 65536, ""},
		{"10M", 10_000_000, ""},
		{"10MB", 10_000_000, ""},
		{"10 MB", 10_000_000, ""},
		{"10mb", 10_000_000, ""},
		{"10MiB", 10_485_760, ""},
		{"64MiB", 67_108_864, ""},
		{"1G", 1_000_000_000, ""},
		{"2GB", 2_000_000_000, ""},
		{"1GiB", 1 << 30, ""},
		{"1.5KiB", 1536, ""},
		{"1.5MB", 1_500_000, ""},
		{"1.001KB", 1001, ""},
		{"0.5KiB", 512, ""},
		{".5KiB", 512, ""},
		{"2.", 2, ""},
		{"007", 7, ""},
		{"9223372036854775807", 1<<63 - 1, ""},
		{"8589934591GiB", 8589934591 << 30, ""},

		{"", 0, "want a number"},
		{"MB", 0, "want a number"},
		{"10XB", 0, "want a number"},
		{"10 M B", 0, "want a number"},
		{"ten", 0, "want a number"},
		{"1.5", 0, "not a whole number of bytes"},
		{"1.1MiB", 0, "not a whole number of bytes"},
		{"-1", 0, "negative"},
		{"-1MB", 0, "negative"},
		{"+1", 0, "want a number"},
		{"1e6", 0, "want a number"},
		{"0x10", 0, "want a number"},
		{"0x1p4", 0, "want a number"},
		{"1_000", 0, "want a number"},
		{"1..2", 0, "want a number"},
		{"1.2.3", 0, "want a number"},
		{"Inf", 0, "want a number"},
		{"NaN", 0, "want a number"},
		{"9223372036854775808", 0, "too large"},
		{"8589934592GiB", 0, "too large"},
		{"10000000000GB", 0, "too large"},
	}
	for _, tt := range tests {
		got, err := lists.ParseSize(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), `"`+tt.in+`"`)):
			t.Errorf("ParseSize(%q) = %d, %v; want an error naming the size and saying %q", tt.in, got, err, tt.err)
		}
	}
}
