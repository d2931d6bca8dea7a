package api_test

import (
	"fmt"
	"net/http"
	"testing"
)

// TestWebhookRateLimit: rate_limit is set on create, shown on get,
// changed and cleared on update; bad values are 400 and change nothing.
func TestWebhookRateLimit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.call("POST", "/v1/webhooks", map[string]any{
		"uri": "https://example.com/hook", "subscribed_events": []string{"batch.succeeded"},
		"rate_limit": map[string]any{"per_second": 2.5, "burst": 5},
	}).must(t, http.StatusOK)
	path := "/v1/webhooks/" + r.str("id")
	rateOf := func(r *response) string {
		rl, _ := r.body["rate_limit"].(map[string]any)
		if rl == nil {
			return "none"
		}
		return fmt.Sprintf("%v/%v", rl["per_second"], rl["burst"])
	}
	if got := rateOf(f.call("GET", path, nil).must(t, http.StatusOK)); got != "2.5/5" {
		t.Fatalf("get rate_limit = %s, want 2.5/5", got)
	}
	for _, bad := range []string{`{"rate_limit":{"per_second":0}}`, `{"rate_limit":{"per_second":10,"burst":-1}}`, `{"rate_limit":"fast"}`} {
		f.call("PATCH", path, bad).must(t, http.StatusBadRequest)
	}
	f.call("POST", "/v1/webhooks", map[string]any{"uri": "https://example.com/x", "subscribed_events": []string{"batch.succeeded"},
		"rate_limit": map[string]any{"per_second": -1}}).must(t, http.StatusBadRequest)
	if got := rateOf(f.call("GET", path, nil).must(t, http.StatusOK)); got != "2.5/5" {
		t.Fatalf("after bad updates rate_limit = %s, want unchanged 2.5/5", got)
	}
	if got := rateOf(f.call("PATCH", path, `{"rate_limit":{"per_second":100}}`).must(t, http.StatusOK)); got != "100/<nil>" {
		t.Fatalf("updated rate_limit = %s, want 100 with the default burst", got)
	}
	if got := rateOf(f.call("PATCH", path, `{"name":"kept"}`).must(t, http.StatusOK)); got != "100/<nil>" {
		t.Fatalf("an update without rate_limit changed it to %s", got)
	}
	if got := rateOf(f.call("PATCH", path, `{"rate_limit":null}`).must(t, http.StatusOK)); got != "none" {
		t.Fatalf("null did not clear: %s", got)
	}
	f.call("PATCH", path+"?update_mask=rate_limit", `{"rate_limit":{"per_second":1,"burst":2}}`).must(t, http.StatusOK)
	if got := rateOf(f.call("PATCH", path+"?update_mask=rateLimit", `{}`).must(t, http.StatusOK)); got != "none" {
		t.Fatalf("masked absent rate_limit did not clear: %s", got)
	}
}
