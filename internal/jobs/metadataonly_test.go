package jobs_test

import (
	"strings"
	"testing"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/webhook"
)

// A webhook_config without uris only tags the job's events: the SDKs'
// WebhookConfig has uris optional ("If set, these webhook URIs will be
// used instead of the registered webhooks") and user_metadata "included in
// each webhook event notification". So the events go to the project's
// registered webhooks, HMAC-signed as always, carrying data.user_metadata,
// and the interaction echoes the config as it was sent (no uris). Before,
// such a config was refused with 400 ("uris must hold 1 to 10 URIs"), in
// every spelling and on every route.
func TestWebhookConfigWithoutURIsTagsStaticEvents(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	static := newReceiver(t)
	w := f.call("POST", "/v1beta/webhooks", map[string]any{
		"uri":               static.srv.URL,
		"subscribed_events": []string{core.EventBatchSucceeded, core.EventInteractionCompleted, "video.generated"},
	}).must(t, 200)
	v, err := webhook.NewVerifier([]string{w.str("new_signing_secret")})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what, typ, id string, meta string) {
		t.Helper()
		d := static.next(t)
		if err := v.Verify(d.header, d.body); err != nil {
			t.Fatalf("%s: HMAC: %v: %s", what, err, d.body)
		}
		m, _ := d.data()["user_metadata"].(map[string]any)
		if d.event["type"] != typ || d.data()["id"] != id || m["run"] != meta {
			t.Fatalf("%s: got %s, want %s of %s with user_metadata.run %q", what, d.body, typ, id, meta)
		}
	}

	// Batch, lowerCamel as the SDKs send it inside "batch".
	batch := f.createBatch([]string{"hello"}, map[string]any{"userMetadata": map[string]any{"run": "b"}})
	check("batch", core.EventBatchSucceeded, "batches/"+batch, "b")

	// Interaction, snake_case, in the background.
	it := f.call("POST", "/v1beta/interactions", map[string]any{"model": "m", "input": "hi", "background": true,
		"webhook_config": map[string]any{"user_metadata": map[string]any{"run": "i"}}}).must(t, 200)
	if _, ok := it.path("webhook_config").(map[string]any)["uris"]; ok || it.path("webhook_config.user_metadata.run") != "i" {
		t.Fatalf("interaction does not echo its webhook_config as sent: %s", it.raw)
	}
	check("interaction", core.EventInteractionCompleted, it.str("id"), "i")

	// Video, top-level webhookConfig.
	op := f.call("POST", "/v1beta/models/veo-3.0-generate-001:predictLongRunning", map[string]any{
		"instances": []any{map[string]any{"prompt": "a cat"}}, "parameters": map[string]any{},
		"webhookConfig": map[string]any{"userMetadata": map[string]any{"run": "v"}}}).must(t, 200)
	check("video", "video.generated", op.str("name"), "v")

	// The publish API takes the same config.
	f.call("POST", "/v1beta/events", map[string]any{"type": core.EventBatchSucceeded, "data": map[string]any{"id": "batches/x"},
		"webhook_config": map[string]any{"user_metadata": map[string]any{"run": "e"}}}).must(t, 200)
	check("publish", core.EventBatchSucceeded, "batches/x", "e")

	// What only applies to uris is refused without them, and changes nothing.
	for name, wc := range map[string]map[string]any{
		"audience":          {"user_metadata": map[string]any{"a": 1}, "audience": "https://example.com"},
		"rate_limit":        {"rate_limit": map[string]any{"per_second": 1}},
		"trace_propagation": {"trace_propagation": true},
	} {
		r := f.call("POST", "/v1beta/events", map[string]any{"type": core.EventBatchSucceeded, "webhook_config": wc})
		if r.status != 400 || r.str("error.status") != "INVALID_ARGUMENT" || !strings.Contains(r.str("error.message"), "webhook_config."+name) || !strings.Contains(r.str("error.message"), "uris") {
			t.Errorf("%s without uris: %d %s", name, r.status, r.raw)
		}
	}
	select {
	case d := <-static.got:
		t.Fatalf("unexpected delivery %s", d.body)
	default:
	}
}
