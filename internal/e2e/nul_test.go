package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/longhook/longhook/internal/pgtest"
)

// TestNULInTextIsInvalid: a NUL character (\u0000) in a text field of a
// request is 400 INVALID_ARGUMENT naming the field, on PostgreSQL (whose
// text cannot hold it) as on SQLite. It was 500 INTERNAL on PostgreSQL —
// the INSERT failed — and stored as sent on SQLite. Event data, which is
// delivered byte for byte, may still hold one.
func TestNULInTextIsInvalid(t *testing.T) {
	t.Parallel()
	s := startServe(t, withFlags("--database-url", newTestDatabase(t, pgtest.URL(t)), "--migrate"))
	c := s.client(t)
	wh := c.createWebhook(t, "https://example.com/nul", "batch.succeeded")
	const nul = "a\x00b"
	for _, tc := range []struct {
		method, path, field string
		body                map[string]any
	}{
		{"POST", "/v1/webhooks", "name", map[string]any{"name": nul, "uri": "https://example.com/x", "subscribed_events": []string{"batch.succeeded"}}},
		{"PATCH", "/v1/webhooks/" + wh.ID, "name", map[string]any{"name": nul}},
		{"POST", "/v1/events", "idempotency_key", map[string]any{"type": "batch.succeeded", "idempotency_key": nul}},
		{"POST", "/v1/events", "subject", map[string]any{"type": "batch.succeeded", "subject": nul}},
		{"POST", "/v1/events:batchPublish", "events[0].idempotency_key", map[string]any{"events": []any{map[string]any{"type": "batch.succeeded", "idempotency_key": nul}}}},
		{"POST", "/v1/projects", "name", map[string]any{"name": nul}},
	} {
		code, raw, err := c.do(context.Background(), tc.method, tc.path, tc.body, nil)
		if err != nil {
			t.Fatal(err)
		}
		if code != 400 || !strings.Contains(string(raw), "INVALID_ARGUMENT") || !strings.Contains(string(raw), tc.field) {
			t.Errorf("%s %s with a NUL in %s: %d %s; want 400 INVALID_ARGUMENT naming the field", tc.method, tc.path, tc.field, code, raw)
		}
	}
	got := map[string]any{}
	c.call(t, "GET", "/v1/webhooks/"+wh.ID, nil, &got)
	if name, _ := got["name"].(string); strings.ContainsRune(name, 0) {
		t.Errorf("a refused update changed the name to %q", name)
	}
	// Event data is opaque and delivered verbatim: a NUL there is fine.
	if code, raw, _ := c.do(context.Background(), "POST", "/v1/events", map[string]any{"type": "batch.succeeded", "data": map[string]any{"x": nul}}, nil); code != 200 {
		t.Errorf("a NUL in event data: %d %s, want 200", code, raw)
	}
}
