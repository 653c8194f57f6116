package reply

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
)

var update = flag.Bool("update", false, "rewrite the reply tables of the docs from the table (go generate ./reply)")

// A doc is a file that shows part of the table, and how to find the part.
type doc struct {
	path string // relative to the module root
	// Markdown: the text between "<!-- BEGIN reply table NAME ... -->"
	// and "<!-- END reply table NAME -->" for each name. Go: the first
	// code block (lines "//\t...") after the line "// # Replies".
	blocks map[string]func() string
	goDoc  func() string
}

var docs = []doc{
	{path: "docs/replies.md", blocks: map[string]func() string{
		"verdicts": mdVerdicts,
		"doors":    mdDoors,
		"replies":  mdReplies,
	}},
	{path: "lmtp/doc.go", goDoc: func() string { return goTable(LMTP) }},
	{path: "milter/doc.go", goDoc: func() string { return goTable(Milter) }},
}

// TestDocs checks that docs/replies.md and the reply tables of
// lmtp/doc.go and milter/doc.go show the table as it is: a text changed in
// the table and not in the docs, or in the docs only, fails here. With
// -update (go generate ./reply) it rewrites them instead.
func TestDocs(t *testing.T) {
	for _, d := range docs {
		path := filepath.Join("..", filepath.FromSlash(d.path))
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		if d.goDoc != nil {
			got, err = replaceGoBlock(old, d.goDoc())
		} else {
			got = old
			for name, render := range d.blocks {
				if got, err = replaceMarkdownBlock(got, name, render()); err != nil {
					break
				}
			}
		}
		if err != nil {
			t.Errorf("%s: %v", d.path, err)
			continue
		}
		if bytes.Equal(got, old) {
			continue
		}
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s does not show package reply's table; run go generate ./reply. Want:\n%s", d.path, got)
	}
}

// replaceMarkdownBlock replaces the text between the markers of block
// name with body.
func replaceMarkdownBlock(text []byte, name, body string) ([]byte, error) {
	begin := []byte("<!-- BEGIN reply table " + name + ":")
	end := []byte("<!-- END reply table " + name + " -->")
	i := bytes.Index(text, begin)
	if i < 0 {
		return nil, fmt.Errorf("no %q marker", begin)
	}
	nl := bytes.IndexByte(text[i:], '\n')
	if nl < 0 {
		return nil, fmt.Errorf("%q marker ends the file", begin)
	}
	start := i + nl + 1
	j := bytes.Index(text[start:], end)
	if j < 0 {
		return nil, fmt.Errorf("no %q marker", end)
	}
	out := append([]byte(nil), text[:start]...)
	out = append(out, body...)
	return append(out, text[start+j:]...), nil
}

// replaceGoBlock replaces the first code block after "// # Replies" in a
// doc.go with body, each of its lines commented and indented by a tab.
func replaceGoBlock(text []byte, body string) ([]byte, error) {
	lines := strings.SplitAfter(string(text), "\n")
	h := -1
	for i, l := range lines {
		if l == "// # Replies\n" {
			h = i
			break
		}
	}
	if h < 0 {
		return nil, fmt.Errorf(`no "// # Replies" section`)
	}
	start := -1
	for i := h + 1; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "//\t") {
			start = i
			break
		}
		if lines[i] != "//\n" && !strings.HasPrefix(lines[i], "// ") {
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf(`no code block in the "Replies" section`)
	}
	stop := start
	for stop < len(lines) && strings.HasPrefix(lines[stop], "//\t") {
		stop++
	}
	var b strings.Builder
	for _, l := range lines[:start] {
		b.WriteString(l)
	}
	for l := range strings.SplitSeq(strings.TrimSuffix(body, "\n"), "\n") {
		b.WriteString("//\t" + l + "\n")
	}
	for _, l := range lines[stop:] {
		b.WriteString(l)
	}
	return []byte(b.String()), nil
}

// short is an answer as the doors table of docs/replies.md shows it: the
// codes of a reply, the word of any other answer.
func short(a Answer) string {
	switch a.Action {
	case Send:
		return fmt.Sprintf("`%d %s`", a.Reply.Code, a.Reply.Status())
	case Temp:
		return "`TEMP`"
	case None:
		return "—"
	case Pass:
		if a.Door == LMTP {
			return "`250 2.0.0` (go-smtp's)"
		}
	}
	return "`" + a.String() + "`"
}

func mdVerdicts() string {
	var b strings.Builder
	b.WriteString("| verdict | when |\n| --- | --- |\n")
	for _, row := range Table() {
		fmt.Fprintf(&b, "| `%s` | %s |\n", row.Outcome, row.When)
	}
	return b.String()
}

func mdDoors() string {
	var b strings.Builder
	b.WriteString("| verdict | LMTP at RCPT | LMTP after DATA | milter at RCPT | milter at end of message | policy (to come) | socketmap (to come) |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, row := range Table() {
		o := row.Outcome
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s |\n", o,
			short(For(LMTP, RCPT, o)), short(For(LMTP, Data, o)),
			short(For(Milter, RCPT, o)), short(For(Milter, Data, o)),
			short(For(Policy, RCPT, o)), short(For(Socketmap, RCPT, o)))
	}
	return b.String()
}

func mdReplies() string {
	var order []Reply
	uses := make(map[Reply][]string)
	for _, row := range Table() {
		for _, d := range Doors() {
			for _, st := range []Stage{Connect, RCPT, Data} {
				a := For(d, st, row.Outcome)
				if a.Action != Send && a.Action != Temp {
					continue
				}
				if _, ok := uses[a.Reply]; !ok {
					order = append(order, a.Reply)
				}
				name := "`" + row.Outcome.String() + "`"
				if u := uses[a.Reply]; len(u) == 0 || u[len(u)-1] != name {
					uses[a.Reply] = append(u, name)
				}
			}
		}
	}
	var b strings.Builder
	b.WriteString("| reply | for |\n| --- | --- |\n")
	for _, r := range order {
		fmt.Fprintf(&b, "| `%s` | %s |\n", r, strings.Join(uses[r], ", "))
	}
	return b.String()
}

// goTable is the reply table of a door's doc.go: one line per outcome
// and stage at which the door answers, with the answer as on the wire
// (the LMTP door's replies after DATA name the recipient, as go-smtp
// writes them).
func goTable(d Door) string {
	stage := map[Stage]string{Connect: "connect", RCPT: "RCPT", Data: "after DATA"}
	if d == Milter {
		stage[Data] = "end of message"
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "verdict\tstage\tanswer\n")
	for _, row := range Table() {
		for _, st := range []Stage{Connect, RCPT, Data} {
			a := For(d, st, row.Outcome)
			if a.Action == None {
				continue
			}
			s := a.String()
			if d == LMTP && st == Data && a.Action == Send {
				s = fmt.Sprintf("%d %s <rcpt> %s", a.Reply.Code, a.Reply.Status(), a.Reply.Text)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", row.Outcome, stage[st], s)
		}
	}
	tw.Flush()
	return b.String()
}

// libraryTexts are replies with the codes of a reply of the table that
// come from a library, not from listgate.
var libraryTexts = map[string]bool{
	"552 5.3.4 Max message size exceeded": true, // go-smtp, at MAIL FROM
}

// TestDocTexts checks every reply the docs quote with the codes of a reply
// of the table: its text must be the table's (a line may break it), or a
// library's. Nothing else can say "451 4.3.0" with an old text.
func TestDocTexts(t *testing.T) {
	texts := make(map[string][]string) // "451 4.3.0" -> texts
	for _, row := range Table() {
		for _, d := range Doors() {
			for _, st := range []Stage{Connect, RCPT, Data} {
				if a := For(d, st, row.Outcome); a.Action == Send || a.Action == Temp {
					codes := fmt.Sprintf("%d %s", a.Reply.Code, a.Reply.Status())
					if !slices.Contains(texts[codes], a.Reply.Text) {
						texts[codes] = append(texts[codes], a.Reply.Text)
					}
				}
			}
		}
	}
	quoted := regexp.MustCompile(`([245][0-9][0-9] [245]\.[0-9]{1,3}\.[0-9]{1,3}) (?:<[^>\s]*> )?([A-Z][^` + "`" + `|"\n;)]*)`)
	files, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("..", "lmtp", "doc.go"), filepath.Join("..", "milter", "doc.go"),
		filepath.Join("..", "contrib", "postfix", "README.md"), filepath.Join("..", "README.md"))
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range quoted.FindAllStringSubmatch(string(b), -1) {
			want, ok := texts[m[1]]
			got := strings.TrimRight(m[2], " .")
			if !ok || libraryTexts[m[1]+" "+got] {
				continue
			}
			checked++
			if !slices.ContainsFunc(want, func(w string) bool { return strings.HasPrefix(w, got) || strings.HasPrefix(got, w) }) {
				t.Errorf("%s quotes %q, but package reply's text for %s is %q", f, m[0], m[1], want)
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d quoted replies checked: the docs moved?", checked)
	}
}
