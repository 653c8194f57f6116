package postfix

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/postconf"
	"github.com/listgate/listgate/reply"
)

// The TEMP replies, from the verdict table.
var (
	tempBroken = "TEMP " + reply.For(reply.Socketmap, reply.RCPT, reply.Broken).Reply.Text
	tempError  = "TEMP " + reply.For(reply.Socketmap, reply.RCPT, reply.LocalError).Reply.Text
)

const lmtpHop = "OK lmtp:inet:127.0.0.1:8024"

// TestSocketmapMaps checks each map's answers on one connection (Postfix
// keeps one per server and sends many lookups on it).
func TestSocketmapMaps(t *testing.T) {
	h := start(t, config{socketmap: true})
	c := h.dial()
	for _, tt := range []struct {
		name, key, want string
	}{
		{mapDomains, "example.com", "OK example.com"},
		{mapDomains, "lists.example.com", "OK lists.example.com"},
		{mapDomains, "EXAMPLE.ORG", "OK EXAMPLE.ORG"},
		{mapDomains, "xn--bcher-kva.example", "OK xn--bcher-kva.example"},
		{mapDomains, "bücher.example", "OK bücher.example"},
		{mapDomains, "empty.example", "OK empty.example"},
		{mapDomains, "broken.example", "OK broken.example"},
		{mapDomains, "not-ours.example", "NOTFOUND "},
		{mapDomains, "sub.example.com", "NOTFOUND "},
		{mapDomains, ".example.com", "NOTFOUND "},
		{mapDomains, "", "NOTFOUND "},
		{mapRecipients, "mylist@example.com", "OK mylist@example.com"},
		{mapRecipients, "mylist+tag@example.com", "OK mylist@example.com"},
		{mapRecipients, "MyList-Owner@Lists.Example.COM", "OK mylist@example.com"},
		{mapRecipients, "news@example.org", "OK announce@example.org"},
		{mapRecipients, "nosuchlist@example.com", "NOTFOUND "},
		{mapRecipients, "nosuchlist+x@example.com", "NOTFOUND "},
		{mapRecipients, "@example.com", "NOTFOUND "},
		{mapRecipients, "mylist", "NOTFOUND "},
		{mapRecipients, "mylist@not-ours.example", "NOTFOUND "},
		{mapRecipients, "broken@broken.example", tempBroken},
		{mapRecipients, "whoever@broken.example", tempBroken},
		{mapRecipients, "a key with spaces@example.com", "NOTFOUND "},
		{mapTransport, "mylist@example.com", lmtpHop},
		{mapTransport, "mylist-bounces+anne=example.org@example.com", lmtpHop},
		{mapTransport, "nosuchlist@example.com", "NOTFOUND "},
		{mapTransport, "example.com", lmtpHop},
		{mapTransport, "not-ours.example", "NOTFOUND "},
		{mapTransport, "@example.com", "NOTFOUND "},
		{mapTransport, "*", "NOTFOUND "},
		{mapTransport, "broken@broken.example", tempBroken},
		{mapAliases, "mylist@example.com", "NOTFOUND "},
		{mapAliases, "nosuchlist@example.com", "NOTFOUND "},
		{mapAliases, "someone@not-ours.example", "NOTFOUND "},
		{mapAliases, "whoever@broken.example", "NOTFOUND "},
		{mapAliases, "postmaster@broken.example", tempBroken},
		{mapAliases, "Abuse+x@broken.example", tempBroken},
		{mapAliases, "postmaster@example.com", "OK hostmaster@example.net"},
		{mapAliases, "abuse@example.com", "NOTFOUND "},
		{mapAliases, "postmaster", "NOTFOUND "},
		{mapAliases, "example.com", "NOTFOUND "},
	} {
		if got := c.lookup(tt.name, tt.key); got != tt.want {
			t.Errorf("%s %q: %q, want %q", tt.name, tt.key, got, tt.want)
		}
	}
	if n := promtestutil.ToFloat64(h.core.m.requests.WithLabelValues(mapRecipients, resultFound)); n != 4 {
		t.Errorf(`lookups_total{map="recipients",result="found"} = %v, want 4`, n)
	}
}

// TestSocketmapAlias checks postmaster@ and abuse@ of a domain whose
// domain file names where they go: the aliases map rewrites them (in any
// case, with an extension, on an alias domain), the recipients map finds
// them, the transport map sends them to the LMTP door; a list of that
// name wins; without the setting, they are unknown as before.
func TestSocketmapAlias(t *testing.T) {
	h := start(t, config{socketmap: true, options: func(o *Options) { o.Lists = aliasLists(t) }})
	c := h.dial()
	for _, tt := range []struct {
		name, key, want string
	}{
		{mapAliases, "postmaster@example.com", "OK hostmaster@example.net"},
		{mapAliases, "PostMaster@Example.COM", "OK hostmaster@example.net"},
		{mapAliases, "postmaster+x@example.com", "OK hostmaster@example.net"},
		{mapAliases, "postmaster@lists.example.com", "OK hostmaster@example.net"},
		{mapAliases, "abuse@example.com", "OK abuse-desk@example.net"},
		{mapAliases, "postmaster@example.org", "NOTFOUND "}, // the list wins
		{mapAliases, "abuse@example.org", "NOTFOUND "},      // no setting
		{mapAliases, "postmaster@example.net", "NOTFOUND "}, // no domain file
		{mapAliases, "hostmaster@example.net", "NOTFOUND "},
		{mapRecipients, "postmaster@example.com", "OK hostmaster@example.net"},
		{mapRecipients, "postmaster@example.org", "OK postmaster@example.org"},
		{mapRecipients, "abuse@example.org", "NOTFOUND "},
		{mapTransport, "postmaster@example.com", lmtpHop},
		{mapTransport, "abuse@example.org", "NOTFOUND "},
	} {
		if got := c.lookup(tt.name, tt.key); got != tt.want {
			t.Errorf("%s %q: %q, want %q", tt.name, tt.key, got, tt.want)
		}
	}
	ls := h.logs.Lines("rcpt")
	var aliases int
	for _, l := range ls {
		if l.Attrs["map"] == mapAliases {
			aliases++
			if l.Attrs["verdict"] != "alias" || l.Attrs["target"] == "" {
				t.Errorf("alias line %v", l.Attrs)
			}
		}
	}
	if aliases != 5 {
		t.Errorf("%d info lines for the aliases map, want one per alias found (5):\n%s", aliases, h.logs)
	}
}

// TestSocketmapNoLMTP checks that without an LMTP endpoint the transport
// map finds nothing: Postfix then uses its own transport.
func TestSocketmapNoLMTP(t *testing.T) {
	h := start(t, config{socketmap: true, options: func(o *Options) { o.LMTP = postconf.Endpoint{} }})
	c := h.dial()
	for _, key := range []string{"mylist@example.com", "example.com", "broken@broken.example"} {
		if got := c.lookup(mapTransport, key); got != "NOTFOUND " {
			t.Errorf("transport %q: %q, want NOTFOUND", key, got)
		}
	}
	if n := len(h.logs.Lines("no LMTP endpoint: the transport map answers NOTFOUND to every key")); n != 1 {
		t.Errorf("%d warnings from New, want 1", n)
	}
}

// TestSocketmapUnixLMTP checks the transport map's next hop for an LMTP
// door on a unix socket.
func TestSocketmapUnixLMTP(t *testing.T) {
	h := start(t, config{socketmap: true, options: func(o *Options) {
		o.LMTP = postconf.Endpoint{Network: "unix", Address: "/run/listgate/lmtp.sock"}
	}})
	if got := h.dial().lookup(mapTransport, "mylist@example.com"); got != "OK lmtp:unix:/run/listgate/lmtp.sock" {
		t.Errorf("transport: %q", got)
	}
}

// TestSocketmapMalformed checks bad requests: an unknown map or a request
// without a space is answered PERM and the connection goes on; a bad
// netstring, a netstring over the limit, and binary junk close the
// connection (nothing after them can be framed); other connections are
// served throughout.
func TestSocketmapMalformed(t *testing.T) {
	h := start(t, config{socketmap: true, options: func(o *Options) { o.MaxRequest = 1000 }})
	other := h.dial()
	c := h.dial()
	if got := c.lookup("virtual", "a@b"); got != "PERM unknown map virtual; listgate serves domains, recipients, transport, aliases" {
		t.Errorf("unknown map: %q", got)
	}
	c.send("7:domains,")
	if got, err := c.reply(); err != nil || !strings.HasPrefix(got, "PERM malformed request") {
		t.Errorf("no space: %q, %v", got, err)
	}
	if got := c.lookup(mapDomains, "example.com"); got != "OK example.com" {
		t.Errorf("after PERM: %q", got)
	}
	// The log names the fault: a request with no key is malformed, not a
	// lookup in an unknown map named "domains".
	if l := h.logs.Lines("malformed socketmap request: no space between a map name and a key; replying PERM"); len(l) != 1 ||
		l[0].Attrs["request"] != "domains" {
		t.Errorf("log of the request without a key: %+v\n%s", l, h.logs)
	}
	if l := h.logs.Lines("socketmap lookup in a map listgate does not serve; replying PERM"); len(l) != 1 || l[0].Attrs["map"] != "virtual" {
		t.Errorf("log of the unknown map: %+v\n%s", l, h.logs)
	}
	if n := promtestutil.ToFloat64(h.core.m.requests.WithLabelValues(mapOther, resultPerm)); n != 2 {
		t.Errorf(`lookups_total{map="other",result="perm"} = %v, want 2`, n)
	}

	for _, tt := range []struct{ name, in string }{
		{"no colon", "12domains example.com,"},
		{"no comma", "19:domains example.com;"},
		{"short", "30:domains example.com,"},
		{"over the limit", "1001:" + strings.Repeat("x", 1001) + ","},
		{"too many digits", "00000000001:x,"},
		{"binary junk", "\x00\xff\x01garbage"},
		{"empty length", ":,"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := h.dial()
			c.send(tt.in)
			if tt.name == "short" {
				c.nc.(interface{ CloseWrite() error }).CloseWrite()
			}
			if _, err := c.reply(); !errors.Is(err, io.EOF) && !isEOF(err) {
				t.Errorf("%q: %v, want the connection closed", tt.in, err)
			}
			if got := other.lookup(mapRecipients, "mylist@example.com"); got != "OK mylist@example.com" {
				t.Errorf("other connection: %q", got)
			}
		})
	}
	if n := promtestutil.ToFloat64(h.core.m.protocolErrors); n != 2+7 {
		t.Errorf("protocol_errors_total = %v, want 9:\n%s", n, h.logs)
	}
}

// TestSocketmapPipelined checks lookups sent back to back: each reply
// comes in order.
func TestSocketmapPipelined(t *testing.T) {
	h := start(t, config{socketmap: true, network: "unix"})
	c := h.dial()
	keys := []string{"mylist@example.com", "nosuchlist@example.com", "broken@broken.example"}
	want := []string{"OK mylist@example.com", "NOTFOUND ", tempBroken}
	var b []byte
	for _, k := range keys {
		b = appendNetstring(b, mapRecipients+" "+k)
	}
	c.send(string(b))
	for i := range keys {
		if got, err := c.reply(); err != nil || got != want[i] {
			t.Errorf("reply %d: %q, %v; want %q", i, got, err, want[i])
		}
	}
}

// TestSocketmapLookupLog checks the debug line of every lookup, which
// shows the keys Postfix sends.
func TestSocketmapLookupLog(t *testing.T) {
	h := start(t, config{socketmap: true})
	h.dial().lookup(mapRecipients, "MyList+tag@Example.COM")
	testutil.WaitFor(t, 5*time.Second, "the lookup line", func() bool { return len(h.logs.Lines("lookup")) == 1 })
	l := h.logs.Lines("lookup")[0]
	if l.Level != slog.LevelDebug || l.Attrs["door"] != "socketmap" || l.Attrs["map"] != mapRecipients ||
		l.Attrs["key"] != "MyList+tag@Example.COM" || l.Attrs["answer"] != "OK mylist@example.com" {
		t.Errorf("lookup line %v %v", l.Level, l.Attrs)
	}
	r := h.logs.Lines("rcpt")
	if len(r) != 1 || r[0].Attrs["verdict"] != "accept" || r[0].Attrs["list"] != "mylist@example.com" {
		t.Errorf("rcpt lines %v", r)
	}
}

// TestNetstring checks the framing on its own.
func TestNetstring(t *testing.T) {
	for _, tt := range []struct {
		in, payload string
		err         string // "" none, "eof", "unexpected", "format"
	}{
		{"0:,", "", ""},
		{"3:abc,", "abc", ""},
		{"003:abc,", "abc", ""},
		{"10:0123456789,", "0123456789", ""},
		{"", "", "eof"},
		{"3", "", "unexpected"},
		{"3:ab", "", "unexpected"},
		{"3:abc", "", "unexpected"},
		{"3:abcd", "", "format"},
		{"a:", "", "format"},
		{":", "", "format"},
		{"-1:", "", "format"},
		{"101:", "", "format"},
		{"0000:,", "", "format"},
	} {
		got, err := readNetstring(bufio.NewReader(strings.NewReader(tt.in)), 100)
		kind := ""
		switch {
		case err == nil:
		case errors.Is(err, errNetstring):
			kind = "format"
		case errors.Is(err, io.ErrUnexpectedEOF):
			kind = "unexpected"
		case errors.Is(err, io.EOF):
			kind = "eof"
		}
		if kind != tt.err || string(got) != tt.payload {
			t.Errorf("readNetstring(%q) = %q, %v; want %q, %s", tt.in, got, err, tt.payload, tt.err)
		}
	}
	if got := string(appendNetstring([]byte("x"), "OK a@b")); got != "x6:OK a@b," {
		t.Errorf("appendNetstring: %q", got)
	}
}

// TestSocketmapReply checks the mapping from outcomes to replies: found
// needs a value (Postfix 3.7 takes "OK " alone as a configuration
// error), and outcomes the socketmap never meets are a local error.
func TestSocketmapReply(t *testing.T) {
	for _, tt := range []struct {
		o     reply.Outcome
		value string
		want  string
	}{
		{reply.Accept, "a@b", "OK a@b"},
		{reply.Accept, "", tempError},
		{reply.Alias, "t@x", "OK t@x"},
		{reply.Unknown, "", "NOTFOUND "},
		{reply.NotServed, "x", "NOTFOUND "},
		{reply.Broken, "", tempBroken},
		{reply.LocalError, "", tempError},
		{reply.TooLarge, "", tempError},
		{reply.NoSpace, "", tempError},
		{0, "", tempError},
	} {
		if got := socketmapReply(tt.o, tt.value); got != tt.want {
			t.Errorf("socketmapReply(%v, %q) = %q, want %q", tt.o, tt.value, got, tt.want)
		}
	}
}

// aliasLists is a lists directory with postmaster and abuse settings:
// example.com (and its alias domain lists.example.com) sets both,
// example.org sets postmaster but has a list of that name, which wins.
func aliasLists(t *testing.T) lists.Source {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"@example.com":           "aliases = [\"lists.example.com\"]\npostmaster = \"hostmaster@example.net\"\nabuse = \"abuse-desk@example.net\"\n",
		"mylist@example.com":     "",
		"@example.org":           "postmaster = \"pm@example.net\"\n",
		"postmaster@example.org": "",
		"list@example.net":       "",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := lists.Load(dir, lists.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return lists.Static{S: snap}
}

// TestPolicyAlias checks the policy door on postmaster@ and abuse@: with a
// domain file setting they pass (DUNNO: virtual_alias_maps rewrites them),
// without one they are unknown as before.
func TestPolicyAlias(t *testing.T) {
	h := start(t, config{options: func(o *Options) { o.Lists = aliasLists(t) }})
	c := h.dial()
	tests := []struct{ rcpt, want, verdict string }{
		{"postmaster@example.com", "DUNNO", "alias"},
		{"Abuse+x@lists.example.com", "DUNNO", "alias"},
		{"postmaster@example.org", "DUNNO", "accept"},
		{"abuse@example.org", actUnknown, "unknown"},
	}
	for _, tt := range tests {
		if got := c.ask(policyRequest("RCPT", tt.rcpt, 0)); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.rcpt, got, tt.want)
		}
	}
	ls := h.logs.Lines("rcpt")
	if len(ls) != len(tests) {
		t.Fatalf("rcpt lines:\n%s", h.logs)
	}
	for i, tt := range tests {
		if ls[i].Attrs["verdict"] != tt.verdict {
			t.Errorf("%s: logged verdict %q, want %q", tt.rcpt, ls[i].Attrs["verdict"], tt.verdict)
		}
	}
}
