//go:build !linux

package procstat

import (
	"errors"
	"time"
)

// ProcessCPU is not measured on this platform.
func ProcessCPU(pid int) (time.Duration, error) {
	return 0, errors.New("procstat: another process's CPU time is read on Linux only")
}
