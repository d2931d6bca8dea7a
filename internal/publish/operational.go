package publish

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// Operational events (webhook.disabled, webhook.enabled,
// delivery.exhausted) are extension types outside Gemini's list: longhook
// publishes them to the project's static webhooks subscribed to them, so
// operators are alerted by the same machinery, signed and retried like any
// event. docs/api.md describes their data.

// Reasons of webhook.disabled.
const (
	ReasonConsecutiveFailures = "consecutive_failures" // auto-disable after failing for the window
	ReasonGone                = "gone"                 // the receiver answered 410 Gone
	ReasonManual              = "manual"               // PATCH state=disabled
)

// WebhookDisabled publishes webhook.disabled for hook.
func (p *Publisher) WebhookDisabled(ctx context.Context, hook *core.Webhook, reason string) error {
	data := map[string]any{
		"webhook_id": hook.ID, "name": hook.Name, "uri": hook.URI, "state": string(hook.State),
		"reason": reason, "failure_count": hook.ConsecutiveFailures,
	}
	if !hook.FailingSince.IsZero() {
		data["failing_since"] = hook.FailingSince.UTC().Format(time.RFC3339Nano)
	}
	return p.operational(ctx, hook.ProjectID, core.EventWebhookDisabled, "webhooks/"+hook.ID, data)
}

// WebhookEnabled publishes webhook.enabled for hook, re-enabled from
// previous.
func (p *Publisher) WebhookEnabled(ctx context.Context, hook *core.Webhook, previous core.WebhookState) error {
	data := map[string]any{"webhook_id": hook.ID, "name": hook.Name, "uri": hook.URI, "previous_state": string(previous)}
	return p.operational(ctx, hook.ProjectID, core.EventWebhookEnabled, "webhooks/"+hook.ID, data)
}

// Exhausted describes a delivery whose retries were given up.
type Exhausted struct {
	ProjectID, DeliveryID, EventID, EventType string
	WebhookID                                 string // empty for a dynamic delivery
	Attempts, LastStatusCode                  int
	LastError                                 string
	// Permanent is true when the last failure ended the retries at once
	// (410 Gone, an invalid destination) rather than the retry horizon.
	Permanent bool
}

// DeliveryExhausted publishes delivery.exhausted, except for deliveries of
// operational events themselves (an alert about an alert could loop).
func (p *Publisher) DeliveryExhausted(ctx context.Context, x Exhausted) error {
	if slices.Contains(core.OperationalEventTypes, x.EventType) {
		return nil
	}
	reason := "retries_exhausted"
	if x.Permanent {
		reason = "permanent_failure"
	}
	data := map[string]any{
		"delivery_id": x.DeliveryID, "event_id": x.EventID, "event_type": x.EventType,
		"attempt_count": x.Attempts, "reason": reason,
	}
	if x.WebhookID != "" {
		data["webhook_id"] = x.WebhookID
	}
	if x.LastStatusCode != 0 {
		data["last_status_code"] = x.LastStatusCode
	}
	if x.LastError != "" {
		data["last_error"] = x.LastError
	}
	return p.operational(ctx, x.ProjectID, core.EventDeliveryExhausted, "deliveries/"+x.DeliveryID, data)
}

func (p *Publisher) operational(ctx context.Context, projectID, typ, subject string, data map[string]any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = p.Publish(ctx, projectID, []Input{{Type: typ, Data: raw, Subject: subject, Internal: true}})
	return err
}
