package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// The direct path: the publisher inserts deliveries already leased to this
// engine (core.Delivery.LeaseOwner) and hands them over in memory after the
// commit, so a fresh event costs no claim query and no payload read. The
// engine reserves a slot per delivery before the insert, so the direct path
// never exceeds the worker cap; whatever it cannot take is inserted
// unleased and claimed the ordinary way.

// Reserve reserves up to len(dests) slots for deliveries to the given
// destinations and reports which of them it took: a destination already at
// its cap is left to the ordinary claim path.
func (e *Engine) Reserve(dests []string) (core.Reservation, []bool) {
	take := make([]bool, len(dests))
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.attemptCtx.Err() != nil || e.stopping {
		return core.Reservation{}, take
	}
	// Room: the worker slots plus the in-memory queue. Claimed work
	// (retries, reclaims) has its own budget of worker slots, and the pump
	// serves destinations round-robin, so neither path starves the other.
	free := e.cfg.Workers + e.cfg.QueueSize - e.direct - e.reserved
	if e.bytes >= e.cfg.QueueBytes {
		free = 0 // the memory bound: fresh work waits in the store
	}
	n := 0
	perDest := map[string]int{}
	for i, d := range dests {
		if n >= free {
			break
		}
		busy := perDest[d]
		s := e.dests[d]
		if s != nil {
			busy += s.running + len(s.parked)
		}
		if busy >= e.capIn(d, s)+e.parkLimit(d, s) {
			continue
		}
		perDest[d]++
		take[i] = true
		n++
	}
	e.reserved += n
	return core.Reservation{N: n, Owner: e.cfg.Owner, Until: e.cfg.Clock.Now().Add(e.cfg.Lease)}, take
}

// Generation counts WebhooksChanged calls; the publisher records it before
// reading webhooks so a change made meanwhile forces a re-read.
func (e *Engine) Generation() uint64 { return e.gen.Load() }

// Cancel returns the slots of a reservation whose insert failed.
func (e *Engine) Cancel(r core.Reservation) {
	e.mu.Lock()
	e.reserved -= r.N
	e.mu.Unlock()
	e.signalFreed()
}

// Dispatch starts the deliveries of a committed reservation. hooks
// resolves static deliveries' webhooks (those the publisher fanned out to).
func (e *Engine) Dispatch(r core.Reservation, cs []core.Claimed, hooks map[string]*core.Webhook, gen uint64, hooksAt time.Time) {
	tasks := make([]*task, len(cs))
	for i := range cs {
		tasks[i] = &task{c: cs[i], direct: true, gen: gen, at: hooksAt, leaseEnd: r.Until}
		if cs[i].WebhookID != "" {
			tasks[i].hook = hooks[cs[i].WebhookID]
		}
	}
	tasks = e.gate(context.Background(), tasks)
	var release []string
	e.mu.Lock()
	e.reserved -= r.N
	for _, t := range tasks {
		if e.stopping || !e.admit(t) {
			release = append(release, t.c.ID)
		}
	}
	e.mu.Unlock()
	e.release(release)
}

// admit starts t or parks it behind its destination's cap; it reports
// false if the destination's parking is full (the caller releases it).
// e.mu is held.
func (e *Engine) admit(t *task) bool {
	if h := e.held[t.c.ID]; h != nil {
		// Already ours: an expired lease claimed again, or a delivery
		// made due again (:redeliver) while its attempt ran. The attempt
		// in flight must not decide when it is next sent: its result
		// leaves it due at once (enqueueResult).
		if h.started {
			h.again = true
		}
		return true
	}
	if t.at.IsZero() { // claimed: its webhook was read just now
		t.gen, t.at = e.gen.Load(), time.Now()
	}
	d := e.dests[t.c.Dest]
	if d == nil {
		d = e.newDestState(t.c.Dest)
		e.dests[t.c.Dest] = d
		if len(e.adaptive) > 0 {
			e.adaptIdle(t.c.Dest, time.Now())
		}
	}
	if !e.canRun(t.c.Dest, d) {
		if len(d.parked) >= e.parkLimit(t.c.Dest, d) ||
			t.direct && e.bytes+e.directCost(t) > e.cfg.QueueBytes {
			if len(d.parked) == 0 && d.running == 0 {
				delete(e.dests, t.c.Dest)
			}
			return false
		}
		d.parked = append(d.parked, t)
		e.markReady(t.c.Dest, d)
	} else {
		e.run(t, d)
	}
	e.held[t.c.ID] = t
	if t.direct {
		e.direct++
		e.hold(t)
	} else {
		e.claimed++
	}
	return true
}

func (e *Engine) release(ids []string) {
	if len(ids) == 0 {
		return
	}
	if err := e.cfg.Store.ReleaseDeliveries(context.Background(), e.cfg.Owner, ids); err != nil {
		e.cfg.Logger.Warn("engine.release_failed", slog.String("error", err.Error()))
	}
}

func (e *Engine) signalFreed() {
	if !e.waitFreed.Load() {
		return // the claim loop is not waiting for slots
	}
	select {
	case e.freed <- struct{}{}:
	default:
	}
}
