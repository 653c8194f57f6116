package postconf

import (
	"strconv"
	"strings"
)

// maxExpansion bounds the work of one expansion, in bytes read and
// written: main.cf may say "a = $b $b" and "b = $c $c" and so on, which
// doubles at each level. A value that needs more is cut short.
const maxExpansion = 1 << 20

// maxDepth bounds the nesting of $name references (a = $a loops).
const maxDepth = 20

// expander replaces parameter references in a value (postconf(5), the
// introduction): $name, ${name}, $(name); ${name?value}, ${name?{value}},
// ${name:value}, ${name:{value}}, ${name?{value1}:{value2}}; a relational
// expression "{a} op {b}" in place of the name, with op one of == != < <=
// > >= (numerical when both sides are all digits) or <level <=level
// >level >=level (compatibility levels, major.minor.patch); $$ is "$".
type expander struct {
	// get returns a parameter's unexpanded value, and whether it is
	// known at all.
	get func(name string) (string, bool)
	// keepUnknown leaves a reference to an unknown name as it is
	// instead of replacing it with the empty value, as Postfix does:
	// the defaults at hand are not all of Postfix's, and an unknown
	// $myhostname must not match anything.
	keepUnknown bool
	budget      int
}

func (x *expander) expand(s string) string {
	x.budget = maxExpansion
	return x.value(s, 0)
}

func (x *expander) value(s string, depth int) string {
	if depth > maxDepth || !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if x.budget--; x.budget <= 0 {
			break // every step counts: "a = $b$b$b$b", "b = $c$c$c$c", ... expands to nothing, slowly
		}
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		start, j := i, i+1
		switch s[j] {
		case '$':
			b.WriteByte('$')
			i += 2
			continue
		case '{', '(':
			k := closing(s, j)
			if k < 0 {
				b.WriteString(s[start:])
				return b.String()
			}
			i = k + 1
			v, ok := x.braced(s[j+1:k], depth)
			if !ok {
				v = s[start:i] // not Postfix's syntax: leave it
			}
			x.budget -= len(v)
			b.WriteString(v)
			continue
		}
		k := j
		for k < len(s) && isNameByte(s[k]) {
			k++
		}
		if k == j {
			b.WriteByte('$')
			i++
			continue
		}
		i = k
		v := x.ref(s[j:k], s[start:k], depth)
		x.budget -= len(v)
		b.WriteString(v)
	}
	return b.String()
}

// ref is the value of a plain reference to name, written as text.
func (x *expander) ref(name, text string, depth int) string {
	v, known := x.get(name)
	switch {
	case known:
		return x.value(v, depth+1)
	case x.keepUnknown:
		return text
	}
	return ""
}

// braced evaluates the inside of ${...}; ok is false when it is not
// Postfix's syntax.
func (x *expander) braced(inner string, depth int) (string, bool) {
	var cond bool
	var rest string
	if strings.HasPrefix(inner, "{") {
		a, r, ok := group(inner)
		if !ok {
			return "", false
		}
		r = strings.TrimLeft(r, " \t")
		op := ""
		for _, o := range []string{"<=level", ">=level", "<level", ">level", "==", "!=", "<=", ">=", "<", ">"} {
			if strings.HasPrefix(r, o) {
				op = o
				break
			}
		}
		if op == "" {
			return "", false
		}
		bv, r, ok := group(strings.TrimLeft(r[len(op):], " \t"))
		if !ok {
			return "", false
		}
		cond = compare(x.value(a, depth+1), x.value(bv, depth+1), op)
		rest = strings.TrimLeft(r, " \t")
	} else {
		end := strings.IndexAny(inner, "?:")
		if end < 0 {
			if !isName(inner) {
				return "", false
			}
			return x.ref(inner, "${"+inner+"}", depth), true
		}
		name := inner[:end]
		if !isName(name) {
			return "", false
		}
		v, _ := x.get(name)
		cond, rest = v != "", inner[end:]
	}
	if rest == "" {
		return "", false
	}
	body := strings.TrimSpace(rest[1:])
	switch rest[0] {
	case ':':
		if cond {
			return "", true
		}
		return x.value(unbrace(body), depth+1), true
	case '?':
		yes, no := body, ""
		if strings.HasPrefix(body, "{") {
			v, after, ok := group(body)
			if !ok {
				return "", false
			}
			after = strings.TrimSpace(after)
			switch {
			case after == "":
			case after[0] == ':':
				no = unbrace(strings.TrimSpace(after[1:]))
			default:
				return "", false
			}
			yes = v
		}
		if cond {
			return x.value(yes, depth+1), true
		}
		return x.value(no, depth+1), true
	}
	return "", false
}

// closing returns the index of the bracket that closes the one at s[open],
// or -1.
func closing(s string, open int) int {
	o := s[open]
	c := map[byte]byte{'{': '}', '(': ')'}[o]
	level := 0
	for k := open; k < len(s); k++ {
		switch s[k] {
		case o:
			level++
		case c:
			if level--; level == 0 {
				return k
			}
		}
	}
	return -1
}

// group splits "{inside} rest" into inside and rest.
func group(s string) (inside, rest string, ok bool) {
	if !strings.HasPrefix(s, "{") {
		return "", "", false
	}
	k := closing(s, 0)
	if k < 0 {
		return "", "", false
	}
	return s[1:k], s[k+1:], true
}

// unbrace strips one pair of braces around the whole of s.
func unbrace(s string) string {
	if v, rest, ok := group(s); ok && strings.TrimSpace(rest) == "" {
		return v
	}
	return s
}

// compare evaluates "{a} op {b}" (postconf(5); compatibility_level for
// the level operators).
func compare(a, b, op string) bool {
	var c int
	if lvl, ok := strings.CutSuffix(op, "level"); ok {
		op = lvl
		c = compareLevels(a, b)
	} else if isDigits(a) && isDigits(b) {
		x, _ := strconv.ParseUint(a, 10, 64)
		y, _ := strconv.ParseUint(b, 10, 64)
		c = cmpUint(x, y)
	} else {
		c = strings.Compare(a, b)
	}
	switch op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0
}

// compareLevels compares two compatibility levels, major[.minor[.patch]],
// part by part (3.10 is above 3.9). A part that is not a number compares
// as 0.
func compareLevels(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < 3; i++ {
		var x, y uint64
		if i < len(pa) {
			x, _ = strconv.ParseUint(pa[i], 10, 64)
		}
		if i < len(pb) {
			y, _ = strconv.ParseUint(pb[i], 10, 64)
		}
		if c := cmpUint(x, y); c != 0 {
			return c
		}
	}
	return 0
}

func cmpUint(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// isName reports whether s is a parameter name: [a-zA-Z0-9_]+.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}
