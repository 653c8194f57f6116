// Package config holds listgate's settings: the config file
// (/etc/listgate/listgate.toml, or --config FILE) and the command-line
// flags that override it. Every command reads the same Settings, so
// `listgate check`, `lists` and `postfix` judge what `listgate serve` runs.
//
// The file is TOML with one top-level key per setting; a key is the long
// flag's name with '-' turned into '_' (--max-message-size is
// max_message_size). Parsing is strict, like a list file's: an unknown key,
// a value of the wrong type or an invalid value is an error that names the
// file, the line and the key ("listgate.toml:3: unknown key \"spol\"").
// Relative paths in the file (lists, spool, unix: sockets) are relative to
// the file's directory. docs/config.md describes every key.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/listgate/listgate/lists"
	"github.com/listgate/listgate/mailman"
	"github.com/listgate/listgate/postconf"
	"github.com/listgate/listgate/spool"
)

// Built-in defaults, used where neither the config file nor a flag says
// otherwise.
const (
	// DefaultFile is the config file read when --config is not given;
	// when it does not exist, the built-in defaults apply.
	DefaultFile = "/etc/listgate/listgate.toml"
	// DefaultLists is the lists directory.
	DefaultLists = "/etc/listgate/lists"
	// DefaultSpool is the spool directory: outside any source tree.
	DefaultSpool = "/var/lib/listgate/spool"
	// DefaultMaxMessageSize is the largest message in bytes: 64 MiB.
	DefaultMaxMessageSize = 64 << 20
)

// Settings are listgate's settings. Its zero value is not useful: start
// from Defaults, Load or Flags.Settings. The address fields use Postfix's
// syntax (postconf.Endpoint); a zero Endpoint means the door is off.
type Settings struct {
	Lists              string // the lists directory (key lists)
	RecipientDelimiter string // as Postfix's recipient_delimiter; "none": no extensions
	Spool              string // the spool directory (key spool)
	// SpoolReserve is the free space the LMTP door keeps on the spool's
	// file system (key spool_reserve); Auto, the default, is
	// spool.DefaultReserve(MaxMessageSize).
	SpoolReserve spool.Reserve

	LMTP, Milter postconf.Endpoint // the doors (keys lmtp, milter)
	// Policy is Postfix's policy delegation door (SMTPD_POLICY_README),
	// Socketmap its socketmap table door (socketmap_table(5)); both off
	// by default (docs/postfix.md, "Which door").
	Policy, Socketmap postconf.Endpoint
	Metrics           postconf.Endpoint // HTTP /metrics, /healthz, /readyz

	MaxMessageSize int64 // bytes, for any address
	MaxRecipients  int   // accepted recipients per LMTP transaction
	// CommandTimeout bounds an LMTP command line, whole, and is the base
	// of a message's time; MinDataRate (bytes per second) is the slowest
	// a message may come past it (keys command_timeout, min_data_rate).
	CommandTimeout time.Duration
	MinDataRate    int64
	// MaxConnections and MaxConnectionsPerClient cap the connections each
	// door holds open, in all and per TCP client address.
	MaxConnections, MaxConnectionsPerClient int
	// MilterIdleTimeout closes a milter connection that waits this long
	// for the MTA's next packet (or for the rest of one).
	MilterIdleTimeout time.Duration
	Hostname          string        // "" means the system's host name
	LogLevel          slog.Level    // key log_level
	LogFormat         string        // "text" or "json"
	ShutdownTimeout   time.Duration // how long a shutdown waits for transactions
	RescanInterval    time.Duration // the periodic full rescan; 0 is off

	// DefaultNextHop is the next hop of a list whose list file and domain
	// file name none (key default_next_hop); Unset means none.
	DefaultNextHop      lists.NextHop
	ForwardConcurrency  int           // forwards in flight per next hop
	ForwardTimeout      time.Duration // one LMTP transaction or command run
	ForwardScanInterval time.Duration // the forwarder's full scan of the spool
	ForwardUnreadyAfter time.Duration // a next hop failing this long makes /readyz 503; 0: never
	// Mailman is GNU Mailman 3 core's REST base URL (key mailman); ""
	// is off. It may hold credentials: show it only through
	// mailman.Redact.
	Mailman                string
	MailmanCredentialsFile string            // user:password for Mailman's REST API
	MailmanPollInterval    time.Duration     // how often Mailman's lists are read
	MailmanLMTP            postconf.Endpoint // next hop of Mailman's lists, if not Mailman's own
	MailmanDomains         []string          // Mailman's domains, known before it first answers
	MailmanUnreadyAfter    time.Duration     // Mailman unreached this long: /readyz 503; 0 never

	// CanarySMTP is Postfix's own smtpd that the canary probes (key
	// canary_smtp, package canary); a zero Endpoint means no canary.
	CanarySMTP     postconf.Endpoint
	CanaryInterval time.Duration // from one probe's start to the next's
	CanaryTimeout  time.Duration // one probe, connect included
	CanaryList     string        // the list address to probe; "" picks one
	CanarySender   string        // MAIL FROM of a probe; "" is <>
	// Observe puts every served domain whose domain file sets no mode
	// in observe mode (key observe, flag --observe; docs/lists.md,
	// "Observe mode"): unknown addresses are let through and counted.
	Observe bool

	// File is the config file these settings were read from, "" if none.
	File string

	origin map[string]string // key -> "--flag" or "FILE:LINE"
}

// key describes one setting: its name in the file (the flag's name with
// '_' for '-'), its default in the flag's syntax, and its flag's usage.
type key struct {
	name, def, usage string
}

// keys are every setting, in the order of docs/config.md.
var keys = []key{
	{"lists", DefaultLists, "the lists `directory`: one file per list"},
	{"recipient_delimiter", lists.DefaultDelimiter, "characters that start an address extension, as Postfix's recipient_delimiter (\"none\": no extensions)"},
	{"spool", DefaultSpool, "the spool `directory`: one Maildir per list and sub-address"},
	{"spool_reserve", "auto", "free space to keep on the spool's file system (`bytes or percent`: 512MiB, 5%; auto: the larger of 1% and twice max_message_size; 0: none): below it, the LMTP door answers RCPT 452 4.3.1 and Postfix keeps the mail queued"},
	{"lmtp", "inet:127.0.0.1:8024", "LMTP sink `address` (inet:host:port or unix:/path; empty: off)"},
	{"milter", "inet:127.0.0.1:8025", "milter `address` (inet:host:port or unix:/path; empty: off)"},
	{"policy", "", "Postfix policy delegation `address` (inet:host:port or unix:/path; empty: off) for check_policy_service, instead of the milter"},
	{"socketmap", "", "Postfix socketmap table `address` (inet:host:port or unix:/path; empty: off): maps domains, recipients, transport and aliases for relay_domains, relay_recipient_maps, transport_maps and virtual_alias_maps"},
	{"metrics", "", "HTTP `address` (inet:host:port or unix:/path) for /metrics, /healthz and /readyz (empty: off)"},
	{"max_message_size", "64MiB", "largest message in `bytes` for any address (units: MB, MiB, ...); keep Postfix's message_size_limit at or below it"},
	{"max_recipients", "1000", "most recipients (`number`, at least 100) accepted in one LMTP transaction; past it 452 4.5.3, and the client sends the rest in another"},
	{"command_timeout", "5m", "how long (`duration`) an LMTP command line may take to arrive whole (Postfix's smtpd_timeout); a message may take it plus its size over min_data_rate"},
	{"min_data_rate", "500", "the slowest (`bytes per second`) an LMTP message may arrive once command_timeout is used up (Postfix's smtpd_min_data_rate)"},
	{"max_connections", "1000", "most connections (`number`) each door holds open; past it the LMTP door answers 421 4.7.0, the others close"},
	{"max_connections_per_client", "500", "most connections (`number`) each door holds open from one TCP client address (unix socket peers: max_connections only)"},
	{"milter_idle_timeout", "2h0m10s", "how long (`duration`) a milter connection may wait for the MTA's next packet before it is closed (libmilter's default, 7210s)"},
	{"hostname", "", "host `name` for LHLO's greeting, Received headers and Maildir names (default: the system's)"},
	{"log_level", "info", "log `level`: debug, info, warn or error"},
	{"log_format", "text", "log `format`: text or json"},
	{"shutdown_timeout", "30s", "how long a shutdown waits for transactions in flight (`duration`, must be positive)"},
	{"rescan_interval", "5m", "period (`duration`) of the safety-net full rescan of the lists directory (NFS gives no events); 0 turns it off"},
	{"default_next_hop", "none", "where accepted mail goes when neither its list file nor its domain file says (`next hop`): none, lmtp:inet:host:port, lmtp:unix:/path or exec:/path/to/command args"},
	{"forward_concurrency", "4", "forwards in flight to one next hop (`number`)"},
	{"forward_timeout", "10m", "longest LMTP transaction or command run of one forward (`duration`); past it, the forward is tried again later"},
	{"forward_scan_interval", "1m", "period (`duration`) of the forwarder's full scan of the spool, which finds mail no delivery announced (after a crash, `listgate spool retry`)"},
	{"forward_unready_after", "10m", "a next hop failing for this long (`duration`) makes /readyz answer 503; 0: never"},
	{"mailman", "", "GNU Mailman 3 core's REST `URL` with its API version, e.g. http://127.0.0.1:8001/3.1: serve Mailman's lists as if list files declared them (docs/mailman.md); credentials as user:password@ or in mailman_credentials_file"},
	{"mailman_credentials_file", "", "`file` holding Mailman's REST user:password ([webservice] admin_user and admin_pass); must not be readable by every user"},
	{"mailman_poll_interval", "5s", "how often (`duration`) Mailman's lists are read: a list created in Mailman is accepted within it"},
	{"mailman_lmtp", "", "next hop `address` of Mailman's lists (inet:host:port or unix:/path), instead of the LMTP runner Mailman's REST API names"},
	{"mailman_domains", "", "Mailman's mail `domains`, comma-separated: served before Mailman first answers (with no cache), their unknown addresses tempfailing"},
	{"mailman_unready_after", "10m", "Mailman not reached for this long (`duration`) makes /readyz answer 503 (listgate serves its last good lists meanwhile); 0: never"},
	{"canary_smtp", "", "Postfix's own SMTP `address` (inet:host:port, e.g. inet:127.0.0.1:25) to probe every canary_interval: a list must be accepted at RCPT TO and a bogus address refused, else /readyz answers 503 (empty: no canary)"},
	{"canary_interval", "1m", "time (`duration`) from one canary probe's start to the next's"},
	{"canary_timeout", "45s", "longest (`duration`) one canary probe may take, connect included"},
	{"canary_list", "", "list `address` the canary probes (default: the first list of the lists directory); the bogus address is in its domain"},
	{"canary_sender", "", "MAIL FROM `address` of the canary's probes (default: the null sender <>)"},
	{"observe", "false", "observe mode for every served domain whose domain file sets no mode: unknown addresses are let through at RCPT, logged and counted (listgate_would_refuse_total), not refused"},
}

func lookup(name string) (key, bool) {
	for _, k := range keys {
		if k.name == name {
			return k, true
		}
	}
	return key{}, false
}

// Defaults returns the built-in settings.
func Defaults() Settings {
	var s Settings
	for _, k := range keys {
		if err := s.set(k.name, k.def); err != nil {
			panic(fmt.Sprintf("config: default %s = %q: %v", k.name, k.def, err))
		}
	}
	return s
}

// set parses v, in the flag's syntax, as the value of the key name.
// Errors say what is wrong with the value; the caller says where it is.
func (s *Settings) set(name, v string) error {
	switch name {
	case "lists", "spool":
		if v == "" {
			return errors.New("empty: name a directory")
		}
		if name == "lists" {
			s.Lists = v
		} else {
			s.Spool = v
		}
	case "spool_reserve":
		r, err := spool.ParseReserve(v)
		if err != nil {
			return err
		}
		s.SpoolReserve = r
	case "recipient_delimiter":
		if err := checkDelimiter(v); err != nil {
			return err
		}
		s.RecipientDelimiter = v
	case "lmtp", "milter", "policy", "socketmap", "metrics":
		ep, _, err := postconf.ParseEndpoint(name, v)
		if err != nil {
			// ParseEndpoint names the flag and the value; the caller
			// names them (or the file, line and key) itself.
			return errors.New(strings.TrimPrefix(err.Error(), fmt.Sprintf("%s %q: ", flagName(name), v)))
		}
		*s.Endpoint(name) = ep
	case "max_message_size":
		n, err := lists.ParseSize(v)
		if err != nil {
			return err
		}
		if n <= 0 {
			return errors.New("must be positive")
		}
		s.MaxMessageSize = n
	case "max_recipients":
		// RFC 5321 §4.5.3.1.8: a server buffers at least 100 recipients.
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 || n > 1000000 {
			return errors.New("want a whole number from 100 (RFC 5321 §4.5.3.1.8) to 1000000")
		}
		s.MaxRecipients = n
	case "command_timeout", "milter_idle_timeout":
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("want a duration such as 30s or 5m")
		}
		if d < time.Second {
			return errors.New("must be at least 1s")
		}
		if name == "command_timeout" {
			s.CommandTimeout = d
		} else {
			s.MilterIdleTimeout = d
		}
	case "min_data_rate":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > 1<<30 {
			return errors.New("want bytes per second, a whole number from 1 to 1073741824")
		}
		s.MinDataRate = n
	case "max_connections", "max_connections_per_client":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000000 {
			return errors.New("want a whole number from 1 to 1000000")
		}
		if name == "max_connections" {
			s.MaxConnections = n
		} else {
			s.MaxConnectionsPerClient = n
		}
	case "hostname":
		if strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return errors.New("want a host name without blanks or control characters")
		}
		s.Hostname = v
	case "log_level":
		if err := s.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return errors.New("want debug, info, warn or error")
		}
	case "log_format":
		if v != "text" && v != "json" {
			return errors.New("want text or json")
		}
		s.LogFormat = v
	case "default_next_hop":
		h, err := lists.ParseNextHop(v)
		if err != nil {
			return err
		}
		s.DefaultNextHop = h
	case "forward_concurrency":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return errors.New("want a whole number from 1 to 1000")
		}
		s.ForwardConcurrency = n
	case "forward_timeout", "forward_scan_interval", "forward_unready_after":
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("want a duration such as 30s or 5m")
		}
		switch {
		case name == "forward_unready_after" && d < 0:
			return errors.New("must not be negative (0: never)")
		case name != "forward_unready_after" && d <= 0:
			return errors.New("must be positive")
		case name == "forward_timeout":
			s.ForwardTimeout = d
		case name == "forward_scan_interval":
			s.ForwardScanInterval = d
		default:
			s.ForwardUnreadyAfter = d
		}
	case "mailman":
		if v != "" {
			if err := mailman.CheckURL(v); err != nil {
				return err
			}
		}
		s.Mailman = v
	case "mailman_credentials_file":
		s.MailmanCredentialsFile = v
	case "mailman_lmtp":
		// Also in the next hop syntax that `listgate lists` prints.
		ep, _, err := postconf.ParseEndpoint(strings.TrimPrefix(flagName(name), "--"), strings.TrimPrefix(v, "lmtp:"))
		if err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), fmt.Sprintf("%s %q: ", flagName(name), v)))
		}
		s.MailmanLMTP = ep
	case "mailman_domains":
		s.MailmanDomains = nil
		for d := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			if _, err := lists.CanonicalDomain(d); err != nil {
				return err
			}
			s.MailmanDomains = append(s.MailmanDomains, d)
		}
	case "mailman_poll_interval", "mailman_unready_after":
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			return errors.New("want a duration such as 5s or 10m")
		case name == "mailman_poll_interval" && d <= 0:
			return errors.New("must be positive")
		case d < 0:
			return errors.New("must not be negative (0: never)")
		case name == "mailman_poll_interval":
			s.MailmanPollInterval = d
		default:
			s.MailmanUnreadyAfter = d
		}
	case "observe":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		s.Observe = b
	case "shutdown_timeout", "rescan_interval":
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("want a duration such as 30s or 5m")
		}
		if name == "shutdown_timeout" {
			if d <= 0 {
				return errors.New("must be positive")
			}
			s.ShutdownTimeout = d
		} else {
			if d < 0 {
				return errors.New("must not be negative (0 turns the rescan off)")
			}
			s.RescanInterval = d
		}
	case "canary_smtp":
		ep, _, err := postconf.ParseEndpoint(strings.TrimPrefix(flagName(name), "--"), v)
		if err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), fmt.Sprintf("%s %q: ", flagName(name), v)))
		}
		s.CanarySMTP = ep
	case "canary_interval", "canary_timeout":
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			return errors.New("want a duration such as 30s or 1m")
		case d <= 0:
			return errors.New("must be positive")
		case name == "canary_interval":
			s.CanaryInterval = d
		default:
			s.CanaryTimeout = d
		}
	case "canary_list", "canary_sender":
		if err := checkCanaryAddress(v, name == "canary_sender"); err != nil {
			return err
		}
		if name == "canary_list" {
			s.CanaryList = v
		} else {
			s.CanarySender = v
		}
	default:
		return fmt.Errorf("unknown key %q", name)
	}
	return nil
}

// checkCanaryAddress vets an address the canary sends in MAIL FROM or
// RCPT TO: empty, or local@domain with no blank, angle bracket or control
// character (it goes between <> on one command line).
func checkCanaryAddress(v string, sender bool) error {
	if v == "" {
		return nil
	}
	at := strings.LastIndexByte(v, '@')
	switch {
	case strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '<' || r == '>' }):
		return errors.New("want an address without blanks, control characters or angle brackets")
	case at <= 0 || at == len(v)-1:
		if sender {
			return errors.New("want local@domain (empty: the null sender <>)")
		}
		return errors.New("want local@domain")
	}
	return nil
}

// checkDelimiter vets a recipient delimiter as Postfix's
// recipient_delimiter, plus listgate's own rule about '-'.
func checkDelimiter(v string) error {
	switch {
	case v == "":
		return errors.New(`empty; say "none" to turn extensions off`)
	case v == "none":
		return nil
	case strings.ContainsAny(v, "@<> \t"):
		return errors.New("'@', '<', '>' and blanks cannot be delimiters")
	case strings.Contains(v, "-"):
		return errors.New("'-' separates a list from its sub-address (list-request@, list-bounces@); " +
			"as a delimiter it would turn every sub-address into an extension of the posting address")
	}
	return nil
}

// Endpoint returns the field of the door named by key (lmtp, milter,
// policy, socketmap or metrics), or nil for another key.
func (s *Settings) Endpoint(key string) *postconf.Endpoint {
	switch key {
	case "lmtp":
		return &s.LMTP
	case "milter":
		return &s.Milter
	case "policy":
		return &s.Policy
	case "socketmap":
		return &s.Socketmap
	case "metrics":
		return &s.Metrics
	}
	return nil
}

// On reports whether the door e is on: its address is not empty.
func On(e postconf.Endpoint) bool { return e.Network != "" }

// ListsOptions returns the options that read the lists directory as these
// settings say.
func (s Settings) ListsOptions() lists.Options {
	return lists.Options{Delimiters: s.RecipientDelimiter, Observe: s.Observe}
}

// NewLogger returns a logger writing to w at LogLevel in LogFormat.
func (s Settings) NewLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.LogLevel}
	if s.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// IsSet reports whether key was set by the config file or a flag rather
// than left at its default.
func (s Settings) IsSet(key string) bool {
	_, ok := s.origin[key]
	return ok
}

// Origin says where key's value comes from, for messages about it:
// "listgate.toml:3: spool" for the config file, "--spool" for a flag or
// the default (which a flag overrides).
func (s Settings) Origin(key string) string {
	if o, ok := s.origin[key]; ok && !strings.HasPrefix(o, "--") {
		return o + ": " + key
	}
	return flagName(key)
}

func (s *Settings) setOrigin(key, where string) {
	if s.origin == nil {
		s.origin = make(map[string]string)
	}
	s.origin[key] = where
}

// flagName is the flag of a key: max_message_size is --max-message-size.
func flagName(key string) string { return "--" + strings.ReplaceAll(key, "_", "-") }

// Error is an invalid setting, in the config file or on the command
// line. Its message reads like compiler output: `listgate.toml:3: unknown
// key "spol"`, `listgate.toml:4: lmtp "tcp:x": want inet:host:port or
// unix:/path`, or for a flag `--lmtp "tcp:x": want inet:host:port or
// unix:/path`.
type Error struct {
	File  string // the config file; "" for a flag
	Line  int    // 1-based line in File; 0 when not on one line
	Key   string // the key ("lmtp") or flag ("--lmtp") at fault; "" if none
	Value string // the value at fault; "" if none or empty
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		if e.Value != "" {
			fmt.Fprintf(&b, " %q", e.Value)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Keys returns the name of every setting, for a command that takes them
// all as flags (`listgate serve`).
func Keys() []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	return names
}

// absPaths makes the paths of s absolute (lists, spool, unix: sockets),
// the ones from a flag relative to the current directory: a daemon's logs
// then name files unambiguously, and `listgate postfix` never prints a
// relative unix: path, which Postfix would read against its
// queue_directory (a different socket).
func (s *Settings) absPaths() error {
	abs := func(key string, p *string) error {
		if *p == "" || filepath.IsAbs(*p) {
			return nil
		}
		a, err := filepath.Abs(*p)
		if err != nil {
			return &Error{Key: s.Origin(key), Value: *p, Err: err}
		}
		*p = a
		return nil
	}
	if err := abs("lists", &s.Lists); err != nil {
		return err
	}
	if err := abs("spool", &s.Spool); err != nil {
		return err
	}
	if err := abs("mailman_credentials_file", &s.MailmanCredentialsFile); err != nil {
		return err
	}
	if s.MailmanLMTP.Network == "unix" {
		if err := abs("mailman_lmtp", &s.MailmanLMTP.Address); err != nil {
			return err
		}
	}
	for _, key := range []string{"lmtp", "milter", "policy", "socketmap", "metrics"} {
		if e := s.Endpoint(key); e.Network == "unix" {
			if err := abs(key, &e.Address); err != nil {
				return err
			}
		}
	}
	if s.CanarySMTP.Network == "unix" {
		if err := abs("canary_smtp", &s.CanarySMTP.Address); err != nil {
			return err
		}
	}
	return nil
}
