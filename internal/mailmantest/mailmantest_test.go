package mailmantest_test

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/listgate/listgate/internal/mailmantest"
)

// queued is how long a message may take from the LMTP runner's 250 to its
// queue file (it is written before the 250; this is slack for a slow disk).
const queued = 10 * time.Second

func message(rcpt, id string) []byte {
	return []byte("From: Anne <anne@example.net>\r\n" +
		"To: " + rcpt + "\r\n" +
		"Subject: mailmantest " + id + "\r\n" +
		"Message-ID: <" + id + "@example.net>\r\n" +
		"\r\n" +
		"Hello.\r\n")
}

// TestMailman starts a private Mailman and checks what the tests that use
// it rely on: REST shows a list made with "mailman create" and the
// instance's MTA settings; the LMTP runner queues a post, a -request mail
// and a VERP bounce exactly once each in in, command and bounces, and
// refuses unknown lists and sub-addresses at RCPT; Mailman stopped is down
// and started again keeps lists and queues; the cleanup leaves no process.
func TestMailman(t *testing.T) {
	mailmantest.Require(t)
	t.Parallel()
	var dir, cfgFile, restAddr, lmtpAddr string
	ok := t.Run("instance", func(t *testing.T) {
		mm := mailmantest.Start(t, mailmantest.Options{})
		dir, cfgFile, restAddr, lmtpAddr = mm.Dir, mm.ConfigFile, mm.RESTAddr, mm.LMTPAddr
		for _, port := range []string{"8001", "8024", "8025"} {
			if strings.HasSuffix(mm.RESTAddr, ":"+port) || strings.HasSuffix(mm.LMTPAddr, ":"+port) {
				t.Errorf("instance uses listgate's or Mailman's default port %s (REST %s, LMTP %s)", port, mm.RESTAddr, mm.LMTPAddr)
			}
		}
		if want := "inet:" + mm.LMTPAddr; mm.LMTP != want {
			t.Errorf("LMTP = %q, want %q", mm.LMTP, want)
		}
		if want := "http://" + mm.RESTUser + ":" + mm.RESTPassword + "@" + mm.RESTAddr; mm.REST != want || mm.RESTPassword == "" {
			t.Errorf("REST = %q, want %q with a password", mm.REST, want)
		}

		mm.CreateList(t, "announce@example.org")
		mm.CreateDomain(t, "example.com", "lists.example.com")

		t.Run("rest", func(t *testing.T) {
			lists := mm.Lists(t)
			want := mailmantest.List{FQDNListname: "announce@example.org", ListID: "announce.example.org", ListName: "announce", MailHost: "example.org"}
			if len(lists) != 1 || lists[0] != want {
				t.Errorf("GET /3.1/lists: %+v, want [%+v]", lists, want)
			}
			domains := map[string]string{}
			for _, d := range mm.Domains(t) {
				domains[d.MailHost] = d.AliasDomain
			}
			if alias, ok := domains["example.org"]; !ok || alias != "" || domains["example.com"] != "lists.example.com" || len(domains) != 2 {
				t.Errorf("GET /3.1/domains: mail_host to alias_domain %v, want example.org (no alias) and example.com (lists.example.com)", domains)
			}
			_, port, _ := net.SplitHostPort(mm.LMTPAddr)
			if mta := mm.MTAConfig(t); mta.LMTPHost != "127.0.0.1" || mta.LMTPPort != port || mta.VERPDelimiter != "+" {
				t.Errorf("GET /3.1/system/configuration/mta: %+v, want lmtp_host 127.0.0.1, lmtp_port %s, verp_delimiter +", mta, port)
			}

			req, _ := http.NewRequest(http.MethodGet, "http://"+mm.RESTAddr+"/3.1/lists", nil)
			req.SetBasicAuth(mm.RESTUser, "wrong")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET /3.1/lists with a wrong password: %s, want 401", resp.Status)
			}
		})

		t.Run("lmtp", func(t *testing.T) {
			for _, tc := range []struct {
				rcpt  string
				code  int // 0: accepted
				queue string
			}{
				{"announce@example.org", 0, "in"},
				{"announce-request@example.org", 0, "command"},
				{"announce-bounces+anne=example.net@example.org", 0, "bounces"},
				{"nosuch@example.org", 550, ""},
				{"announce-bogus@example.org", 550, ""},
			} {
				err := mm.Deliver("anne@example.net", tc.rcpt, message(tc.rcpt, "lmtp."+tc.rcpt))
				var serr *smtp.SMTPError
				switch {
				case tc.code == 0 && err != nil:
					t.Errorf("Deliver to %s: %v, want 250", tc.rcpt, err)
				case tc.code != 0 && (!errors.As(err, &serr) || serr.Code != tc.code):
					t.Errorf("Deliver to %s: %v, want %d", tc.rcpt, err, tc.code)
				}
			}
			for _, tc := range []struct {
				queue, rcpt string
				data        map[string]any
			}{
				{"in", "announce@example.org", map[string]any{"to_list": true}},
				{"command", "announce-request@example.org", map[string]any{"to_request": true, "subaddress": "request"}},
				{"bounces", "announce-bounces+anne=example.net@example.org", map[string]any{"subaddress": "bounces"}},
			} {
				msgs := mm.WaitQueue(t, tc.queue, 1, queued)
				msg := msgs[0]
				if got, want := msg.Get("Message-ID"), "<lmtp."+tc.rcpt+"@example.net>"; got != want {
					t.Errorf("queue %s: Message-ID %q, want %q", tc.queue, got, want)
				}
				if got := msg.Values("X-MailFrom"); len(got) != 1 || got[0] != "anne@example.net" {
					t.Errorf("queue %s: X-MailFrom %q, want one, the envelope sender", tc.queue, got)
				}
				if msg.Get("Message-ID-Hash") == "" {
					t.Errorf("queue %s: no Message-ID-Hash", tc.queue)
				}
				if !strings.Contains(string(msg.Raw), "\nSubject: mailmantest lmtp."+tc.rcpt+"\n") || !strings.HasSuffix(string(msg.Raw), "\n\nHello.\n") {
					t.Errorf("queue %s: raw message\n%s", tc.queue, msg.Raw)
				}
				if msg.Data["listid"] != "announce.example.org" {
					t.Errorf("queue %s: listid %v, want announce.example.org", tc.queue, msg.Data["listid"])
				}
				for k, v := range tc.data {
					if msg.Data[k] != v {
						t.Errorf("queue %s: msgdata %s = %v, want %v (msgdata %v)", tc.queue, k, msg.Data[k], v, msg.Data)
					}
				}
			}
			for _, q := range []string{"in", "command", "bounces", "shunt", "bad", "virgin", "out"} {
				want := 0
				if q == "in" || q == "command" || q == "bounces" {
					want = 1
				}
				if n := mm.QueueLen(t, q); n != want {
					t.Errorf("queue %s holds %d entries, want %d", q, n, want)
				}
			}
		})

		t.Run("stop and start again", func(t *testing.T) {
			mm.Stop(t)
			if mm.Running() {
				t.Error("Running after Stop")
			}
			for _, addr := range []string{mm.RESTAddr, mm.LMTPAddr} {
				if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					c.Close()
					t.Errorf("%s accepts connections with Mailman stopped", addr)
				}
			}
			if n := mm.QueueLen(t, "in"); n != 1 {
				t.Errorf("queue in holds %d entries with Mailman stopped, want 1", n)
			}

			mm.Restart(t)
			if lists := mm.Lists(t); len(lists) != 1 || lists[0].FQDNListname != "announce@example.org" {
				t.Errorf("lists after a restart: %+v", lists)
			}
			if err := mm.Deliver("", "announce@example.org", message("announce@example.org", "again")); err != nil {
				t.Errorf("Deliver after a restart: %v", err)
			}
			msgs := mm.WaitQueue(t, "in", 2, queued)
			if got, from := msgs[1].Get("Message-ID"), msgs[1].Values("X-MailFrom"); got != "<again@example.net>" || len(from) != 1 || from[0] != "<>" {
				t.Errorf("second post in queue in: Message-ID %q, X-MailFrom %q, want <again@example.net> and one X-MailFrom: <> (the null sender)", got, from)
			}
		})

		t.Run("remove", func(t *testing.T) {
			mm.RemoveList(t, "announce@example.org")
			if lists := mm.Lists(t); len(lists) != 0 {
				t.Errorf("lists after mailman remove: %+v", lists)
			}
			err := mm.Deliver("anne@example.net", "announce@example.org", message("announce@example.org", "removed"))
			if serr := (*smtp.SMTPError)(nil); !errors.As(err, &serr) || serr.Code != 550 {
				t.Errorf("Deliver to a removed list: %v, want 550", err)
			}
		})
	})
	if !ok || dir == "" {
		return
	}

	// The cleanup of "instance" has run: nothing of it is left.
	if pids := processesOf(t, dir); pids != "" {
		t.Errorf("processes of %s left after cleanup:\n%s", cfgFile, pids)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left after cleanup: %v", dir, err)
	}
	for _, addr := range []string{restAddr, lmtpAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after cleanup", addr)
		}
	}
}

// processesOf lists the processes of the user list whose command line
// names dir, as pgrep shows them ("" if none).
func processesOf(t *testing.T, dir string) string {
	t.Helper()
	pgrep, err := exec.LookPath("pgrep")
	if err != nil {
		t.Skipf("no pgrep to look for processes left: %v", err)
	}
	out, err := exec.Command(pgrep, "-a", "-u", "list", "-f", dir).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return "" // none
	}
	if err != nil {
		t.Fatalf("pgrep: %v", err)
	}
	return string(out)
}

// TestTwoInstances: two instances run side by side, each with its own
// ports, lists and queues (tests of different packages run in parallel),
// and one killed and started again leaves the other be.
func TestTwoInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two Mailman instances")
	}
	t.Parallel()
	a := mailmantest.Start(t, mailmantest.Options{})
	b := mailmantest.Start(t, mailmantest.Options{})
	a.CreateList(t, "a@example.org")
	b.CreateList(t, "b@example.org")

	a.Kill(t)
	if a.Running() {
		t.Error("Running after Kill")
	}
	if c, err := net.DialTimeout("tcp", a.LMTPAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s accepts connections after Kill", a.LMTPAddr)
	}
	if err := b.Deliver("anne@example.net", "b@example.org", message("b@example.org", "b")); err != nil {
		t.Errorf("instance b with a killed: %v", err)
	}
	a.Restart(t) // breaks the master lock the killed master left
	if err := a.Deliver("anne@example.net", "a@example.org", message("a@example.org", "a")); err != nil {
		t.Errorf("instance a restarted after Kill: %v", err)
	}
	for i, mm := range []*mailmantest.Mailman{a, b} {
		name, other := []string{"a", "b"}[i], []string{"b", "a"}[i]
		if lists := mm.Lists(t); len(lists) != 1 || lists[0].FQDNListname != name+"@example.org" {
			t.Errorf("instance %s: lists %+v", name, lists)
		}
		if err := mm.Deliver("anne@example.net", other+"@example.org", message(other+"@example.org", other)); err == nil {
			t.Errorf("instance %s accepted mail for the other's list", name)
		}
		if got := mm.WaitQueue(t, "in", 1, queued)[0].Get("Message-ID"); got != "<"+name+"@example.net>" {
			t.Errorf("instance %s: queue in holds %s", name, got)
		}
	}
}
