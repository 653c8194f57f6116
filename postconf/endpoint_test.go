package postconf

import (
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Endpoint
		on   bool
		err  string
	}{
		{"inet:127.0.0.1:8024", Endpoint{"tcp", "127.0.0.1:8024"}, true, ""},
		{"127.0.0.1:8024", Endpoint{"tcp", "127.0.0.1:8024"}, true, ""},
		{"inet:[::1]:8025", Endpoint{"tcp", "[::1]:8025"}, true, ""},
		{"unix:/var/spool/postfix/listgate/lmtp", Endpoint{"unix", "/var/spool/postfix/listgate/lmtp"}, true, ""},
		{"", Endpoint{}, false, ""},
		{"inet::8024", Endpoint{}, false, `--lmtp "inet::8024": give a host`},
		{"unix:", Endpoint{}, false, "empty socket path"},
		{"inet:127.0.0.1", Endpoint{}, false, "want inet:host:port or unix:/path"},
		{"/run/listgate/lmtp", Endpoint{}, false, "want inet:host:port or unix:/path"},
	} {
		got, on, err := ParseEndpoint("lmtp", tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseEndpoint(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want || on != tc.on {
			t.Errorf("ParseEndpoint(%q) = %v, %v, %v; want %v, %v", tc.in, got, on, err, tc.want, tc.on)
		}
	}
}

func TestMainCFName(t *testing.T) {
	for _, tc := range []struct {
		in   Endpoint
		want string
	}{
		{Endpoint{"tcp", "127.0.0.1:8024"}, "inet:127.0.0.1:8024"},
		{Endpoint{"tcp", "0.0.0.0:8025"}, "inet:127.0.0.1:8025"},
		{Endpoint{"tcp", "[::]:8025"}, "inet:[::1]:8025"},
		{Endpoint{"tcp", "[::1]:8025"}, "inet:[::1]:8025"},
		{Endpoint{"unix", "/var/spool/postfix/listgate/lmtp"}, "unix:listgate/lmtp"},
		{Endpoint{"unix", "/run/listgate/lmtp"}, "unix:/run/listgate/lmtp"},
		{Endpoint{"unix", "/var/spool/postfix-other/lmtp"}, "unix:/var/spool/postfix-other/lmtp"},
		{Endpoint{"unix", "/var/spool/postfix"}, "unix:/var/spool/postfix"},
	} {
		if got := tc.in.MainCFName("/var/spool/postfix"); got != tc.want {
			t.Errorf("%v.MainCFName = %q, want %q", tc.in, got, tc.want)
		}
		// What Postfix connects to reaches the listener, read as main.cf
		// names an LMTP next hop and as the transport map answers it.
		c := tc.in.Client("/var/spool/postfix")
		if ep, ok := ParseClientAddr(c.String(), "/var/spool/postfix", true); !ok || !Reaches(ep, tc.in) {
			t.Errorf("%v.Client = %v: does not reach it (%v, %v)", tc.in, c, ep, ok)
		}
	}
}

// The addresses main.cf may name listgate by, and whether each reaches a
// listgate listening on 127.0.0.1:8024 or /var/spool/postfix/listgate/lmtp.
func TestReaches(t *testing.T) {
	tcp, sock := Endpoint{"tcp", "127.0.0.1:8024"}, Endpoint{"unix", "/var/spool/postfix/listgate/lmtp"}
	for _, tc := range []struct {
		addr  string
		lmtp  bool
		lg    Endpoint
		reach bool
	}{
		{"inet:127.0.0.1:8024", false, tcp, true},
		{"inet:[127.0.0.1]:8024", true, tcp, true},
		{"inet:localhost:8024", false, tcp, true},
		{"127.0.0.1:8024", true, tcp, true},
		{"[127.0.0.1]:8024", true, tcp, true},
		{"127.0.0.1:8024", false, tcp, false}, // a milter needs inet:
		{"inet:127.0.0.1", true, tcp, false},  // LMTP's port 24
		{"inet:127.0.0.2:8024", false, tcp, false},
		{"inet:127.0.0.1:8025", false, tcp, false},
		{"unix:listgate/lmtp", true, sock, true},
		{"unix:/var/spool/postfix/listgate/lmtp", true, sock, true},
		{"local:listgate/lmtp", false, sock, true},
		{"unix:listgate/milter", true, sock, false},
		{"inet:127.0.0.1:8024", true, Endpoint{"tcp", "0.0.0.0:8024"}, true},
	} {
		ep, ok := ParseClientAddr(tc.addr, "/var/spool/postfix", tc.lmtp)
		if got := ok && Reaches(ep, tc.lg); got != tc.reach {
			t.Errorf("%q (lmtp %v) reaches %v: %v, want %v", tc.addr, tc.lmtp, tc.lg, got, tc.reach)
		}
	}
}

// FuzzParseEndpoint: every door address either parses to something that
// prints back in Postfix syntax and parses again to the same endpoint, or
// is an error naming the flag.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"inet:127.0.0.1:8024", "unix:/var/spool/postfix/listgate/lmtp", "127.0.0.1:25",
		"inet:[::1]:8025", "inet::25", "unix:", "tcp:1.2.3.4:5", "inet:host", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		e, on, err := ParseEndpoint("lmtp", v)
		if err != nil {
			if !strings.Contains(err.Error(), "--lmtp") {
				t.Errorf("error does not name the flag: %v", err)
			}
			return
		}
		if !on {
			if v != "" {
				t.Errorf("%q turned the door off", v)
			}
			return
		}
		again, on2, err := ParseEndpoint("lmtp", e.String())
		if err != nil || !on2 || again != e {
			t.Errorf("%q -> %v -> %v, %v, %v", v, e, again, on2, err)
		}
	})
}
