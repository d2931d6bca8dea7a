package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/sqlite"
)

// `longhook webhooks get` shows a webhook's extensions — its rate limit,
// retry schedule and trace propagation — in both forms. The client
// dropped them, so the table and even --json (the form for scripts)
// showed a rate-limited webhook as having no limit.
func TestWebhooksGetShowsExtensions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "longhook.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	box, err := secretbox.New(make([]byte, secretbox.KeySize))
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
	req, _ := http.NewRequest("POST", srv.URL+"/v1beta/webhooks", strings.NewReader(`{"uri":"https://example.com/h",
		"subscribed_events":["batch.succeeded"],"rate_limit":{"per_second":2.5,"burst":5},"trace_propagation":true,"retry_schedule":["1s","90s"]}`))
	req.Header.Set("x-goog-api-key", key)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	code, out, errs := run(t, nil, "webhooks", "list", "--json", "--server", srv.URL, "--api-key", key)
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
	code, out, errs = run(t, nil, "webhooks", "get", id, "--server", srv.URL, "--api-key", key)
	if code != 0 {
		t.Fatalf("webhooks get: exit %d, %q", code, errs)
	}
	for _, want := range []string{"rate limit:", "2.5/s, burst 5", "retry schedule:", "1s, 90s", "traceparent:"} {
		if !strings.Contains(out, want) {
			t.Errorf("webhooks get lacks %q:\n%s", want, out)
		}
	}
}
