package engine

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// A destination that answers 2xx after a network round trip (20 ms) while
// deliveries wait for it gets more attempts in flight than PerDestination
// (here 2), up to PerDestinationMax (8): at least the first probe of a
// larger cap. With the fixed cap it never had more than 2 (the backlog
// waited behind them however fast the destination answered). The round
// trip, not the CPU, sets the destination's rate, as for a receiver across
// a network: a larger cap then delivers faster, which is what keeps a
// probe, whatever else the machine is doing (an answer at once made the
// rate follow the CPU the test got, and on a starved machine the cap
// rightly did not grow).
func TestFastDestinationWithABacklogGrowsItsCap(t *testing.T) {
	t.Parallel()
	// The lease outlasts the attempt timeout, as serve requires: with a
	// 60 s lease and a 10 min timeout every claimed delivery was stale at
	// once and never parked, so the backlog came from the store one claim
	// per freed slot, about half the attempts ended with a slot empty
	// (not "held by its cap"), and whether an epoch counted as limited
	// depended on how fast the claims ran on a loaded machine.
	b := setup(t, setupOpts{direct: true, workers: 32, perDest: 2, perDestMax: 8,
		attemptTimeout: waitLimit, lease: 2 * waitLimit})
	const rtt = 20 * time.Millisecond
	release := make(chan struct{})
	var once sync.Once
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		// The first attempt (the slow start's one) waits until the
		// backlog is in the store.
		first := false
		once.Do(func() { first = true })
		if first {
			<-release
		} else {
			time.Sleep(rtt) // the remote side's round trip, not synchronisation
		}
		w.WriteHeader(http.StatusNoContent)
	})
	hook, _ := b.webhook(rec.srv.URL)
	var mu sync.Mutex
	most := 0
	b.engine.mu.Lock()
	b.engine.onStart = func(t *task) {
		mu.Lock()
		most = max(most, b.engine.dests[t.c.Dest].running)
		mu.Unlock()
	}
	b.engine.mu.Unlock()
	const n = 120
	for i := range n {
		b.publish(`{"i":"` + itoa(i%100) + `"}`)
	}
	close(release)
	waitFor(t, "every delivery", func() bool { return countSucceeded(b, hook.ID) == n })
	mu.Lock()
	defer mu.Unlock()
	if most <= 2 {
		t.Fatalf("at most %d attempts in flight to a fast destination with %d deliveries waiting; want more than PerDestination = 2", most, n)
	}
	if most > 8 {
		t.Fatalf("%d attempts in flight to one destination; want at most PerDestinationMax = 8", most)
	}
}

// adaptEngine is an engine (not running) with one destination known
// (past its slow start) and work waiting for it: the state adapt sees
// when an attempt to a destination with a backlog ends.
func adaptEngine(t *testing.T, perDest, perDestMax int) (*Engine, *destState) {
	t.Helper()
	e := New(Config{Workers: 512, PerDestination: perDest, PerDestinationMax: perDestMax})
	d := &destState{parked: make([]*task, 100)}
	e.dests["d"] = d
	e.latency["d"] = time.Millisecond
	return e, d
}

// run ends n attempts to "d" as finished does, the destination at its cap
// (every slot taken, work waiting), each signalling sig; the clock
// advances per attempt by what the destination's rate at the current cap
// makes it: rtt / cap when the round trip is the limit (the rate grows
// with the cap), 1 / rate when something else is (it does not).
func run(e *Engine, d *destState, now *time.Time, n int, sig loadSignal, rtt time.Duration, rate float64) {
	for range n {
		c := e.capOf("d")
		d.running = c
		if rtt > 0 {
			*now = now.Add(rtt / time.Duration(c))
		} else {
			*now = now.Add(time.Duration(float64(time.Second) / rate))
		}
		e.adapt("d", d, sig, *now)
	}
}

// Where the destination's round trip is the limit (the rate grows with
// the cap), the cap grows epoch by epoch to PerDestinationMax; where it
// is not (the rate stays the same), one probe is made, taken back, and
// the cap stays at PerDestination through the hold. Without work
// waiting, it does not grow at all.
func TestAdaptiveCapGrowsOnlyWhenItPays(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC)
	e, d := adaptEngine(t, 8, 32)
	if c := e.capOf("d"); c != 8 {
		t.Fatalf("cap %d before any answer; want PerDestination = 8", c)
	}
	run(e, d, &now, epochRounds*8, signalOK, 4*time.Millisecond, 0)
	if c := e.capOf("d"); c != 9 {
		t.Fatalf("cap %d after one limited epoch; want the first probe, 9", c)
	}
	run(e, d, &now, 5000, signalOK, 4*time.Millisecond, 0)
	if c := e.capOf("d"); c != 32 {
		t.Fatalf("cap %d where the round trip is the limit; want PerDestinationMax = 32", c)
	}

	e, d = adaptEngine(t, 8, 32)
	most := 0
	for range 40 * epochRounds * 9 {
		run(e, d, &now, 1, signalOK, 0, 8000)
		most = max(most, e.capOf("d"))
	}
	if c := e.capOf("d"); c != 8 || most > 9 {
		t.Fatalf("cap %d (at most %d) where the rate does not follow the cap; want probes of 9 taken back to 8", c, most)
	}

	e, d = adaptEngine(t, 8, 32)
	d.parked = nil
	run(e, d, &now, 5000, signalOK, 4*time.Millisecond, 0)
	if c := e.capOf("d"); c != 8 {
		t.Fatalf("cap %d with nothing waiting; want 8", c)
	}
}

// Overload (a timeout, 429, 5xx) takes a quarter off, down to
// PerDestination and never below; an answer slower than slowLatency a
// tenth; a 4xx leaves the cap. A hanging destination has one attempt
// whatever its cap grew to, and a destination idle for adaptIdleFor
// starts again at PerDestination.
func TestAdaptiveCapShrinks(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC)
	e, d := adaptEngine(t, 8, 32)
	run(e, d, &now, 5000, signalOK, 4*time.Millisecond, 0)
	if c := e.capOf("d"); c != 32 {
		t.Fatalf("cap %d; want 32 to start from", c)
	}
	run(e, d, &now, 1, signalNone, 4*time.Millisecond, 0)
	if c := e.capOf("d"); c != 32 {
		t.Fatalf("cap %d after a 4xx; want it unchanged at 32", c)
	}
	run(e, d, &now, 1, signalBusy, 4*time.Millisecond, 0)
	if c := e.capOf("d"); c != 24 {
		t.Fatalf("cap %d after a 5xx at 32; want 24", c)
	}
	run(e, d, &now, 20, signalBusy, 4*time.Millisecond, 0)
	if c := e.capOf("d"); c != 8 {
		t.Fatalf("cap %d after many 5xx; want PerDestination = 8", c)
	}

	run(e, d, &now, 5000, signalOK, 4*time.Millisecond, 0)
	e.latency["d"] = 2 * slowLatency
	run(e, d, &now, 1, signalOK, 4*time.Millisecond, 0)
	if c := e.capOf("d"); c != 29 {
		t.Fatalf("cap %d after a slow answer at 32; want 29", c)
	}
	e.latency["d"] = time.Millisecond

	e.hanging["d"] = 1
	if c := e.capOf("d"); c != 1 {
		t.Fatalf("cap %d of a hanging destination; want 1", c)
	}
	delete(e.hanging, "d")

	e.adaptIdle("d", now.Add(adaptIdleFor/2))
	if c := e.capOf("d"); c != 29 {
		t.Fatalf("cap %d after a short pause; want 29 kept", c)
	}
	e.adaptIdle("d", now.Add(adaptIdleFor))
	if c := e.capOf("d"); c != 8 {
		t.Fatalf("cap %d after %v idle; want PerDestination = 8 again", c, adaptIdleFor)
	}
}

// PerDestinationMax at or below PerDestination (the default) turns growth
// off; it is at most Workers.
func TestAdaptiveCapBounds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC)
	for _, m := range []int{0, -1, 2} {
		e, d := adaptEngine(t, 4, m)
		run(e, d, &now, 5000, signalOK, 4*time.Millisecond, 0)
		if c := e.capOf("d"); c != 4 {
			t.Fatalf("PerDestinationMax %d: cap %d; want a fixed 4", m, c)
		}
	}
	for _, c := range []struct{ workers, perDest, perDestMax, want int }{
		{512, 32, 0, 32}, {512, 32, 128, 128}, {64, 32, 128, 64}, {512, 200, 100, 200},
	} {
		if got := New(Config{Workers: c.workers, PerDestination: c.perDest, PerDestinationMax: c.perDestMax}).cfg.PerDestinationMax; got != c.want {
			t.Errorf("Workers %d, PerDestination %d, PerDestinationMax %d: %d; want %d", c.workers, c.perDest, c.perDestMax, got, c.want)
		}
	}
}
