package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMailmanKeys: the mailman keys from a file and from flags, and their
// mistakes, which never show the URL's password.
func TestMailmanKeys(t *testing.T) {
	for _, tt := range []struct{ name, file, err string }{
		{"no version", `mailman = "http://restadmin:s3cret@127.0.0.1:8001"`,
			`listgate.toml:1: mailman "http://127.0.0.1:8001": name the API version, e.g. http://127.0.0.1:8001/3.1`},
		{"scheme", `mailman = "ftp://restadmin:s3cret@127.0.0.1:8001/3.1"`, `listgate.toml:1: mailman "ftp://127.0.0.1:8001/3.1": want http:// or https://`},
		{"not a URL", `mailman = "http://restadmin:s3cret@127.0.0.1:8001/%zz"`, `listgate.toml:1: mailman "(an unparsable URL)": not a URL`},
		{"interval", `mailman_poll_interval = "0s"`, `listgate.toml:1: mailman_poll_interval "0s": must be positive`},
		{"interval type", `mailman_poll_interval = 5`, `listgate.toml:1: mailman_poll_interval: want a string such as "30s" or "5m", got an integer`},
		{"unready", `mailman_unready_after = "-1s"`, `listgate.toml:1: mailman_unready_after "-1s": must not be negative (0: never)`},
		{"lmtp", `mailman_lmtp = "tcp:x:y"`, `listgate.toml:1: mailman_lmtp "tcp:x:y": want inet:host:port or unix:/path`},
		{"domains", `mailman_domains = ["example.org", "bad..example"]`, `listgate.toml:1: mailman_domains: domain "bad..example" has an empty label`},
		{"domains type", `mailman_domains = [1]`, `listgate.toml:1: mailman_domains: want an array of domain strings, got an integer in it`},
	} {
		_, err := Parse("listgate.toml", []byte(tt.file+"\n"))
		if err == nil || err.Error() != tt.err {
			t.Errorf("%s: error\n%v\nwant\n%s", tt.name, err, tt.err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password", tt.name)
		}
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "listgate.toml")
	write(t, cfg, "mailman = \"http://127.0.0.1:8001/3.1\"\nmailman_credentials_file = \"mailman.cred\"\nmailman_domains = \"example.org, lists.example.org\"\n")
	cred := filepath.Join(dir, "mailman.cred")
	write(t, cred, "restadmin:s3cret\n")
	fset := flag.NewFlagSet("test", flag.ContinueOnError)
	s, err := AddFlags(fset, Keys()...).Parse([]string{"--config", cfg, "--mailman-lmtp", "unix:/run/mailman3/lmtp"})
	if err != nil {
		t.Fatal(err)
	}
	if s.MailmanCredentialsFile != cred || len(s.MailmanDomains) != 2 || s.MailmanLMTP.Address != "/run/mailman3/lmtp" {
		t.Errorf("settings %+v", s)
	}
	if _, err := s.MailmanOptions(); err == nil || !strings.Contains(err.Error(), "every user can read it") {
		t.Errorf("a world-readable credentials file: %v", err)
	}
	if err := os.Chmod(cred, 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := s.MailmanOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Credentials != "restadmin:s3cret" || opts.LMTP != "unix:/run/mailman3/lmtp" ||
		opts.CacheFile != filepath.Join(s.Spool, ".listgate", "mailman.json") || opts.Self != s.LMTP {
		t.Errorf("options %+v", opts)
	}
	s.Mailman = "http://restadmin:other@127.0.0.1:8001/3.1"
	if _, err := s.MailmanOptions(); err == nil || !strings.Contains(err.Error(), "both give credentials") || strings.Contains(err.Error(), "other") {
		t.Errorf("credentials twice: %v", err)
	}
	if got := s.MailmanURL(); got != "http://127.0.0.1:8001/3.1" {
		t.Errorf("MailmanURL %q", got)
	}

	fset = flag.NewFlagSet("test", flag.ContinueOnError)
	_, err = AddFlags(fset, Keys()...).Parse([]string{"--mailman", "http://restadmin:s3cret@127.0.0.1:8001"})
	if err == nil || !strings.HasPrefix(err.Error(), `--mailman "http://127.0.0.1:8001": name the API version`) {
		t.Errorf("flag: %v", err)
	}
}
