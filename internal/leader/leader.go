// Package leader elects one process, among all those sharing a store, to
// run the periodic maintenance work (the engine's auto-disable and
// retention sweep, JWKS rotation, job expiry, ...) on a lease row.
//
// Every process runs a Leader. Each round, it acquires (or extends) the
// lease for LeaseTTL; the holder then runs the Tasks in order. A round may
// outlast its lease (a large retention sweep, a slow database): while it
// runs, the lease is renewed every half TTL, and if a renewal fails — the
// lease expired and another process took it, or the store cannot say —
// the round's context is cancelled and the remaining tasks are skipped,
// so two leaders never work side by side for longer than the renewal
// takes. On shutdown the leader releases the lease, so the next one takes
// over at once.
//
//	            acquire ok                    renewal fails / not ok
//	follower ─────────────▶ leader (round) ───────────────────────▶ follower
//	    ▲                      │ every TTL/2: renew                   │
//	    └──────────────────────┴──── acquire not ok / error ◀─────────┘
package leader

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// LeaseName is the default lease row.
const LeaseName = "maintenance"

// Store is what leadership needs of core.Store.
type Store interface {
	AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, owner string) error
}

// Task is periodic work run by the leader. now is when the round began.
// Run should return soon after ctx is cancelled (the lease was lost, or
// the process stops).
type Task struct {
	Name string
	Run  func(ctx context.Context, now time.Time) error
}

// Config configures a Leader.
type Config struct {
	Store  Store
	Clock  core.Clock   // default core.SystemClock
	Logger *slog.Logger // default: discarded
	// Owner identifies this process in the lease row.
	Owner string
	// Name is the lease row (default LeaseName).
	Name string
	// Interval between rounds (default 30 s, divided by Scale down to
	// 50 ms).
	Interval time.Duration
	// LeaseTTL is the leadership lease (default 3 × Interval, at least
	// 1 s); a round renews it every LeaseTTL/2.
	LeaseTTL time.Duration
	// Scale is serve's --time-scale (default 1).
	Scale float64
	Tasks []Task
	// OnLeader, if set, is called with true/false when leadership changes.
	OnLeader func(bool)
}

func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = core.SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Name == "" {
		c.Name = LeaseName
	}
	if c.Scale <= 0 {
		c.Scale = 1
	}
	if c.Interval == 0 {
		c.Interval = max(time.Duration(float64(30*time.Second)/c.Scale), 50*time.Millisecond)
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = max(3*c.Interval, time.Second)
	}
	return c
}

// Leader runs the rounds of one process. Create it with New.
type Leader struct {
	cfg Config

	mu     sync.Mutex
	leader bool
}

// New returns a Leader.
func New(cfg Config) *Leader { return &Leader{cfg: cfg.withDefaults()} }

// Run does rounds until ctx ends, then gives up leadership.
func (l *Leader) Run(ctx context.Context) error {
	for {
		l.round(ctx)
		t := l.cfg.Clock.NewTimer(l.cfg.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			if l.IsLeader() {
				_ = l.cfg.Store.ReleaseLease(context.WithoutCancel(ctx), l.cfg.Name, l.cfg.Owner)
				l.setLeader(false)
			}
			return nil
		case <-t.C():
		}
	}
}

// IsLeader reports whether this process held the lease at its last
// acquisition or renewal.
func (l *Leader) IsLeader() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leader
}

func (l *Leader) setLeader(v bool) {
	l.mu.Lock()
	changed := l.leader != v
	l.leader = v
	l.mu.Unlock()
	if !changed {
		return
	}
	l.cfg.Logger.Info("maintenance.leadership", slog.Bool("leader", v), slog.String("owner", l.cfg.Owner))
	if l.cfg.OnLeader != nil {
		l.cfg.OnLeader(v)
	}
}

// round takes or extends the lease and, if this process holds it, runs
// the tasks while renewing it.
func (l *Leader) round(ctx context.Context) {
	now := l.cfg.Clock.Now()
	ok, err := l.cfg.Store.AcquireLease(ctx, l.cfg.Name, l.cfg.Owner, now, l.cfg.LeaseTTL)
	if err != nil {
		l.cfg.Logger.Warn("maintenance.lease_failed", slog.String("error", err.Error()))
		l.setLeader(false)
		return
	}
	l.setLeader(ok)
	if !ok {
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	renewing := l.renew(rctx, cancel)
	for _, t := range l.cfg.Tasks {
		if rctx.Err() != nil {
			l.cfg.Logger.Warn("maintenance.round_stopped", slog.String("before_task", t.Name))
			break
		}
		if err := t.Run(rctx, now); err != nil {
			l.cfg.Logger.Warn("maintenance.task_failed", slog.String("task", t.Name), slog.String("error", err.Error()))
		}
	}
	cancel()
	<-renewing
}

// renew extends the lease every LeaseTTL/2 until ctx ends. If a renewal
// does not succeed, this process is no longer the leader: it calls lost
// (which cancels the round) and stops. The returned channel is closed
// when it has stopped.
func (l *Leader) renew(ctx context.Context, lost context.CancelFunc) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			t := l.cfg.Clock.NewTimer(l.cfg.LeaseTTL / 2)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
			ok, err := l.cfg.Store.AcquireLease(ctx, l.cfg.Name, l.cfg.Owner, l.cfg.Clock.Now(), l.cfg.LeaseTTL)
			if ctx.Err() != nil {
				return // the round ended meanwhile
			}
			if err != nil || !ok {
				attrs := []any{slog.String("owner", l.cfg.Owner)}
				if err != nil {
					attrs = append(attrs, slog.String("error", err.Error()))
				}
				l.cfg.Logger.Warn("maintenance.lease_lost", attrs...)
				l.setLeader(false)
				lost()
				return
			}
		}
	}()
	return done
}
