package engine

import (
	"context"
	"time"

	"github.com/longhook/longhook/internal/core"
)

type task struct {
	c      core.Claimed
	hook   *core.Webhook // nil for dynamic deliveries
	direct bool          // came by the direct path, not a claim
	gen    uint64        // Engine.gen when hook was read
	at     time.Time     // when hook was read
	// leaseEnd is when the lease expires on Clock, at the earliest: a
	// parked task too close to it is given back instead of sent (another
	// instance may take it over meanwhile).
	leaseEnd time.Time

	hang    bool // holds one of the HangingWorkers slots
	started bool // its attempt was started (e.mu)
	// again: a claim took the delivery again while the attempt ran (a
	// :redeliver made it due meanwhile, and this engine took it back):
	// the attempt's result leaves it due at once instead of scheduling
	// it (e.mu).
	again    bool
	timedOut bool // the attempt timed out (set by attempt, read by finished)
	aborted  bool // longhook ended the attempt itself (hard stop; set by attempt, read by fail)
	// signal is what the attempt says about its destination's load (set
	// by attempt, read by finished): see adaptive.go.
	signal loadSignal
	// logCtx is the attempt span's context while tracing is on (nil
	// otherwise): the attempt's log record names its trace.
	logCtx context.Context
	// notBefore, when set, is when the rate-limit token reserved for the
	// task becomes usable (Engine.gate); the attempt waits for it.
	notBefore time.Time
}

// taskBytes is what a held delivery costs besides its event's payload
// (the task, its claimed row and the bookkeeping around it).
const taskBytes = 512

// forget drops a finished or released task from the counts; e.mu is held.
func (e *Engine) forget(t *task) {
	e.letGo(t)
	if !t.direct {
		e.claimed--
		return
	}
	e.direct--
	e.bytes -= taskBytes
	if n := e.payloads[t.c.EventID] - 1; n > 0 {
		e.payloads[t.c.EventID] = n
	} else {
		delete(e.payloads, t.c.EventID)
		e.bytes -= int64(len(t.c.Payload))
	}
}

// letGo stops t holding its delivery id (if it still does), so a claim of
// the same delivery is a new attempt, not a copy of t; e.mu is held.
func (e *Engine) letGo(t *task) {
	if e.held[t.c.ID] == t {
		delete(e.held, t.c.ID)
	}
}

// enqueueResult queues t's result for the store. t lets go of its
// delivery first: once the result is written the delivery may be due at
// once (a short retry, --time-scale) and claimed again before t's
// worker reaches finished; that claim must start a new attempt, not be
// taken for t ("already ours") and left to wait out its lease.
func (e *Engine) enqueueResult(t *task, comp core.Completion) {
	e.mu.Lock()
	e.letGo(t)
	after := e.afterResult
	again := t.again
	e.mu.Unlock()
	if again && comp.Attempt.Number != 0 && comp.Status != core.DeliveryCancelled {
		// Made due again while this attempt ran (:redeliver): the
		// attempt is recorded, and the delivery is sent again now, as it
		// would be by another instance.
		comp.Status, comp.NextAttemptTime = core.DeliveryPending, e.cfg.Clock.Now()
	}
	if after != nil {
		defer after(t)
	}
	e.queued.Add(1)
	_ = e.completions.Enqueue(context.Background(), comp)
}

// directCost is what holding t adds to e.bytes; e.mu is held.
func (e *Engine) directCost(t *task) int64 {
	if e.payloads[t.c.EventID] > 0 {
		return taskBytes
	}
	return taskBytes + int64(len(t.c.Payload))
}

// hold counts a direct-path task in e.bytes; e.mu is held.
func (e *Engine) hold(t *task) {
	e.bytes += e.directCost(t)
	e.payloads[t.c.EventID]++
}

// stale reports whether a parked task's lease ends too soon for an
// attempt started now to finish within it; e.mu is held.
func (e *Engine) stale(t *task, now time.Time) bool {
	return !t.leaseEnd.IsZero() && t.leaseEnd.Sub(now) < e.cfg.Sender.cfg.AttemptTimeout+time.Second
}
