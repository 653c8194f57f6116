package spool

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPendingOrder: new/ is listed in delivery order, whatever the order
// of the directory: by seconds, microseconds and Q counter, numerically
// (so "Q10" comes after "Q9"), then by name; dot files are skipped.
func TestPendingOrder(t *testing.T) {
	folder := t.TempDir()
	want := []string{
		"not-a-time-name", // no time: key 0, first
		"999999999.M999999P1Q1Rab.h,S=1",
		"1796193288.M5P1Q1Rab.h,S=1",
		"1796193288.M289306P1Q9Rab.h,S=1",
		"1796193288.M289306P1Q10Rab.h,S=1", // Q10 after Q9
		"1796193289.x.h",                   // another writer's name: no M, no Q
		"1796193289.M0P2Q1Rcd.h,S=1",
	}
	if err := os.MkdirAll(filepath.Join(folder, "new"), 0o750); err != nil {
		t.Fatal(err)
	}
	for _, n := range append([]string{".hidden"}, want...) {
		if err := os.WriteFile(filepath.Join(folder, "new", n), nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Pending(folder)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Pending = %q", got)
	}
	if tm, ok := NameTime("1796193288.M289306P1Q9Rab.h,S=1"); !ok || !tm.Equal(time.Unix(1796193288, 289306000)) {
		t.Errorf("NameTime = %v %v", tm, ok)
	}
	if _, ok := NameTime("not-a-time-name"); ok {
		t.Errorf("NameTime of a name without a time: ok")
	}
}

// TestPendingDeliverOrder: messages delivered one after the other by one
// Spool, many per microsecond, come back in the order delivered.
func TestPendingDeliverOrder(t *testing.T) {
	var delivered []string // Deliver calls Delivered before it returns
	s, err := New(Options{Dir: t.TempDir(), Hostname: testHost, Delivered: func(p string) { delivered = append(delivered, p) }})
	if err != nil {
		t.Fatal(err)
	}
	env := Envelope{Rcpt: "l@example.org", Domain: "example.org", Local: "l", Kind: "post"}
	var want, paths []string
	for range 50 {
		p, err := s.Deliver(testMessage(t, "Subject: x\r\n\r\n"), env)
		if err != nil {
			t.Fatal(err)
		}
		want, paths = append(want, filepath.Base(p)), append(paths, p)
	}
	got, err := Pending(filepath.Join(s.Dir(), "example.org", "l", "post"))
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Pending = %q, %v; want the delivery order %q", got, err, want)
	}
	if !slices.Equal(delivered, paths) {
		t.Errorf("Delivered called with %q, want each delivered path once, in order: %q", delivered, paths)
	}
	for i := 1; i < len(want); i++ {
		if CompareNames(want[i-1], want[i]) >= 0 || CompareNames(want[i], want[i-1]) <= 0 || CompareNames(want[i], want[i]) != 0 {
			t.Fatalf("CompareNames does not order %q before %q", want[i-1], want[i])
		}
	}
}

// TestQuarantineRelease: a message moves from new/ to quarantine/ with
// its reason, is listed with it, and goes back to new/ under its own name
// with the reason file gone; Keep moves a message into cur/ with ":2,",
// Remove deletes it; Folders finds a folder with only a quarantine/.
func TestQuarantineRelease(t *testing.T) {
	root := t.TempDir()
	folder := filepath.Join(root, "example.org", "l", "bounces")
	for _, d := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(folder, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"1.M1P1Q1R1.h,S=3", "1.M1P1Q2R1.h,S=3", "1.M1P1Q3R1.h,S=3"} {
		if err := os.WriteFile(filepath.Join(folder, "new", n), []byte("abc"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := Quarantine(folder, "1.M1P1Q1R1.h,S=3", []byte("Reply: 550 5.1.1 no\n")); err != nil {
		t.Fatal(err)
	}
	if got := names(t, filepath.Join(folder, QuarantineDir)); !slices.Equal(got, []string{"1.M1P1Q1R1.h,S=3", "1.M1P1Q1R1.h,S=3.reason"}) {
		t.Errorf("quarantine/ holds %q", got)
	}
	q, err := QuarantinedIn(folder)
	if err != nil || len(q) != 1 || q[0].Name != "1.M1P1Q1R1.h,S=3" || string(q[0].Reason) != "Reply: 550 5.1.1 no\n" {
		t.Errorf("QuarantinedIn = %+v, %v", q, err)
	}
	if err := Keep(folder, "1.M1P1Q2R1.h,S=3"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, filepath.Join(folder, "cur")); !slices.Equal(got, []string{"1.M1P1Q2R1.h,S=3:2,"}) {
		t.Errorf("cur/ holds %q", got)
	}
	if err := Remove(folder, "1.M1P1Q3R1.h,S=3"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, filepath.Join(folder, "new")); len(got) != 0 {
		t.Errorf("new/ holds %q", got)
	}
	if err := os.RemoveAll(filepath.Join(folder, "new")); err != nil {
		t.Fatal(err)
	}
	fs, err := Folders(root)
	if err != nil || len(fs) != 1 || fs[0].List() != "l@example.org" || fs[0].Kind != "bounces" || fs[0].Path != folder {
		t.Errorf("Folders = %+v, %v", fs, err)
	}
	if err := Release(folder, "1.M1P1Q1R1.h,S=3"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, filepath.Join(folder, QuarantineDir)); len(got) != 0 {
		t.Errorf("quarantine/ holds %q after Release", got)
	}
	if b, err := os.ReadFile(filepath.Join(folder, "new", "1.M1P1Q1R1.h,S=3")); err != nil || string(b) != "abc" {
		t.Errorf("released message: %q, %v", b, err)
	}
	if err := Release(folder, "1.M1P1Q1R1.h,S=3"); err == nil || !strings.Contains(err.Error(), "1.M1P1Q1R1.h,S=3") {
		t.Errorf("Release of a message not quarantined: %v", err)
	}
}

// TestFoldersSkips: Folders skips dot entries, files and folder names that
// are no kind, and sorts by list then kind (post first).
func TestFoldersSkips(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"b.example/x/request/new", "b.example/x/post/new", "a.example/y/join/new",
		".hidden/z/post/new", "a.example/y/notakind/new", "a.example/y/owner/cur"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	fs, err := Folders(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.List()+"/"+f.Kind)
	}
	if want := []string{"x@b.example/post", "x@b.example/request", "y@a.example/join"}; !slices.Equal(got, want) {
		t.Errorf("Folders = %q, want %q", got, want)
	}
	if fs, err := Folders(filepath.Join(root, "missing")); err != nil || len(fs) != 0 {
		t.Errorf("Folders of a missing root = %v, %v", fs, err)
	}
}
