package daemon

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/config"
	"github.com/listgate/listgate/internal/testutil"
	"github.com/listgate/listgate/postconf"
)

// The policy and socketmap doors as the daemon runs them: over real TCP
// and unix sockets, answering from the lists directory the daemon
// watches, the transport map naming the daemon's own LMTP door. The
// protocols themselves are package postfix's tests; these check the
// wiring.

// policyClient speaks SMTPD_POLICY_README's protocol on one connection.
type policyClient struct {
	c net.Conn
	r *bufio.Reader
}

func dialDoor(t *testing.T, addr string) net.Conn {
	t.Helper()
	network, address := "tcp", strings.TrimPrefix(addr, "inet:")
	if a, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, address = "unix", a
	}
	c, err := net.DialTimeout(network, address, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// ask sends one RCPT-state request for rcpt and returns the action.
func (p *policyClient) ask(t *testing.T, rcpt string) string {
	t.Helper()
	fmt.Fprintf(p.c, "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nsender=anne@example.net\nrecipient=%s\n\n", rcpt)
	line, err := p.r.ReadString('\n')
	if err != nil {
		t.Fatalf("policy reply for %s: %v", rcpt, err)
	}
	if end, err := p.r.ReadString('\n'); err != nil || end != "\n" {
		t.Fatalf("policy reply for %s: %q then %q, %v: want an empty line", rcpt, line, end, err)
	}
	return strings.TrimSuffix(strings.TrimPrefix(line, "action="), "\n")
}

// lookup asks a socketmap_table(5) server "name key" and returns its
// reply.
func lookup(t *testing.T, c net.Conn, r *bufio.Reader, name, key string) string {
	t.Helper()
	q := name + " " + key
	fmt.Fprintf(c, "%d:%s,", len(q), q)
	n, err := r.ReadString(':')
	if err != nil {
		t.Fatalf("socketmap reply to %q: %v", q, err)
	}
	size, err := strconv.Atoi(strings.TrimSuffix(n, ":"))
	if err != nil {
		t.Fatalf("socketmap reply to %q: length %q", q, n)
	}
	b := make([]byte, size+1)
	if _, err := io.ReadFull(r, b); err != nil || b[size] != ',' {
		t.Fatalf("socketmap reply to %q: %q, %v", q, b, err)
	}
	return string(b[:size])
}

// shortDir is a directory for unix sockets with a path short enough for
// sun_path (t.TempDir's can be longer than 107 bytes).
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "lg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestPolicyAndSocketmapDoors(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			s := settings(t)
			if err := os.WriteFile(filepath.Join(s.Lists, "@example.org"), []byte("postmaster = \"hostmaster@example.net\"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			s.Policy, s.Socketmap = loopback0, loopback0
			if network == "unix" {
				dir := shortDir(t)
				s.LMTP = postconf.Endpoint{Network: "unix", Address: filepath.Join(dir, "lmtp")}
				s.Policy = postconf.Endpoint{Network: "unix", Address: filepath.Join(dir, "policy")}
				s.Socketmap = postconf.Endpoint{Network: "unix", Address: filepath.Join(dir, "socketmap")}
			}
			r := start(t, s)
			for _, door := range []string{"policy", "socketmap"} {
				a := r.Addr(door)
				if network == "tcp" && (!strings.HasPrefix(a, "inet:127.0.0.1:") || strings.HasSuffix(a, ":0")) ||
					network == "unix" && a != s.Endpoint(door).String() {
					t.Errorf("Addr(%s) = %q", door, a)
				}
			}

			p := &policyClient{c: dialDoor(t, r.Addr("policy"))}
			p.r = bufio.NewReader(p.c)
			for rcpt, want := range map[string]string{
				"tour@example.org":         "DUNNO",
				"<Tour+x@Example.ORG>":     "DUNNO",
				"postmaster@example.org":   "DUNNO",
				"nosuchlist@example.org":   "550 5.1.1 ",
				"someone@elsewhere.test":   "DUNNO",
				"tour-request@example.org": "DUNNO",
			} {
				if got := p.ask(t, rcpt); !strings.HasPrefix(got, want) {
					t.Errorf("policy %s: action=%s, want %q...", rcpt, got, want)
				}
			}

			c := dialDoor(t, r.Addr("socketmap"))
			br := bufio.NewReader(c)
			for _, tc := range []struct{ name, key, want string }{
				{"domains", "example.org", "OK "},
				{"domains", "elsewhere.test", "NOTFOUND "},
				{"recipients", "tour+x@example.org", "OK "},
				{"recipients", "nosuchlist@example.org", "NOTFOUND "},
				{"transport", "Tour@Example.ORG", "OK lmtp:" + r.Addr("lmtp")},
				{"transport", "nosuchlist@example.org", "NOTFOUND "},
				{"aliases", "postmaster@example.org", "OK hostmaster@example.net"},
				{"aliases", "tour@example.org", "NOTFOUND "},
			} {
				got := lookup(t, c, br, tc.name, tc.key)
				exact := tc.name == "transport" && strings.HasPrefix(tc.want, "OK") || tc.name == "aliases"
				if exact && got != tc.want || !exact && !strings.HasPrefix(got, tc.want) {
					t.Errorf("socketmap %s %s: %q, want %q", tc.name, tc.key, got, tc.want)
				}
			}

			// Both answer from the watched lists directory: a new
			// domain is served at the next lookup, with no restart.
			if err := os.WriteFile(filepath.Join(s.Lists, "news@example.com"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, 5*time.Second, "the socketmap to serve example.com", func() bool {
				return strings.HasPrefix(lookup(t, c, br, "domains", "example.com"), "OK ")
			})
			if got := p.ask(t, "nosuchlist@example.com"); !strings.HasPrefix(got, "550 5.1.1 ") {
				t.Errorf("policy nosuchlist@example.com after the reload: action=%s", got)
			}

			if st, body := get(t, "http://"+r.hostPort("metrics")+"/metrics"); st != 200 ||
				!strings.Contains(body, "listgate_policy_requests_total{") || !strings.Contains(body, "listgate_socketmap_lookups_total{") {
				t.Errorf("/metrics: %d, lacks the policy and socketmap doors' metrics", st)
			}
			if st, body := get(t, "http://"+r.hostPort("metrics")+"/readyz"); st != 200 {
				t.Errorf("/readyz: %d %q", st, body)
			}

			if err := r.stop(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
			for _, door := range []string{"policy", "socketmap"} {
				ep := s.Endpoint(door)
				if network == "unix" {
					if _, err := os.Stat(ep.Address); !os.IsNotExist(err) {
						t.Errorf("%s socket left behind: %v", door, err)
					}
					continue
				}
				if c, err := net.Dial("tcp", strings.TrimPrefix(r.Addr(door), "inet:")); err == nil {
					c.Close()
					t.Errorf("%s door still accepts after Run returned", door)
				}
			}
		})
	}
}

// With the LMTP door off, the socketmap's transport map answers nothing:
// there is no door of listgate's to send the mail to.
func TestSocketmapWithoutLMTP(t *testing.T) {
	s := settings(t)
	s.LMTP, s.Milter, s.Socketmap = postconf.Endpoint{}, postconf.Endpoint{}, loopback0
	r := start(t, s)
	c := dialDoor(t, r.Addr("socketmap"))
	br := bufio.NewReader(c)
	if got := lookup(t, c, br, "transport", "tour@example.org"); got != "NOTFOUND " {
		t.Errorf("transport tour@example.org: %q, want NOTFOUND", got)
	}
	if got := lookup(t, c, br, "recipients", "tour@example.org"); !strings.HasPrefix(got, "OK ") {
		t.Errorf("recipients tour@example.org: %q, want OK", got)
	}
}

// Readiness covers the new doors like the others: before Run, every
// door, policy and socketmap included, is named as not serving.
func TestNotReadyNamesEveryDoor(t *testing.T) {
	s := settings(t)
	s.Policy, s.Socketmap = loopback0, loopback0
	d, err := New(Config{Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	why := strings.Join(d.notReady(), "\n")
	for _, door := range []string{"lmtp", "milter", "policy", "socketmap", "metrics"} {
		if !strings.Contains(why, door+" door ("+d.Addr(door)+"): not serving") {
			t.Errorf("notReady does not name the %s door:\n%s", door, why)
		}
	}
}

// The socketmap's transport map names the LMTP door as Postfix's lmtp(8)
// reaches it.
func TestTransportLMTP(t *testing.T) {
	for _, tc := range []struct {
		lmtp postconf.Endpoint
		want string
	}{
		{postconf.Endpoint{}, ""},
		{postconf.Endpoint{Network: "unix", Address: "/var/spool/postfix/listgate/lmtp"}, "unix:listgate/lmtp"},
		{postconf.Endpoint{Network: "unix", Address: "/run/listgate/lmtp"}, "unix:/run/listgate/lmtp"},
	} {
		d := &Daemon{}
		if config.On(tc.lmtp) {
			d.doors = []*door{{name: "lmtp", ep: tc.lmtp}}
		}
		got := ""
		if ep := d.transportLMTP(); config.On(ep) {
			got = ep.String()
		}
		if got != tc.want {
			t.Errorf("LMTP %v: transport %q, want %q", tc.lmtp, got, tc.want)
		}
	}
}
