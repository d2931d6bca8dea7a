//go:build !unix

package cli

import "os"

// Without SIGUSR1 and SIGUSR2 `serve --cpuprofile-on-signal` is refused
// and `bench --cpuprofile` needs --in-process.
var profileStartSignal, profileStopSignal os.Signal
