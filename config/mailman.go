package config

import (
	"fmt"
	"path/filepath"

	"github.com/listgate/listgate/mailman"
)

// MailmanCache is where the daemon keeps the last set of lists read from
// Mailman, under the spool (a dot directory is never a domain's folder):
// after a restart with Mailman down, Mailman's domains are known from it.
const MailmanCache = ".listgate/mailman.json"

// MailmanOptions returns the options of the Mailman source these settings
// configure (docs/mailman.md): the URL, the credentials (read from
// mailman_credentials_file), the poll interval, the next hop, the domains
// and the cache file under the spool. The caller adds the logger, the
// registerer and OnChange. It fails when Mailman is off, when the
// credentials file cannot be read or may be read by every user, and when
// credentials are given both in the URL and in the file; errors name the
// setting, never the credentials.
func (s Settings) MailmanOptions() (mailman.Options, error) {
	if s.Mailman == "" {
		return mailman.Options{}, fmt.Errorf("%s is not set", s.Origin("mailman"))
	}
	opts := mailman.Options{
		URL:        s.Mailman,
		Interval:   s.MailmanPollInterval,
		Domains:    s.MailmanDomains,
		Delimiters: s.RecipientDelimiter,
		Self:       s.LMTP,
		CacheFile:  filepath.Join(s.Spool, MailmanCache),
	}
	if On(s.MailmanLMTP) {
		opts.LMTP = s.MailmanLMTP.String()
	}
	if s.MailmanCredentialsFile != "" {
		if mailman.HasCredentials(s.Mailman) {
			return opts, fmt.Errorf("%s and %s both give credentials: keep them in the file alone",
				s.Origin("mailman"), s.Origin("mailman_credentials_file"))
		}
		cred, err := mailman.ReadCredentials(s.MailmanCredentialsFile)
		if err != nil {
			return opts, fmt.Errorf("%s: %w", s.Origin("mailman_credentials_file"), err)
		}
		opts.Credentials = cred
	}
	return opts, nil
}

// MailmanURL returns the mailman setting without its credentials, for
// messages and logs.
func (s Settings) MailmanURL() string {
	if s.Mailman == "" {
		return ""
	}
	return mailman.Redact(s.Mailman)
}

// shown is the value of key as an error may show it: the mailman URL
// without its credentials, any other value as given.
func shown(key, v string) string {
	if key == "mailman" && v != "" {
		return mailman.Redact(v)
	}
	return v
}

// joinStrings turns a TOML array of strings into the flag's
// comma-separated form.
func joinStrings(a []any) (string, error) {
	var out string
	for i, v := range a {
		str, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("want an array of domain strings, got %s in it", tomlType(v))
		}
		if i > 0 {
			out += ","
		}
		out += str
	}
	return out, nil
}

// MailmanKeys are the keys the one-shot commands (check, lists, postfix)
// read Mailman's lists with.
func MailmanKeys() []string {
	return []string{"mailman", "mailman_credentials_file", "mailman_lmtp", "mailman_domains"}
}
