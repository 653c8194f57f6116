//go:build race

package daemontest

// raceEnabled: the test binary runs under the race detector, so the
// listgate binary it drives is built with -race too.
const raceEnabled = true
