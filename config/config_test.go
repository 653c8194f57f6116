package config

import (
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/postconf"
	"github.com/listgate/listgate/spool"
)

// TestParse: every key read from a file, and every kind of mistake named
// with the file, the line and the key.
func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		check   func(t *testing.T, s Settings)
		wantErr string
	}{
		{"empty file: defaults", "", func(t *testing.T, s Settings) {
			if d := Defaults(); s.Lists != d.Lists || s.Spool != d.Spool || s.LMTP != d.LMTP || s.File != "/etc/lg/listgate.toml" {
				t.Errorf("got %+v, want the defaults", s)
			}
		}, ""},
		{"every key", `lists = "/srv/lists"
recipient_delimiter = "none"
spool = "/srv/spool"
spool_reserve = "5%"
lmtp = "unix:/run/listgate/lmtp"
milter = "127.0.0.1:9025"
policy = "inet:127.0.0.1:8026"
socketmap = "unix:/run/listgate/socketmap"
metrics = "inet:[::1]:9100"
max_message_size = "10MB"
max_recipients = 500
command_timeout = "2m"
min_data_rate = 1000
max_connections = 200
max_connections_per_client = 50
milter_idle_timeout = "1h"
hostname = "mx.example.org"
log_level = "debug"
log_format = "json"
shutdown_timeout = "5s"
rescan_interval = "0s"
default_next_hop = "lmtp:unix:/run/mailman3/lmtp"
forward_concurrency = 2
forward_timeout = "2m"
forward_scan_interval = "30s"
forward_unready_after = "0s"
mailman = "http://restadmin:s3cret@127.0.0.1:8001/3.1"
mailman_credentials_file = ""
mailman_poll_interval = "2s"
mailman_lmtp = "inet:127.0.0.1:8026"
mailman_domains = ["example.org", "bücher.example"]
mailman_unready_after = "0s"
canary_smtp = "inet:127.0.0.1:25"
canary_interval = "200ms"
canary_timeout = "5s"
canary_list = "announce@example.org"
canary_sender = "canary@example.org"
observe = true
`, func(t *testing.T, s Settings) {
			want := Settings{
				Lists: "/srv/lists", RecipientDelimiter: "none", Spool: "/srv/spool", SpoolReserve: spool.Reserve{Percent: 5},
				LMTP:           postconf.Endpoint{Network: "unix", Address: "/run/listgate/lmtp"},
				Milter:         postconf.Endpoint{Network: "tcp", Address: "127.0.0.1:9025"},
				Policy:         postconf.Endpoint{Network: "tcp", Address: "127.0.0.1:8026"},
				Socketmap:      postconf.Endpoint{Network: "unix", Address: "/run/listgate/socketmap"},
				Metrics:        postconf.Endpoint{Network: "tcp", Address: "[::1]:9100"},
				MaxMessageSize: 10_000_000, MaxRecipients: 500,
				CommandTimeout: 2 * time.Minute, MinDataRate: 1000, MaxConnections: 200, MaxConnectionsPerClient: 50,
				MilterIdleTimeout: time.Hour, Hostname: "mx.example.org", LogLevel: -4, LogFormat: "json",
				ShutdownTimeout: 5 * time.Second, RescanInterval: 0, File: "/etc/lg/listgate.toml",
				DefaultNextHop:     lists.NextHop{Transport: lists.LMTP, Endpoint: postconf.Endpoint{Network: "unix", Address: "/run/mailman3/lmtp"}},
				ForwardConcurrency: 2, ForwardTimeout: 2 * time.Minute, ForwardScanInterval: 30 * time.Second,
				Mailman: "http://restadmin:s3cret@127.0.0.1:8001/3.1", MailmanPollInterval: 2 * time.Second,
				MailmanLMTP:    postconf.Endpoint{Network: "tcp", Address: "127.0.0.1:8026"},
				MailmanDomains: []string{"example.org", "bücher.example"},
				CanarySMTP:     postconf.Endpoint{Network: "tcp", Address: "127.0.0.1:25"},
				CanaryInterval: 200 * time.Millisecond, CanaryTimeout: 5 * time.Second,
				CanaryList: "announce@example.org", CanarySender: "canary@example.org",
				Observe: true,
			}
			s.origin = nil
			if !reflect.DeepEqual(s, want) {
				t.Errorf("got  %+v\nwant %+v", s, want)
			}
		}, ""},
		{"relative paths: from the file's directory", "lists = \"lists\"\nspool = \"../spool\"\nlmtp = \"unix:run/lmtp\"\n", func(t *testing.T, s Settings) {
			if s.Lists != "/etc/lg/lists" || s.Spool != "/etc/spool" || s.LMTP.Address != "/etc/lg/run/lmtp" {
				t.Errorf("lists %q spool %q lmtp %q", s.Lists, s.Spool, s.LMTP)
			}
		}, ""},
		{"policy and socketmap: off by default, relative unix paths from the file", "policy = \"unix:run/policy\"\n", func(t *testing.T, s Settings) {
			if s.Policy != (postconf.Endpoint{Network: "unix", Address: "/etc/lg/run/policy"}) || On(s.Socketmap) || On(Defaults().Policy) {
				t.Errorf("policy %v, socketmap %v, default policy %v", s.Policy, s.Socketmap, Defaults().Policy)
			}
		}, ""},
		{"default reserve", "", func(t *testing.T, s Settings) {
			if s.SpoolReserve != (spool.Reserve{Auto: true}) {
				t.Errorf("spool_reserve %+v, want auto", s.SpoolReserve)
			}
		}, ""},
		{"reserve in bytes", "spool_reserve = 536870912\n", func(t *testing.T, s Settings) {
			if s.SpoolReserve != (spool.Reserve{Bytes: 512 << 20}) {
				t.Errorf("spool_reserve %+v", s.SpoolReserve)
			}
		}, ""},
		{"reserve with a unit", "spool_reserve = \"512MiB\"\n", func(t *testing.T, s Settings) {
			if s.SpoolReserve != (spool.Reserve{Bytes: 512 << 20}) {
				t.Errorf("spool_reserve %+v", s.SpoolReserve)
			}
		}, ""},
		{"no reserve", "spool_reserve = 0\n", func(t *testing.T, s Settings) {
			if !s.SpoolReserve.IsZero() {
				t.Errorf("spool_reserve %+v, want none", s.SpoolReserve)
			}
		}, ""},
		{"integer size", "max_message_size = 1048576\n", func(t *testing.T, s Settings) {
			if s.MaxMessageSize != 1<<20 {
				t.Errorf("max_message_size %d", s.MaxMessageSize)
			}
		}, ""},
		{"origin and IsSet", "\n\nspool = \"/s\"\n", func(t *testing.T, s Settings) {
			if got := s.Origin("spool"); got != "/etc/lg/listgate.toml:3: spool" {
				t.Errorf("Origin(spool) = %q", got)
			}
			if got := s.Origin("lists"); got != "--lists" || s.IsSet("lists") || !s.IsSet("spool") {
				t.Errorf("Origin(lists) = %q, IsSet(lists) %v", got, s.IsSet("lists"))
			}
		}, ""},

		{"unknown key", "lists = \"x\"\n\nspol = \"/tmp\"\n", nil, `listgate.toml:3: unknown key "spol"`},
		{"dotted key", "lmtp.port = 1\n", nil, `listgate.toml:1: unknown key "lmtp.port"`},
		{"table", "spool = \"/s\"\n[lmtp]\naddress = \"x\"\n", nil, `listgate.toml:2: unexpected table [lmtp]: every setting is a top-level key`},
		{"array table", "[[lists]]\n", nil, `listgate.toml:1: unexpected table [lists]: every setting is a top-level key`},
		{"wrong type: integer", "lmtp = 8024\n", nil, `listgate.toml:1: lmtp: want a string, got an integer`},
		{"wrong type: float size", "\nmax_message_size = 1.5\n", nil, `listgate.toml:2: max_message_size: want bytes (an integer) or a string such as "10MB", got a float`},
		{"wrong type: duration", "shutdown_timeout = 30\n", nil, `listgate.toml:1: shutdown_timeout: want a string such as "30s" or "5m", got an integer`},
		{"wrong type: inline table", "spool = {dir = \"x\"}\n", nil, `listgate.toml:1: spool: want a string, got a table`},
		{"wrong type: array", "lists = [\"a\"]\n", nil, `listgate.toml:1: lists: want a string, got an array`},
		{"bad address", "milter = \"tcp:x:y\"\n", nil, `listgate.toml:1: milter "tcp:x:y": want inet:host:port or unix:/path`},
		{"bad policy address", "policy = \"tcp:x:y\"\n", nil, `listgate.toml:1: policy "tcp:x:y": want inet:host:port or unix:/path`},
		{"socketmap: empty host", "\nsocketmap = \":8027\"\n", nil, `listgate.toml:2: socketmap ":8027": give a host`},
		{"metrics: empty host", "metrics = \"inet::9100\"\n", nil, `listgate.toml:1: metrics "inet::9100": give a host (127.0.0.1 for loopback; 0.0.0.0 to listen everywhere)`},
		{"metrics: bare empty host", "metrics = \":9100\"\n", nil, `listgate.toml:1: metrics ":9100": give a host`},
		{"bad size", "max_message_size = \"10 parsecs\"\n", nil, `listgate.toml:1: max_message_size "10 parsecs": invalid size "10 parsecs"`},
		{"negative size", "max_message_size = -5\n", nil, `listgate.toml:1: max_message_size: invalid size "-5": negative`},
		{"zero size", "max_message_size = 0\n", nil, `listgate.toml:1: max_message_size: must be positive`},
		{"bad reserve", "spool_reserve = \"lots\"\n", nil, `listgate.toml:1: spool_reserve "lots": invalid reserve "lots": want a size (512MiB), a percent (5%), both (1%,256MiB) or auto`},
		{"reserve over 100%", "spool_reserve = \"150%\"\n", nil, `listgate.toml:1: spool_reserve "150%": invalid reserve "150%": want a percent from 0% to 100%`},
		{"negative reserve", "spool_reserve = -1\n", nil, `listgate.toml:1: spool_reserve: invalid reserve "-1"`},
		{"reserve as a float", "spool_reserve = 0.5\n", nil, `listgate.toml:1: spool_reserve: want bytes (an integer) or a string such as "512MiB", "5%" or "auto", got a float`},
		{"negative duration", "rescan_interval = \"-1s\"\n", nil, `listgate.toml:1: rescan_interval "-1s": must not be negative (0 turns the rescan off)`},
		{"zero shutdown timeout", "shutdown_timeout = \"0s\"\n", nil, `listgate.toml:1: shutdown_timeout "0s": must be positive`},
		{"bad duration", "shutdown_timeout = \"soon\"\n", nil, `listgate.toml:1: shutdown_timeout "soon": want a duration such as 30s or 5m`},
		{"bad next hop", "\ndefault_next_hop = \"smtp:x\"\n", nil, `listgate.toml:2: default_next_hop "smtp:x": want none, lmtp:inet:host:port, lmtp:unix:/path or exec:/path/to/command`},
		{"relative exec", "default_next_hop = \"exec:mlmmj-receive\"\n", nil, `listgate.toml:1: default_next_hop "exec:mlmmj-receive": the command "mlmmj-receive" must be an absolute path`},
		{"zero concurrency", "forward_concurrency = 0\n", nil, `listgate.toml:1: forward_concurrency: want a whole number from 1 to 1000`},
		{"concurrency as a float", "forward_concurrency = 1.5\n", nil, `listgate.toml:1: forward_concurrency: want an integer, got a float`},
		{"recipients below RFC 5321's 100", "max_recipients = 99\n", nil, `listgate.toml:1: max_recipients: want a whole number from 100 (RFC 5321 §4.5.3.1.8) to 1000000`},
		{"recipients as a string", "max_recipients = \"many\"\n", nil, `listgate.toml:1: max_recipients "many": want a whole number from 100 (RFC 5321 §4.5.3.1.8) to 1000000`},
		{"recipients as a float", "max_recipients = 1e3\n", nil, `listgate.toml:1: max_recipients: want an integer, got a float`},
		{"negative unready", "forward_unready_after = \"-1s\"\n", nil, `listgate.toml:1: forward_unready_after "-1s": must not be negative (0: never)`},
		{"zero scan", "forward_scan_interval = \"0s\"\n", nil, `listgate.toml:1: forward_scan_interval "0s": must be positive`},
		{"empty lists", "lists = \"\"\n", nil, `listgate.toml:1: lists: empty: name a directory`},
		{"dash delimiter", "recipient_delimiter = \"+-\"\n", nil, `listgate.toml:1: recipient_delimiter "+-": '-' separates a list from its sub-address`},
		{"bad log level", "log_level = \"loud\"\n", nil, `listgate.toml:1: log_level "loud": want debug, info, warn or error`},
		{"bad log format", "log_format = \"xml\"\n", nil, `listgate.toml:1: log_format "xml": want text or json`},
		{"bad hostname", "hostname = \"a b\"\n", nil, `listgate.toml:1: hostname "a b": want a host name without blanks`},
		{"canary: off by default, relative unix path from the file", "canary_smtp = \"unix:run/smtpd\"\n", func(t *testing.T, s Settings) {
			d := Defaults()
			if s.CanarySMTP != (postconf.Endpoint{Network: "unix", Address: "/etc/lg/run/smtpd"}) || On(d.CanarySMTP) ||
				d.CanaryInterval != time.Minute || d.CanaryTimeout != 45*time.Second || d.CanaryList != "" || d.CanarySender != "" {
				t.Errorf("canary_smtp %v; defaults %+v", s.CanarySMTP, d)
			}
		}, ""},
		{"canary: bad address", "canary_smtp = \"tcp:x:y\"\n", nil, `listgate.toml:1: canary_smtp "tcp:x:y": want inet:host:port or unix:/path`},
		{"canary: zero interval", "canary_interval = \"0s\"\n", nil, `listgate.toml:1: canary_interval "0s": must be positive`},
		{"canary: timeout as an integer", "canary_timeout = 5\n", nil, `listgate.toml:1: canary_timeout: want a string such as "30s" or "5m", got an integer`},
		{"canary: list without a domain", "canary_list = \"announce\"\n", nil, `listgate.toml:1: canary_list "announce": want local@domain`},
		{"canary: list in brackets", "canary_list = \"<a@example.org>\"\n", nil, `listgate.toml:1: canary_list "<a@example.org>": want an address without blanks`},
		{"canary: sender", "canary_sender = \"@example.org\"\n", nil, `listgate.toml:1: canary_sender "@example.org": want local@domain (empty: the null sender <>)`},
		{"observe as a word", "observe = \"yes\"\n", nil, `listgate.toml:1: observe "yes": want true or false`},
		{"observe as a number", "observe = 1\n", nil, `listgate.toml:1: observe: want a boolean (true or false), got an integer`},
		{"observe off", "observe = false\n", func(t *testing.T, s Settings) {
			if s.Observe || s.ListsOptions().Observe {
				t.Errorf("observe %v", s.Observe)
			}
		}, ""},
		{"key twice", "spool = \"/a\"\nspool = \"/b\"\n", nil, `listgate.toml:2:`},
		{"syntax error", "lists = \"/a\"\nspool = /b\n", nil, `listgate.toml:2:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/etc/lg/listgate.toml"
			if tt.wantErr != "" {
				path = "listgate.toml"
			}
			s, err := Parse(path, []byte(tt.file))
			if tt.wantErr != "" {
				var e *Error
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || !errors.As(err, &e) {
					t.Fatalf("err %v, want an *Error starting %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

// TestFlags: the file's values, flags over them, and where the file comes
// from (--config, the default file, or none).
func TestFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "listgate.toml")
	write(t, file, "lists = \"lists\"\nspool = \"/from/file\"\nmax_message_size = \"1MB\"\n")
	missing := filepath.Join(dir, "missing.toml")
	tests := []struct {
		name        string
		defaultFile string
		args        []string
		check       func(t *testing.T, s Settings)
		wantErr     string
	}{
		{"value from the file", missing, []string{"--config", file}, func(t *testing.T, s Settings) {
			if s.Lists != filepath.Join(dir, "lists") || s.Spool != "/from/file" || s.MaxMessageSize != 1e6 || s.File != file {
				t.Errorf("got %+v", s)
			}
		}, ""},
		{"a flag overrides the file", missing, []string{"--config", file, "--spool", "/from/flag", "--max-message-size", "2MB"}, func(t *testing.T, s Settings) {
			if s.Spool != "/from/flag" || s.MaxMessageSize != 2e6 || s.Lists != filepath.Join(dir, "lists") {
				t.Errorf("got %+v", s)
			}
			if s.Origin("spool") != "--spool" || s.Origin("lists") != file+":1: lists" {
				t.Errorf("origins: spool %q, lists %q", s.Origin("spool"), s.Origin("lists"))
			}
		}, ""},
		{"a flag before --config still wins", missing, []string{"--spool", "/from/flag", "--config", file}, func(t *testing.T, s Settings) {
			if s.Spool != "/from/flag" {
				t.Errorf("spool %q", s.Spool)
			}
		}, ""},
		{"the last of a flag given twice wins", missing, []string{"--spool", "/a", "--spool", "/b"}, func(t *testing.T, s Settings) {
			if s.Spool != "/b" {
				t.Errorf("spool %q", s.Spool)
			}
		}, ""},
		{"the default file, when it exists", file, nil, func(t *testing.T, s Settings) {
			if s.Spool != "/from/file" || s.File != file {
				t.Errorf("got %+v", s)
			}
		}, ""},
		{"no default file: built-in defaults", missing, nil, func(t *testing.T, s Settings) {
			if s.Lists != DefaultLists || s.Spool != DefaultSpool || s.File != "" || s.MaxMessageSize != DefaultMaxMessageSize {
				t.Errorf("got %+v", s)
			}
		}, ""},
		{"--policy and --socketmap", missing, []string{"--policy", "inet:127.0.0.1:8026", "--socketmap", "unix:sock/map"}, func(t *testing.T, s Settings) {
			wd, _ := os.Getwd()
			if s.Policy.String() != "inet:127.0.0.1:8026" || s.Socketmap.String() != "unix:"+filepath.Join(wd, "sock", "map") || s.Origin("policy") != "--policy" {
				t.Errorf("policy %v, socketmap %v", s.Policy, s.Socketmap)
			}
		}, ""},
		{"--observe takes no value", missing, []string{"--observe", "--spool", "/x"}, func(t *testing.T, s Settings) {
			if !s.Observe || !s.ListsOptions().Observe || s.Spool != "/x" || s.Origin("observe") != "--observe" || Defaults().Observe {
				t.Errorf("observe %v from %q, spool %q", s.Observe, s.Origin("observe"), s.Spool)
			}
		}, ""},
		{"--observe=false over the file", missing, []string{"--config", writeTemp(t, "observe = true\n"), "--observe=false"}, func(t *testing.T, s Settings) {
			if s.Observe {
				t.Error("observe still on")
			}
		}, ""},
		{"a bad --observe", missing, []string{"--observe=maybe"}, nil, `--observe "maybe": want true or false`},
		{"a missing --config file", file, []string{"--config", missing}, nil, `--config "` + missing + `": no such file or directory`},
		{"--spool-reserve", missing, []string{"--spool-reserve", "2.5%"}, func(t *testing.T, s Settings) {
			if s.SpoolReserve != (spool.Reserve{Percent: 2.5}) || s.Origin("spool_reserve") != "--spool-reserve" {
				t.Errorf("spool_reserve %+v from %q", s.SpoolReserve, s.Origin("spool_reserve"))
			}
		}, ""},
		{"a bad --spool-reserve", missing, []string{"--spool-reserve", "-5%"}, nil, `--spool-reserve "-5%": invalid reserve "-5%": want a percent from 0% to 100%`},
		{"a bad flag value", missing, []string{"--metrics", ":9100"}, nil, `--metrics ":9100": give a host`},
		{"a bad file under a good flag", missing, []string{"--config", writeTemp(t, "spool = 1\n"), "--spool", "/x"}, nil, `listgate.toml:1: spool: want a string, got an integer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := flag.NewFlagSet("test", flag.ContinueOnError)
			fset.SetOutput(io.Discard)
			f := AddFlags(fset, Keys()...)
			f.defaultFile = tt.defaultFile
			s, err := f.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

// TestMissingConfigIsNotExist: a caller can tell a missing file apart.
func TestMissingConfigIsNotExist(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err %v, want fs.ErrNotExist", err)
	}
}

// TestDocsNameEveryKey: docs/config.md has a row for every key, with its
// default, so the documentation cannot drift from the table the file and
// the flags are read with.
func TestDocsNameEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		def := "off"
		if k.def != "" {
			def = "`" + k.def + "`"
		}
		if k.name == "hostname" {
			def = "the system's"
		}
		row := "| `" + k.name + "` | `" + flagName(k.name) + "` | " + def + " |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/config.md lacks the row %q", row)
		}
	}
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeTemp writes content to listgate.toml in a new directory.
func writeTemp(t testing.TB, content string) string {
	path := filepath.Join(t.TempDir(), "listgate.toml")
	write(t, path, content)
	return path
}

// TestPathsAreAbsolute: a relative path in a config file named by a
// relative --config is relative to the file, one in a flag to the current
// directory, and both come out absolute, so that `listgate postfix` never
// prints a relative unix: socket (Postfix would read it against its
// queue_directory) and logs name files unambiguously.
func TestPathsAreAbsolute(t *testing.T) {
	top := t.TempDir()
	if err := os.Mkdir(filepath.Join(top, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := "lists = \"lists\"\nmilter = \"unix:sock/milter\"\n"
	if err := os.WriteFile(filepath.Join(top, "etc", "listgate.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(top)
	fset := flag.NewFlagSet("test", flag.ContinueOnError)
	f := AddFlags(fset, Keys()...)
	s, err := f.Parse([]string{"--config", "etc/listgate.toml", "--spool", "spool", "--lmtp", "unix:run/lmtp"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, got, want string }{
		{"lists (file)", s.Lists, filepath.Join(top, "etc", "lists")},
		{"milter (file)", s.Milter.Address, filepath.Join(top, "etc", "sock", "milter")},
		{"spool (flag)", s.Spool, filepath.Join(top, "spool")},
		{"lmtp (flag)", s.LMTP.Address, filepath.Join(top, "run", "lmtp")},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// TestMailmanLMTPNextHopSyntax: mailman_lmtp also takes the next hop
// syntax `listgate lists` prints (lmtp:inet:host:port).
func TestMailmanLMTPNextHopSyntax(t *testing.T) {
	for _, v := range []string{"inet:127.0.0.1:8026", "lmtp:inet:127.0.0.1:8026"} {
		s := Defaults()
		if err := s.set("mailman_lmtp", v); err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if got := s.MailmanLMTP.String(); got != "inet:127.0.0.1:8026" {
			t.Errorf("%q read as %s", v, got)
		}
	}
}
