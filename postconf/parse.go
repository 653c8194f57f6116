package postconf

import (
	"fmt"
	"strconv"
	"strings"
)

// Param is one parameter setting: a logical line "name = value" and where
// it starts.
type Param struct {
	Name  string
	Value string // continuation lines joined with one space
	File  string // the name the text was parsed under: a path, "stdin", "postconf -n"
	Line  int    // 1-based line where the logical line starts
}

// Pos returns where p was set, as "file:line".
func (p Param) Pos() string { return p.File + ":" + strconv.Itoa(p.Line) }

// Config is a Postfix configuration as text states it: main.cf, or the
// output of "postconf -n", optionally followed by that of "postconf -P".
type Config struct {
	// Main holds main.cf's parameters in the order given, every setting
	// of a name included: Postfix uses the last one (postconf(5)).
	Main []Param
	// Master holds master.cf's per-service overrides
	// ("service/type/name = value", as postconf -P prints them).
	Master []Param
}

// Parse reads main.cf syntax (postconf(5), the introduction): a logical
// line "name = value" starts in column one; a line starting with white
// space continues it; empty lines and lines whose first non-blank
// character is "#" are comments. A name with a "/" is a master.cf override
// as "postconf -P" prints it. name names the text in errors, which read
// "name:line: ...".
func Parse(text, name string) (*Config, error) {
	c := &Config{}
	var last *Param
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, " \t\r")
		trimmed := strings.TrimLeft(line, " \t")
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if trimmed != line {
			if last == nil {
				return nil, fmt.Errorf("%s:%d: continuation line with nothing to continue", name, i+1)
			}
			last.Value = strings.TrimSpace(last.Value + " " + trimmed)
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("%s:%d: not a main.cf line \"name = value\": %q", name, i+1, line)
		}
		list := &c.Main
		if strings.Contains(key, "/") {
			list = &c.Master
		}
		*list = append(*list, Param{Name: key, Value: strings.TrimSpace(value), File: name, Line: i + 1})
		last = &(*list)[len(*list)-1]
	}
	return c, nil
}

// Get returns the value main.cf gives name: its last setting.
func (c *Config) Get(name string) (string, bool) {
	for i := len(c.Main) - 1; i >= 0; i-- {
		if c.Main[i].Name == name {
			return c.Main[i].Value, true
		}
	}
	return "", false
}

// Override returns the value master.cf gives name for one service
// ("smtp/inet"), as a "-o name=value" of that service.
func (c *Config) Override(service, name string) (string, bool) {
	key := service + "/" + name
	for i := len(c.Master) - 1; i >= 0; i-- {
		if c.Master[i].Name == key {
			return c.Master[i].Value, true
		}
	}
	return "", false
}

// Duplicates returns every name that main.cf sets more than once, each as
// its settings in order. Postfix uses the last and warns "overriding
// earlier entry"; "postconf -n" shows only the last.
func (c *Config) Duplicates() [][]Param {
	seen := map[string]int{}
	var out [][]Param
	for _, p := range c.Main {
		i, ok := seen[p.Name]
		if !ok {
			seen[p.Name] = len(out)
			out = append(out, []Param{p})
			continue
		}
		out[i] = append(out[i], p)
	}
	dups := out[:0]
	for _, ps := range out {
		if len(ps) > 1 {
			dups = append(dups, ps)
		}
	}
	return dups
}
