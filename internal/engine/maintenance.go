package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// MaintenanceStore is what periodic work needs of core.Store.
type MaintenanceStore interface {
	AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, owner string) error
	DisableFailingWebhooks(ctx context.Context, failingSince time.Time, minFailures int, now time.Time) ([]string, error)
	DeleteExpired(ctx context.Context, cutoff time.Time, limit int) (int, error)
}

// Task is extra periodic work run by the leader (JWKS rotation, job
// expiry, ...).
type Task struct {
	Name string
	Run  func(ctx context.Context, now time.Time) error
}

// MaintenanceConfig configures the leader-run periodic work.
type MaintenanceConfig struct {
	Store  MaintenanceStore
	Clock  core.Clock
	Logger *slog.Logger
	Owner  string
	// Interval between rounds (default 30 s, divided by Scale down to 50 ms).
	Interval time.Duration
	// LeaseTTL is the leadership lease (default 3 × Interval, real time).
	LeaseTTL time.Duration
	// Retention of finished deliveries, attempts and events (default 30
	// days; divided by Scale).
	Retention   time.Duration
	AutoDisable core.AutoDisablePolicy
	Scale       float64
	Tasks       []Task
	// OnLeader, if set, is called with true/false when leadership changes.
	OnLeader func(bool)
	// OnDisabled, if set, is called with the webhooks auto-disable just
	// disabled (the publisher drops its cached webhook lists).
	OnDisabled func(ids []string)
}

// Maintenance runs periodic work on one elected leader: auto-disable of
// failing webhooks, the retention sweep, and any extra tasks. Every process
// runs it; the lease row makes sure only one does the work at a time.
type Maintenance struct {
	cfg    MaintenanceConfig
	leader bool
}

// NewMaintenance returns a Maintenance.
func NewMaintenance(cfg MaintenanceConfig) *Maintenance {
	if cfg.Clock == nil {
		cfg.Clock = core.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Scale <= 0 {
		cfg.Scale = 1
	}
	if cfg.Interval == 0 {
		cfg.Interval = max(time.Duration(float64(30*time.Second)/cfg.Scale), 50*time.Millisecond)
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = max(3*cfg.Interval, time.Second)
	}
	if cfg.Retention == 0 {
		cfg.Retention = 30 * 24 * time.Hour
	}
	cfg.Retention = time.Duration(float64(cfg.Retention) / cfg.Scale)
	cfg.AutoDisable = cfg.AutoDisable.WithDefaults()
	cfg.AutoDisable.After = time.Duration(float64(cfg.AutoDisable.After) / cfg.Scale)
	return &Maintenance{cfg: cfg}
}

// LeaseName is the lease row the leader holds.
const LeaseName = "maintenance"

// Run does rounds until ctx ends, then gives up leadership.
func (m *Maintenance) Run(ctx context.Context) error {
	for {
		m.round(ctx)
		t := m.cfg.Clock.NewTimer(m.cfg.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			if m.leader {
				_ = m.cfg.Store.ReleaseLease(context.WithoutCancel(ctx), LeaseName, m.cfg.Owner)
				m.setLeader(false)
			}
			return nil
		case <-t.C():
		}
	}
}

func (m *Maintenance) setLeader(v bool) {
	if m.leader == v {
		return
	}
	m.leader = v
	m.cfg.Logger.Info("maintenance.leadership", slog.Bool("leader", v), slog.String("owner", m.cfg.Owner))
	if m.cfg.OnLeader != nil {
		m.cfg.OnLeader(v)
	}
}

// round does one round of work if this process is the leader.
func (m *Maintenance) round(ctx context.Context) {
	now := m.cfg.Clock.Now()
	ok, err := m.cfg.Store.AcquireLease(ctx, LeaseName, m.cfg.Owner, now, m.cfg.LeaseTTL)
	if err != nil {
		m.cfg.Logger.Warn("maintenance.lease_failed", slog.String("error", err.Error()))
		m.setLeader(false)
		return
	}
	m.setLeader(ok)
	if !ok {
		return
	}
	ids, err := m.cfg.Store.DisableFailingWebhooks(ctx, now.Add(-m.cfg.AutoDisable.After), m.cfg.AutoDisable.MinFailures, now)
	if err != nil {
		m.cfg.Logger.Warn("maintenance.auto_disable_failed", slog.String("error", err.Error()))
	}
	for _, id := range ids {
		m.cfg.Logger.Warn("webhook.auto_disabled", slog.String("webhook_id", id))
	}
	if len(ids) > 0 && m.cfg.OnDisabled != nil {
		m.cfg.OnDisabled(ids)
	}
	for range 100 { // bounded per round
		n, err := m.cfg.Store.DeleteExpired(ctx, now.Add(-m.cfg.Retention), 1000)
		if err != nil {
			m.cfg.Logger.Warn("maintenance.retention_failed", slog.String("error", err.Error()))
			break
		}
		if n == 0 {
			break
		}
	}
	for _, t := range m.cfg.Tasks {
		if err := t.Run(ctx, now); err != nil {
			m.cfg.Logger.Warn("maintenance.task_failed", slog.String("task", t.Name), slog.String("error", err.Error()))
		}
	}
}
