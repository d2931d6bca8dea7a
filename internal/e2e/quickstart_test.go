package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuickStart follows the README: `longhook serve` with only a data dir
// and an address (not --dev) starts, prints a fresh API key, answers
// /healthz, and the curl flow works: create a webhook with an https URI,
// list it, publish an event that creates one delivery.
func TestQuickStart(t *testing.T) {
	t.Parallel()
	s := startServe(t, withoutDev(), withGeneratedKey())
	saved, err := os.ReadFile(filepath.Join(s.dataDir, "api-key"))
	if err != nil || strings.TrimSpace(string(saved)) != s.APIKey {
		t.Fatalf("printed key differs from DATA_DIR/api-key (%v)", err)
	}
	if len(s.APIKey) < 32 {
		t.Fatalf("generated API key has %d characters, want ≥ 32", len(s.APIKey))
	}
	c := s.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	anon := &apiClient{base: s.URL, hc: c.hc}
	if st, raw, err := anon.do(ctx, "GET", "/healthz", nil, nil); err != nil || st != http.StatusOK {
		t.Fatalf("GET /healthz: %d %v %s", st, err, raw)
	}
	if st, _, err := anon.do(ctx, "GET", "/v1beta/webhooks", nil, nil); err != nil || st != http.StatusUnauthorized {
		t.Fatalf("GET /v1beta/webhooks without a key: %d %v, want 401", st, err)
	}

	// Without --dev, plain http and loopback targets are refused.
	for _, uri := range []string{"http://example.com/hook", "https://127.0.0.1/hook"} {
		st, raw, err := c.do(ctx, "POST", "/v1beta/webhooks", map[string]any{"uri": uri, "subscribed_events": []string{"batch.succeeded"}}, nil)
		if err != nil || st != http.StatusBadRequest {
			t.Fatalf("create with %s: %d %v %s, want 400", uri, st, err, raw)
		}
	}

	// The https URI must not lead to traffic off this machine: a host name
	// /etc/hosts maps to loopback is refused by the dial-time SSRF guard;
	// without one, the webhook is disabled before publishing (the event is
	// then recorded as skipped).
	host := loopbackHostName()
	uri := "https://" + host + "/hook"
	if host == "" {
		uri = "https://hooks.example.invalid/hook"
	}
	w := c.createWebhook(t, uri, "batch.succeeded", "batch.failed")
	if w.State != "enabled" || w.URI != uri {
		t.Fatalf("created %+v", w)
	}
	var list struct {
		Webhooks []webhookResource `json:"webhooks"`
	}
	c.call(t, "GET", "/v1beta/webhooks", nil, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0].ID != w.ID || list.Webhooks[0].NewSigningSecret != "" {
		t.Fatalf("list = %+v, want the one webhook without its secret", list.Webhooks)
	}
	if host == "" {
		c.call(t, "PATCH", "/v1beta/webhooks/"+w.ID+"?update_mask=state", map[string]any{"state": "disabled"}, nil)
	}
	ev := c.publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/abc123", "output_file_uri": "files/batch-abc123"}})
	if ev.DeliveryCount != 1 || ev.Type != "batch.succeeded" {
		t.Fatalf("publish = %+v, want delivery_count 1", ev)
	}
	if host == "" {
		t.Logf("no loopback host name in /etc/hosts: published to a disabled webhook")
		return
	}
	var deliveries struct {
		Deliveries []deliveryResource `json:"deliveries"`
	}
	pollUntil(t, 15*time.Second, 50*time.Millisecond, "the SSRF guard refuses "+host, func() (bool, string) {
		deliveries.Deliveries = nil
		c.call(t, "GET", "/v1beta/webhooks/"+w.ID+"/deliveries", nil, &deliveries)
		if len(deliveries.Deliveries) != 1 {
			return false, "no delivery"
		}
		d := deliveries.Deliveries[0]
		return d.AttemptCount >= 1 && containsFold(d.LastError, "loopback"), d.Status + ": " + d.LastError
	})
}
