//go:build race

package api

// raceEnabled: built with -race (fastsock_linux.go tells the race detector
// what a read synchronises).
const raceEnabled = true
