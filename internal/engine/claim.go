package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// claimLoop claims due work until ctx ends: again at once while a claim
// fills every free slot, else after waiting for a reason to (await).
func (e *Engine) claimLoop(ctx context.Context) {
	wake := e.cfg.Store.Wake()
	backoff := 50 * time.Millisecond
	recheck := false // the last pass found due work that no cap held back
	for {
		seen := e.cfg.Clock.Now() // the claim sees every retry due by now
		n, full, err := e.claimOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			e.cfg.Logger.Error("engine.claim_failed", slog.String("error", err.Error()))
			if !core.Sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if n > 0 && full && e.free() > 0 {
			continue // there may be more due right now
		}
		// Wait for new work, a scheduled retry, the safety poll — or, when
		// the last claim filled every free slot (so more may be due), for
		// slots to free up. Freed slots alone do not trigger a claim
		// otherwise: that would query the store after every attempt.
		wait, blocked, again := e.nextWait(ctx, seen, &recheck)
		if again {
			continue
		}
		recheck = false
		if full {
			// Freed slots wake the loop only while it waits for them:
			// otherwise every attempt's end would wake it for nothing.
			// A slot freed before the flag was up is seen here.
			e.waitFreed.Store(true)
			if e.free() > 0 {
				e.waitFreed.Store(false)
				continue
			}
		}
		if !e.await(ctx, wake, wait, full, blocked) {
			return
		}
	}
}

// nextWait is how long the claim loop waits after a pass that claimed
// what it could (seen: the time the claim saw), blocked whether due work
// waits for capped destinations to have room, and again whether to claim
// again at once instead. recheck: the last pass found due work that no
// cap held back (it is set here when this one does).
func (e *Engine) nextWait(ctx context.Context, seen time.Time, recheck *bool) (
	wait time.Duration, blocked, again bool) {
	wait = e.cfg.PollInterval
	if t, ok, err := e.cfg.Store.NextDueTime(ctx); err == nil && ok {
		if d := t.Sub(e.cfg.Clock.Now()); d <= 0 {
			if !*recheck && !e.skippedDests() {
				// No cap held it back: it became due after the
				// claim looked (a retry due in milliseconds).
				*recheck = true
				return 0, false, true
			}
			if e.hangTurnsLeft() {
				return 0, false, true // offer the other hanging destinations
			}
			// Due work that the claim did not take belongs to
			// destinations at their cap: claim again once one of
			// them has room (not after every attempt elsewhere).
			blocked = true
		} else if d < wait {
			wait = d
		}
	}
	if t, ok := e.soon.next(seen); ok {
		// A retry this engine wrote (soon.go): claim it when it falls
		// due, even while capped destinations' due work fills the
		// store's minimum.
		d := t.Sub(e.cfg.Clock.Now())
		if d <= 0 {
			return 0, false, true // it fell due after the claim looked
		}
		wait = min(wait, d)
	}
	if d, ok := e.rateWait(); ok && d < wait {
		wait = max(d, time.Millisecond) // a limited destination gets its next token
	}
	return wait, blocked, false
}

// await waits up to wait for a reason to claim again: new work (wake), a
// retry written meanwhile, freed slots (if full: the last claim filled
// them), room at a capped destination (if blocked). It reports false
// when ctx ends.
func (e *Engine) await(ctx context.Context, wake <-chan struct{}, wait time.Duration, full, blocked bool) bool {
	timer := e.cfg.Clock.NewTimer(wait)
wait:
	for {
		select {
		case <-ctx.Done():
			e.waitFreed.Store(false)
			timer.Stop()
			return false
		case <-wake:
			break wait
		case <-e.resched:
			// A retry was written after the timer was armed; it may be
			// due before the timer fires.
			break wait
		case <-timer.C():
			break wait
		case <-e.freed:
			if full {
				break wait
			}
		case <-e.unblocked:
			if blocked {
				break wait
			}
		case reply := <-e.probe:
			// Asked here, the loop waits; it would not for long with
			// one of these pending (select picks among ready cases).
			reply <- len(wake) == 0 && len(e.resched) == 0 &&
				(!full || len(e.freed) == 0) && (!blocked || len(e.unblocked) == 0)
		}
	}
	e.waitFreed.Store(false)
	timer.Stop()
	return true
}

// skippedDests reports whether the last claim skipped destinations at
// their cap.
func (e *Engine) skippedDests() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.excluded) > 0
}

func (e *Engine) free() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.Workers - e.claimed
}

// claimOnce claims at most the free slots and starts the attempts. full
// reports whether the claim was limited by free slots (more may be due).
func (e *Engine) claimOnce(ctx context.Context) (n int, full bool, err error) {
	stale := e.dropStale()
	e.release(stale)
	e.mu.Lock()
	free := e.cfg.Workers - e.claimed
	var exclude []string
	clear(e.excluded)
	for k, d := range e.dests {
		if d.running+len(d.parked) >= e.capIn(k, d) {
			exclude = append(exclude, k)
			e.excluded[k] = true
		}
	}
	exclude = e.hangExclusions(exclude)
	exclude, _ = e.rateExclusions(exclude, e.cfg.Clock.Now())
	e.mu.Unlock()
	if free <= 0 {
		return 0, true, nil
	}
	limit := min(free, e.cfg.BatchSize)
	now := e.cfg.Clock.Now()
	claimed, err := e.cfg.Store.ClaimDeliveries(ctx, core.ClaimParams{
		Owner: e.cfg.Owner, Now: now, Limit: limit,
		Lease: e.cfg.Lease, ExcludeDests: exclude,
	})
	if err != nil || len(claimed) == 0 {
		return 0, false, err
	}
	gen, at := e.gen.Load(), time.Now()
	hooks, err := e.lookupWebhooks(ctx, claimed)
	if err != nil {
		// Leave the claims to expire; they are retried after the lease.
		return 0, false, err
	}
	tasks := make([]*task, len(claimed))
	for i := range claimed {
		tasks[i] = &task{c: claimed[i], gen: gen, at: at, leaseEnd: now.Add(e.cfg.Lease)}
		if tasks[i].c.WebhookID != "" {
			tasks[i].hook = hooks[tasks[i].c.WebhookID]
		}
	}
	tasks = e.gate(ctx, tasks)
	var release []string
	e.mu.Lock()
	for _, t := range tasks {
		if !e.admit(t) {
			release = append(release, t.c.ID)
		}
	}
	e.mu.Unlock()
	e.release(release)
	return len(claimed), len(claimed) == limit, nil
}

func (e *Engine) lookupWebhooks(ctx context.Context, claimed []core.Claimed) (map[string]*core.Webhook, error) {
	seen := map[string]bool{}
	var ids []string
	for _, c := range claimed {
		if c.WebhookID != "" && !seen[c.WebhookID] {
			seen[c.WebhookID] = true
			ids = append(ids, c.WebhookID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return e.cfg.Store.WebhooksByID(ctx, ids)
}
