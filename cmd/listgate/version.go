package main

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
// Otherwise the module version the go command stamped is used.
var version = ""

// versionString says which listgate this is: the version, the VCS
// revision it was built from (with "+dirty" for uncommitted changes) and
// that revision's commit time, as the go command records them
// (-buildvcs, on by default in a checkout), then the Go version and
// platform. Go records no build time; the commit time names the source.
func versionString() string {
	v := version
	bi, ok := debug.ReadBuildInfo()
	if v == "" {
		v = "(devel)"
		if ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	out := []string{"listgate", v}
	var rev, when string
	dirty := false
	if ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	switch {
	case rev == "":
		out = append(out, "revision unknown")
	case dirty:
		out = append(out, "revision "+rev+"+dirty")
	default:
		out = append(out, "revision "+rev)
	}
	if when != "" {
		out = append(out, "committed "+when)
	}
	return strings.Join(append(out, runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH), " ")
}
