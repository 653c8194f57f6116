package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/listgate/listgate/mailman"
)

// FuzzParse parses arbitrary config files. A file either fails with one
// *Error that names it and a line inside it, or parses into settings every
// door can use, and then every key in it is a known one that Parse
// recorded as set. Seeds: testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	const path = "dir/listgate.toml"
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(path, data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.File != path || !strings.HasPrefix(err.Error(), path+":") {
				t.Fatalf("error %q: want an *Error naming %s", err, path)
			}
			if lines := bytes.Count(data, []byte("\n")) + 1; e.Line < 0 || e.Line > lines {
				t.Errorf("error %q: line %d outside the file's %d lines", err, e.Line, lines)
			}
			if e.Key == "mailman" && mailman.HasCredentials(e.Value) {
				t.Errorf("error %q shows the mailman URL's credentials", err)
			}
			return
		}
		var m map[string]any
		if err := toml.Unmarshal(data, &m); err != nil {
			t.Fatalf("Parse accepted what go-toml refuses: %v", err)
		}
		for k := range m {
			if _, ok := lookup(k); !ok || !s.IsSet(k) {
				t.Errorf("key %q accepted (known %v, set %v)", k, ok, s.IsSet(k))
			}
		}
		for _, name := range []string{"lmtp", "milter", "policy", "socketmap", "metrics"} {
			if ep := *s.Endpoint(name); ep.Network != "" && ep.Network != "tcp" && ep.Network != "unix" || On(ep) && ep.Address == "" {
				t.Errorf("%s = %+v", name, ep)
			}
		}
		if s.Lists == "" || s.Spool == "" || s.MaxMessageSize <= 0 || s.ShutdownTimeout <= 0 || s.RescanInterval < 0 ||
			(s.LogFormat != "text" && s.LogFormat != "json") || checkDelimiter(s.RecipientDelimiter) != nil ||
			s.MailmanPollInterval <= 0 || s.MailmanUnreadyAfter < 0 || (s.Mailman != "" && mailman.CheckURL(s.Mailman) != nil) {
			t.Errorf("settings %+v", s)
		}
		if c := s.CanarySMTP; c.Network != "" && c.Network != "tcp" && c.Network != "unix" || On(c) && c.Address == "" ||
			s.CanaryInterval <= 0 || s.CanaryTimeout <= 0 || checkCanaryAddress(s.CanaryList, false) != nil || checkCanaryAddress(s.CanarySender, true) != nil {
			t.Errorf("canary settings %+v %v %v %q %q", s.CanarySMTP, s.CanaryInterval, s.CanaryTimeout, s.CanaryList, s.CanarySender)
		}
	})
}
