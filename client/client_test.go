package client_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/longhook/longhook/client"
	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup serves the real API on a real SQLite store and returns a client
// with a project key.
func setup(t *testing.T) *client.Client {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "longhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	master := make([]byte, secretbox.KeySize)
	_, _ = rand.Read(master)
	box, err := secretbox.New(master)
	if err != nil {
		t.Fatal(err)
	}
	p := core.Project{ID: core.NewID(), Name: "t", CreateTime: time.Now()}
	if err := st.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	key, digest, hint := api.NewAPIKey()
	if err := st.CreateAPIKey(ctx, core.APIKey{ID: core.NewID(), ProjectID: p.ID, Digest: digest, Hint: hint, CreateTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewServer(api.Deps{Store: st, Cipher: box}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, key, client.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientRoundTrip(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := t.Context()
	if err := c.Health(ctx); err != nil {
		t.Fatalf("Health: %v", err)
	}
	hook, err := c.CreateWebhook(ctx, client.WebhookParams{Name: "n", URI: "https://example.com/h",
		SubscribedEvents: []string{"batch.succeeded"}})
	if err != nil || hook.NewSigningSecret == "" || hook.State != client.StateEnabled || hook.CreateTime.IsZero() {
		t.Fatalf("CreateWebhook: %+v %v", hook, err)
	}
	if w, err := c.DisableWebhook(ctx, hook.ID); err != nil || w.State != client.StateDisabled {
		t.Fatalf("DisableWebhook: %+v %v", w, err)
	}
	if w, err := c.EnableWebhook(ctx, hook.ID); err != nil || w.State != client.StateEnabled {
		t.Fatalf("EnableWebhook: %+v %v", w, err)
	}
	if w, err := c.UpdateWebhook(ctx, hook.ID, client.WebhookParams{Name: "renamed"}); err != nil || w.Name != "renamed" || w.URI != hook.URI {
		t.Fatalf("UpdateWebhook: %+v %v", w, err)
	}
	if s, err := c.RotateSigningSecret(ctx, hook.ID, false); err != nil || s == "" || s == hook.NewSigningSecret {
		t.Fatalf("RotateSigningSecret: %q %v", s, err)
	}
	if page, err := c.ListWebhooks(ctx, client.ListOptions{}); err != nil || len(page.Webhooks) != 1 || len(page.Webhooks[0].SigningSecrets) != 2 {
		t.Fatalf("ListWebhooks: %+v %v", page, err)
	}
	ev, err := c.Publish(ctx, client.PublishParams{Type: "batch.succeeded", Data: json.RawMessage(`{"id":"batches/1"}`), IdempotencyKey: "k1"})
	if err != nil || ev.DeliveryCount != 1 || ev.Replayed {
		t.Fatalf("Publish: %+v %v", ev, err)
	}
	// A repeated key answers the original event, marked as a replay.
	again, err := c.Publish(ctx, client.PublishParams{Type: "batch.succeeded", IdempotencyKey: "k1"})
	if err != nil || again.ID != ev.ID || !again.Replayed || again.DeliveryCount != 1 {
		t.Fatalf("idempotent Publish: %+v %v", again, err)
	}
	if got, err := c.GetEvent(ctx, ev.ID); err != nil || string(got.Data) != `{"id":"batches/1"}` || got.IdempotencyKey != "k1" {
		t.Fatalf("GetEvent: %+v %v", got, err)
	}
	if page, err := c.ListEvents(ctx, client.EventListOptions{Type: "batch.succeeded"}); err != nil || len(page.Events) != 1 {
		t.Fatalf("ListEvents: %+v %v", page, err)
	}
	ds, err := c.ListDeliveries(ctx, hook.ID, client.DeliveryListOptions{Status: client.DeliveryPending})
	if err != nil || len(ds.Deliveries) != 1 || ds.Deliveries[0].EventID != ev.ID || ds.Deliveries[0].NextAttemptTime == nil {
		t.Fatalf("ListDeliveries: %+v %v", ds, err)
	}
	if d, err := c.GetDelivery(ctx, ds.Deliveries[0].ID); err != nil || d.Status != client.DeliveryPending || len(d.Attempts) != 0 {
		t.Fatalf("GetDelivery: %+v %v", d, err)
	}
	if r, err := c.Recover(ctx, hook.ID, client.RecoverParams{Since: time.Now().Add(-time.Hour), DryRun: true}); err != nil || !r.DryRun {
		t.Fatalf("Recover: %+v %v", r, err)
	}
	if err := c.PingWebhook(ctx, hook.ID); err != nil {
		t.Fatalf("PingWebhook: %v", err)
	}
	if err := c.DeleteWebhook(ctx, hook.ID); err != nil {
		t.Fatalf("DeleteWebhook: %v", err)
	}
}

// TestClientExtensionFields: the longhook extensions of a webhook
// (rate_limit, trace_propagation, retry_schedule) and of an event's
// webhook_config (rate_limit, trace_propagation) are set and read through
// the client. It dropped them, so `longhook webhooks get --json` showed no
// rate limit on a webhook that had one.
func TestClientExtensionFields(t *testing.T) {
	t.Parallel()
	c := setup(t)
	ctx := t.Context()
	hook, err := c.CreateWebhook(ctx, client.WebhookParams{URI: "https://example.com/h", SubscribedEvents: []string{"batch.succeeded"},
		RateLimit: &client.RateLimit{PerSecond: 2.5, Burst: 5}, TracePropagation: true, RetrySchedule: []string{"1s", "1.5s"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetWebhook(ctx, hook.ID)
	if err != nil || got.RateLimit == nil || *got.RateLimit != (client.RateLimit{PerSecond: 2.5, Burst: 5}) || !got.TracePropagation ||
		strings.Join(got.RetrySchedule, ",") != "1s,1.500s" {
		t.Fatalf("GetWebhook: %+v %v", got, err)
	}
	got, err = c.UpdateWebhook(ctx, hook.ID, client.WebhookParams{}, "rate_limit", "trace_propagation", "retry_schedule")
	if err != nil || got.RateLimit != nil || got.TracePropagation || got.RetrySchedule != nil {
		t.Fatalf("UpdateWebhook removing the extensions: %+v %v", got, err)
	}
	ev, err := c.Publish(ctx, client.PublishParams{Type: "batch.succeeded", WebhookConfig: &client.WebhookConfig{
		URIs: []string{"https://example.com/job"}, RateLimit: &client.RateLimit{PerSecond: 1}, TracePropagation: true}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.GetEvent(ctx, ev.ID)
	if err != nil || e.WebhookConfig == nil || e.WebhookConfig.RateLimit == nil || e.WebhookConfig.RateLimit.PerSecond != 1 || !e.WebhookConfig.TracePropagation {
		t.Fatalf("GetEvent: %+v %v", e, err)
	}
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	c := setup(t)
	_, err := c.GetWebhook(t.Context(), "nope")
	var e *client.Error
	if !errors.Is(err, client.ErrNotFound) || !errors.As(err, &e) || e.Code != 404 || e.Message != `webhook "nope" not found` {
		t.Fatalf("GetWebhook(nope): %v", err)
	}
	_, err = c.CreateWebhook(t.Context(), client.WebhookParams{URI: "https://example.com", SubscribedEvents: []string{"batch.done"}})
	if !errors.Is(err, client.ErrInvalidArgument) || errors.Is(err, client.ErrNotFound) {
		t.Fatalf("CreateWebhook(bad type): %v", err)
	}
	bad, _ := client.New(c.BaseURL(), "wrong-key")
	if _, err := bad.ListWebhooks(t.Context(), client.ListOptions{}); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := client.New("ftp://x", ""); err == nil {
		t.Fatal("New accepted ftp://")
	}
}

func TestClientStream(t *testing.T) {
	t.Parallel()
	c := setup(t)
	hook, err := c.CreateWebhook(t.Context(), client.WebhookParams{URI: "https://example.com/h", SubscribedEvents: []string{"batch.failed"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ready := make(chan struct{})
	got := make(chan client.StreamEvent, 1)
	done := make(chan error, 1)
	go func() {
		done <- c.StreamDeliveries(ctx, client.StreamOptions{WebhookID: hook.ID, Ready: func() { close(ready) }},
			func(ev client.StreamEvent) error { got <- ev; return errors.New("enough") })
	}()
	<-ready
	ev, err := c.Publish(ctx, client.PublishParams{Type: "batch.failed"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case se := <-got:
		if se.Kind != client.StreamCreated || se.Delivery.EventID != ev.ID {
			t.Fatalf("stream event %+v", se)
		}
	case <-ctx.Done():
		t.Fatal("no stream event")
	}
	if err := <-done; err == nil || err.Error() != "enough" {
		t.Fatalf("StreamDeliveries returned %v", err)
	}
}

// TestErrorWithoutEnvelope: an answer that is not the Google envelope (a
// proxy's or load balancer's error page) still gets a Google status, so the
// sentinels match it (a 503 page was Status "Service Unavailable", which
// errors.Is(err, ErrUnavailable) did not match), and an envelope without a
// status gets the one of its code.
func TestErrorWithoutEnvelope(t *testing.T) {
	t.Parallel()
	cases := []struct {
		code   int
		body   string
		want   error
		status string
	}{
		{503, "<html>Service Temporarily Unavailable</html>", client.ErrUnavailable, "UNAVAILABLE"},
		{502, "Bad Gateway", client.ErrUnavailable, "UNAVAILABLE"},
		{429, "slow down", client.ErrResourceExhausted, "RESOURCE_EXHAUSTED"},
		{404, "404 page not found", client.ErrNotFound, "NOT_FOUND"},
		{500, "", client.ErrInternal, "INTERNAL"},
		{409, `{"error":{"code":409,"message":"exists"}}`, client.ErrAlreadyExists, "ALREADY_EXISTS"},
		{504, "upstream timed out", nil, "DEADLINE_EXCEEDED"},
	}
	for _, tc := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(tc.code)
			_, _ = io.WriteString(w, tc.body)
		}))
		c, err := client.New(srv.URL, "k", client.WithHTTPClient(srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.GetWebhook(t.Context(), "w")
		srv.Close()
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.Code != tc.code || apiErr.Status != tc.status || apiErr.Message == "" {
			t.Errorf("%d %q: got %#v (%v), want code %d status %s and a message", tc.code, tc.body, apiErr, err, tc.code, tc.status)
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%d %q: errors.Is(%v, %v) = false", tc.code, tc.body, err, tc.want)
		}
	}
}
