//go:build unix

package cli

import (
	"os"
	"syscall"
)

// The signals that start and stop `serve --cpuprofile-on-signal`'s
// profile.
var profileStartSignal, profileStopSignal os.Signal = syscall.SIGUSR1, syscall.SIGUSR2
