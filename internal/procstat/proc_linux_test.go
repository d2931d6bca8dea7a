//go:build linux

package procstat

import (
	"os"
	"testing"
	"time"
)

// Reading this process through /proc agrees with getrusage: both count
// every thread's user and system time.
func TestProcessCPUSelf(t *testing.T) {
	deadline := time.Now().Add(60 * time.Second)
	for CPUTime() < 50*time.Millisecond && time.Now().Before(deadline) {
		for i := range 1_000_000 {
			_ = i * i
		}
	}
	got, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	ru := CPUTime()
	if got <= 0 || got > ru+clockTick || got < ru/2 {
		t.Fatalf("ProcessCPU = %v, getrusage = %v", got, ru)
	}
	if _, err := ProcessCPU(-1); err == nil {
		t.Fatal("ProcessCPU(-1): no error")
	}
}
