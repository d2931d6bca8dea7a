package storetest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// T0 is the base time of the fixtures: UTC, microsecond precision (what
// every driver round-trips exactly), no monotonic reading.
var T0 = time.Date(2026, 5, 5, 12, 0, 0, 123456000, time.UTC)

// NewProject returns a project with a fresh id created at T0.
func NewProject() core.Project {
	id := core.NewID()
	return core.Project{ID: id, Name: "project " + id[:6], CreateTime: T0}
}

// NewAPIKey returns a key of the project with a random digest; the raw
// key value is returned too.
func NewAPIKey(projectID string) (core.APIKey, string) {
	raw := "lh_" + core.NewID()
	d := sha256.Sum256([]byte(raw))
	return core.APIKey{
		ID:         core.NewID(),
		ProjectID:  projectID,
		Name:       "key",
		Digest:     d[:],
		Hint:       raw[len(raw)-4:],
		CreateTime: T0,
	}, raw
}

// NewSecret returns a signing secret created at t whose Sealed bytes are
// random (standing in for ciphertext).
func NewSecret(t time.Time) core.SigningSecret {
	sealed := make([]byte, 60)
	_, _ = rand.Read(sealed)
	return core.SigningSecret{ID: core.NewID(), Sealed: sealed, Hint: "ab12", CreateTime: t}
}

// NewWebhook returns an enabled webhook of the project subscribed to
// batch.succeeded and batch.failed, with one secret, created at T0.
func NewWebhook(projectID string) *core.Webhook {
	id := core.NewID()
	return &core.Webhook{
		ID:               id,
		ProjectID:        projectID,
		Name:             "hook " + id[:6],
		URI:              "https://example.com/hooks/" + id[:8],
		SubscribedEvents: []string{core.EventBatchSucceeded, core.EventBatchFailed},
		State:            core.WebhookEnabled,
		Secrets:          []core.SigningSecret{NewSecret(T0)},
		CreateTime:       T0,
		UpdateTime:       T0,
	}
}

// NewEvent returns an event of the given type accepted at at, with one
// pending delivery due at at for each webhook.
func NewEvent(projectID, eventType string, at time.Time, hooks ...*core.Webhook) core.NewEvent {
	ev := newEvent(projectID, eventType, at)
	ne := core.NewEvent{Event: ev}
	for _, w := range hooks {
		ne.Deliveries = append(ne.Deliveries, NewDelivery(ev, w.ID, "", at))
	}
	return ne
}

// NewDynamicEvent returns an event with a webhook_config and one pending
// delivery per URI, due at at.
func NewDynamicEvent(projectID string, at time.Time, uris ...string) core.NewEvent {
	ev := newEvent(projectID, core.EventInteractionCompleted, at)
	ev.Dynamic = &core.WebhookConfig{
		URIs:         uris,
		UserMetadata: json.RawMessage(`{"job":"j1"}`),
		Audience:     "aud",
	}
	ne := core.NewEvent{Event: ev}
	for _, u := range uris {
		ne.Deliveries = append(ne.Deliveries, NewDelivery(ev, "", u, at))
	}
	return ne
}

func newEvent(projectID, eventType string, at time.Time) core.Event {
	id := core.NewSortableID(at)
	payload, _ := core.Envelope(eventType, at, json.RawMessage(fmt.Sprintf(`{"id":"batches/%s"}`, id)))
	return core.Event{
		ID:         id,
		ProjectID:  projectID,
		Type:       eventType,
		Subject:    "batches/" + id,
		Payload:    payload,
		CreateTime: at,
	}
}

// NewDelivery returns a pending delivery of ev to a webhook (webhookID
// set) or to a dynamic uri, due at at, with every field the store keeps
// filled in.
func NewDelivery(ev core.Event, webhookID, uri string, at time.Time) core.Delivery {
	dest := webhookID
	if webhookID == "" {
		dest = core.DynamicDest(ev.ProjectID, uri)
	}
	return core.Delivery{
		ID:              core.NewMessageID(at),
		EventID:         ev.ID,
		ProjectID:       ev.ProjectID,
		WebhookID:       webhookID,
		URI:             uri,
		Dest:            dest,
		EventType:       ev.Type,
		Status:          core.DeliveryPending,
		NextAttemptTime: at,
		ScheduleStart:   at,
		CreateTime:      at,
		UpdateTime:      at,
	}
}
