package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// deliveryTimeout bounds the wait for one delivery on an idle server.
const deliveryTimeout = 20 * time.Second

// TestPingAndSecretRotation (issue 2): :ping delivers a webhook.ping event
// signed so that our verifier, the reference Go library and the npm
// standardwebhooks package all accept it; after an h24 rotation every
// unexpired secret verifies on its own; after an immediate rotation only the
// newest does.
func TestPingAndSecretRotation(t *testing.T) {
	t.Parallel()
	requireNode(t)
	s := startServe(t)
	c := s.client(t)
	rcv := newReceiver(t, nil)
	w := c.createWebhook(t, rcv.URL("/hook"), "batch.succeeded")
	s1 := w.NewSigningSecret
	requireSecretFormat(t, s1)

	ping := func(n int) received {
		t.Helper()
		c.call(t, "POST", "/v1beta/webhooks/"+w.ID+":ping", nil, nil)
		r := rcv.waitN(t, n, deliveryTimeout)
		requirePingBody(t, r, w.ID)
		return r
	}

	// 1. One secret, one signature.
	r1 := ping(1)
	requireSignatureEntries(t, r1, 1)
	verifyHMAC(t, r1, s1).requireVerified(t, "ping 1 with the only secret")

	// 2. h24 rotation: both secrets sign until the old one expires.
	var rot struct {
		Secret string `json:"secret"`
	}
	c.call(t, "POST", "/v1beta/webhooks/"+w.ID+":rotateSigningSecret",
		map[string]any{"revocation_behavior": "revoke_previous_secrets_after_h24"}, &rot)
	s2 := rot.Secret
	requireSecretFormat(t, s2)
	if s2 == s1 {
		t.Fatal("rotation returned the old secret")
	}
	var got webhookResource
	c.call(t, "GET", "/v1beta/webhooks/"+w.ID, nil, &got)
	if len(got.SigningSecrets) != 2 || got.SigningSecrets[0].ExpireTime != "" || got.SigningSecrets[1].ExpireTime == "" {
		t.Fatalf("after h24 rotation signing_secrets = %+v, want the current one then one with expire_time", got.SigningSecrets)
	}
	if exp, err := time.Parse(time.RFC3339, got.SigningSecrets[1].ExpireTime); err != nil || absDuration(time.Until(exp)-24*time.Hour) > 5*time.Minute {
		t.Fatalf("old secret expire_time %q, want about now + 24h", got.SigningSecrets[1].ExpireTime)
	}
	r2 := ping(2)
	requireSignatureEntries(t, r2, 2)
	verifyHMAC(t, r2, s1).requireVerified(t, "ping 2 with the previous secret alone")
	verifyHMAC(t, r2, s2).requireVerified(t, "ping 2 with the new secret alone")

	// 3. Immediate rotation: only the newest secret signs.
	rot.Secret = ""
	c.call(t, "POST", "/v1beta/webhooks/"+w.ID+":rotateSigningSecret",
		map[string]any{"revocation_behavior": "revoke_previous_secrets_immediately"}, &rot)
	s3 := rot.Secret
	requireSecretFormat(t, s3)
	r3 := ping(3)
	requireSignatureEntries(t, r3, 1)
	verifyHMAC(t, r3, s3).requireVerified(t, "ping 3 with the newest secret")
	verifyHMAC(t, r3, s1).requireNoMatch(t, "ping 3 with the first (revoked) secret")
	verifyHMAC(t, r3, s2).requireNoMatch(t, "ping 3 with the second (revoked) secret")
}

// requireSecretFormat checks "whsec_" + padded standard base64 of 32 bytes.
func requireSecretFormat(t testing.TB, secret string) {
	t.Helper()
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok || len(b64) != 44 || !strings.HasSuffix(b64, "=") {
		t.Fatalf("secret %q... is not whsec_ + padded base64 of 32 bytes", secret[:min(len(secret), 8)])
	}
}

// requireSignatureEntries checks that webhook-signature holds n "v1,"
// entries separated by single spaces.
func requireSignatureEntries(t testing.TB, r received, n int) {
	t.Helper()
	sig := r.Header.Get("webhook-signature")
	entries := strings.Split(sig, " ")
	if len(entries) != n {
		t.Fatalf("webhook-signature has %d entries, want %d: %q", len(entries), n, sig)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e, "v1,") || len(e) != len("v1,")+44 {
			t.Fatalf("webhook-signature entry %q is not v1,<base64 of 32 bytes>", e)
		}
	}
}

// requirePingBody checks the delivery is exactly
// {"type":"webhook.ping","version":"v1","timestamp":...,"data":{"id":id}}
// with the Standard Webhooks headers and our user agent.
func requirePingBody(t testing.TB, r received, id string) {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &fields); err != nil {
		t.Fatalf("ping body is not a JSON object: %v: %s", err, r.Body)
	}
	if len(fields) != 4 {
		t.Fatalf("ping body has fields %v, want type, version, timestamp, data: %s", keysOf(fields), r.Body)
	}
	e := r.envelope(t)
	if e.Type != "webhook.ping" || e.Version != "v1" {
		t.Fatalf("ping body type %q version %q: %s", e.Type, e.Version, r.Body)
	}
	ts, err := time.Parse(time.RFC3339, e.Timestamp)
	if err != nil || absDuration(time.Since(ts)) > 5*time.Minute || !strings.HasSuffix(e.Timestamp, "Z") {
		t.Fatalf("ping timestamp %q is not a recent RFC 3339 UTC time", e.Timestamp)
	}
	var data map[string]any
	if err := json.Unmarshal(e.Data, &data); err != nil || len(data) != 1 || data["id"] != id {
		t.Fatalf("ping data = %s, want {\"id\":%q}", e.Data, id)
	}
	for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		if r.Header.Get(h) == "" {
			t.Fatalf("ping has no %s header", h)
		}
	}
	if !strings.HasPrefix(r.Header.Get("webhook-id"), "msg_") {
		t.Fatalf("webhook-id %q does not start with msg_", r.Header.Get("webhook-id"))
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "longhook/") {
		t.Fatalf("User-Agent %q, want longhook/<version>", ua)
	}
}

// keysOf lists the keys of a JSON object, for failure messages.
func keysOf(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// absDuration returns |d|.
func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
