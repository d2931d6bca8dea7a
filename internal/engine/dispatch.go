package engine

import (
	"context"
	"time"

	"github.com/longhook/longhook/internal/core"
)

type destState struct {
	running int
	parked  []*task
	ready   bool // listed in Engine.ready
	// lat and known mirror the destination's Engine.latency entry (known:
	// there is one) while this state exists: the cap and parking checks,
	// made several times per delivery under e.mu, read them here instead
	// of hashing the destination to look them up (noteLatency and
	// newDestState keep them in step).
	lat   time.Duration
	known bool
}

// newDestState is dest's state with its latency record; e.mu is held.
func (e *Engine) newDestState(dest string) *destState {
	lat, known := e.latency[dest]
	return &destState{lat: lat, known: known}
}

// noteLatency folds an attempt of took into dest's moving average (d is
// its state); e.mu is held.
func (e *Engine) noteLatency(dest string, d *destState, took time.Duration) {
	if len(e.latency) > 100000 {
		clear(e.latency)
		clear(e.adaptive)
		for _, s := range e.dests {
			s.lat, s.known = 0, false
		}
	}
	if d.known {
		took = (d.lat*7 + took) / 8
	}
	e.latency[dest] = took
	d.lat, d.known = took, true
}

// start runs an attempt on an idle worker goroutine, or a new one if
// none is idle; e.mu is held. A goroutine per attempt cost its creation
// and, every time, the growth of its stack to what an attempt needs
// (docs/design.md, "Attempt workers"). There are never more workers than
// attempts were in flight at once (at most Workers); reapWorkers ends
// those that stayed idle.
func (e *Engine) start(t *task) {
	t.started = true
	if e.onStart != nil {
		e.onStart(t)
	}
	e.wg.Add(1)
	if e.idle > 0 {
		e.idle--
		e.idleMin = min(e.idleMin, e.idle)
		e.work <- t // buffered for every idle worker: never blocks
		return
	}
	e.workers.Add(1)
	go e.worker(t)
}

// worker runs t, then the attempts start hands it, until it is handed
// nil (reapWorkers) or work is closed (Run returns).
func (e *Engine) worker(t *task) {
	defer e.workers.Done()
	for t != nil {
		e.runAttempt(t) // counts the worker idle again when done
		t = <-e.work
	}
}

// workerIdle is how often reapWorkers ends the workers that stayed idle
// all along since it last looked.
const workerIdle = 5 * time.Second

// reapWorkers ends, every workerIdle, as many idle workers as were never
// needed since the last time (the fewest idle at any moment), until ctx
// ends.
func (e *Engine) reapWorkers(ctx context.Context) {
	t := time.NewTicker(workerIdle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.mu.Lock()
		for range e.idleMin {
			e.idle--
			e.work <- nil
		}
		e.idleMin = e.idle
		e.mu.Unlock()
	}
}

// runAttempt makes t's attempt (after its rate-limit turn), queues the
// result and frees the slot.
func (e *Engine) runAttempt(t *task) {
	defer e.wg.Done()
	if !t.notBefore.IsZero() && !e.waitTurn(t) {
		// Stopped before its rate-limit turn: back to the store, due
		// then, without an attempt.
		e.enqueueResult(t, core.Completion{DeliveryID: t.c.ID, Owner: e.cfg.Owner,
			Status: core.DeliveryPending, NextAttemptTime: t.notBefore, Attempt: core.Attempt{Time: e.cfg.Clock.Now()}})
		e.finished(t, 0)
		return
	}
	start := time.Now()
	comp := e.tracedAttempt(e.attemptCtx, t)
	took := time.Since(start)
	e.enqueueResult(t, comp)
	e.finished(t, took)
}

// finished frees the task's slot and starts waiting work: its own
// destination's next delivery first, else other destinations in turn.
func (e *Engine) finished(t *task, took time.Duration) {
	e.mu.Lock()
	d := e.dests[t.c.Dest]
	e.noteLatency(t.c.Dest, d, took)
	e.adapt(t.c.Dest, d, t.signal, time.Now())
	d.running--
	e.running--
	e.idle++ // t's worker takes the next attempt (which pump may start now)
	e.noteOutcome(t)
	e.forget(t)
	if e.excluded[t.c.Dest] && d.running+len(d.parked) < e.capIn(t.c.Dest, d) {
		// A destination the last claim skipped has room again.
		delete(e.excluded, t.c.Dest)
		select {
		case e.unblocked <- struct{}{}:
		default:
		}
	}
	if len(d.parked) > 0 {
		e.markReady(t.c.Dest, d)
	}
	dropped := e.pump()
	if d.running == 0 && len(d.parked) == 0 {
		delete(e.dests, t.c.Dest)
	}
	e.mu.Unlock()
	e.release(dropped)
	e.signalFreed()
}

// markReady queues a destination that has parked work and room under its
// cap; e.mu is held.
func (e *Engine) markReady(key string, d *destState) {
	if !d.ready && d.running < e.capIn(key, d) {
		d.ready = true
		e.ready = append(e.ready, key)
	}
}

// pump starts parked deliveries while worker slots are free, taking
// destinations round-robin. It drops parked deliveries whose lease ends
// too soon and returns their ids, for the caller to release once e.mu
// is unlocked. e.mu is held.
func (e *Engine) pump() (dropped []string) {
	now := e.cfg.Clock.Now()
	for e.running < e.cfg.Workers && e.readyHead < len(e.ready) && e.attemptCtx.Err() == nil && !e.stopping {
		key := e.ready[e.readyHead]
		e.ready[e.readyHead] = ""
		e.readyHead++
		d := e.dests[key]
		if d == nil {
			continue
		}
		d.ready = false
		if len(d.parked) == 0 || d.running >= e.capIn(key, d) {
			continue
		}
		if _, hanging := e.hanging[key]; hanging && e.hangRunning >= e.cfg.HangingWorkers {
			d.ready = true // waits in hangWait for a hanging slot
			e.hangWait = append(e.hangWait, key)
			continue
		}
		next := d.parked[0]
		d.parked[0] = nil
		d.parked = d.parked[1:]
		if e.stale(next, now) {
			dropped = append(dropped, next.c.ID)
			e.forget(next)
			if len(d.parked) > 0 {
				e.markReady(key, d)
			} else if d.running == 0 {
				delete(e.dests, key)
			}
			continue
		}
		e.run(next, d)
		if len(d.parked) > 0 {
			e.markReady(key, d)
		}
	}
	switch n := len(e.ready) - e.readyHead; {
	case n == 0 && cap(e.ready) > 4096:
		e.ready, e.readyHead = nil, 0 // let a large array go
	case n == 0:
		e.ready, e.readyHead = e.ready[:0], 0 // reuse it: no allocation per pump
	case e.readyHead > n:
		e.ready = e.ready[:copy(e.ready, e.ready[e.readyHead:])]
		clear(e.ready[n : len(e.ready)+e.readyHead])
		e.readyHead = 0
	}
	return dropped
}

// dropStale forgets the parked deliveries at the head of each
// destination's queue whose lease ends too soon (the oldest wait at the
// head) and returns their ids to release: their slots go back to the
// claim, and the deliveries to whichever instance claims them next.
func (e *Engine) dropStale() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Clock.Now()
	var ids []string
	for k, d := range e.dests {
		n := 0
		for n < len(d.parked) && e.stale(d.parked[n], now) {
			ids = append(ids, d.parked[n].c.ID)
			e.forget(d.parked[n])
			d.parked[n] = nil
			n++
		}
		d.parked = d.parked[n:]
		if d.running == 0 && len(d.parked) == 0 && !d.ready {
			delete(e.dests, k)
		}
	}
	return ids
}

// parkLimit is how many deliveries may wait behind a destination's cap:
// enough to keep a fast destination busy, few enough that they start well
// within their lease at the destination's observed latency. d is dest's
// state, nil if it has none. e.mu is held.
func (e *Engine) parkLimit(dest string, d *destState) int {
	if _, hanging := e.hanging[dest]; hanging {
		return 0 // its deliveries wait in the store, not in a slot's queue
	}
	var lat time.Duration
	var ok bool
	if d != nil {
		lat, ok = d.lat, d.known
	} else {
		lat, ok = e.latency[dest]
	}
	if !ok || lat <= 0 {
		return e.cfg.PerDestination
	}
	// Deliveries start within about (parked / cap) × latency; keep that
	// under a third of the lease.
	c := max(e.capFor(dest, ok), e.cfg.PerDestination)
	n := int(float64(c) * float64(e.cfg.Lease/3) / float64(lat))
	return min(max(n, c), 65536)
}

// releaseParked gives parked (claimed, unstarted) deliveries back.
func (e *Engine) releaseParked() {
	e.mu.Lock()
	var ids []string
	for k, d := range e.dests {
		for _, t := range d.parked {
			ids = append(ids, t.c.ID)
			e.forget(t)
		}
		d.parked = nil
		d.ready = false
		if d.running == 0 {
			delete(e.dests, k)
		}
	}
	e.ready, e.readyHead = nil, 0
	e.hangWait = nil
	e.mu.Unlock()
	e.release(ids)
}
