package cli

import (
	"net/http"
	"strings"
	"testing"
)

// `longhook webhooks get` shows a webhook's extensions — its rate limit,
// retry schedule and trace propagation — in both forms. The client
// dropped them, so the table and even --json (the form for scripts)
// showed a rate-limited webhook as having no limit.
func TestWebhooksGetShowsExtensions(t *testing.T) {
	t.Parallel()
	const key = "webhookshow-test-key-0123456789abcdef"
	serveUntilReady(t, t.TempDir(), map[string]string{"LONGHOOK_BOOTSTRAP_API_KEY": key}, func(url string) {
		showsExtensions(t, url, key)
	})
}

// showsExtensions creates a webhook with every extension through the API
// at url and checks what `webhooks list --json` and `webhooks get` print.
func showsExtensions(t *testing.T, url, key string) {
	req, _ := http.NewRequest("POST", url+"/v1beta/webhooks", strings.NewReader(`{"uri":"https://example.com/h",
		"subscribed_events":["batch.succeeded"],"rate_limit":{"per_second":2.5,"burst":5},"trace_propagation":true,"retry_schedule":["1s","90s"]}`))
	req.Header.Set("x-goog-api-key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	code, out, errs := run(t, nil, "webhooks", "list", "--json", "--server", url, "--api-key", key)
	i := strings.Index(out, `"id": "`)
	if code != 0 || i < 0 {
		t.Fatalf("webhooks list --json: exit %d, %q %q", code, out, errs)
	}
	id := out[i+len(`"id": "`):]
	id = id[:strings.IndexByte(id, '"')]
	for _, want := range []string{`"rate_limit": {`, `"per_second": 2.5`, `"burst": 5`, `"trace_propagation": true`, `"retry_schedule": [`, `"90s"`} {
		if !strings.Contains(out, want) {
			t.Errorf("webhooks list --json lacks %s:\n%s", want, out)
		}
	}
	code, out, errs = run(t, nil, "webhooks", "get", id, "--server", url, "--api-key", key)
	if code != 0 {
		t.Fatalf("webhooks get: exit %d, %q", code, errs)
	}
	for _, want := range []string{"rate limit:", "2.5/s, burst 5", "retry schedule:", "1s, 90s", "traceparent:"} {
		if !strings.Contains(out, want) {
			t.Errorf("webhooks get lacks %q:\n%s", want, out)
		}
	}
}
