package postfix

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/listgate/listgate/reply"
)

var update = flag.Bool("update", false, "rewrite the reply table of doc.go")

// replyTable is the table of doc.go's "Replies" section: per outcome the
// policy door's action and the socketmap's reply at RCPT, from package
// reply ("-" where the door never meets it).
func replyTable() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "verdict\tpolicy action\tsocketmap\n")
	for _, row := range reply.Table() {
		p := reply.For(reply.Policy, reply.RCPT, row.Outcome)
		s := reply.For(reply.Socketmap, reply.RCPT, row.Outcome)
		if p.Action == reply.None && s.Action == reply.None {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", row.Outcome, p, s)
	}
	tw.Flush()
	return b.String()
}

// TestDocs checks that doc.go shows the verdict table's policy and
// socketmap columns as they are; with -update it rewrites them.
func TestDocs(t *testing.T) {
	old, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(old), "\n")
	h := -1
	for i, l := range lines {
		if l == "// # Replies\n" {
			h = i
			break
		}
	}
	if h < 0 {
		t.Fatal(`doc.go: no "// # Replies" section`)
	}
	start := h + 1
	for start < len(lines) && !strings.HasPrefix(lines[start], "//\t") {
		start++
	}
	stop := start
	for stop < len(lines) && strings.HasPrefix(lines[stop], "//\t") {
		stop++
	}
	var body []string
	for _, l := range strings.SplitAfter(replyTable(), "\n") {
		if l != "" {
			body = append(body, "//\t"+strings.TrimRight(l, " \n")+"\n")
		}
	}
	got := strings.Join(append(append(append([]string{}, lines[:start]...), body...), lines[stop:]...), "")
	if got == string(old) {
		return
	}
	if *update {
		if err := os.WriteFile("doc.go", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("doc.go does not show package reply's table; run go test ./postfix -run TestDocs -update. Want:\n%s", strings.Join(body, ""))
}
