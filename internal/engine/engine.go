// Package engine is the durable delivery engine: it claims due deliveries
// from the store in batches (never more than it has free slots), attempts
// them concurrently with a cap per destination, signs every attempt afresh,
// classifies the outcome, schedules retries by the core retry policy, and
// writes the results back in batched transactions.
//
// Work arrives through the store's Wake channel (an in-process signal for
// SQLite, LISTEN/NOTIFY for PostgreSQL), so a new event is claimed at once;
// a timer set to the next scheduled retry covers the rest. Shutdown stops
// claiming, releases claimed deliveries it has not started, lets attempts in
// flight finish until the soft-stop timeout, then cancels them, and writes
// every result before returning.
package engine

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/groupcommit"
)

// Store is what the engine needs of core.Store.
type Store interface {
	ClaimDeliveries(ctx context.Context, p core.ClaimParams) ([]core.Claimed, error)
	CompleteDeliveries(ctx context.Context, cs []core.Completion) error
	ReleaseDeliveries(ctx context.Context, owner string, ids []string) error
	NextDueTime(ctx context.Context) (time.Time, bool, error)
	WebhooksByID(ctx context.Context, ids []string) (map[string]*core.Webhook, error)
	Wake() <-chan struct{}
	core.RateStore
}

// Signer produces the webhook-signature header of dynamic (per-job)
// deliveries. The dynamic-webhooks feature provides it; without one,
// dynamic deliveries fail permanently.
type Signer interface {
	// SignDynamic returns the header value for an attempt of c to uri.
	SignDynamic(ctx context.Context, c *core.Claimed, uri string, now time.Time) (string, error)
}

// Config configures the engine. Zero fields take the documented defaults.
type Config struct {
	Store  Store
	Cipher core.Cipher
	Clock  core.Clock // default core.SystemClock
	Logger *slog.Logger
	// Owner identifies this engine in leases; default a random id.
	Owner string
	// Retry is the retry policy (its Scale is the --time-scale).
	Retry core.RetryPolicy
	// Sender makes the attempts; default NewSender(SenderConfig{}).
	Sender *Sender
	// Dynamic signs per-job deliveries (optional).
	Dynamic Signer
	// Workers caps attempts in flight (default 512).
	Workers int
	// PerDestination is the concurrency a destination that answers gets
	// (default 32): attempts in flight to it, once one has finished.
	PerDestination int
	// PerDestinationMax bounds how far a destination's concurrency may
	// grow above PerDestination while it is held by its cap, answers
	// without overload and delivers faster for it (adaptive.go). At or
	// below PerDestination (the default) the cap is fixed; at most
	// Workers.
	PerDestinationMax int
	// HangingWorkers caps the worker slots that hanging destinations
	// (whose last attempt timed out) hold together; each of them has one
	// attempt in flight at a time (default Workers/8, at least 1). See
	// hanging.go.
	HangingWorkers int
	// QueueSize is how many deliveries the direct path may hold in memory
	// beyond the worker slots, waiting for a slot or their destination's
	// cap (default 100000; about 0.3 KiB each, payloads shared per event).
	// They are leased, so a crash loses nothing.
	QueueSize int
	// QueueBytes bounds the memory the direct path holds: the payloads of
	// its deliveries (each event's once, however many deliveries share
	// it) plus taskBytes per delivery (default 128 MiB). Beyond it,
	// fresh deliveries that cannot start at once go to the store
	// unleased and are claimed when there is room.
	QueueBytes int64
	// BatchSize caps one claim (default 256).
	BatchSize int
	// Lease is how long a claim holds before another engine may take the
	// delivery over (default 60 s; real time, never scaled).
	Lease time.Duration
	// SoftStop is how long shutdown waits for attempts in flight (default 10 s).
	SoftStop time.Duration
	// PollInterval is the safety-net poll when no wake-up or retry timer
	// fires (default 1 s).
	PollInterval time.Duration
	// Metrics receives observations (optional).
	Metrics *Metrics
	// MetricsPrune is how often Metrics forgets the failure streaks of
	// webhooks deleted or no longer enabled (default 30 s; real time).
	MetricsPrune time.Duration
	// Rand returns uniform values in [0,1) for jitter (default math/rand/v2).
	Rand func() float64
	// OnGiveUp, if set, is called on the attempt's worker when a delivery
	// is given up without a person asking (retries exhausted, or a
	// permanent failure): serve publishes delivery.exhausted, and
	// webhook.disabled when a 410 disables the webhook. It should not
	// block for long.
	OnGiveUp func(g GiveUp)
}

// GiveUp is a delivery the engine stopped retrying.
type GiveUp struct {
	// Delivery is the delivery as claimed, before this attempt.
	Delivery core.Delivery
	// Attempt is the last attempt.
	Attempt core.Attempt
	// Permanent is true when the failure ended the retries at once.
	Permanent bool
	// DisablesWebhook is true when the failure (410 Gone) disables the
	// delivery's webhook.
	DisablesWebhook bool
}

func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = core.SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Owner == "" {
		c.Owner = "engine-" + core.NewID()[:12]
	}
	c.Retry = c.Retry.WithDefaults()
	if c.Sender == nil {
		c.Sender = NewSender(SenderConfig{})
	}
	if c.Workers <= 0 {
		c.Workers = 512
	}
	if c.PerDestination <= 0 {
		c.PerDestination = 32
	}
	c.PerDestinationMax = max(min(c.PerDestinationMax, c.Workers), c.PerDestination)
	if c.HangingWorkers <= 0 {
		c.HangingWorkers = max(c.Workers/8, 1)
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 100000
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = 128 << 20
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.Lease <= 0 {
		c.Lease = 60 * time.Second
	}
	if c.SoftStop <= 0 {
		c.SoftStop = 10 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.MetricsPrune <= 0 {
		c.MetricsPrune = 30 * time.Second
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	return c
}

// Engine delivers. Create it with New and run it with Run.
type Engine struct {
	cfg Config

	mu        sync.Mutex
	claimed   int                      // claimed deliveries held (running or parked)
	direct    int                      // direct-path deliveries held (running or parked)
	running   int                      // attempts in flight
	ready     []string                 // destinations with parked work and room under their cap, from readyHead on
	readyHead int                      // ready[:readyHead] were taken (the queue keeps its array)
	reserved  int                      // slots reserved by the direct path, not yet dispatched
	bytes     int64                    // memory held by direct-path tasks (see Config.QueueBytes)
	payloads  map[string]int           // direct-path tasks held per event (its payload is counted once)
	stopping  bool                     // no new direct work once shutdown began
	dests     map[string]*destState    // per-destination running attempts and parked work
	held      map[string]*task         // delivery ids this engine holds, and the task holding each
	latency   map[string]time.Duration // per-destination moving average of attempt latency
	adaptive  map[string]*adaptState   // per-destination adaptive cap (adaptive.go)
	freed     chan struct{}            // signalled when slots free up, while waitFreed
	waitFreed atomic.Bool              // the claim loop waits for slots to free up
	excluded  map[string]bool          // destinations the last claim skipped (at their cap)
	unblocked chan struct{}            // signalled when one of them has room again
	resched   chan struct{}            // signalled when a retry was scheduled
	soon      soonTimes                // when the retries this engine wrote fall due (soon.go)
	rate      rateState                // rate-limited destinations waiting for a token

	// Hanging destinations (hanging.go).
	hanging      map[string]uint64 // destinations whose last attempt timed out → when they last had a turn (hangTurn)
	hangTurn     uint64            // counts turns given to hanging destinations
	hangOffered  int               // hanging destinations offered to claims since a hanging attempt last started
	hangWait     []string          // hanging destinations with parked work waiting for a hanging slot
	hangRunning  int               // attempts in flight to hanging destinations
	hangExcluded bool              // the last claim skipped hanging destinations for want of slots
	onStart      func(*task)       // tests only: sees every attempt start (e.mu held)
	afterResult  func(*task)       // tests only: runs after a result is queued, before finished
	// Tests on a fake clock move it only once the engine waits on it
	// (waitsOnClock in setup_test.go): a real-time quiet spell said
	// nothing under load. probe is answered by the claim loop only while
	// it waits (whether a wake-up is pending); queued and written count
	// results handed to and written by the completion writer.
	probe           chan chan<- bool
	queued, written atomic.Uint64

	completions *groupcommit.Writer[core.Completion] // attempt results
	groupLen    int                                  // size of the group being written (its writer's goroutine only)
	secrets     secretCache
	stamps      stampCache
	gen         atomic.Uint64 // bumped by WebhooksChanged
	hooks       hookCache     // webhooks re-read by refreshHook

	attemptCtx    context.Context // cancelled at hard stop
	cancelAttempt context.CancelFunc
	wg            sync.WaitGroup // attempts in flight
	work          chan *task     // hands attempts (nil: end) to idle workers; room for Workers
	idle          int            // workers idle or about to take from work, less what work holds; e.mu
	idleMin       int            // the fewest idle since reapWorkers last looked; e.mu
	workers       sync.WaitGroup // worker goroutines
}

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

	hang     bool // holds one of the HangingWorkers slots
	timedOut bool // the attempt timed out (set by attempt, read by finished)
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
	e.mu.Unlock()
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

// New returns an engine.
func New(cfg Config) *Engine {
	cfg = cfg.withDefaults()
	e := &Engine{
		cfg:       cfg,
		dests:     map[string]*destState{},
		held:      map[string]*task{},
		payloads:  map[string]int{},
		latency:   map[string]time.Duration{},
		adaptive:  map[string]*adaptState{},
		hanging:   map[string]uint64{},
		freed:     make(chan struct{}, 1),
		excluded:  map[string]bool{},
		unblocked: make(chan struct{}, 1),
		resched:   make(chan struct{}, 1),
		probe:     make(chan chan<- bool),
		secrets:   secretCache{cipher: cfg.Cipher, m: map[string]any{}},
	}
	e.attemptCtx, e.cancelAttempt = context.WithCancel(context.Background())
	e.completions = e.newCompletions()
	e.work = make(chan *task, cfg.Workers)
	return e
}

// Owner returns the lease owner id of this engine.
func (e *Engine) Owner() string { return e.cfg.Owner }

// Run claims and delivers until ctx is cancelled, then shuts down as the
// package doc describes. It returns nil after a clean shutdown.
func (e *Engine) Run(ctx context.Context) error {
	pruned := make(chan struct{})
	go func() { defer close(pruned); e.pruneMetrics(ctx) }()
	reaped := make(chan struct{})
	go func() { defer close(reaped); e.reapWorkers(ctx) }()
	e.claimLoop(ctx)
	<-pruned
	<-reaped
	e.mu.Lock()
	e.stopping = true
	e.mu.Unlock()

	// Stop: release parked work, wait for attempts up to SoftStop, cancel.
	e.releaseParked()
	waited := make(chan struct{})
	go func() { e.wg.Wait(); close(waited) }()
	t := time.NewTimer(e.cfg.SoftStop)
	select {
	case <-waited:
	case <-t.C:
		e.cfg.Logger.Warn("engine.soft_stop_timeout", slog.Duration("timeout", e.cfg.SoftStop))
		e.cancelAttempt()
		e.cfg.Sender.Abort() // attempts in flight end now, as failed
		<-waited
	}
	t.Stop()
	e.cancelAttempt()
	e.completions.Close() // writes the last results
	close(e.work)         // no attempt starts after stopping: the idle workers end
	e.workers.Wait()
	return nil
}

// pruneMetrics keeps the metrics' per-webhook state to webhooks that are
// still enabled, until ctx ends.
func (e *Engine) pruneMetrics(ctx context.Context) {
	if e.cfg.Metrics == nil {
		return
	}
	t := time.NewTicker(e.cfg.MetricsPrune)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.cfg.Metrics.prune(ctx, e.cfg.Store.WebhooksByID); err != nil && ctx.Err() == nil {
				e.cfg.Logger.Warn("engine.metrics_prune", slog.String("error", err.Error()))
			}
		}
	}
}

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
		wait := e.cfg.PollInterval
		blocked := false
		if t, ok, err := e.cfg.Store.NextDueTime(ctx); err == nil && ok {
			if d := t.Sub(e.cfg.Clock.Now()); d <= 0 {
				if !recheck && !e.skippedDests() {
					// No cap held it back: it became due after the
					// claim looked (a retry due in milliseconds).
					recheck = true
					continue
				}
				if e.hangTurnsLeft() {
					continue // offer the other hanging destinations
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
				continue // it fell due after the claim looked
			}
			wait = min(wait, d)
		}
		if d, ok := e.rateWait(); ok && d < wait {
			wait = max(d, time.Millisecond) // a limited destination gets its next token
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
		timer := e.cfg.Clock.NewTimer(wait)
	wait:
		for {
			select {
			case <-ctx.Done():
				e.waitFreed.Store(false)
				timer.Stop()
				return
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
	}
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

// start runs an attempt on an idle worker goroutine, or a new one if
// none is idle; e.mu is held. A goroutine per attempt cost its creation
// and, every time, the growth of its stack to what an attempt needs
// (docs/design.md, "Attempt workers"). There are never more workers than
// attempts were in flight at once (at most Workers); reapWorkers ends
// those that stayed idle.
func (e *Engine) start(t *task) {
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

// newCompletions returns the writer of attempt results (group commit, see
// internal/groupcommit): it takes whatever has queued up while the
// previous write ran, so a busy engine writes hundreds per transaction. A
// batch smaller than lingerBatch waits up to completionLinger for more: at
// a few thousand results a second that turns a commit per result or two
// into one per dozen, and nothing waits on it (the attempt's slot is
// already free; the lease outlives the wait). The queue holds up to
// maxCompletionQueue results or bytes; an attempt waits for room before
// it frees its slot.
func (e *Engine) newCompletions() *groupcommit.Writer[core.Completion] {
	return groupcommit.New(groupcommit.Config[core.Completion]{
		Commit: e.write,
		// A batch that cannot be written is retried whole (write); split
		// it then, so one result the store refuses cannot take thousands
		// with it.
		Split:    func(err error) bool { return !errors.Is(err, context.Canceled) },
		Begin:    func(g []core.Completion) { e.groupLen = len(g) },
		Done:     e.settled,
		Size:     completionSize,
		MaxItems: 4096, MaxBytes: 8 << 20,
		QueueItems: max(e.cfg.Workers*4, 8192), QueueBytes: 64 << 20,
		Linger: func(queued, _ int) (int, time.Duration) {
			return lingerBatch, completionLinger
		},
	})
}

// completionSize is about what a result holds in memory.
func completionSize(c core.Completion) int {
	return 256 + len(c.Attempt.Response) + len(c.Attempt.Error)
}

// A completion batch smaller than lingerBatch waits up to completionLinger
// for more results before it is written.
const (
	lingerBatch      = 64
	completionLinger = 2 * time.Millisecond
)

// write writes a batch of results, retrying a failing store for a while.
// A result that cannot be written is not lost: the delivery's lease
// expires and it is attempted again (at-least-once); trying first saves
// that duplicate. A split half (see newCompletions) is tried once.
func (e *Engine) write(batch []core.Completion) error {
	ctx := context.Background()
	backoff := 20 * time.Millisecond
	tries := 9
	if len(batch) < e.groupLen {
		tries = 1
	}
	for attempt := 1; ; attempt++ {
		err := e.cfg.Store.CompleteDeliveries(ctx, batch)
		if err == nil {
			return nil
		}
		e.cfg.Logger.Error("engine.complete_failed", slog.Int("batch", len(batch)), slog.String("error", err.Error()))
		if attempt >= tries || errors.Is(err, context.Canceled) {
			return err
		}
		time.Sleep(backoff)
		backoff = min(backoff*2, 2*time.Second)
	}
}

// settled runs after a batch of results was written.
func (e *Engine) settled(batch []core.Completion, errs []error) {
	e.noteDisabled(batch, errs)
	e.noteRetries(batch, errs)
	e.written.Add(uint64(len(batch))) // after the wake-ups it sent
}

// noteDisabled bumps the webhook generation when a written result disabled
// its webhook (410 Gone): the publisher's subscription lists and the
// deliveries this engine holds were read before, with the webhook still
// enabled, and must not outlive the change that webhooks.get already shows
// (the next event is recorded as skipped, not sent).
func (e *Engine) noteDisabled(batch []core.Completion, errs []error) {
	for i, c := range batch {
		if errs[i] == nil && c.DisableWebhook {
			e.WebhooksChanged()
			return
		}
	}
}

// noteRetries records when the written retries due within soonWindow fall
// due (soon.go), and wakes the claim loop when one is due before its
// safety poll (short delays, --time-scale).
func (e *Engine) noteRetries(batch []core.Completion, errs []error) {
	now := e.cfg.Clock.Now()
	poll, window := now.Add(e.cfg.PollInterval), now.Add(soonWindow)
	wake := false
	for i, c := range batch {
		if errs[i] != nil || c.Status != core.DeliveryPending {
			continue
		}
		if c.NextAttemptTime.Before(window) {
			e.soon.add(c.NextAttemptTime)
		}
		wake = wake || c.NextAttemptTime.Before(poll)
	}
	if wake {
		select {
		case e.resched <- struct{}{}:
		default:
		}
	}
}
