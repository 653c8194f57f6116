package lists_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/listgate/listgate/lists"
)

// TestResolvePostmaster: postmaster@ and abuse@ of a domain whose domain
// file sets where they go resolve to Alias and that address, in every
// form a door may receive them, on the domain and on its alias domains.
func TestResolvePostmaster(t *testing.T) {
	files := map[string]string{
		"@example.org":           "aliases = [\"lists.example.org\"]\npostmaster = \"Hostmaster@Example.NET\"\nabuse = \"abuse-desk@example.net\"\n",
		"@example.com":           "postmaster = \"hostmaster@example.net\"\n",
		"@bücher.example":        "postmaster = \"root@bücher.example\"\n",
		"announce@example.org":   "",
		"abuse@example.com":      "", // a list named abuse: no setting for it anyway
		"news@nosetting.example": "",
	}
	_, snap := loadDir(t, lists.Options{}, files)
	tests := []struct {
		rcpt   string
		status lists.Status
		target string
		domain string
		ext    string
	}{
		{"postmaster@example.org", lists.Alias, "Hostmaster@Example.NET", "example.org", ""},
		{"<PostMaster@Example.ORG.>", lists.Alias, "Hostmaster@Example.NET", "example.org", ""},
		{"postmaster+tag@example.org", lists.Alias, "Hostmaster@Example.NET", "example.org", "tag"},
		{"postmaster@lists.example.org", lists.Alias, "Hostmaster@Example.NET", "example.org", ""},
		{"ABUSE@LISTS.EXAMPLE.ORG", lists.Alias, "abuse-desk@example.net", "example.org", ""},
		{"abuse@example.com", lists.Accept, "", "example.com", ""},
		{"postmaster@example.com", lists.Alias, "hostmaster@example.net", "example.com", ""},
		{"postmaster@xn--bcher-kva.example", lists.Alias, "root@bücher.example", "xn--bcher-kva.example", ""},
		{"postmaster@BÜCHER.example", lists.Alias, "root@bücher.example", "xn--bcher-kva.example", ""},
		{"abuse@bücher.example", lists.Unknown, "", "", ""},
		{"postmaster@nosetting.example", lists.Unknown, "", "", ""},
		{"postmaster-owner@example.org", lists.Unknown, "", "", ""},
		{"postmasters@example.org", lists.Unknown, "", "", ""},
		{"postmaster@example.net", lists.NotServed, "", "", ""},
		{"postmaster", lists.NotServed, "", "", ""},
	}
	for _, tt := range tests {
		v := snap.Resolve(tt.rcpt)
		if tt.status == lists.Accept {
			if v.Status != lists.Accept || v.Target != "" {
				t.Errorf("Resolve(%q) = %+v, want the list", tt.rcpt, v)
			}
			continue
		}
		if v.Status != tt.status || v.Target != tt.target || v.Domain != tt.domain || v.Extension != tt.ext || v.List != "" {
			t.Errorf("Resolve(%q) = %+v, want %v target %q domain %q ext %q", tt.rcpt, v, tt.status, tt.target, tt.domain, tt.ext)
		}
		if v.Status == lists.Alias && v.Local != strings.ToLower(strings.TrimPrefix(strings.SplitN(tt.rcpt, "@", 2)[0], "<"))[:len(v.Local)] {
			t.Errorf("Resolve(%q).Local = %q", tt.rcpt, v.Local)
		}
	}
	if got := fmt.Sprint(snap.Problems()); got != "[]" {
		t.Errorf("problems: %s", got)
	}
	d := snap.Domains()[0]
	if d.Name != "example.com" || d.Postmaster != "hostmaster@example.net" || d.Abuse != "" {
		t.Errorf("Domains()[0] = %+v", *d)
	}
}

// TestPostmasterProblems: a bad postmaster or abuse value is a problem on
// its line, and the domain file is not taken: a domain file that has
// never parsed makes the domain's unknown addresses tempfail (it may set
// where postmaster@ goes, or the domain's mode). A list of that name wins
// over a good value, with a problem that says so.
func TestPostmasterProblems(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		problem string // after the directory
		rcpt    string
		status  lists.Status
	}{
		{"not an address", map[string]string{"@example.org": "description = \"d\"\npostmaster = \"hostmaster\"\n"},
			`@example.org:2: postmaster: "hostmaster" is not an address: want local@domain`, "postmaster@example.org", lists.Broken},
		{"two addresses", map[string]string{"@example.org": "abuse = \"a@example.net, b@example.net\"\n"},
			`@example.org:1: abuse: "a@example.net, b@example.net" is not one plain address: want local@domain`, "abuse@example.org", lists.Broken},
		{"bad domain", map[string]string{"@example.org": "\n\npostmaster = \"h@exa mple.net\"\n"},
			`@example.org:3: postmaster: "h@exa mple.net" is not one plain address: want local@domain`, "postmaster@example.org", lists.Broken},
		{"spaces", map[string]string{"@example.org": "postmaster = \" h@example.net\"\n"},
			`@example.org:1: postmaster: " h@example.net" has leading or trailing space`, "postmaster@example.org", lists.Broken},
		{"itself", map[string]string{"@example.org": "postmaster = \"PostMaster@example.org\"\n"},
			`@example.org:1: postmaster: PostMaster@example.org is the address itself`, "postmaster@example.org", lists.Broken},
		{"itself on an alias domain", map[string]string{"@example.org": "aliases = [\"example.com\"]\nabuse = \"abuse@example.com\"\n"},
			`@example.org:2: abuse: abuse@example.com is the address itself`, "abuse@example.org", lists.Broken},
		{"wrong type", map[string]string{"@example.org": "postmaster = [\"h@example.net\"]\n"},
			`@example.org:1: postmaster: want an address string such as "hostmaster@example.net", got an array`, "postmaster@example.org", lists.Broken},
		{"a list wins", map[string]string{"@example.org": "\npostmaster = \"h@example.net\"\n", "postmaster@example.org": ""},
			`@example.org:2: postmaster = "h@example.net" is ignored: postmaster@example.org is a list (DIR/postmaster@example.org), and the list wins`,
			"postmaster@example.org", lists.Accept},
		{"a list alias wins", map[string]string{"@example.org": "abuse = \"h@example.net\"\n", "team@example.org": "aliases = [\"abuse@example.org\"]\n"},
			`@example.org:1: abuse = "h@example.net" is ignored: abuse@example.org is a list (DIR/team@example.org), and the list wins`,
			"abuse@example.org", lists.Accept},
		{"a broken list wins", map[string]string{"@example.org": "abuse = \"h@example.net\"\n", "abuse@example.org": "[broken\n"},
			`@example.org:1: abuse = "h@example.net" is ignored: abuse@example.org is a list (DIR/abuse@example.org), and the list wins`,
			"abuse@example.org", lists.Broken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, snap := loadDir(t, lists.Options{}, tt.files)
			var found []string
			for _, p := range snap.Problems() {
				msg := strings.ReplaceAll(p.Error(), dir, "DIR")
				if msg == "DIR/"+tt.problem {
					checkStatus(t, snap, tt.rcpt, tt.status)
					return
				}
				found = append(found, msg)
			}
			t.Errorf("no problem %q; got %q", tt.problem, found)
		})
	}
}

func checkStatus(t *testing.T, snap *lists.Snapshot, rcpt string, want lists.Status) {
	t.Helper()
	if v := snap.Resolve(rcpt); v.Status != want {
		t.Errorf("Resolve(%q) = %+v, want %v", rcpt, v, want)
	}
}

// TestServesDomain: the domain forms Postfix looks up in relay_domains.
func TestServesDomain(t *testing.T) {
	files := map[string]string{
		"@example.org":         "aliases = [\"lists.example.org\"]\n",
		"news@bücher.example":  "",
		"announce@example.com": "",
	}
	dir, snap := loadDir(t, lists.Options{}, files)
	mailman := &lists.External{Source: "mailman", Settled: true,
		Domains: []lists.ExternalDomain{{Name: "mailman.example", Aliases: []string{"mm.example"}}}}
	withMailman, err := lists.Load(dir, lists.Options{External: mailman})
	if err != nil {
		t.Fatal(err)
	}
	blind, err := lists.Load(dir, lists.Options{External: &lists.External{Source: "mailman"}})
	if err != nil {
		t.Fatal(err)
	}
	unsettled, err := lists.Load(dir, lists.Options{External: &lists.External{Source: "mailman",
		Domains: []lists.ExternalDomain{{Name: "mailman.example", Origin: "mailman_domains"}}}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		domain                               string
		plain, withMailman, blind, unsettled lists.Status
	}{
		{"example.org", lists.Accept, lists.Accept, lists.Accept, lists.Accept},
		{"Example.ORG.", lists.Accept, lists.Accept, lists.Accept, lists.Accept},
		{"lists.example.org", lists.Accept, lists.Accept, lists.Accept, lists.Accept},
		{"example.com", lists.Accept, lists.Accept, lists.Accept, lists.Accept},
		{"bücher.example", lists.Accept, lists.Accept, lists.Accept, lists.Accept},
		{"BÜCHER.example", lists.Accept, lists.Accept, lists.Accept, lists.Accept},
		{"xn--bcher-kva.example", lists.Accept, lists.Accept, lists.Accept, lists.Accept},
		{"mailman.example", lists.NotServed, lists.Accept, lists.Broken, lists.Accept},
		{"MM.example", lists.NotServed, lists.Accept, lists.Broken, lists.NotServed},
		{"example.net", lists.NotServed, lists.NotServed, lists.Broken, lists.NotServed},
		{".example.org", lists.NotServed, lists.NotServed, lists.NotServed, lists.NotServed},
		{"sub.example.org", lists.NotServed, lists.NotServed, lists.Broken, lists.NotServed},
		{"", lists.NotServed, lists.NotServed, lists.NotServed, lists.NotServed},
		{".", lists.NotServed, lists.NotServed, lists.NotServed, lists.NotServed},
		{"\xff.example", lists.NotServed, lists.NotServed, lists.NotServed, lists.NotServed},
		{strings.Repeat("a", 300) + ".example", lists.NotServed, lists.NotServed, lists.Broken, lists.NotServed},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			name string
			snap *lists.Snapshot
			want lists.Status
		}{{"plain", snap, tt.plain}, {"mailman", withMailman, tt.withMailman}, {"blind", blind, tt.blind}, {"unsettled", unsettled, tt.unsettled}} {
			if got := c.snap.ServesDomain(tt.domain); got != c.want {
				t.Errorf("%s: ServesDomain(%q) = %v, want %v", c.name, tt.domain, got, c.want)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { snap.ServesDomain("Lists.Example.ORG.") }); n != 0 {
		t.Errorf("ServesDomain allocates %v times", n)
	}
}

// TestPostmasterMailman: a domain file for a GNU Mailman domain sets
// postmaster and abuse for it and for Mailman's alias domain; a Mailman
// list of that name wins, as a list file's does.
func TestPostmasterMailman(t *testing.T) {
	dir, _ := loadDir(t, lists.Options{}, map[string]string{
		"@example.org": "postmaster = \"hostmaster@example.net\"\nabuse = \"abuse-desk@example.net\"\n",
	})
	for _, settled := range []bool{true, false} {
		snap, err := lists.Load(dir, lists.Options{External: mailmanSet(settled, "announce@example.org", "abuse@example.org")})
		if err != nil {
			t.Fatal(err)
		}
		for rcpt, want := range map[string]string{
			"postmaster@example.org":       "alias hostmaster@example.net",
			"Postmaster@Lists.Example.ORG": "alias hostmaster@example.net",
			"abuse@lists.example.org":      "accept ",
			"bogus@example.org":            map[bool]string{true: "unknown ", false: "tempfail "}[settled],
		} {
			v := snap.Resolve(rcpt)
			if got := fmt.Sprintf("%v %s", v.Status, v.Target); got != want {
				t.Errorf("settled %v: Resolve(%q) = %q, want %q", settled, rcpt, got, want)
			}
		}
		var ps []string
		for _, p := range snap.Problems() {
			ps = append(ps, strings.ReplaceAll(p.Error(), dir, "DIR"))
		}
		want := `DIR/@example.org:2: abuse = "abuse-desk@example.net" is ignored: abuse@example.org is a list (http://127.0.0.1:8001/3.1/lists/abuse.example.org), and the list wins`
		if len(ps) != 1 || ps[0] != want {
			t.Errorf("settled %v: problems %q, want %q", settled, ps, want)
		}
		if ds := snap.Domains(); len(ds) != 1 || ds[0].Postmaster != "hostmaster@example.net" || !slices.Equal(ds[0].Aliases, []string{"lists.example.org"}) {
			t.Errorf("settled %v: domains %+v", settled, ds)
		}
	}
}
