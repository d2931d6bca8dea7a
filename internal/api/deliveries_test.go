package api_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

func TestDeliveries(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("d", "batch.succeeded", "batch.failed").str("id")
	for _, typ := range []string{"batch.succeeded", "batch.failed", "batch.succeeded", "batch.succeeded"} {
		f.call("POST", "/v1/events", map[string]any{"type": typ}).must(t, http.StatusOK)
	}
	all := f.deliveries(hook)
	if len(all) != 4 {
		t.Fatalf("%d deliveries, want 4", len(all))
	}
	d := all[0].(map[string]any)
	for _, k := range []string{"id", "event_id", "webhook_id", "event_type", "status", "next_attempt_time", "create_time", "update_time"} {
		if _, ok := d[k]; !ok {
			t.Errorf("delivery lacks %s: %v", k, d)
		}
	}
	if _, ok := d["uri"]; ok {
		t.Errorf("static delivery shows uri: %v", d)
	}
	if d["attempt_count"] != 0.0 {
		t.Errorf("attempt_count = %v", d["attempt_count"])
	}

	// Pagination, newest first, across pages of 1.
	var ids []string
	token := ""
	for range 10 {
		q := url.Values{"page_size": {"1"}}
		if token != "" {
			q.Set("page_token", token)
		}
		r := f.call("GET", "/v1/webhooks/"+hook+"/deliveries?"+q.Encode(), nil).must(t, http.StatusOK)
		for _, x := range r.body["deliveries"].([]any) {
			ids = append(ids, x.(map[string]any)["id"].(string))
		}
		if token = r.str("next_page_token"); token == "" {
			break
		}
	}
	if len(ids) != 4 || ids[0] != d["id"] {
		t.Errorf("paged ids %v", ids)
	}
	// A webhooks page token is not a deliveries page token.
	for range 2 {
		f.createWebhook("x")
	}
	wtok := f.call("GET", "/v1/webhooks?page_size=1", nil).must(t, http.StatusOK).str("next_page_token")
	f.call("GET", "/v1/webhooks/"+hook+"/deliveries?page_token="+wtok, nil).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "page_token")

	// Filters.
	r := f.call("GET", "/v1/webhooks/"+hook+"/deliveries?event_type=batch.failed&status=pending", nil).must(t, http.StatusOK)
	if n := len(r.body["deliveries"].([]any)); n != 1 {
		t.Errorf("event_type filter: %d", n)
	}
	if r := f.call("GET", "/v1/webhooks/"+hook+"/deliveries?status=succeeded", nil).must(t, http.StatusOK); string(r.raw) != "{}\n" {
		t.Errorf("empty result = %s, want {}", r.raw)
	}
	future := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if r := f.call("GET", "/v1/webhooks/"+hook+"/deliveries?since="+future, nil).must(t, http.StatusOK); len(r.body) != 0 {
		t.Errorf("since filter: %s", r.raw)
	}
	for q, field := range map[string]string{
		"status=done":                 "status",
		"event_type=a..b":             "event_type",
		"since=yesterday":             "since",
		"until=2026-13-01T00:00:00Z":  "until",
		"page_size=x":                 "page_size",
		"page_token=%21%21%21invalid": "page_token",
		"since=2026-05-02T00:00:00Z&until=2026-05-01T00:00:00Z": "until",
	} {
		f.call("GET", "/v1/webhooks/"+hook+"/deliveries?"+q, nil).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", field)
	}

	// One delivery with its attempts.
	g := f.call("GET", "/v1/deliveries/"+d["id"].(string), nil).must(t, http.StatusOK)
	if g.str("id") != d["id"] || g.body["attempts"] == nil {
		t.Errorf("get delivery: %s", g.raw)
	}
	f.call("GET", "/v1/deliveries/msg_nope", nil).mustError(t, http.StatusNotFound, "NOT_FOUND", "msg_nope")
	other := f.newKey(f.newProject("other").ID, false)
	f.callWith(other, nil, "GET", "/v1/deliveries/"+d["id"].(string), nil).mustError(t, http.StatusNotFound, "NOT_FOUND")
	f.callWith(other, nil, "POST", "/v1/deliveries/"+d["id"].(string)+":redeliver", nil).mustError(t, http.StatusNotFound, "NOT_FOUND")

	// Redeliver answers the delivery.
	rd := f.call("POST", "/v1/deliveries/"+d["id"].(string)+":redeliver", nil).must(t, http.StatusOK)
	if rd.str("id") != d["id"] || rd.str("status") != "pending" {
		t.Errorf("redeliver: %s", rd.raw)
	}
}

func TestDeliveryAttemptsAndRecover(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("r", "batch.succeeded").str("id")
	start := time.Now().UTC().Add(-time.Minute)
	f.call("POST", "/v1/events", `{"type":"batch.succeeded"}`).must(t, http.StatusOK)
	f.call("POST", "/v1/events", `{"type":"batch.succeeded"}`).must(t, http.StatusOK)

	// Fail one delivery permanently through the store, as the engine would.
	ctx := t.Context()
	claimed, err := f.store.ClaimDeliveries(ctx, core.ClaimParams{Owner: "test", Now: time.Now(), Limit: 1, Lease: time.Minute})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %d", err, len(claimed))
	}
	err = f.store.CompleteDeliveries(ctx, []core.Completion{{
		DeliveryID: claimed[0].ID, Owner: "test", Status: core.DeliveryFailed, WebhookID: hook,
		Attempt: core.Attempt{DeliveryID: claimed[0].ID, Number: 1, Time: time.Now(), URI: "https://example.com/hooks/r",
			StatusCode: 410, Latency: 42 * time.Millisecond, Error: "gone", Response: []byte("bye")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	g := f.call("GET", "/v1beta/deliveries/"+claimed[0].ID, nil).must(t, http.StatusOK)
	atts := g.body["attempts"].([]any)
	if g.str("status") != "failed" || g.body["last_status_code"] != 410.0 || len(atts) != 1 {
		t.Fatalf("failed delivery: %s", g.raw)
	}
	if _, ok := g.body["next_attempt_time"]; ok {
		t.Error("failed delivery shows next_attempt_time")
	}
	a := atts[0].(map[string]any)
	if a["number"] != 1.0 || a["status_code"] != 410.0 || a["latency_ms"] != 42.0 || a["error"] != "gone" ||
		a["response_body"] != "bye" || a["uri"] != "https://example.com/hooks/r" || a["time"] == nil {
		t.Errorf("attempt: %v", a)
	}

	rec := "/v1/webhooks/" + hook + ":recover"
	since := start.Format(time.RFC3339)
	dry := f.call("POST", rec, map[string]any{"since": since, "dry_run": true}).must(t, http.StatusOK)
	if dry.body["count"] != 1.0 || dry.body["has_more"] != false || dry.body["dry_run"] != true {
		t.Errorf("dry run: %s", dry.raw)
	}
	all := f.call("POST", rec, map[string]any{"since": since, "only_failed": false, "dry_run": true}).must(t, http.StatusOK)
	if all.body["count"] != 1.0 { // the other one is still pending
		t.Errorf("only_failed=false dry run: %s", all.raw)
	}
	lim := f.call("POST", rec, map[string]any{"since": since, "limit": 1, "dry_run": true}).must(t, http.StatusOK)
	if lim.body["count"] != 1.0 {
		t.Errorf("limit: %s", lim.raw)
	}
	// AIP-158's page_size rule: 0 is the default, above the maximum is the
	// maximum, negative is 400 with a message saying so.
	for _, l := range []int{0, 20000} {
		if r := f.call("POST", rec, map[string]any{"since": since, "limit": l, "dry_run": true}).must(t, http.StatusOK); r.body["count"] != 1.0 {
			t.Errorf("limit %d: %s", l, r.raw)
		}
	}
	f.call("POST", rec, map[string]any{"since": since, "limit": -1, "dry_run": true}).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT",
		"limit must be a non-negative integer (0 or absent: the default, 1000; more than 10000: 10000), got -1")
	done := f.call("POST", rec, map[string]any{"since": since}).must(t, http.StatusOK)
	if done.body["count"] != 1.0 || done.body["dry_run"] != false {
		t.Errorf("recover: %s", done.raw)
	}
	if st := f.call("GET", "/v1/deliveries/"+claimed[0].ID, nil).str("status"); st != "pending" {
		t.Errorf("recovered delivery is %s", st)
	}

	for body, field := range map[string]string{
		`{}`:                    "since",
		`{"since":"last week"}`: "since",
		`{"since":"2026-05-01T00:00:00Z","until":"x"}`:                    "until",
		`{"since":"2026-05-02T00:00:00Z","until":"2026-05-01T00:00:00Z"}`: "until",
		`{"since":"2026-05-01T00:00:00Z","limit":-1}`:                     "limit",
		`{"since":"2026-05-01T00:00:00Z","only_failed":"yes"}`:            "only_failed",
		`{"since":"2026-05-01T00:00:00Z","everything":true}`:              "everything",
	} {
		f.call("POST", rec, body).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", field)
	}
	f.call("POST", "/v1/webhooks/nope:recover", `{"since":"2026-05-01T00:00:00Z"}`).mustError(t, http.StatusNotFound, "NOT_FOUND")
}

// TestEventTypeFilters: every list and stream filter on the event type
// takes the catalog's types, the operator's custom ones and webhook.ping,
// and answers an unknown one (a typo) with 400 naming the parameter and
// the valid values — not an empty list.
func TestEventTypeFilters(t *testing.T) {
	t.Parallel()
	const custom = "acme.report.ready"
	f := setup(t, func(d *api.Deps) {
		cat, err := core.NewCatalog(custom)
		if err != nil {
			t.Fatal(err)
		}
		d.Catalog = cat
	})
	hook := f.createWebhook("h", core.EventBatchSucceeded, custom).str("id")
	for _, typ := range []string{core.EventBatchSucceeded, custom, core.EventBatchSucceeded} {
		f.call("POST", "/v1beta/events", map[string]any{"type": typ}).must(t, http.StatusOK)
	}
	f.call("POST", "/v1beta/webhooks/"+hook+":ping", nil).must(t, http.StatusOK)

	for typ, want := range map[string]int{core.EventBatchSucceeded: 2, custom: 1, core.EventWebhookPing: 1} {
		r := f.call("GET", "/v1beta/webhooks/"+hook+"/deliveries?event_type="+typ, nil).must(t, http.StatusOK)
		ds, _ := r.body["deliveries"].([]any)
		if len(ds) != want {
			t.Errorf("deliveries?event_type=%s: %d, want %d: %s", typ, len(ds), want, r.raw)
		}
		for _, d := range ds {
			if got := d.(map[string]any)["event_type"]; got != typ {
				t.Errorf("deliveries?event_type=%s lists a %v", typ, got)
			}
		}
		r = f.call("GET", "/v1beta/events?type="+typ, nil).must(t, http.StatusOK)
		evs, _ := r.body["events"].([]any)
		if len(evs) != want {
			t.Errorf("events?type=%s: %d, want %d: %s", typ, len(evs), want, r.raw)
		}
	}

	valid := []string{"valid values: ", core.EventBatchSucceeded, core.EventDeliveryExhausted, custom, core.EventWebhookPing}
	for _, c := range []struct{ path, param string }{
		{"/v1beta/webhooks/" + hook + "/deliveries?event_type=", "event_type"},
		{"/v1beta/events?type=", "type"},
		{"/v1beta/deliveries:stream?event_type=", "event_type"},
	} {
		for _, bad := range []string{"batch.succeded", "a..b"} {
			frags := append([]string{c.param + `: unknown event type "` + bad + `"`}, valid...)
			f.call("GET", c.path+bad, nil).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", frags...)
		}
	}

	// The stream opens on a valid type, custom included.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/v1beta/deliveries:stream?event_type="+custom, nil)
	req.Header.Set("x-goog-api-key", f.key)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream on %s: %d %s", custom, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
