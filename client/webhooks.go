package client

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook states.
const (
	StateEnabled                       = "enabled"
	StateDisabled                      = "disabled"
	StateDisabledDueToFailedDeliveries = "disabled_due_to_failed_deliveries"
)

// Webhook is a static webhook: a URI subscribed to event types, signed
// with HMAC secrets.
type Webhook struct {
	ID               string          `json:"id"`
	Name             string          `json:"name,omitempty"`
	URI              string          `json:"uri"`
	SubscribedEvents []string        `json:"subscribed_events"`
	State            string          `json:"state"`
	SigningSecrets   []SigningSecret `json:"signing_secrets,omitempty"`
	// NewSigningSecret is set only by CreateWebhook: the whole secret,
	// shown once.
	NewSigningSecret string    `json:"new_signing_secret,omitempty"`
	CreateTime       time.Time `json:"create_time"`
	UpdateTime       time.Time `json:"update_time"`
	// RateLimit, TracePropagation and RetrySchedule are longhook
	// extensions (docs/api.md, Webhooks); zero when the webhook has none.
	RateLimit        *RateLimit `json:"rate_limit,omitempty"`
	TracePropagation bool       `json:"trace_propagation,omitempty"`
	// RetrySchedule is the webhook's delays after a failed attempt, as the
	// server prints them ("5s", "1.500s"), in place of the server's.
	RetrySchedule []string `json:"retry_schedule,omitempty"`
}

// RateLimit caps deliveries to a destination: PerSecond on average and
// Burst (the server's default is 1) at once, across every instance.
type RateLimit struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst,omitempty"`
}

// SigningSecret is a secret as the API shows it after creation.
type SigningSecret struct {
	TruncatedSecret string `json:"truncated_secret"`
	// ExpireTime is set on a rotated-out secret still in use.
	ExpireTime *time.Time `json:"expire_time,omitempty"`
}

// WebhookParams are the fields of a webhook to create or update.
type WebhookParams struct {
	Name             string   `json:"name,omitempty"`
	URI              string   `json:"uri,omitempty"`
	SubscribedEvents []string `json:"subscribed_events,omitempty"`
	State            string   `json:"state,omitempty"`
	// The extensions; left out when zero. UpdateWebhook with the mask path
	// (rate_limit, trace_propagation, retry_schedule) and the field zero
	// removes one.
	RateLimit        *RateLimit `json:"rate_limit,omitempty"`
	TracePropagation bool       `json:"trace_propagation,omitempty"`
	RetrySchedule    []string   `json:"retry_schedule,omitempty"`
}

// ListOptions pages through a list. The zero value asks for the first page
// of the server's default size (50).
type ListOptions struct {
	PageSize  int
	PageToken string
}

func (o ListOptions) values() url.Values {
	q := url.Values{}
	if o.PageSize > 0 {
		q.Set("page_size", strconv.Itoa(o.PageSize))
	}
	if o.PageToken != "" {
		q.Set("page_token", o.PageToken)
	}
	return q
}

// WebhookPage is one page of webhooks.
type WebhookPage struct {
	Webhooks []*Webhook `json:"webhooks"`
	// NextPageToken fetches the next page; empty on the last one.
	NextPageToken string `json:"next_page_token,omitempty"`
}

// ListWebhooks lists the project's webhooks, by id.
func (c *Client) ListWebhooks(ctx context.Context, o ListOptions) (*WebhookPage, error) {
	var p WebhookPage
	return &p, c.do(ctx, "GET", "/webhooks", o.values(), nil, &p)
}

// GetWebhook returns one webhook.
func (c *Client) GetWebhook(ctx context.Context, id string) (*Webhook, error) {
	id, err := escape(id)
	if err != nil {
		return nil, err
	}
	var w Webhook
	return &w, c.do(ctx, "GET", "/webhooks/"+id, nil, nil, &w)
}

// CreateWebhook creates a webhook; the answer carries NewSigningSecret.
func (c *Client) CreateWebhook(ctx context.Context, p WebhookParams) (*Webhook, error) {
	var w Webhook
	return &w, c.do(ctx, "POST", "/webhooks", nil, p, &w)
}

// UpdateWebhook changes the fields of p named in mask (snake_case: name,
// uri, subscribed_events, state); with an empty mask, the non-empty fields
// of p.
func (c *Client) UpdateWebhook(ctx context.Context, id string, p WebhookParams, mask ...string) (*Webhook, error) {
	id, err := escape(id)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if len(mask) > 0 {
		q.Set("update_mask", strings.Join(mask, ","))
	}
	var w Webhook
	return &w, c.do(ctx, "PATCH", "/webhooks/"+id, q, p, &w)
}

// EnableWebhook sets a webhook's state to enabled (also after an
// automatic disable).
func (c *Client) EnableWebhook(ctx context.Context, id string) (*Webhook, error) {
	return c.UpdateWebhook(ctx, id, WebhookParams{State: StateEnabled}, "state")
}

// DisableWebhook sets a webhook's state to disabled: new events give it
// skipped deliveries, replayable with Recover.
func (c *Client) DisableWebhook(ctx context.Context, id string) (*Webhook, error) {
	return c.UpdateWebhook(ctx, id, WebhookParams{State: StateDisabled}, "state")
}

// DeleteWebhook deletes a webhook and cancels its pending deliveries.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	id, err := escape(id)
	if err != nil {
		return err
	}
	return c.do(ctx, "DELETE", "/webhooks/"+id, nil, nil, nil)
}

// PingWebhook queues a webhook.ping event to the webhook alone.
func (c *Client) PingWebhook(ctx context.Context, id string) error {
	id, err := escape(id)
	if err != nil {
		return err
	}
	return c.do(ctx, "POST", "/webhooks/"+id+":ping", nil, struct{}{}, nil)
}

// RotateSigningSecret makes a new signing secret and returns it. The old
// secrets stay valid for 24 hours (every delivery carries one signature
// per secret) unless revokeNow.
func (c *Client) RotateSigningSecret(ctx context.Context, id string, revokeNow bool) (string, error) {
	id, err := escape(id)
	if err != nil {
		return "", err
	}
	body := map[string]string{"revocation_behavior": "revoke_previous_secrets_after_h24"}
	if revokeNow {
		body["revocation_behavior"] = "revoke_previous_secrets_immediately"
	}
	var out struct {
		Secret string `json:"secret"`
	}
	return out.Secret, c.do(ctx, "POST", "/webhooks/"+id+":rotateSigningSecret", nil, body, &out)
}
