package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/leader"
)

// MaintenanceStore is what the engine's periodic work needs of core.Store.
type MaintenanceStore interface {
	DisableFailingWebhooks(ctx context.Context, failingSince time.Time, minFailures int, now time.Time) ([]string, error)
	DeleteExpired(ctx context.Context, cutoff time.Time, limit int) (int, error)
}

// MaintenanceConfig configures the engine's periodic work.
type MaintenanceConfig struct {
	Store  MaintenanceStore
	Clock  core.Clock
	Logger *slog.Logger
	// Retention of finished deliveries, attempts and events (default 30
	// days; divided by Scale).
	Retention   time.Duration
	AutoDisable core.AutoDisablePolicy
	Scale       float64
	// OnDisabled, if set, is called with the webhooks auto-disable just
	// disabled (the publisher drops its cached webhook lists).
	OnDisabled func(ids []string)
}

// Maintenance is the engine's periodic work: auto-disable of failing
// webhooks and the retention sweep. The elected leader runs it
// (internal/leader) as two of its Tasks.
type Maintenance struct {
	cfg MaintenanceConfig
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
	if cfg.Retention == 0 {
		cfg.Retention = 30 * 24 * time.Hour
	}
	cfg.Retention = time.Duration(float64(cfg.Retention) / cfg.Scale)
	cfg.AutoDisable = cfg.AutoDisable.WithDefaults()
	cfg.AutoDisable.After = time.Duration(float64(cfg.AutoDisable.After) / cfg.Scale)
	return &Maintenance{cfg: cfg}
}

// Tasks returns the leader's tasks for this work.
func (m *Maintenance) Tasks() []leader.Task {
	return []leader.Task{
		{Name: "webhooks.auto_disable", Run: m.autoDisable},
		{Name: "retention", Run: m.sweep},
	}
}

// round runs the tasks once, as a leader's round does.
func (m *Maintenance) round(ctx context.Context) {
	now := m.cfg.Clock.Now()
	for _, t := range m.Tasks() {
		if err := t.Run(ctx, now); err != nil {
			m.cfg.Logger.Warn("maintenance.task_failed", slog.String("task", t.Name), slog.String("error", err.Error()))
		}
	}
}

// autoDisable disables the webhooks that have failed for too long.
func (m *Maintenance) autoDisable(ctx context.Context, now time.Time) error {
	ids, err := m.cfg.Store.DisableFailingWebhooks(ctx, now.Add(-m.cfg.AutoDisable.After), m.cfg.AutoDisable.MinFailures, now)
	if err != nil {
		return err
	}
	for _, id := range ids {
		m.cfg.Logger.Warn("webhook.auto_disabled", slog.String("webhook_id", id))
	}
	if len(ids) > 0 && m.cfg.OnDisabled != nil {
		m.cfg.OnDisabled(ids)
	}
	return nil
}

// sweep deletes what retention let go, in bounded steps (at most 100,000
// rows a round); a lost lease stops it between steps.
func (m *Maintenance) sweep(ctx context.Context, now time.Time) error {
	for range 100 {
		if ctx.Err() != nil {
			return nil
		}
		n, err := m.cfg.Store.DeleteExpired(ctx, now.Add(-m.cfg.Retention), 1000)
		if err != nil || n == 0 {
			return err
		}
	}
	return nil
}
