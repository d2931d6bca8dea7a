package client

import (
	"context"
	"encoding/json"
	"time"
)

// Event is an accepted event.
type Event struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// Timestamp is when the event happened (the envelope's timestamp).
	Timestamp     time.Time `json:"timestamp"`
	CreateTime    time.Time `json:"create_time"`
	DeliveryCount int       `json:"delivery_count"`
	// Replayed is set by Publish when the idempotency key was used before:
	// the event is the original one and nothing new was sent (the server
	// answers Idempotent-Replayed: true). DeliveryCount is then the
	// original publish's.
	Replayed bool `json:"replayed,omitempty"`
	// The fields below are filled by GetEvent and ListEvents.
	Subject        string          `json:"subject,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	WebhookConfig  *WebhookConfig  `json:"webhook_config,omitempty"`
	Data           json.RawMessage `json:"data,omitempty"`
}

// WebhookConfig sends an event to its own URIs (a dynamic webhook,
// JWT-signed) instead of the project's static webhooks.
type WebhookConfig struct {
	URIs         []string        `json:"uris"`
	UserMetadata json.RawMessage `json:"user_metadata,omitempty"`
	Audience     string          `json:"audience,omitempty"`
	// RateLimit limits each of the URIs for the publishing project, and
	// TracePropagation sends each attempt's traceparent (extensions).
	RateLimit        *RateLimit `json:"rate_limit,omitempty"`
	TracePropagation bool       `json:"trace_propagation,omitempty"`
}

// PublishParams is an event to publish.
type PublishParams struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
	// IdempotencyKey makes a repeat return the original event and write
	// nothing (per project, for at least 24 hours).
	IdempotencyKey string         `json:"idempotency_key,omitempty"`
	WebhookConfig  *WebhookConfig `json:"webhook_config,omitempty"`
	// Timestamp is when the event happened (default: now).
	Timestamp *time.Time `json:"timestamp,omitempty"`
	// Subject names the job resource (the JWT sub of dynamic deliveries).
	Subject string `json:"subject,omitempty"`
}

// Publish accepts an event: the event and its deliveries are durable when
// it returns. When p.IdempotencyKey was used before, it returns the
// original event with Replayed set, and nothing new was published.
func (c *Client) Publish(ctx context.Context, p PublishParams) (*Event, error) {
	var e Event
	h, err := c.send(ctx, "POST", "/events", nil, p, &e)
	if err != nil {
		return &e, err
	}
	e.Replayed = h.Get(replayedHeader) == "true"
	return &e, nil
}

// replayedHeader marks the answer to a publish whose idempotency key was
// used before.
const replayedHeader = "Idempotent-Replayed"

// GetEvent returns one event with its data.
func (c *Client) GetEvent(ctx context.Context, id string) (*Event, error) {
	id, err := escape(id)
	if err != nil {
		return nil, err
	}
	var e Event
	return &e, c.do(ctx, "GET", "/events/"+id, nil, nil, &e)
}

// EventListOptions filters ListEvents.
type EventListOptions struct {
	ListOptions
	// Type keeps one event type.
	Type string
}

// EventPage is one page of events, newest first.
type EventPage struct {
	Events        []*Event `json:"events"`
	NextPageToken string   `json:"next_page_token,omitempty"`
}

// ListEvents lists the project's events, newest first.
func (c *Client) ListEvents(ctx context.Context, o EventListOptions) (*EventPage, error) {
	q := o.values()
	if o.Type != "" {
		q.Set("type", o.Type)
	}
	var p EventPage
	return &p, c.do(ctx, "GET", "/events", q, nil, &p)
}
