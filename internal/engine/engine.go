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
