package api_test

import (
	"net/http"
	"testing"
)

// A NUL character (\u0000) in a text field is 400 INVALID_ARGUMENT naming
// the field, through the publish fast path's decoder as through the
// generic one: PostgreSQL's text cannot hold it (a 500 there,
// internal/e2e/TestNULInTextIsInvalid), and SQLite stored it. Event data
// and user_metadata are opaque and may hold one.
func TestNULInTextIsInvalid(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("nul").str("id")
	for _, c := range []struct{ method, path, body, field string }{
		{"POST", "/v1/webhooks", `{"name":"a\u0000b","uri":"https://example.com/x","subscribed_events":["batch.succeeded"]}`, "name"},
		{"PATCH", "/v1/webhooks/" + hook, `{"name":"\u0000"}`, "name"},
		{"POST", "/v1/events", `{"type":"batch.succeeded","idempotency_key":"k\u0000"}`, "idempotency_key"},
		{"POST", "/v1/events", `{"type":"batch.succeeded","subject":"s\u0000"}`, "subject"},
		{"POST", "/v1/events:batchPublish", `{"events":[{"type":"batch.succeeded"},{"type":"batch.succeeded","idempotency_key":"\u0000"}]}`, "events[1].idempotency_key"},
	} {
		r := f.call(c.method, c.path, c.body)
		r.mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", c.field, "NUL")
	}
	if n := len(f.deliveries(hook)); n != 0 {
		t.Errorf("refused publishes left %d deliveries", n)
	}
	if name := f.call("GET", "/v1/webhooks/"+hook, nil).must(t, http.StatusOK).str("name"); name != "nul" {
		t.Errorf("a refused update changed the name to %q", name)
	}
	// Opaque values keep theirs; an escaped backslash before u0000 is no NUL.
	f.call("POST", "/v1/events", `{"type":"batch.succeeded","data":{"x":"a\u0000b"}}`).must(t, http.StatusOK)
	f.call("PATCH", "/v1/webhooks/"+hook, `{"name":"a\\u0000b"}`).must(t, http.StatusOK)
}
