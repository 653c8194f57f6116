package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// installBuild is docs/install.md's build command, as arguments of go:
// CGO_ENABLED=0 go build -trimpath -o listgate ./cmd/listgate.
var installBuild = []string{"build", "-trimpath", "-buildvcs=auto", "-o"}

// TestStaticBinaryAndVersion builds listgate as docs/install.md does
// (CGO_ENABLED=0), checks with debug/elf that it is one static binary (no
// program interpreter, no shared library needed), and that `listgate
// version` names the VCS revision it was built from, "+dirty" when the
// checkout has changes. -buildvcs=auto overrides a GOFLAGS that turns
// stamping off.
func TestStaticBinaryAndVersion(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skipf("the static check reads ELF; this is %s", runtime.GOOS)
	}
	bin := filepath.Join(t.TempDir(), "listgate")
	git := func(args ...string) (string, error) {
		out, err := exec.Command("git", append([]string{"-C", repoRoot}, args...)...).Output()
		return strings.TrimSpace(string(out)), err
	}
	dirtyBefore, _ := git("status", "--porcelain")
	build := exec.Command("go", append(installBuild, bin, ".")...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dirtyAfter, _ := git("status", "--porcelain")

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter (PT_INTERP): dynamically linked", bin)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s needs shared libraries (DT_NEEDED) %q: %v", bin, libs, err)
	}

	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("listgate version: %v", err)
	}
	version := strings.TrimSpace(string(out))
	t.Logf("listgate version: %s", version)
	if !strings.HasPrefix(version, "listgate ") || !strings.Contains(version, runtime.Version()) {
		t.Errorf("version %q", version)
	}
	head, err := git("rev-parse", "HEAD")
	fi, serr := os.Stat(filepath.Join(repoRoot, ".git"))
	switch {
	case err != nil:
		t.Logf("not a git checkout (%v): no revision to compare", err)
		if !strings.Contains(version, " revision unknown ") {
			t.Errorf("version %q: want revision unknown", version)
		}
		return
	case serr != nil || !fi.IsDir():
		// The go command looks for a .git directory; a git worktree has
		// a .git file, and gets no stamp.
		t.Logf("a git worktree (.git is not a directory): the go command stamps no revision")
		if !strings.Contains(version, " revision unknown ") {
			t.Errorf("version %q: want revision unknown", version)
		}
		return
	}
	want := " revision " + head
	switch {
	case dirtyBefore == "" && dirtyAfter == "":
		want += " "
	case dirtyBefore != "" && dirtyAfter != "":
		want += "+dirty "
	default:
		t.Logf("the checkout changed during the build: +dirty is not checked")
	}
	if !strings.Contains(version, want) || !strings.Contains(version, " committed ") {
		t.Errorf("version %q: want %q and the commit time", version, want)
	}
}
