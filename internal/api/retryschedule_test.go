package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestWebhookRetrySchedule: retry_schedule (a longhook extension, Google
// Duration strings) is set on create, shown by get and list in the proto3
// JSON form, changed by update (with and without update_mask) and cleared
// by an empty list, null or a masked absent field; bad values are 400
// INVALID_ARGUMENT naming the field and change nothing.
func TestWebhookRetrySchedule(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.call("POST", "/v1/webhooks", map[string]any{
		"uri": "https://example.com/hook", "subscribed_events": []string{"batch.succeeded"},
		"retry_schedule": []string{"5s", "1.5s", "0.25s", "86400s"},
	}).must(t, http.StatusOK)
	path := "/v1/webhooks/" + r.str("id")
	scheduleOf := func(r *response) string {
		s, ok := r.body["retry_schedule"].([]any)
		if !ok {
			return "none"
		}
		return strings.Trim(fmt.Sprint(s), "[]")
	}
	const created = "5s 1.500s 0.250s 86400s"
	if got := scheduleOf(r); got != created {
		t.Fatalf("create retry_schedule = %s, want %s", got, created)
	}
	if got := scheduleOf(f.call("GET", path, nil).must(t, http.StatusOK)); got != created {
		t.Fatalf("get retry_schedule = %s, want %s", got, created)
	}
	list := f.call("GET", "/v1/webhooks", nil).must(t, http.StatusOK)
	if hooks, _ := list.body["webhooks"].([]any); len(hooks) != 1 || fmt.Sprint(hooks[0].(map[string]any)["retry_schedule"]) != "["+created+"]" {
		t.Fatalf("list = %v, want one webhook with retry_schedule [%s]", list.body, created)
	}
	for _, bad := range []string{
		`{"retry_schedule":["0s"]}`, `{"retry_schedule":["-5s"]}`, `{"retry_schedule":["86400.000000001s"]}`,
		`{"retry_schedule":["5m"]}`, `{"retry_schedule":["5"]}`, `{"retry_schedule":["1.5.0s"]}`, `{"retry_schedule":["1.0000000001s"]}`,
		`{"retry_schedule":[5]}`, `{"retry_schedule":"5s"}`, `{"retry_schedule":["5s",""]}`,
		`{"retry_schedule":[` + strings.Repeat(`"1s",`, 100) + `"1s"]}`,
	} {
		f.call("PATCH", path, bad).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "retry_schedule")
	}
	f.call("POST", "/v1/webhooks", map[string]any{"uri": "https://example.com/x", "subscribed_events": []string{"batch.succeeded"},
		"retry_schedule": []string{"90000s"}}).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "retry_schedule")
	if got := scheduleOf(f.call("GET", path, nil).must(t, http.StatusOK)); got != created {
		t.Fatalf("after bad updates retry_schedule = %s, want unchanged %s", got, created)
	}
	if n, _ := f.call("GET", "/v1/webhooks", nil).must(t, http.StatusOK).body["webhooks"].([]any); len(n) != 1 {
		t.Fatalf("a refused create made a webhook: %d webhooks", len(n))
	}
	if got := scheduleOf(f.call("PATCH", path, `{"retry_schedule":["60s","10s"]}`).must(t, http.StatusOK)); got != "60s 10s" {
		t.Fatalf("updated retry_schedule = %s, want 60s 10s (steps need not grow)", got)
	}
	if got := scheduleOf(f.call("PATCH", path, `{"name":"kept"}`).must(t, http.StatusOK)); got != "60s 10s" {
		t.Fatalf("an update without retry_schedule changed it to %s", got)
	}
	if got := scheduleOf(f.call("PATCH", path, `{"retry_schedule":[]}`).must(t, http.StatusOK)); got != "none" {
		t.Fatalf("[] did not clear: %s", got)
	}
	f.call("PATCH", path+"?update_mask=retry_schedule", `{"retry_schedule":["2s"]}`).must(t, http.StatusOK)
	if got := scheduleOf(f.call("PATCH", path, `{"retry_schedule":null}`).must(t, http.StatusOK)); got != "none" {
		t.Fatalf("null did not clear: %s", got)
	}
	f.call("PATCH", path, `{"retry_schedule":["0.000000001s"]}`).must(t, http.StatusOK)
	if got := scheduleOf(f.call("PATCH", path+"?update_mask=retrySchedule", `{}`).must(t, http.StatusOK)); got != "none" {
		t.Fatalf("masked absent retry_schedule did not clear: %s", got)
	}
}
