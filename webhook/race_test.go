//go:build race

package webhook

// raceEnabled reports whether the race detector is on; it changes
// allocation counts, so allocation assertions are skipped under it.
const raceEnabled = true
