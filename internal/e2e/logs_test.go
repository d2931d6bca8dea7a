package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestNoSecretsInLogs (docs/contract.md §8): at debug level, serve's logs during
// create, rotate, ping, static and dynamic publish, a bad key and
// ?key= authentication hold no signing secret, API key, signature or
// token, and no query string of a destination URI.
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	s := startServe(t, withFlags("--log-level", "debug"))
	c := s.client(t)
	static := newReceiver(t, nil)
	dynamic := newReceiver(t, nil)

	// forbidden maps each value that must not be logged to a description
	// (the value itself is never printed).
	forbidden := map[string]string{s.APIKey: "the API key"}
	addSecret := func(name, secret string) {
		forbidden[secret] = name
		forbidden[strings.TrimPrefix(secret, "whsec_")] = name + " (key part)"
	}

	w := c.createWebhook(t, static.URL("/static"), "batch.succeeded")
	addSecret("secret from create", w.NewSigningSecret)
	for i, behavior := range []string{"revoke_previous_secrets_after_h24", "revoke_previous_secrets_immediately"} {
		var rot struct {
			Secret string `json:"secret"`
		}
		c.call(t, "POST", "/v1beta/webhooks/"+w.ID+":rotateSigningSecret", map[string]any{"revocation_behavior": behavior}, &rot)
		addSecret("secret from rotation "+string(rune('1'+i)), rot.Secret)
	}
	c.call(t, "POST", "/v1beta/webhooks/"+w.ID+":ping", map[string]any{}, nil)
	c.publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/logs"}})

	// Query strings of destination URIs may carry tokens.
	const uriToken = "uritoken0123456789abcdef0123456789"
	forbidden[uriToken] = "the query token of a dynamic URI"
	c.publish(t, map[string]any{
		"type": "batch.succeeded", "data": map[string]any{"id": "batches/logs-dyn"},
		"webhook_config": map[string]any{"uris": []string{dynamic.URL("/dyn?token=" + uriToken)}},
	})

	// ?key= authentication, and a wrong key in both places.
	wrong := randomKey(t)
	forbidden[wrong] = "a rejected API key"
	anon := &apiClient{base: s.URL, hc: newHTTPClient(t, 10*time.Second)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st, raw, err := anon.do(ctx, "GET", "/v1beta/webhooks?key="+s.APIKey, nil, nil); err != nil || st != http.StatusOK {
		t.Fatalf("GET /v1beta/webhooks?key=: %d %v %s", st, err, raw)
	}
	if st, _, err := anon.do(ctx, "GET", "/v1beta/webhooks?key="+wrong, nil, nil); err != nil || st != http.StatusUnauthorized {
		t.Fatalf("GET with a wrong ?key=: status %d %v, want 401", st, err)
	}
	bad := &apiClient{base: s.URL, key: wrong, hc: anon.hc}
	if st, _, err := bad.do(ctx, "GET", "/v1beta/webhooks", nil, nil); err != nil || st != http.StatusUnauthorized {
		t.Fatalf("GET with a wrong x-goog-api-key: status %d %v, want 401", st, err)
	}

	// Wait for the deliveries, then for their attempt records in the logs.
	var got []received
	got = append(got, static.waitFor(t, deliveryTimeout, "ping and static event", func(rs []received) bool { return len(rs) >= 2 })...)
	got = append(got, dynamic.waitN(t, 1, deliveryTimeout))
	for _, r := range got {
		id := r.Header.Get("webhook-id")
		pollUntil(t, 10*time.Second, 20*time.Millisecond, "delivery.attempt logged for "+id, func() (bool, string) {
			return strings.Contains(s.Logs(), id), ""
		})
		sig := r.Header.Get("webhook-signature")
		forbidden[sig] = "a webhook-signature header"
		for _, e := range strings.Fields(sig) {
			forbidden[strings.TrimPrefix(e, "v1,")] = "an HMAC signature"
		}
		if parts := strings.Split(sig, "."); len(parts) == 3 {
			forbidden[parts[1]] = "JWT claims"
			forbidden[parts[2]] = "a JWT signature"
		}
	}

	logs := s.Logs()
	for _, want := range []string{"server.ready", "delivery.attempt", "api.request"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("logs lack %q; is stderr captured? logs:\n%s", want, logs)
		}
	}
	for value, what := range forbidden {
		if value != "" && strings.Contains(logs, value) {
			t.Errorf("serve logged %s", what)
		}
	}
	t.Logf("checked %d values against %d bytes of logs", len(forbidden), len(logs))
}
