package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/publish"
)

// webhookStore is what the WebhookService handlers (and listen) need of the store.
type webhookStore interface {
	CreateWebhook(ctx context.Context, w *core.Webhook) error
	GetWebhook(ctx context.Context, projectID, id string) (*core.Webhook, error)
	ListWebhooks(ctx context.Context, p core.ListWebhooksParams) ([]*core.Webhook, error)
	UpdateWebhook(ctx context.Context, projectID, id string, fn func(*core.Webhook) error) (*core.Webhook, error)
	DeleteWebhook(ctx context.Context, projectID, id string, now time.Time) error
}

// webhookJSON is the Webhook resource on the wire (docs/contract.md §2).
type webhookJSON struct {
	ID               string              `json:"id"`
	Name             string              `json:"name,omitempty"` // optional; proto3 JSON leaves out an empty one
	URI              string              `json:"uri"`
	SubscribedEvents []string            `json:"subscribed_events"`
	State            core.WebhookState   `json:"state"`
	SigningSecrets   []signingSecretJSON `json:"signing_secrets"`
	NewSigningSecret string              `json:"new_signing_secret,omitempty"`
	CreateTime       string              `json:"create_time"`
	UpdateTime       string              `json:"update_time"`
	// RateLimit is a longhook extension: deliveries to this webhook never
	// exceed it, across every instance.
	RateLimit *core.RateLimit `json:"rate_limit,omitempty"`
	// TracePropagation is a longhook extension: attempts carry a W3C
	// traceparent header when tracing is on.
	TracePropagation bool `json:"trace_propagation,omitempty"`
	// RetrySchedule is a longhook extension: this webhook's retry delays
	// (google.protobuf.Duration strings) in place of the server's.
	RetrySchedule []string `json:"retry_schedule,omitempty"`
}

type signingSecretJSON struct {
	TruncatedSecret string `json:"truncated_secret"`
	ExpireTime      string `json:"expire_time,omitempty"`
}

// resourceTime formats a resource timestamp: RFC 3339, UTC, whole seconds
// (the precision of the event envelope, and independent of how precisely
// a store keeps time, so a create response matches a later get).
func resourceTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// webhookOut renders w. It shows the current secret first and hides
// expired ones; full secrets never appear here.
func webhookOut(w *core.Webhook, now time.Time) *webhookJSON {
	out := &webhookJSON{
		ID:               w.ID,
		Name:             w.Name,
		URI:              w.URI,
		SubscribedEvents: w.SubscribedEvents,
		State:            w.State,
		SigningSecrets:   []signingSecretJSON{},
		CreateTime:       resourceTime(w.CreateTime),
		UpdateTime:       resourceTime(w.UpdateTime),
		RateLimit:        w.RateLimit,
		TracePropagation: w.TracePropagation,
	}
	for _, d := range w.RetrySchedule {
		out.RetrySchedule = append(out.RetrySchedule, core.FormatGoogleDuration(d))
	}
	if out.SubscribedEvents == nil {
		out.SubscribedEvents = []string{}
	}
	for i, sec := range sortedSecrets(w.Secrets) {
		if i > 0 && sec.Expired(now) {
			continue
		}
		js := signingSecretJSON{TruncatedSecret: truncatedSecret(sec.Hint)}
		if i > 0 {
			js.ExpireTime = resourceTime(sec.ExpireTime)
		}
		out.SigningSecrets = append(out.SigningSecrets, js)
	}
	return out
}

// sortedSecrets returns the current secret (the one without an expiry)
// first, then the older ones newest first. The store keeps them newest
// first already; ordering on the expiry too keeps "current first" true
// even when two rotations share a timestamp.
func sortedSecrets(in []core.SigningSecret) []core.SigningSecret {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b core.SigningSecret) int {
		if az, bz := a.ExpireTime.IsZero(), b.ExpireTime.IsZero(); az != bz {
			if az {
				return -1
			}
			return 1
		}
		if c := b.CreateTime.Compare(a.CreateTime); c != 0 {
			return c
		}
		return b.ExpireTime.Compare(a.ExpireTime)
	})
	return out
}

// createWebhookRequest is WebhookInput.
type createWebhookRequest struct {
	Name             string          `json:"name"`
	URI              string          `json:"uri"`
	SubscribedEvents []string        `json:"subscribed_events"`
	RateLimit        *core.RateLimit `json:"rate_limit"`        // extension
	TracePropagation bool            `json:"trace_propagation"` // extension
	RetrySchedule    []string        `json:"retry_schedule"`    // extension
}

func (s *server) createWebhook(r *http.Request, key core.APIKey) (any, error) {
	var req createWebhookRequest
	if err := DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	if err := validateName(req.Name); err != nil {
		return nil, err
	}
	if err := s.d.Policy.ValidateURI("uri", req.URI); err != nil {
		return nil, err
	}
	events, err := s.subscribedEvents(req.SubscribedEvents)
	if err != nil {
		return nil, err
	}
	if req.RateLimit != nil {
		if err := req.RateLimit.Validate("rate_limit"); err != nil {
			return nil, err
		}
	}
	schedule, err := parseRetrySchedule(req.RetrySchedule)
	if err != nil {
		return nil, err
	}
	now := s.d.Clock.Now().UTC()
	secret, sealed, err := s.newSecret(now)
	if err != nil {
		return nil, err
	}
	w := &core.Webhook{
		ID:               core.NewID(),
		ProjectID:        key.ProjectID,
		Name:             req.Name,
		URI:              req.URI,
		SubscribedEvents: events,
		State:            core.WebhookEnabled,
		Secrets:          []core.SigningSecret{sealed},
		RateLimit:        req.RateLimit,
		TracePropagation: req.TracePropagation,
		RetrySchedule:    schedule,
		CreateTime:       now,
		UpdateTime:       now,
	}
	if err := s.hooks.CreateWebhook(r.Context(), w); err != nil {
		return nil, err
	}
	s.changed(key.ProjectID)
	out := webhookOut(w, now)
	out.NewSigningSecret = secret
	return out, nil
}

// newSecret generates a signing secret and seals it for the store.
func (s *server) newSecret(now time.Time) (plaintext string, sec core.SigningSecret, err error) {
	plaintext, err = newSigningSecret()
	if err != nil {
		return "", sec, err
	}
	sealed, err := s.d.Cipher.Seal([]byte(plaintext))
	if err != nil {
		return "", sec, err
	}
	return plaintext, core.SigningSecret{
		ID:         core.NewSortableID(now),
		Sealed:     sealed,
		Hint:       lastN(plaintext, 4),
		CreateTime: now,
	}, nil
}

// parseRetrySchedule reads a retry_schedule: google.protobuf.Duration
// strings ("5s", "1.5s"), each in (0, 24h]. An empty list is no schedule
// of the webhook's own: the server's applies.
func parseRetrySchedule(in []string) ([]time.Duration, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]time.Duration, len(in))
	for i, v := range in {
		d, ok := core.ParseGoogleDuration(v)
		if !ok {
			return nil, core.Invalid("retry_schedule", "retry_schedule[%d] is %q; each step is a duration in seconds such as \"5s\" or \"1.5s\"", i, v)
		}
		out[i] = d
	}
	if err := core.ValidateRetrySchedule("retry_schedule", out); err != nil {
		return nil, err
	}
	return out, nil
}

func validateName(name string) error {
	if len(name) > core.MaxWebhookNameLength {
		return core.Invalid("name", "name is longer than %d characters", core.MaxWebhookNameLength)
	}
	return nil
}

// subscribedEvents validates a subscribed_events list against the catalog
// and drops repeats, keeping the first occurrence.
func (s *server) subscribedEvents(events []string) ([]string, error) {
	if err := s.d.Catalog.ValidateSubscribedEvents(events); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(events))
	for _, e := range events {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	if len(out) > core.MaxSubscribedEvents {
		return nil, core.Invalid("subscribed_events", "subscribed_events holds more than %d values", core.MaxSubscribedEvents)
	}
	return out, nil
}

type listWebhooksResponse struct {
	Webhooks      []*webhookJSON `json:"webhooks,omitempty"`
	NextPageToken string         `json:"next_page_token,omitempty"`
}

func (s *server) listWebhooks(r *http.Request, key core.APIKey) (any, error) {
	size, after, err := s.tokens.page(r.URL.Query(), "webhooks", key.ProjectID)
	if err != nil {
		return nil, err
	}
	hooks, err := s.hooks.ListWebhooks(r.Context(), core.ListWebhooksParams{
		ProjectID: key.ProjectID, AfterID: after, Limit: size + 1,
	})
	if err != nil {
		return nil, err
	}
	var resp listWebhooksResponse
	hooks, more := trimPage(hooks, size)
	if more {
		resp.NextPageToken = s.tokens.encode("webhooks", key.ProjectID, hooks[len(hooks)-1].ID)
	}
	now := s.d.Clock.Now()
	for _, w := range hooks {
		resp.Webhooks = append(resp.Webhooks, webhookOut(w, now))
	}
	return &resp, nil
}

// getOwnWebhook loads a webhook of the caller's project; another project's
// webhook is indistinguishable from a missing one.
func (s *server) getOwnWebhook(r *http.Request, key core.APIKey) (*core.Webhook, error) {
	id := r.PathValue("id")
	w, err := s.hooks.GetWebhook(r.Context(), key.ProjectID, id)
	return w, notFoundAs(err, "webhook", id)
}

// notFoundAs gives ErrNotFound a message naming the resource.
func notFoundAs(err error, kind, id string) error {
	if errors.Is(err, core.ErrNotFound) {
		return errorf(core.ErrNotFound, "%s %q not found", kind, id)
	}
	return err
}

func (s *server) getWebhook(r *http.Request, key core.APIKey) (any, error) {
	w, err := s.getOwnWebhook(r, key)
	if err != nil {
		return nil, err
	}
	return webhookOut(w, s.d.Clock.Now()), nil
}

// updateWebhookRequest is WebhookUpdate; pointers tell present fields from
// absent ones.
type updateWebhookRequest struct {
	Name             *string   `json:"name"`
	URI              *string   `json:"uri"`
	SubscribedEvents *[]string `json:"subscribed_events"`
	State            *string   `json:"state"`
	// RateLimit is kept raw: present as null clears the limit.
	RateLimit        json.RawMessage `json:"rate_limit"`
	TracePropagation *bool           `json:"trace_propagation"`
	// RetrySchedule is kept raw: present as null (or []) clears it.
	RetrySchedule json.RawMessage `json:"retry_schedule"`
}

// updatePaths are the update_mask paths, with the camelCase spellings
// Google's field masks also accept.
var updatePaths = map[string]string{
	"name":              "name",
	"uri":               "uri",
	"subscribed_events": "subscribed_events",
	"subscribedEvents":  "subscribed_events",
	"state":             "state",
	"rate_limit":        "rate_limit",
	"rateLimit":         "rate_limit",
	"trace_propagation": "trace_propagation",
	"tracePropagation":  "trace_propagation",
	"retry_schedule":    "retry_schedule",
	"retrySchedule":     "retry_schedule",
}

// webhookUpdate is a validated update: set reports which fields to apply.
type webhookUpdate struct {
	set    map[string]bool
	name   string
	uri    string
	events []string
	state  core.WebhookState
	rate   *core.RateLimit
	trace  bool
	sched  []time.Duration
}

// parseUpdate validates an update. With update_mask, exactly the masked
// fields are applied (a masked field absent from the body is set to its
// empty value, which fails validation for required fields); without it,
// the fields present in the body are.
func (s *server) parseUpdate(r *http.Request) (*webhookUpdate, error) {
	var req updateWebhookRequest
	if err := DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	set, err := updateMask(r, &req)
	if err != nil {
		return nil, err
	}
	u := &webhookUpdate{set: set}
	if err := s.parseUpdateFields(u, &req); err != nil {
		return nil, err
	}
	if u.set["rate_limit"] && len(req.RateLimit) > 0 && string(req.RateLimit) != "null" {
		if u.rate, err = parseUpdateRateLimit(req.RateLimit); err != nil {
			return nil, err
		}
	}
	if u.set["retry_schedule"] && len(req.RetrySchedule) > 0 && string(req.RetrySchedule) != "null" {
		if u.sched, err = parseUpdateRetrySchedule(req.RetrySchedule); err != nil {
			return nil, err
		}
	}
	u.trace = deref(req.TracePropagation)
	return u, nil
}

// updateMask returns the fields an update sets: the update_mask's paths,
// or without a mask the fields present in the body.
func updateMask(r *http.Request, req *updateWebhookRequest) (map[string]bool, error) {
	set := map[string]bool{}
	// A repeated update_mask (?update_mask=name&update_mask=uri) is one mask
	// of every value's paths, as a FieldMask query parameter reads; only
	// the first was taken and the others silently ignored.
	if mask := strings.TrimSpace(strings.Join(r.URL.Query()["update_mask"], ",")); strings.Trim(mask, ", ") != "" {
		for _, p := range strings.Split(mask, ",") {
			if strings.TrimSpace(p) == "*" {
				// AIP-134: "*" replaces the webhook's configuration,
				// every field from the body (an absent one cleared);
				// its state, a lifecycle and not a setting, changes
				// only when the body names it.
				for _, path := range updatePaths {
					set[path] = path != "state" || req.State != nil
				}
				continue
			}
			path, ok := updatePaths[strings.TrimSpace(p)]
			if !ok {
				return nil, core.Invalid("update_mask", "update_mask: unknown field path %q; valid paths: name, uri, subscribed_events, state, rate_limit, trace_propagation, retry_schedule, or * for all", strings.TrimSpace(p))
			}
			set[path] = true
		}
		return set, nil
	}
	set["name"] = req.Name != nil
	set["uri"] = req.URI != nil
	set["subscribed_events"] = req.SubscribedEvents != nil
	set["state"] = req.State != nil
	set["rate_limit"] = req.RateLimit != nil
	set["trace_propagation"] = req.TracePropagation != nil
	set["retry_schedule"] = req.RetrySchedule != nil
	return set, nil
}

// parseUpdateFields validates the update's name, uri, subscribed events
// and state, those it sets, into u.
func (s *server) parseUpdateFields(u *webhookUpdate, req *updateWebhookRequest) error {
	if u.set["name"] {
		u.name = deref(req.Name)
		if err := validateName(u.name); err != nil {
			return err
		}
	}
	if u.set["uri"] {
		u.uri = deref(req.URI)
		if err := s.d.Policy.ValidateURI("uri", u.uri); err != nil {
			return err
		}
	}
	if u.set["subscribed_events"] {
		var err error
		if u.events, err = s.subscribedEvents(deref(req.SubscribedEvents)); err != nil {
			return err
		}
	}
	if u.set["state"] {
		// Every state of the WebhookUpdate resource may be set:
		// disabled_due_to_failed_deliveries parks a webhook as if the
		// server had disabled it (docs/api.md).
		u.state = core.WebhookState(deref(req.State))
		if !u.state.Valid() {
			return core.Invalid("state", "state: unknown value %q; valid values: enabled, disabled, disabled_due_to_failed_deliveries", deref(req.State))
		}
	}
	return nil
}

// parseUpdateRateLimit decodes and validates an update's rate_limit object.
func parseUpdateRateLimit(raw json.RawMessage) (*core.RateLimit, error) {
	rate := new(core.RateLimit)
	if err := decodeBytes(raw, rate); err != nil {
		var ie *core.InvalidArgumentError
		if errors.As(err, &ie) && ie.Field != "body" {
			return nil, core.Invalid("rate_limit."+ie.Field, "rate_limit: %s", ie.Message)
		}
		return nil, core.Invalid("rate_limit", "rate_limit must be {\"per_second\": number, \"burst\": integer}")
	}
	if err := rate.Validate("rate_limit"); err != nil {
		return nil, err
	}
	return rate, nil
}

// parseUpdateRetrySchedule decodes an update's retry_schedule list.
func parseUpdateRetrySchedule(raw json.RawMessage) ([]time.Duration, error) {
	var steps []string
	if err := json.Unmarshal(raw, &steps); err != nil {
		return nil, core.Invalid("retry_schedule", "retry_schedule must be a list of durations such as [\"5s\", \"30s\"]")
	}
	return parseRetrySchedule(steps)
}

// setsAny reports whether the update sets at least one field.
func (u *webhookUpdate) setsAny() bool {
	for _, set := range u.set {
		if set {
			return true
		}
	}
	return false
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (s *server) updateWebhook(r *http.Request, key core.APIKey) (any, error) {
	u, err := s.parseUpdate(r)
	if err != nil {
		return nil, err
	}
	now := s.d.Clock.Now().UTC()
	id := r.PathValue("id")
	var prev core.WebhookState
	w, err := s.hooks.UpdateWebhook(r.Context(), key.ProjectID, id, func(w *core.Webhook) error {
		prev = w.State
		if u.set["name"] {
			w.Name = u.name
		}
		if u.set["uri"] {
			w.URI = u.uri
		}
		if u.set["subscribed_events"] {
			w.SubscribedEvents = u.events
		}
		if u.set["rate_limit"] {
			w.RateLimit = u.rate
		}
		if u.set["trace_propagation"] {
			w.TracePropagation = u.trace
		}
		if u.set["retry_schedule"] {
			w.RetrySchedule = u.sched
		}
		if u.set["state"] && w.State != u.state {
			w.State = u.state
			// Re-enabling starts a fresh failure run, so auto-disable
			// does not fire again on the old one.
			w.FailingSince = time.Time{}
			w.ConsecutiveFailures = 0
		}
		if u.setsAny() {
			w.UpdateTime = now
		}
		return nil
	})
	if err != nil {
		return nil, notFoundAs(err, "webhook", id)
	}
	s.changed(key.ProjectID)
	s.announceState(r.Context(), w, prev)
	return webhookOut(w, now), nil
}

// announceState publishes webhook.enabled or webhook.disabled (reason
// manual) when an update changed the webhook's state. The update has
// committed: a failure to publish is logged, not answered.
func (s *server) announceState(ctx context.Context, w *core.Webhook, prev core.WebhookState) {
	if w.State == prev || s.d.Publisher == nil {
		return
	}
	var err error
	switch w.State {
	case core.WebhookEnabled:
		err = s.d.Publisher.WebhookEnabled(ctx, w, prev)
	case core.WebhookDisabled:
		err = s.d.Publisher.WebhookDisabled(ctx, w, publish.ReasonManual)
	}
	if err != nil {
		s.d.Logger.LogAttrs(ctx, slog.LevelError, "api.operational_event_failed",
			slog.String("webhook_id", w.ID), slog.String("error", err.Error()))
	}
}

func (s *server) deleteWebhook(r *http.Request, key core.APIKey) (any, error) {
	id := r.PathValue("id")
	err := s.hooks.DeleteWebhook(r.Context(), key.ProjectID, id, s.d.Clock.Now().UTC())
	s.changed(key.ProjectID)
	return nil, notFoundAs(err, "webhook", id)
}

func (s *server) pingWebhook(r *http.Request, key core.APIKey) (any, error) {
	var req struct{}
	if err := DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	w, err := s.getOwnWebhook(r, key)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(map[string]string{"id": w.ID})
	if err != nil {
		return nil, err
	}
	_, err = s.d.Publisher.Publish(r.Context(), key.ProjectID, []publish.Input{{
		Type:        core.EventWebhookPing,
		Data:        data,
		OnlyWebhook: w.ID,
		Internal:    true,
	}})
	return nil, err
}

// Revocation behaviours of :rotateSigningSecret.
const (
	revokeAfter24h     = "revoke_previous_secrets_after_h24"
	revokeImmediately  = "revoke_previous_secrets_immediately"
	oldSecretsLifetime = 24 * time.Hour
)

type rotateRequest struct {
	RevocationBehavior string `json:"revocation_behavior"`
}

type rotateResponse struct {
	Secret string `json:"secret"`
}

func (s *server) rotateSigningSecret(r *http.Request, key core.APIKey) (any, error) {
	var req rotateRequest
	if err := DecodeJSON(r, &req); err != nil {
		return nil, err
	}
	behavior := strings.ToLower(req.RevocationBehavior)
	switch behavior {
	case "":
		behavior = revokeAfter24h
	case revokeAfter24h, revokeImmediately:
	default:
		return nil, core.Invalid("revocation_behavior", "revocation_behavior: unknown value %q; valid values: %s (default), %s",
			req.RevocationBehavior, revokeAfter24h, revokeImmediately)
	}
	now := s.d.Clock.Now().UTC()
	secret, sealed, err := s.newSecret(now)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	_, err = s.hooks.UpdateWebhook(r.Context(), key.ProjectID, id, func(w *core.Webhook) error {
		w.Secrets = rotateSecrets(w.Secrets, sealed, behavior, now, s.scaled(oldSecretsLifetime))
		w.UpdateTime = now
		return nil
	})
	if err != nil {
		return nil, notFoundAs(err, "webhook", id)
	}
	s.changed(key.ProjectID)
	return &rotateResponse{Secret: secret}, nil
}

// rotateSecrets returns the secret list after a rotation: fresh first, then
// (after_h24) the previous unexpired secrets, each given an expiry overlap
// out (24 h, divided by --time-scale) unless it already has one, at most
// core.MaxOldSigningSecrets of them.
func rotateSecrets(old []core.SigningSecret, fresh core.SigningSecret, behavior string, now time.Time, overlap time.Duration) []core.SigningSecret {
	out := []core.SigningSecret{fresh}
	if behavior == revokeImmediately {
		return out
	}
	for _, sec := range sortedSecrets(old) {
		if sec.Expired(now) {
			continue
		}
		if sec.ExpireTime.IsZero() {
			sec.ExpireTime = now.Add(overlap)
		}
		if len(out) > core.MaxOldSigningSecrets {
			break // out holds the fresh secret plus the maximum
		}
		out = append(out, sec)
	}
	return out
}

// changed tells the publisher that a project's webhooks changed, so its
// subscription cache does not serve the old list.
func (s *server) changed(projectID string) {
	if s.d.Publisher != nil {
		s.d.Publisher.Invalidate(projectID)
	}
}
