package lists_test

import (
	"fmt"
	"testing"

	"github.com/listgate/listgate/internal/corpus"
	"github.com/listgate/listgate/lists"
)

// TestCorpus runs the verdict corpus against Resolve directly. The doors
// run the same corpus over their sockets; package reply checks the
// corpus's reply codes against its table.
func TestCorpus(t *testing.T) {
	cases, err := corpus.Load()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := lists.Load(corpus.ListsDir(), lists.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Rcpt, func(t *testing.T) {
			v := snap.Resolve(c.Rcpt)
			got := fmt.Sprintf("%v %s %s %q %q", v.Status, v.List, v.Kind, v.Extension, v.Target)
			want := fmt.Sprintf("%v %s %s %q %q", c.Status, c.List, c.Kind, c.Extension, c.Target)
			if got != want {
				t.Errorf("verdicts.txt:%d: Resolve(%q) = %s, want %s", c.Line, c.Rcpt, got, want)
			}
		})
	}
	if len(cases) < 40 {
		t.Errorf("corpus has %d cases; it lost some", len(cases))
	}
}
