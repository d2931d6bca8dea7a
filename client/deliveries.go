package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
	DeliverySkipped   = "skipped"
	DeliveryCancelled = "cancelled"
)

// Delivery is one event sent to one destination, with its retries.
type Delivery struct {
	ID        string `json:"id"`
	EventID   string `json:"event_id"`
	WebhookID string `json:"webhook_id,omitempty"`
	// URI is set for dynamic deliveries (no webhook).
	URI             string     `json:"uri,omitempty"`
	EventType       string     `json:"event_type"`
	Status          string     `json:"status"`
	AttemptCount    int        `json:"attempt_count"`
	NextAttemptTime *time.Time `json:"next_attempt_time,omitempty"`
	LastStatusCode  int        `json:"last_status_code,omitempty"`
	LastError       string     `json:"last_error,omitempty"`
	CreateTime      time.Time  `json:"create_time"`
	UpdateTime      time.Time  `json:"update_time"`
	// Attempts is filled by GetDelivery, oldest first.
	Attempts []Attempt `json:"attempts,omitempty"`
}

// Attempt is one try of a delivery.
type Attempt struct {
	Number int       `json:"number"`
	Time   time.Time `json:"time"`
	URI    string    `json:"uri"`
	// StatusCode is 0 when no HTTP answer came (see Error).
	StatusCode   int    `json:"status_code,omitempty"`
	LatencyMS    int64  `json:"latency_ms"`
	Error        string `json:"error,omitempty"`
	ResponseBody string `json:"response_body,omitempty"`
}

// DeliveryListOptions filters ListDeliveries.
type DeliveryListOptions struct {
	ListOptions
	Status    string
	EventType string
	// Since and Until bound the creation time as [Since, Until).
	Since, Until time.Time
}

// DeliveryPage is one page of deliveries, newest first.
type DeliveryPage struct {
	Deliveries    []*Delivery `json:"deliveries"`
	NextPageToken string      `json:"next_page_token,omitempty"`
}

// ListDeliveries lists a webhook's deliveries, newest first.
func (c *Client) ListDeliveries(ctx context.Context, webhookID string, o DeliveryListOptions) (*DeliveryPage, error) {
	id, err := escape(webhookID)
	if err != nil {
		return nil, err
	}
	q := o.values()
	for k, v := range map[string]string{"status": o.Status, "event_type": o.EventType} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for k, t := range map[string]time.Time{"since": o.Since, "until": o.Until} {
		if !t.IsZero() {
			q.Set(k, t.UTC().Format(time.RFC3339Nano))
		}
	}
	var p DeliveryPage
	return &p, c.do(ctx, "GET", "/webhooks/"+id+"/deliveries", q, nil, &p)
}

// GetDelivery returns a delivery with every attempt.
func (c *Client) GetDelivery(ctx context.Context, id string) (*Delivery, error) {
	id, err := escape(id)
	if err != nil {
		return nil, err
	}
	var d Delivery
	return &d, c.do(ctx, "GET", "/deliveries/"+id, nil, nil, &d)
}

// Redeliver sends a delivery again now. A finished delivery gets one
// attempt, outside its schedule; a pending one is attempted now and keeps
// its schedule. It returns the delivery as queued, before that attempt:
// GetDelivery or StreamDeliveries shows the outcome. A delivery of a
// disabled or deleted webhook is refused with ErrFailedPrecondition.
func (c *Client) Redeliver(ctx context.Context, id string) (*Delivery, error) {
	id, err := escape(id)
	if err != nil {
		return nil, err
	}
	var d Delivery
	return &d, c.do(ctx, "POST", "/deliveries/"+id+":redeliver", nil, struct{}{}, &d)
}

// RecoverParams selects deliveries of a webhook to re-queue.
type RecoverParams struct {
	// Since is required; Until defaults to now.
	Since time.Time
	Until time.Time
	// All takes every finished delivery, not only failed and skipped ones.
	All    bool
	DryRun bool
	// Limit is per call (default 1,000, at most 10,000): call again with
	// PageToken set to RecoverResult.NextPageToken while it is not empty.
	Limit int
	// PageToken goes on with the recovery a previous call (with the same
	// other parameters) started: each delivery is taken once, even if it
	// finished again in between.
	PageToken string
}

// RecoverResult is the answer of Recover.
type RecoverResult struct {
	Count   int  `json:"count"`
	HasMore bool `json:"has_more"`
	DryRun  bool `json:"dry_run"`
	// NextPageToken, when HasMore, is the RecoverParams.PageToken of the
	// next call.
	NextPageToken string `json:"next_page_token,omitempty"`
}

// Recover re-queues a webhook's deliveries created in [Since, Until) on a
// fresh retry schedule.
func (c *Client) Recover(ctx context.Context, webhookID string, p RecoverParams) (*RecoverResult, error) {
	id, err := escape(webhookID)
	if err != nil {
		return nil, err
	}
	body := map[string]any{"since": p.Since.UTC().Format(time.RFC3339Nano), "only_failed": !p.All, "dry_run": p.DryRun}
	if !p.Until.IsZero() {
		body["until"] = p.Until.UTC().Format(time.RFC3339Nano)
	}
	if p.Limit > 0 {
		body["limit"] = p.Limit
	}
	if p.PageToken != "" {
		body["page_token"] = p.PageToken
	}
	var r RecoverResult
	return &r, c.do(ctx, "POST", "/webhooks/"+id+":recover", nil, body, &r)
}

// Kinds of StreamEvent.
const (
	StreamCreated = "created" // a delivery created after the stream opened
	StreamAttempt = "attempt" // an attempt was recorded
	StreamUpdated = "updated" // another change: redelivery, recovery, cancellation
)

// StreamEvent is one change seen on the deliveries stream.
type StreamEvent struct {
	Kind     string    `json:"kind"`
	Delivery *Delivery `json:"delivery"`
}

// StreamOptions filters StreamDeliveries.
type StreamOptions struct {
	WebhookID string
	EventType string
	// Ready, if set, is called once the stream is open: changes from then
	// on are sent.
	Ready func()
}

// StreamDeliveries follows the project's deliveries live (GET
// /{v}/deliveries:stream) and calls fn for each change until ctx ends (it
// then returns nil), the server closes the stream, or fn returns an error
// (which it returns).
func (c *Client) StreamDeliveries(ctx context.Context, o StreamOptions, fn func(StreamEvent) error) error {
	q := url.Values{}
	if o.WebhookID != "" {
		q.Set("webhook_id", o.WebhookID)
	}
	if o.EventType != "" {
		q.Set("event_type", o.EventType)
	}
	req, err := c.newRequest(ctx, "GET", c.url("/deliveries:stream", q), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var buf [64 << 10]byte
		n, _ := resp.Body.Read(buf[:])
		return errorFrom(resp.StatusCode, buf[:n])
	}
	err = readSSE(resp, func(event, data string) error {
		switch event {
		case "ready":
			if o.Ready != nil {
				o.Ready()
			}
		case "delivery":
			var ev StreamEvent
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				return fmt.Errorf("client: stream event: %w", err)
			}
			return fn(ev)
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// readSSE calls fn for each event of a text/event-stream body.
func readSSE(resp *http.Response, fn func(event, data string) error) error {
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var event string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(data) > 0 {
				if err := fn(event, strings.Join(data, "\n")); err != nil {
					return err
				}
			}
			event, data = "", nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("client: stream: %w", err)
	}
	return nil
}
