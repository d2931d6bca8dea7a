package api_test

import (
	"net/http"
	"testing"
)

// :redeliver of a delivery whose webhook is disabled or deleted is refused
// (FAILED_PRECONDITION, saying what to do) and changes nothing. It was
// accepted as pending and then skipped or cancelled without an attempt: a
// 200 for a resend that never happens.
func TestRedeliverNeedsAnEnabledWebhook(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("rd", "batch.succeeded").str("id")
	f.call("POST", "/v1/events", map[string]any{"type": "batch.succeeded"}).must(t, http.StatusOK)
	id := f.deliveries(hook)[0].(map[string]any)["id"].(string)
	path := "/v1/deliveries/" + id

	f.call("PATCH", "/v1/webhooks/"+hook, map[string]any{"state": "disabled"}).must(t, http.StatusOK)
	before := f.call("GET", path, nil).must(t, http.StatusOK)
	f.call("POST", path+":redeliver", nil).mustError(t, http.StatusBadRequest, "FAILED_PRECONDITION", "disabled", "enable")
	if after := f.call("GET", path, nil).must(t, http.StatusOK); string(after.raw) != string(before.raw) {
		t.Errorf("a refused redeliver changed the delivery:\n%s\n%s", before.raw, after.raw)
	}

	f.call("PATCH", "/v1/webhooks/"+hook, map[string]any{"state": "enabled"}).must(t, http.StatusOK)
	f.call("POST", path+":redeliver", nil).must(t, http.StatusOK)

	f.call("DELETE", "/v1/webhooks/"+hook, nil).must(t, http.StatusOK)
	before = f.call("GET", path, nil).must(t, http.StatusOK)
	f.call("POST", path+":redeliver", nil).mustError(t, http.StatusBadRequest, "FAILED_PRECONDITION", "deleted")
	if after := f.call("GET", path, nil).must(t, http.StatusOK); string(after.raw) != string(before.raw) {
		t.Errorf("a refused redeliver changed the delivery:\n%s\n%s", before.raw, after.raw)
	}
}

// :recover of a disabled webhook is refused as :redeliver is
// (FAILED_PRECONDITION, saying what to do) and re-queues nothing: it
// answered 200 with a count, and every re-queued delivery was skipped
// again without an attempt. A dry run still counts (to see what enabling
// and recovering would send).
func TestRecoverNeedsAnEnabledWebhook(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("rc", "batch.succeeded").str("id")
	f.call("PATCH", "/v1/webhooks/"+hook, map[string]any{"state": "disabled"}).must(t, http.StatusOK)
	f.call("POST", "/v1/events", map[string]any{"type": "batch.succeeded"}).must(t, http.StatusOK)
	id := f.deliveries(hook)[0].(map[string]any)["id"].(string)
	path := "/v1/deliveries/" + id
	rec := "/v1/webhooks/" + hook + ":recover"
	since := map[string]any{"since": "2026-01-01T00:00:00Z"}

	dry := f.call("POST", rec, map[string]any{"since": "2026-01-01T00:00:00Z", "dry_run": true}).must(t, http.StatusOK)
	if dry.body["count"] != 1.0 {
		t.Errorf("dry run of a disabled webhook: %s, want count 1", dry.raw)
	}
	before := f.call("GET", path, nil).must(t, http.StatusOK)
	f.call("POST", rec, since).mustError(t, http.StatusBadRequest, "FAILED_PRECONDITION", "disabled", "enable")
	if after := f.call("GET", path, nil).must(t, http.StatusOK); string(after.raw) != string(before.raw) {
		t.Errorf("a refused recover changed the delivery:\n%s\n%s", before.raw, after.raw)
	}

	f.call("PATCH", "/v1/webhooks/"+hook, map[string]any{"state": "enabled"}).must(t, http.StatusOK)
	if done := f.call("POST", rec, since).must(t, http.StatusOK); done.body["count"] != 1.0 {
		t.Errorf("recover after enabling: %s, want count 1", done.raw)
	}
	if st := f.call("GET", path, nil).str("status"); st != "pending" {
		t.Errorf("recovered delivery is %s, want pending", st)
	}
}

// A :recover range that ends before it starts names the field at fault:
// until when it was given, since when until is the default (now).
func TestRecoverRangeNamesTheField(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("rr", "batch.succeeded").str("id")
	rec := "/v1/webhooks/" + hook + ":recover"
	f.call("POST", rec, map[string]any{"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "until must be after since")
	f.call("POST", rec, map[string]any{"since": "2999-01-01T00:00:00Z"}).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "since must be in the past")
}
