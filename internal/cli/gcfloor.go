package cli

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// gcFloorBytes is the heap size below which serve does not collect:
// serve's live heap is small (about 4 MB under load), so at the default
// GOGC=100 it collected every 5 MB or so of allocation, GC a tenth of its
// CPU. See design.md ("The serve process's GC floor").
const gcFloorBytes = 64 << 20

// gcFloor keeps the heap goal at max(twice the live heap, floor): after
// every collection it sets the GC percent so that the next one comes no
// sooner than the heap reaches floor, and at the default 100 % once the
// live heap is half the floor or more. The memory it costs is bounded by
// floor. It is off when GOGC or GOMEMLIMIT is set (the operator's
// setting wins).
//
// The runtime's heap goal is live + (live + stacks + globals) × percent
// / 100, and never below 4 MB × percent / 100; the percent is computed
// from the same terms and capped so that minimum stays at floor.
type gcFloor struct {
	floor   uint64
	sample  []metrics.Sample
	mu      sync.Mutex
	stopped bool
	orig    int
}

// heapMinimum is the runtime's minimum heap goal at GOGC=100.
const heapMinimum = 4 << 20

// The GC percent is the process's: servers run in one process (tests)
// share one floor, started by the first and stopped by the last.
var (
	floorMu    sync.Mutex
	floorUsers int
	floorOn    *gcFloor
)

// startGCFloor starts the floor unless getenv names GOGC or GOMEMLIMIT;
// the returned func stops it and restores the GC percent found.
func startGCFloor(getenv func(string) string, floor uint64) (stop func()) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	floorMu.Lock()
	defer floorMu.Unlock()
	if floorUsers == 0 {
		g := &gcFloor{floor: floor, sample: []metrics.Sample{
			{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}}
		g.orig = debug.SetGCPercent(g.percentFor(g.read()))
		g.arm()
		floorOn = g
	}
	floorUsers++
	var once sync.Once
	return func() {
		once.Do(func() {
			floorMu.Lock()
			defer floorMu.Unlock()
			if floorUsers--; floorUsers == 0 {
				floorOn.stop()
				floorOn = nil
			}
		})
	}
}

// percentFor is the GC percent that puts the next collection at
// max(2 × live, floor), given the live heap and the GC roots (stacks
// and globals).
func (g *gcFloor) percentFor(live, roots uint64) int {
	if 2*live >= g.floor {
		return 100
	}
	p := (g.floor - live) * 100 / max(live+roots, 1)
	return int(max(100, min(p, g.floor*100/heapMinimum)))
}

// read returns the live heap and the roots of the last collection.
func (g *gcFloor) read() (live, roots uint64) {
	metrics.Read(g.sample)
	var v [3]uint64
	for i, s := range g.sample {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	return v[0], v[1] + v[2]
}

// arm registers a cleanup that runs after the next collection.
func (g *gcFloor) arm() {
	runtime.AddCleanup(new([16]byte), func(g *gcFloor) { g.collected() }, g)
}

func (g *gcFloor) collected() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	debug.SetGCPercent(g.percentFor(g.read()))
	g.arm()
}

func (g *gcFloor) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.stopped {
		g.stopped = true
		debug.SetGCPercent(g.orig)
	}
}
