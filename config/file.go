package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Load reads the config file at path over the built-in defaults. A
// missing file is an error (errors.Is(err, fs.ErrNotExist)); so is any
// problem in it, as an *Error naming the file and line.
func Load(path string) (Settings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is named once, by Error
		}
		return Settings{}, &Error{File: path, Err: err}
	}
	return Parse(path, data)
}

// Parse reads data, the content of the config file at path, over the
// built-in defaults. Relative paths in it are relative to path's
// directory.
func Parse(path string, data []byte) (Settings, error) {
	s := Defaults()
	s.File = path
	// go-toml finds syntax errors and keys given twice, with a line.
	var values map[string]any
	if err := toml.Unmarshal(data, &values); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, _ := de.Position()
			return Settings{}, &Error{File: path, Line: line, Err: errors.New(strings.TrimPrefix(de.Error(), "toml: "))}
		}
		return Settings{}, &Error{File: path, Err: err}
	}
	// Then every expression in order, with its line: the first unknown
	// key or bad value is the one reported. Keys are checked against the
	// same table the flags are made from, so the file and the flags
	// cannot drift apart.
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		expr := p.Expression()
		if expr.Kind != unstable.KeyValue && expr.Kind != unstable.Table && expr.Kind != unstable.ArrayTable {
			continue
		}
		var parts []string
		line := 0
		for it := expr.Key(); it.Next(); {
			if line == 0 {
				line = p.Shape(it.Node().Raw).Start.Line
			}
			parts = append(parts, string(it.Node().Data))
		}
		name := strings.Join(parts, ".")
		if expr.Kind != unstable.KeyValue {
			return Settings{}, &Error{File: path, Line: line, Err: fmt.Errorf("unexpected table [%s]: every setting is a top-level key", name)}
		}
		if _, ok := lookup(name); !ok || len(parts) > 1 {
			return Settings{}, &Error{File: path, Line: line, Err: fmt.Errorf("unknown key %q", name)}
		}
		v, err := fileValue(name, values[name], filepath.Dir(path))
		if err == nil {
			err = s.set(name, v)
		}
		if err != nil {
			e := &Error{File: path, Line: line, Key: name, Err: err}
			if str, ok := values[name].(string); ok {
				e.Value = shown(name, str)
			}
			return Settings{}, e
		}
		s.setOrigin(name, fmt.Sprintf("%s:%d", path, line))
	}
	if err := p.Error(); err != nil { // go-toml's decoder found none above
		return Settings{}, &Error{File: path, Err: err}
	}
	return s, nil
}

// fileValue turns the TOML value of the key name into the flag's syntax.
// Paths (lists, spool, a unix: socket) are made relative to dir.
func fileValue(name string, v any, dir string) (string, error) {
	if n, ok := v.(int64); ok && (name == "max_message_size" || name == "forward_concurrency" || name == "spool_reserve" || name == "max_recipients" ||
		name == "min_data_rate" || name == "max_connections" || name == "max_connections_per_client") {
		return strconv.FormatInt(n, 10), nil
	}
	if b, ok := v.(bool); ok && name == "observe" {
		return strconv.FormatBool(b), nil
	}
	if a, ok := v.([]any); ok && name == "mailman_domains" {
		return joinStrings(a)
	}
	str, ok := v.(string)
	if !ok {
		want := "a string"
		switch name {
		case "max_message_size":
			want = `bytes (an integer) or a string such as "10MB"`
		case "spool_reserve":
			want = `bytes (an integer) or a string such as "512MiB", "5%" or "auto"`
		case "shutdown_timeout", "rescan_interval", "forward_timeout", "forward_scan_interval", "forward_unready_after",
			"mailman_poll_interval", "mailman_unready_after", "command_timeout", "milter_idle_timeout",
			"canary_interval", "canary_timeout":
			want = `a string such as "30s" or "5m"`
		case "forward_concurrency", "max_recipients", "min_data_rate", "max_connections", "max_connections_per_client":
			want = "an integer"
		case "mailman_domains":
			want = "an array of domain strings"
		case "observe":
			want = "a boolean (true or false)"
		}
		return "", fmt.Errorf("want %s, got %s", want, tomlType(v))
	}
	switch name {
	case "lists", "spool", "mailman_credentials_file":
		if str != "" && !filepath.IsAbs(str) {
			str = filepath.Join(dir, str)
		}
	case "lmtp", "milter", "policy", "socketmap", "metrics", "mailman_lmtp", "canary_smtp":
		if p, ok := strings.CutPrefix(str, "unix:"); ok && p != "" && !filepath.IsAbs(p) {
			str = "unix:" + filepath.Join(dir, p)
		}
	}
	return str, nil
}

// tomlType names the TOML type of a value go-toml decoded into an any.
func tomlType(v any) string {
	switch v.(type) {
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time, toml.LocalDate, toml.LocalTime, toml.LocalDateTime:
		return "a date or time"
	}
	return fmt.Sprintf("a %T", v)
}
