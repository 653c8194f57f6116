// Package corpus loads the verdict corpus, lists/testdata: one lists
// directory and the verdict every door must give for each recipient. The
// tests of lists, of every door and of `listgate check` run it, so the
// doors cannot disagree.
package corpus

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/listgate/listgate/lists"
)

// Case is one recipient and its expected verdict.
type Case struct {
	Line      int          // line in verdicts.txt
	Rcpt      string       // recipient as a client sends it
	Status    lists.Status // expected status
	Code      int          // expected reply code (LMTP and `listgate check`)
	Enhanced  string       // expected enhanced status code, e.g. "5.1.1"
	List      string       // expected canonical list, "" for none
	Kind      lists.Kind   // expected kind, "" for none
	Extension string       // expected extension, "" for none
	Target    string       // expected Verdict.Target (Alias), "" for none; optional 8th column
}

// Dir returns the absolute path of lists/testdata.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "lists", "testdata")
}

// ListsDir returns the absolute path of the corpus lists directory.
func ListsDir() string { return filepath.Join(Dir(), "lists") }

// Load reads verdicts.txt.
func Load() ([]Case, error) {
	path := filepath.Join(Dir(), "verdicts.txt")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	defer f.Close()
	var cases []Case
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 7 && len(fs) != 8 {
			return nil, fmt.Errorf("%s:%d: want 7 or 8 fields, got %d", path, n, len(fs))
		}
		for i := range fs {
			if fs[i] == "-" {
				fs[i] = ""
			}
		}
		st, ok := lists.ParseStatus(fs[1])
		if !ok {
			return nil, fmt.Errorf("%s:%d: unknown verdict %q", path, n, fs[1])
		}
		code, err := strconv.Atoi(fs[2])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: reply code: %w", path, n, err)
		}
		c := Case{Line: n, Rcpt: fs[0], Status: st, Code: code, Enhanced: fs[3],
			List: fs[4], Kind: lists.Kind(fs[5]), Extension: fs[6]}
		if len(fs) == 8 {
			c.Target = fs[7]
		}
		if (st == lists.Alias) != (c.Target != "") {
			return nil, fmt.Errorf("%s:%d: a target exactly for the verdict alias", path, n)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("corpus: %s: %w", path, err)
	}
	return cases, nil
}
