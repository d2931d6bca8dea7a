package engine

import (
	"time"

	"github.com/longhook/longhook/internal/core"
)

// Adaptive per-destination concurrency (on when PerDestinationMax is
// above PerDestination; docs/design.md). A fixed cap of PerDestination
// attempts in flight holds a destination with a backlog to PerDestination
// / round trip deliveries a second: 1,600/s to a receiver 20 ms away,
// however fast it is. But more attempts in flight pay only where the
// destination's round trip, not the CPU, is the limit: on a busy machine
// they cost CPU (fewer attempts chained on a worker from the parked
// queue, more goroutine wake-ups) and deliver no more. So the cap is
// probed, not raised blindly:
//
//   - the attempts to a destination are counted in epochs of
//     epochRounds × its cap (about that many round trips);
//   - after an epoch in which it was held by its cap (most of its attempts
//     ended with every slot taken and deliveries waiting, parked here or
//     left in the store by a claim that skipped the destination at its
//     cap) and that had no overload, the cap grows by an eighth (at least one), up to
//     PerDestinationMax;
//   - after the next such epoch, the growth is kept only if the
//     destination's delivery rate rose by growthPays or more; otherwise
//     the cap goes back and stays there for holdEpochs epochs before the
//     next probe.
//
// It shrinks, by a quarter, towards PerDestination (never below) on any
// attempt that signals overload — no answer (a timeout or a connection
// error), 429 or a 5xx — and by a tenth on an answer when the
// destination's recent latency is above slowLatency. Other answers (a 4xx,
// a redirect) say nothing about load. A destination with nothing in
// flight or waiting here for adaptIdleFor starts again at PerDestination.
// The slow start and the hanging destinations' cap of one (hanging.go)
// come first: a destination never heard from, or whose last attempt
// timed out, has one attempt in flight whatever its grown cap was. What
// growth puts at risk is at most PerDestinationMax slots for one attempt
// timeout if a fast destination starts hanging with its cap grown.
//
// Rates and latencies are real time (time.Now), as attempt latencies are:
// they measure the machine, not the schedule.

const (
	epochRounds  = 4
	growthPays   = 1.05
	holdEpochs   = 8
	slowLatency  = time.Second
	adaptIdleFor = time.Second
)

// adaptState is a destination's adaptive cap.
type adaptState struct {
	limit int       // the cap, PerDestination to PerDestinationMax
	seen  time.Time // when an attempt to it last ended

	start   time.Time // the epoch's start
	done    int       // attempts ended in the epoch
	limited int       // of them, with every slot taken and work waiting
	// prevLimit and prevRate are the cap and the delivery rate (per
	// second) of the last limited epoch before the cap grew; prevRate is
	// 0 when there is nothing to compare with.
	prevLimit int
	prevRate  float64
	hold      int // limited epochs to wait before the next probe
}

// adaptIdle forgets the grown cap of dest, which had nothing in flight or
// waiting, if its last attempt ended adaptIdleFor ago or more; e.mu is
// held.
func (e *Engine) adaptIdle(dest string, now time.Time) {
	if a := e.adaptive[dest]; a != nil && now.Sub(a.seen) >= adaptIdleFor {
		delete(e.adaptive, dest)
	}
}

// loadSignal is what an attempt says about its destination's load.
type loadSignal uint8

const (
	signalNone loadSignal = iota // no attempt made, or an answer that says nothing of load
	signalOK                     // a 2xx answer
	signalBusy                   // no answer, 429 or 5xx
)

// failureSignal is the load signal of a failed attempt.
func failureSignal(f *core.Failure, status int) loadSignal {
	switch f.Kind {
	case core.FailTimeout, core.FailConnection, core.FailThrottled, core.FailUnavailable:
		return signalBusy
	case core.FailHTTPStatus:
		if status >= 500 {
			return signalBusy
		}
	}
	return signalNone
}

// adapt updates the cap of dest (its state d, the attempt that ended
// still counted in d.running) after an attempt that signalled sig and
// ended at now; e.latency[dest] already includes it. e.mu is held.
func (e *Engine) adapt(dest string, d *destState, sig loadSignal, now time.Time) {
	floor, ceil := e.cfg.PerDestination, e.cfg.PerDestinationMax
	if ceil <= floor || sig == signalNone {
		return
	}
	a := e.adaptive[dest]
	if a == nil {
		a = &adaptState{limit: floor, start: now}
		e.adaptive[dest] = a
	}
	a.seen = now
	shrink := 0
	switch {
	case sig == signalBusy:
		shrink = max(a.limit/4, 1)
	case e.latency[dest] > slowLatency:
		shrink = max(a.limit/10, 1)
	}
	if shrink > 0 {
		a.limit = max(a.limit-shrink, floor)
		a.start, a.done, a.limited, a.prevRate = now, 0, 0, 0
		return
	}
	a.done++
	if d.running >= a.limit && (len(d.parked) > 0 || e.excluded[dest]) {
		a.limited++ // at its cap, work waiting here or left in the store
	}
	if a.done < epochRounds*a.limit {
		return
	}
	elapsed := now.Sub(a.start)
	rate := float64(a.done) / max(elapsed.Seconds(), 1e-9)
	limited := 2*a.limited >= a.done
	a.start, a.done, a.limited = now, 0, 0
	switch {
	case !limited:
		// Demand, not the cap, set the rate: nothing to learn.
		a.prevRate = 0
	case a.prevRate > 0 && a.limit > a.prevLimit && rate < growthPays*a.prevRate:
		// The last growth did not pay: back, and wait before probing.
		a.limit, a.prevRate, a.hold = a.prevLimit, 0, holdEpochs
	case a.hold > 0:
		a.hold--
		a.prevRate = 0
	case a.limit < ceil:
		a.prevLimit, a.prevRate = a.limit, rate
		a.limit = min(a.limit+max(a.limit/8, 1), ceil)
	}
}
