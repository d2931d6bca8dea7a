package cli

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func gcPercent() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestGCFloorPercent(t *testing.T) {
	g := &gcFloor{floor: 96 << 20}
	for _, c := range []struct {
		live, roots uint64
		want        int
	}{
		{0, 0, 2400},             // capped: the runtime's minimum goal is 4 MB × percent / 100
		{2 << 20, 0, 2400},       // capped
		{4 << 20, 0, 2300},       // next GC at 96 MB
		{4 << 20, 4 << 20, 1150}, // the roots count in the goal too
		{32 << 20, 0, 200},       // 96 MB
		{40 << 20, 8 << 20, 116},
		{48 << 20, 0, 100},  // twice the live heap is the floor
		{200 << 20, 0, 100}, // above the floor: the default
	} {
		if got := g.percentFor(c.live, c.roots); got != c.want {
			t.Errorf("percentFor(%d MB, %d MB) = %d, want %d", c.live>>20, c.roots>>20, got, c.want)
		}
	}
}

// TestGCFloor runs the floor in this process: it raises the GC percent
// while the live heap is small, falls back to 100 after a collection
// finds half the floor live, and restores the percent when stopped. Not
// parallel: the GC percent is the process's.
func TestGCFloor(t *testing.T) {
	if p := gcPercent(); p != 100 {
		t.Skipf("GC percent %d in this process (GOGC set?)", p)
	}
	stop := startGCFloor(func(string) string { return "" }, 64<<20)
	if p := gcPercent(); p <= 100 {
		t.Fatalf("GC percent %d with a small live heap, want > 100", p)
	}
	// Servers in one process share the floor: it stays on until the last
	// stops, in whatever order, and then the percent is the one found.
	stop2 := startGCFloor(func(string) string { return "" }, 64<<20)
	stop()
	stop()
	if p := gcPercent(); p <= 100 {
		t.Fatalf("GC percent %d after one of two servers stopped, want the floor still on", p)
	}
	stop2()
	if p := gcPercent(); p != 100 {
		t.Fatalf("GC percent %d after both servers stopped, want 100", p)
	}
	stop = startGCFloor(func(string) string { return "" }, 64<<20)
	live := make([][]byte, 40)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	deadline := time.Now().Add(time.Minute)
	for gcPercent() != 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GC percent %d with 40 MB live, want 100", gcPercent())
		}
		runtime.GC() // the floor adjusts after a collection
	}
	runtime.KeepAlive(live)
	live = nil
	for gcPercent() == 100 {
		if time.Now().After(deadline) {
			t.Fatal("GC percent stays 100 once the live heap is small again")
		}
		runtime.GC()
	}
	stop()
	if p := gcPercent(); p != 100 {
		t.Errorf("GC percent %d after stop, want 100", p)
	}
	stop() // twice is fine

	off := startGCFloor(func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	}, 64<<20)
	defer off()
	if p := gcPercent(); p != 100 {
		t.Errorf("GC percent %d with GOGC set, want it left alone", p)
	}
}
