package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// Rate limits (docs/design.md, "Rate limits"): a destination with a limit
// (its webhook's rate_limit, or the event's webhook_config.rate_limit)
// takes a token from its bucket in the store for every delivery before
// the delivery is admitted. What the bucket refuses goes back to the store
// at once — completed as pending with no attempt, due at the time the
// bucket will have a token for it — so waiting work is never held in
// memory, and the destination is left out of this engine's claims until
// its next token. Destinations without a limit never reach the store here.

// rateState is the engine's memory of its limited destinations.
type rateState struct {
	blocked map[string]time.Time // destination → its next token; left out of claims until then
	horizon map[string]time.Time // destination → after the last deferral this engine scheduled
}

// limitOf returns the rate limit of t's destination, or nil.
func limitOf(t *task) *core.RateLimit {
	if t.c.WebhookID != "" {
		if t.hook == nil {
			return nil
		}
		return t.hook.RateLimit
	}
	if t.c.Dynamic != nil {
		return t.c.Dynamic.RateLimit
	}
	return nil
}

// gate takes tokens for the rate-limited tasks among ts and returns those
// to admit; the others are deferred. Without limited tasks it returns ts
// as is, touching nothing.
func (e *Engine) gate(ctx context.Context, ts []*task) []*task {
	var groups map[string][]*task
	var order []string
	out := ts[:0:0]
	for i, t := range ts {
		if limitOf(t) == nil {
			if groups != nil {
				out = append(out, t)
			}
			continue
		}
		if groups == nil {
			groups = map[string][]*task{}
			out = append(make([]*task, 0, len(ts)), ts[:i]...)
		}
		if groups[t.c.Dest] == nil {
			order = append(order, t.c.Dest)
		}
		groups[t.c.Dest] = append(groups[t.c.Dest], t)
	}
	if groups == nil {
		return ts
	}
	now := e.cfg.Clock.Now()
	for _, dest := range order {
		g := groups[dest]
		l := *limitOf(g[0])
		k := e.reserveAhead(l)
		granted, next, at, err := e.cfg.Store.TakeRate(ctx, dest, l.Reserve(k), len(g), now)
		ahead := false
		if err == nil && granted == 0 && k == 0 && next.Sub(at) <= rateLookahead {
			// A slow limit's next token is a moment away: these deliveries
			// fell due on the bucket's schedule before a late send moved
			// it on by a few milliseconds. Take that token ahead and wait
			// for it, as fast limits do; deferred again they would go to
			// the back of the queue and the token would go unused.
			k, ahead = 1, true
			granted, next, at, err = e.cfg.Store.TakeRate(ctx, dest, l.Reserve(k), len(g), now)
		}
		if err != nil {
			// Without the bucket nothing is sent: the limit is a promise.
			e.cfg.Logger.Warn("engine.rate_limit_failed", slog.String("dest", dest), slog.String("error", err.Error()))
			granted, next, ahead = 0, now.Add(l.Interval()), false
		}
		if granted > 0 {
			// Offsets count from when the store applied the limit; this
			// clock's now is no earlier than that, so nothing is sent
			// before its time whatever the clocks' skew.
			base := e.cfg.Clock.Now()
			for j, off := range l.SendOffsets(granted, k, next, at) {
				if off > 0 {
					g[j].notBefore = base.Add(off)
				}
			}
		}
		out = append(out, g[:granted]...)
		if granted < len(g) {
			if ahead {
				next = next.Add(l.Interval()) // l's own next token, after the one taken ahead
			}
			e.deferTasks(dest, g[granted:], next, l.Interval(), now)
		}
	}
	return out
}

// rateLookahead is how far ahead of their time an engine takes tokens of
// a limited destination (see core.RateLimit.Reserve): the gap between two
// takes that still loses no token is this plus the burst.
const rateLookahead = 250 * time.Millisecond

// reserveAhead is how many tokens of l to take ahead of their time: those
// of rateLookahead, at most half the per-destination cap (a reserved
// delivery holds its slot while it waits), none for slow limits, whose
// interval dwarfs a take's latency.
func (e *Engine) reserveAhead(l core.RateLimit) int {
	return min(int(rateLookahead/l.Interval()), e.cfg.PerDestination/2)
}

// waitTurn holds a reserved delivery until its token's time (false: the
// engine stopped first).
func (e *Engine) waitTurn(t *task) bool {
	d := t.notBefore.Sub(e.cfg.Clock.Now())
	if d <= 0 {
		return true
	}
	timer := e.cfg.Clock.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C():
		return true
	case <-e.attemptCtx.Done():
		return false
	}
}

// deferTasks hands ts back to the store, due one token interval apart
// from next (or after the deferrals this engine made before, so a backlog
// becomes an orderly queue rather than a crowd re-claimed at every token),
// and leaves dest out of claims until next.
func (e *Engine) deferTasks(dest string, ts []*task, next time.Time, iv time.Duration, now time.Time) {
	e.mu.Lock()
	if e.rate.blocked == nil {
		e.rate.blocked, e.rate.horizon = map[string]time.Time{}, map[string]time.Time{}
	}
	e.rate.blocked[dest] = next
	at := next
	if h := e.rate.horizon[dest]; h.After(at) {
		at = h
	}
	step := iv
	e.rate.horizon[dest] = at.Add(time.Duration(len(ts)) * step)
	e.mu.Unlock()
	e.queued.Add(uint64(len(ts)))
	for i, t := range ts {
		comp := core.Completion{DeliveryID: t.c.ID, Owner: e.cfg.Owner, Status: core.DeliveryPending,
			NextAttemptTime: at.Add(time.Duration(i) * step), Attempt: core.Attempt{Time: now}}
		_ = e.completions.Enqueue(context.Background(), comp)
	}
	e.cfg.Logger.Debug("engine.rate_limited", slog.String("dest", dest), slog.Int("deferred", len(ts)), slog.Time("next", next))
}

// rateExclusions adds the destinations waiting for a token to exclude
// and returns how long until the first of them has one (0: none); e.mu
// is held.
func (e *Engine) rateExclusions(exclude []string, now time.Time) ([]string, time.Duration) {
	var first time.Duration
	for dest, until := range e.rate.blocked {
		d := until.Sub(now)
		if d <= 0 {
			delete(e.rate.blocked, dest)
			if e.rate.horizon[dest].Before(now) {
				delete(e.rate.horizon, dest)
			}
			continue
		}
		exclude = append(exclude, dest)
		e.excluded[dest] = true
		if first == 0 || d < first {
			first = d
		}
	}
	return exclude, first
}

// rateWait is how long until a destination waiting for a token has one
// (ok false: none waits).
func (e *Engine) rateWait() (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.rate.blocked) == 0 {
		return 0, false
	}
	_, d := e.rateExclusions(nil, e.cfg.Clock.Now())
	return d, true
}
