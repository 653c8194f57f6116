package lists_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/listgate/listgate/lists"
)

// TestParseNextHop: every form of next_hop, as written and as printed,
// and the errors, each saying what is wanted.
func TestParseNextHop(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "", want: ""},
		{in: "none", want: "none"},
		{in: "lmtp:inet:127.0.0.1:8024", want: "lmtp:inet:127.0.0.1:8024"},
		{in: "lmtp:inet:[::1]:8024", want: "lmtp:inet:[::1]:8024"},
		{in: "lmtp:unix:/run/mailman3/lmtp", want: "lmtp:unix:/run/mailman3/lmtp"},
		{in: "lmtp:127.0.0.1:8024", want: "lmtp:inet:127.0.0.1:8024"},
		{in: "lmtp:[mail.example.org]:24", want: "lmtp:inet:mail.example.org:24"},
		{in: "lmtp:mail.example.org", want: "lmtp:inet:mail.example.org:24"},
		{in: "exec:/usr/bin/mlmmj-receive -F -L /var/spool/mlmmj/{local}", want: "exec:/usr/bin/mlmmj-receive -F -L /var/spool/mlmmj/{local}"},
		{in: "exec:  /bin/cat\t", want: "exec:/bin/cat"},
		{in: "exec:/x --to={recipient} {sender}{extension}", want: "exec:/x --to={recipient} {sender}{extension}"},
		{in: "smtp:inet:127.0.0.1:25", err: "want none, lmtp:inet:host:port, lmtp:unix:/path or exec:/path/to/command"},
		{in: "None", err: "want none"},
		{in: "lmtp:", err: "want lmtp:inet:host:port or lmtp:unix:/path"},
		{in: "lmtp:unix:run/lmtp", err: "the socket path must be absolute"},
		{in: "lmtp:inet::8024", err: "with a host and a numeric port"},
		{in: "lmtp:inet:127.0.0.1:lmtp", err: "with a host and a numeric port"},
		{in: "lmtp:inet:127.0.0.1:8024 x", err: "want lmtp:inet:host:port"},
		{in: "exec:", err: "name a command"},
		{in: "exec:mlmmj-receive", err: `the command "mlmmj-receive" must be an absolute path`},
		{in: "exec:/bin/{list}", err: "the command path cannot hold a placeholder"},
		{in: "exec:/x {user}", err: "unknown placeholder {user}"},
		{in: "exec:/x {list", err: "'{' without '}'"},
		{in: "exec:/x list}", err: "'}' without '{'"},
	} {
		h, err := lists.ParseNextHop(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseNextHop(%q) = %v, %v; want an error with %q", tc.in, h, err, tc.err)
			}
			continue
		}
		if err != nil || h.String() != tc.want {
			t.Errorf("ParseNextHop(%q) = %q, %v; want %q", tc.in, h, err, tc.want)
		}
	}
}

// TestExpand: placeholders become the message's values, each argument
// stays one argument whatever it holds.
func TestExpand(t *testing.T) {
	h, err := lists.ParseNextHop("exec:/usr/bin/intake -l {list} --ext={extension} {sender} {recipient} {local}@{domain}/{kind}")
	if err != nil {
		t.Fatal(err)
	}
	got := h.Expand(map[string]string{"list": "a@example.org", "local": "a", "domain": "example.org",
		"kind": "bounces", "extension": "x y", "sender": "", "recipient": "a-bounces+x y@example.org"})
	want := []string{"/usr/bin/intake", "-l", "a@example.org", "--ext=x y", "", "a-bounces+x y@example.org", "a@example.org/bounces"}
	if !slices.Equal(got, want) {
		t.Errorf("Expand = %q, want %q", got, want)
	}
}

// TestForwarding: a list's next hop and keep come from its file, else
// from its domain file, else they are unset (the caller's default).
func TestForwarding(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"@example.org":         "next_hop = \"lmtp:inet:127.0.0.1:8024\"\nkeep = true\n",
		"own@example.org":      "next_hop = \"exec:/bin/cat\"\nkeep = false\n",
		"inherits@example.org": "",
		"none@example.org":     "next_hop = \"none\"\n",
		"plain@example.com":    "",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := lists.Load(dir, lists.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		list string
		hop  string
		keep bool
		ok   bool
	}{
		{"own@example.org", "exec:/bin/cat", false, true},
		{"inherits@example.org", "lmtp:inet:127.0.0.1:8024", true, true},
		{"none@example.org", "none", true, true},
		{"plain@example.com", "", false, true},
		{"gone@example.org", "", false, false},
	} {
		f, ok := snap.Forwarding(tc.list)
		if ok != tc.ok || f.Hop.String() != tc.hop || f.Keep != tc.keep {
			t.Errorf("Forwarding(%s) = %q keep=%v ok=%v; want %q keep=%v ok=%v", tc.list, f.Hop, f.Keep, ok, tc.hop, tc.keep, tc.ok)
		}
	}
}

// FuzzParseNextHop: whatever is parsed prints back to a string that
// parses to the same next hop, and an exec next hop's command is absolute.
// Seeds: testdata/fuzz/FuzzParseNextHop.
func FuzzParseNextHop(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		h, err := lists.ParseNextHop(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		again, err := lists.ParseNextHop(h.String())
		if err != nil || again.String() != h.String() || again.Transport != h.Transport {
			t.Fatalf("%q parses to %q, which parses to %q, %v", s, h, again, err)
		}
		switch h.Transport {
		case lists.Exec:
			if !filepath.IsAbs(h.Argv[0]) {
				t.Fatalf("%q: command %q is not absolute", s, h.Argv[0])
			}
			vals := map[string]string{}
			for _, p := range lists.Placeholders {
				vals[p] = "V"
			}
			for _, a := range h.Expand(vals)[1:] {
				if strings.ContainsAny(a, "{}") {
					t.Fatalf("%q: %q keeps a brace after Expand", s, a)
				}
			}
		case lists.LMTP:
			if h.Endpoint.Address == "" {
				t.Fatalf("%q: empty endpoint", s)
			}
		}
	})
}
