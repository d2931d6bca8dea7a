package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

func TestEventsGetAndList(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createWebhook("h", "batch.succeeded")
	var ids []string
	for i, typ := range []string{"batch.succeeded", "batch.failed", "batch.succeeded"} {
		r := f.call("POST", "/v1/events", map[string]any{
			"type": typ, "data": map[string]any{"id": "batches/" + string(rune('a'+i))},
			"idempotency_key": "k" + string(rune('a'+i)), "subject": "batches/x",
		}).must(t, http.StatusOK)
		ids = append(ids, r.str("id"))
	}

	r := f.call("GET", "/v1/events/"+ids[0], nil).must(t, http.StatusOK)
	if r.str("type") != "batch.succeeded" || r.str("idempotency_key") != "ka" || r.str("subject") != "batches/x" ||
		r.body["delivery_count"] != 1.0 || r.body["data"].(map[string]any)["id"] != "batches/a" {
		t.Errorf("get event: %s", r.raw)
	}
	f.call("GET", "/v1/events/nope", nil).mustError(t, 404, "NOT_FOUND", `event "nope" not found`)
	other := f.newKey(f.newProject("other").ID, false)
	f.callWith(other, nil, "GET", "/v1/events/"+ids[0], nil).mustError(t, 404, "NOT_FOUND")

	// Newest first (ids sort by creation millisecond), two per page, then
	// the rest: every event once.
	seen := map[string]bool{}
	r = f.call("GET", "/v1/events?page_size=2", nil).must(t, http.StatusOK)
	evs := r.body["events"].([]any)
	if len(evs) != 2 || evs[0].(map[string]any)["id"].(string) < evs[1].(map[string]any)["id"].(string) {
		t.Fatalf("page 1: %s", r.raw)
	}
	for _, e := range evs {
		seen[e.(map[string]any)["id"].(string)] = true
	}
	r = f.call("GET", "/v1/events?page_size=2&page_token="+r.str("next_page_token"), nil).must(t, http.StatusOK)
	evs = r.body["events"].([]any)
	if len(evs) != 1 || r.str("next_page_token") != "" {
		t.Fatalf("page 2: %s", r.raw)
	}
	seen[evs[0].(map[string]any)["id"].(string)] = true
	for _, id := range ids {
		if !seen[id] {
			t.Fatalf("event %s missing from the pages", id)
		}
	}
	r = f.call("GET", "/v1/events?type=batch.failed", nil).must(t, http.StatusOK)
	if evs := r.body["events"].([]any); len(evs) != 1 || evs[0].(map[string]any)["id"] != ids[1] {
		t.Fatalf("type filter: %s", r.raw)
	}
	f.call("GET", "/v1/events?type=no%20spaces", nil).mustError(t, 400, "INVALID_ARGUMENT", "type")
	f.call("GET", "/v1/events?page_token=bogus", nil).mustError(t, 400, "INVALID_ARGUMENT", "page_token")
	if r := f.callWith(other, nil, "GET", "/v1/events", nil).must(t, http.StatusOK); strings.TrimSpace(string(r.raw)) != "{}" {
		t.Errorf("another project's list: %s", r.raw)
	}
}

// TestDeliveriesStream: the stream sends nothing from before it opened,
// then a delivery created afterwards and its redelivery.
func TestDeliveriesStream(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("h", "batch.succeeded").str("id")
	f.call("POST", "/v1/events", `{"type":"batch.succeeded"}`).must(t, http.StatusOK)
	old := f.deliveries(hook)[0].(map[string]any)["id"].(string)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/v1/deliveries:stream?webhook_id="+hook, nil)
	req.Header.Set("x-goog-api-key", f.key)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() (string, string) {
		t.Helper()
		var event string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				event = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				return event, v
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return "", ""
	}
	if ev, _ := next(); ev != "ready" {
		t.Fatalf("first event %q", ev)
	}
	pub := f.call("POST", "/v1/events", `{"type":"batch.succeeded"}`).must(t, http.StatusOK).str("id")
	var te api.TailEvent
	ev, data := next()
	if err := json.Unmarshal([]byte(data), &te); err != nil || ev != "delivery" || te.Kind != api.TailCreated {
		t.Fatalf("after publish: %s %s (%v)", ev, data, err)
	}
	if !strings.Contains(data, `"event_id":"`+pub+`"`) {
		t.Fatalf("created event is not the published one: %s", data)
	}
	// An attempt on a delivery from before the stream opened (still
	// pending, so in view): claim it as an engine would, then fail it.
	cs, err := f.store.ClaimDeliveries(t.Context(), core.ClaimParams{Owner: "t", Now: time.Now().Add(time.Hour), Limit: 10, Lease: time.Minute})
	if err != nil || len(cs) == 0 {
		t.Fatalf("claim: %v %d", err, len(cs))
	}
	if err := f.store.CompleteDeliveries(t.Context(), []core.Completion{{DeliveryID: old, Owner: "t", Status: core.DeliveryFailed,
		Attempt: core.Attempt{DeliveryID: old, Number: 1, Time: time.Now(), StatusCode: 500, Error: "boom"}}}); err != nil {
		t.Fatal(err)
	}
	ev, data = next()
	if err := json.Unmarshal([]byte(data), &te); err != nil || te.Kind != api.TailAttempt || !strings.Contains(data, old) ||
		!strings.Contains(data, `"last_status_code":500`) {
		t.Fatalf("after attempt: %s %s", ev, data)
	}

	f.call("GET", "/v1/deliveries:stream?webhook_id=nope", nil).mustError(t, 404, "NOT_FOUND")
	f.call("GET", "/v1/deliveries:stream?event_type=a%20b", nil).mustError(t, 400, "INVALID_ARGUMENT")
}

func TestRoutesListed(t *testing.T) {
	t.Parallel()
	rs := api.Routes()
	type route struct{ method, path string }
	have := map[route]bool{}
	for _, r := range rs {
		have[route{r.Method, r.Path}] = true
	}
	for _, want := range []route{
		{"GET", "/healthz"}, {"GET", "/openapi.json"}, {"POST", "/{v}/webhooks/{id}:ping"},
		{"GET", "/{v}/webhooks/{id}:listen"}, {"GET", "/{v}/deliveries:stream"}, {"POST", "/{v}/keys/{id}:revoke"},
		{"POST", "/{v}/models/{id}:batchGenerateContent"}, {"GET", "/{v}/files/{id}:download"},
		{"GET", "/download/{v}/files/{id}"}, {"PUT", "/upload/{v}/files"}, {"POST", "/{v}/interactions/{id}:cancel"},
	} {
		if !have[want] {
			t.Errorf("Routes() lacks %v: %v", want, rs)
		}
	}
}
