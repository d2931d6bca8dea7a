package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// deliveryStore is what the deliveries handlers (and the listen and tail streams) need of the store.
type deliveryStore interface {
	GetDelivery(ctx context.Context, projectID, id string) (*core.Delivery, []core.Attempt, error)
	ListDeliveries(ctx context.Context, p core.ListDeliveriesParams) ([]*core.Delivery, error)
	Redeliver(ctx context.Context, projectID, id string, now time.Time) (*core.Delivery, error)
	RecoverDeliveries(ctx context.Context, p core.RecoverParams) (n int, next string, err error)
}

// deliveryJSON is a delivery on the wire (docs/contract.md §7).
type deliveryJSON struct {
	ID              string `json:"id"`
	EventID         string `json:"event_id"`
	WebhookID       string `json:"webhook_id,omitempty"`
	URI             string `json:"uri,omitempty"`
	EventType       string `json:"event_type"`
	Status          string `json:"status"`
	AttemptCount    int    `json:"attempt_count"`
	NextAttemptTime string `json:"next_attempt_time,omitempty"`
	LastStatusCode  int    `json:"last_status_code,omitempty"`
	LastError       string `json:"last_error,omitempty"`
	CreateTime      string `json:"create_time"`
	UpdateTime      string `json:"update_time"`
}

// deliveryDetailJSON is one delivery with every attempt (GET
// /{v}/deliveries/{id}); lists leave the attempts out.
type deliveryDetailJSON struct {
	*deliveryJSON
	Attempts []*attemptJSON `json:"attempts"`
}

type attemptJSON struct {
	Number       int    `json:"number"`
	Time         string `json:"time"`
	URI          string `json:"uri"`
	StatusCode   int    `json:"status_code,omitempty"`
	LatencyMS    int64  `json:"latency_ms"`
	Error        string `json:"error,omitempty"`
	ResponseBody string `json:"response_body,omitempty"`
}

// timestamp formats delivery, attempt and job times the way Google APIs
// do (RFC 3339, UTC, with sub-second precision: retries under --time-scale
// are milliseconds apart); the zero time is "".
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func deliveryOut(d *core.Delivery) *deliveryJSON {
	out := &deliveryJSON{
		ID:             d.ID,
		EventID:        d.EventID,
		WebhookID:      d.WebhookID,
		EventType:      d.EventType,
		Status:         string(d.Status),
		AttemptCount:   d.Attempts,
		LastStatusCode: d.LastStatusCode,
		LastError:      d.LastError,
		CreateTime:     timestamp(d.CreateTime),
		UpdateTime:     timestamp(d.UpdateTime),
	}
	if d.WebhookID == "" {
		out.URI = d.URI
	}
	if d.Status == core.DeliveryPending {
		out.NextAttemptTime = timestamp(d.NextAttemptTime)
	}
	return out
}

type listDeliveriesResponse struct {
	Deliveries    []*deliveryJSON `json:"deliveries,omitempty"`
	NextPageToken string          `json:"next_page_token,omitempty"`
}

func (s *server) listDeliveries(r *http.Request, key core.APIKey) (any, error) {
	q := r.URL.Query()
	webhookID := r.PathValue("id")
	p := core.ListDeliveriesParams{ProjectID: key.ProjectID, WebhookID: webhookID}
	if st := q.Get("status"); st != "" {
		p.Status = core.DeliveryStatus(strings.ToLower(st))
		if !p.Status.Valid() {
			return nil, core.Invalid("status", "status: unknown value %q; valid values: pending, succeeded, failed, skipped, cancelled", st)
		}
	}
	if et := q.Get("event_type"); et != "" {
		if err := s.checkEventTypeFilter("event_type", et); err != nil {
			return nil, err
		}
		p.EventType = et
	}
	var err error
	if p.Since, err = queryTime(q, "since"); err != nil {
		return nil, err
	}
	if p.Until, err = queryTime(q, "until"); err != nil {
		return nil, err
	}
	if !p.Since.IsZero() && !p.Until.IsZero() && !p.Since.Before(p.Until) {
		return nil, core.Invalid("until", "until must be after since")
	}
	collection := "deliveries/" + webhookID
	size, before, err := s.tokens.page(q, collection, key.ProjectID)
	if err != nil {
		return nil, err
	}
	p.BeforeID = before
	p.Limit = size + 1
	ds, err := s.deliveries.ListDeliveries(r.Context(), p)
	if err != nil {
		return nil, err
	}
	var resp listDeliveriesResponse
	if len(ds) == 0 && p.BeforeID == "" {
		// Nothing to show: tell an unknown (or another project's) webhook
		// apart from a quiet one. A deleted webhook's history stays
		// listable while it has deliveries.
		if _, err := s.getOwnWebhook(r, key); err != nil {
			return nil, err
		}
	}
	ds, more := trimPage(ds, size)
	if more {
		resp.NextPageToken = s.tokens.encode(collection, key.ProjectID, ds[len(ds)-1].ID)
	}
	for _, d := range ds {
		resp.Deliveries = append(resp.Deliveries, deliveryOut(d))
	}
	return &resp, nil
}

// queryTime parses an optional RFC 3339 query parameter.
func queryTime(q url.Values, name string) (time.Time, error) {
	s := q.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	return parseTime(name, s)
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, core.Invalid(field, "%s must be an RFC 3339 time such as 2026-05-05T12:00:00Z, got %q", field, s)
	}
	return t.UTC(), nil
}

func (s *server) getDelivery(r *http.Request, key core.APIKey) (any, error) {
	id := r.PathValue("id")
	d, attempts, err := s.deliveries.GetDelivery(r.Context(), key.ProjectID, id)
	if err != nil {
		return nil, notFoundAs(err, "delivery", id)
	}
	out := &deliveryDetailJSON{deliveryJSON: deliveryOut(d), Attempts: make([]*attemptJSON, 0, len(attempts))}
	for _, a := range attempts {
		out.Attempts = append(out.Attempts, &attemptJSON{
			Number:       a.Number,
			Time:         timestamp(a.Time),
			URI:          a.URI,
			StatusCode:   a.StatusCode,
			LatencyMS:    a.Latency.Milliseconds(),
			Error:        a.Error,
			ResponseBody: string(a.Response),
		})
	}
	return out, nil
}

func (s *server) redeliver(r *http.Request, key core.APIKey) (any, error) {
	var req struct{}
	if err := DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	cur, _, err := s.deliveries.GetDelivery(r.Context(), key.ProjectID, id)
	if err != nil {
		return nil, notFoundAs(err, "delivery", id)
	}
	// A static delivery goes to its webhook: a disabled one would skip the
	// resend and a deleted one cancel it, after a 200 that said pending.
	if cur.WebhookID != "" {
		w, err := s.hooks.GetWebhook(r.Context(), key.ProjectID, cur.WebhookID)
		switch {
		case errors.Is(err, core.ErrNotFound):
			return nil, errorf(core.ErrFailedPrecondition, "delivery %q cannot be redelivered: its webhook %q was deleted", id, cur.WebhookID)
		case err != nil:
			return nil, err
		case w.State != core.WebhookEnabled:
			return nil, errorf(core.ErrFailedPrecondition, "webhook %q is %s: enable it (PATCH state: enabled), then redeliver", w.ID, w.State)
		}
	}
	d, err := s.deliveries.Redeliver(r.Context(), key.ProjectID, id, s.d.Clock.Now().UTC())
	if err != nil {
		return nil, notFoundAs(err, "delivery", id)
	}
	return deliveryOut(d), nil
}

// Bounds of :recover.
const (
	defaultRecoverLimit = 1000
	maxRecoverLimit     = 10000
)

type recoverRequest struct {
	Since      string `json:"since"`
	Until      string `json:"until"`
	OnlyFailed *bool  `json:"only_failed"`
	DryRun     bool   `json:"dry_run"`
	Limit      *int   `json:"limit"`
	PageToken  string `json:"page_token"`
}

type recoverResponse struct {
	Count         int    `json:"count"`
	HasMore       bool   `json:"has_more"`
	DryRun        bool   `json:"dry_run"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// A :recover beyond one call's limit goes on with the next_page_token of
// the previous call: a page token (pagetoken.go) whose cursor is the end of
// the range the first call fixed and the last delivery id taken. Each call
// takes ids after it, so a delivery re-queued by an earlier call that
// finished again meanwhile is not taken twice — without the cursor, a
// caller taking every finished delivery (only_failed false) from a fast
// receiver re-took its own first batch on every call and never ended. The
// token is bound to the webhook and to since, until (as given), only_failed
// and dry_run: a token resumes only the request it came from.
func recoverCollection(webhookID string, since time.Time, until string, onlyFailed, dryRun bool) string {
	return fmt.Sprintf("webhooks:recover|%s|%s|%t|%t|%s", since.Format(time.RFC3339Nano), until, onlyFailed, dryRun, webhookID)
}

func badRecoverToken() error {
	return core.Invalid("page_token", "page_token is invalid: pass the next_page_token of the previous response unchanged, "+
		"with the same since, until, only_failed and dry_run and the same API key")
}

func (s *server) recoverDeliveries(r *http.Request, key core.APIKey) (any, error) {
	var req recoverRequest
	if err := DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	p, until, err := recoverRange(&req, s.d.Clock.Now().UTC())
	if err != nil {
		return nil, err
	}
	p.ProjectID, p.WebhookID = key.ProjectID, r.PathValue("id")
	collection := recoverCollection(p.WebhookID, p.Since, until, p.OnlyFailed, p.DryRun)
	if req.PageToken != "" {
		if err := s.resumeRecover(&p, collection, req.PageToken); err != nil {
			return nil, err
		}
	}
	if !p.Since.Before(p.Until) {
		if req.Until == "" {
			return nil, core.Invalid("since", "since must be in the past (until defaults to now)")
		}
		return nil, core.Invalid("until", "until must be after since")
	}
	if p.Limit, err = recoverLimit(req.Limit); err != nil {
		return nil, err
	}
	if !p.DryRun {
		if err := s.checkRecoverable(r.Context(), p.ProjectID, p.WebhookID); err != nil {
			return nil, err
		}
	}
	n, next, err := s.deliveries.RecoverDeliveries(r.Context(), p)
	if err != nil {
		return nil, notFoundAs(err, "webhook", p.WebhookID)
	}
	resp := &recoverResponse{Count: n, HasMore: next != "", DryRun: p.DryRun}
	if next != "" {
		resp.NextPageToken = s.tokens.encode(collection, key.ProjectID, p.Until.Format(time.RFC3339Nano)+"|"+next)
	}
	return resp, nil
}

// recoverRange reads a :recover request's time range and options at now
// (until defaults to now). until is the until given, for the page token
// ("" without one).
func recoverRange(req *recoverRequest, now time.Time) (p core.RecoverParams, until string, err error) {
	p = core.RecoverParams{
		OnlyFailed: req.OnlyFailed == nil || *req.OnlyFailed,
		DryRun:     req.DryRun,
		Limit:      defaultRecoverLimit,
		Until:      now,
		Now:        now,
	}
	if req.Since == "" {
		return p, "", core.Invalid("since", "since is required: the start of the time range to replay, RFC 3339 (e.g. 2026-05-05T12:00:00Z)")
	}
	if p.Since, err = parseTime("since", req.Since); err != nil {
		return p, "", err
	}
	if req.Until != "" {
		if p.Until, err = parseTime("until", req.Until); err != nil {
			return p, "", err
		}
		until = p.Until.Format(time.RFC3339Nano)
	}
	return p, until, nil
}

// resumeRecover continues a :recover from its page token: after the last
// delivery the previous call took, up to the end of the range the first
// call fixed (by default its now), so deliveries created since do not
// lengthen it.
func (s *server) resumeRecover(p *core.RecoverParams, collection, token string) error {
	cursor, err := s.tokens.decode(collection, p.ProjectID, token)
	if err != nil {
		return badRecoverToken()
	}
	end, after, ok := strings.Cut(cursor, "|")
	if p.Until, err = time.Parse(time.RFC3339Nano, end); !ok || err != nil {
		return badRecoverToken()
	}
	p.AfterID = after
	return nil
}

// checkRecoverable refuses to recover for a webhook that is not enabled.
// As for :redeliver: the deliveries of a disabled webhook would be
// skipped again at once, after a 200 that counted them.
func (s *server) checkRecoverable(ctx context.Context, projectID, webhookID string) error {
	w, err := s.hooks.GetWebhook(ctx, projectID, webhookID)
	if err != nil {
		return notFoundAs(err, "webhook", webhookID)
	}
	if w.State != core.WebhookEnabled {
		return errorf(core.ErrFailedPrecondition, "webhook %q is %s: enable it (PATCH state: enabled), then recover", w.ID, w.State)
	}
	return nil
}

// recoverLimit applies AIP-158's page_size rule to :recover's limit, as
// page_size does: absent or 0 is the default, more than the maximum is the
// maximum, a negative one is 400 — and the message says exactly that.
func recoverLimit(limit *int) (int, error) {
	switch {
	case limit == nil || *limit == 0:
		return defaultRecoverLimit, nil
	case *limit < 0:
		return 0, core.Invalid("limit", "limit must be a non-negative integer (0 or absent: the default, %d; more than %d: %d), got %d",
			defaultRecoverLimit, maxRecoverLimit, maxRecoverLimit, *limit)
	}
	return min(*limit, maxRecoverLimit), nil
}
