package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/engine"
	"github.com/longhook/longhook/internal/publish"
)

// operationalTimeout bounds publishing one operational event from the
// engine or the leader, which have no request context.
const operationalTimeout = 10 * time.Second

// announceDisabled publishes webhook.disabled for the webhooks the
// leader's auto-disable just disabled.
func announceDisabled(store core.Store, pub *publish.Publisher, logger *slog.Logger, ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), operationalTimeout)
	defer cancel()
	hooks, err := store.WebhooksByID(ctx, ids)
	if err != nil {
		logger.Error("operational.webhook_disabled_failed", slog.String("error", err.Error()))
		return
	}
	for _, id := range ids {
		if h := hooks[id]; h != nil {
			if err := pub.WebhookDisabled(ctx, h, publish.ReasonConsecutiveFailures); err != nil {
				logger.Error("operational.webhook_disabled_failed", slog.String("webhook_id", id), slog.String("error", err.Error()))
			}
		}
	}
}

// announceGiveUp publishes delivery.exhausted for a delivery the engine
// gave up, and webhook.disabled when its 410 disabled the webhook.
func announceGiveUp(store core.Store, pub *publish.Publisher, logger *slog.Logger, g engine.GiveUp) {
	if pub == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), operationalTimeout)
	defer cancel()
	d := g.Delivery
	err := pub.DeliveryExhausted(ctx, publish.Exhausted{
		ProjectID: d.ProjectID, DeliveryID: d.ID, EventID: d.EventID, EventType: d.EventType, WebhookID: d.WebhookID,
		Attempts: g.Attempt.Number, LastStatusCode: g.Attempt.StatusCode, LastError: g.Attempt.Error, Permanent: g.Permanent,
	})
	if err != nil {
		logger.Error("operational.delivery_exhausted_failed", slog.String("delivery_id", d.ID), slog.String("error", err.Error()))
	}
	if !g.DisablesWebhook {
		return
	}
	// The completion that disables the webhook is written after this
	// returns: announce the state it is about to have.
	hooks, err := store.WebhooksByID(ctx, []string{d.WebhookID})
	if h := hooks[d.WebhookID]; err == nil && h != nil && h.State == core.WebhookEnabled {
		h.State = core.WebhookDisabledDueToFailedDeliveries
		err = pub.WebhookDisabled(ctx, h, publish.ReasonGone)
	}
	if err != nil {
		logger.Error("operational.webhook_disabled_failed", slog.String("webhook_id", d.WebhookID), slog.String("error", err.Error()))
	}
}
