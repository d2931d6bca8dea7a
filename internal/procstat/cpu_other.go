//go:build !unix

package procstat

import "time"

// CPUTime is not measured on this platform; benchmarks report zero.
func CPUTime() time.Duration { return 0 }
