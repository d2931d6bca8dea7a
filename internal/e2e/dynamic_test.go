package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/webhook"
)

// TestDynamicWebhooks (issue 4): an event with webhook_config goes only to
// its URIs, never to the project's static webhooks, carries
// data.user_metadata verbatim, and is signed with an RS256 JWT that our
// JWKSVerifier, golang-jwt, jose and jsonwebtoken+jwks-rsa all accept, with
// the documented claims. A tampered body and a wrong audience are rejected;
// webhook_config.audience overrides aud; every token names its project.
func TestDynamicWebhooks(t *testing.T) {
	t.Parallel()
	requireNode(t)
	s := startServe(t)
	c := s.client(t)
	hc := newHTTPClient(t, 10*time.Second)
	jwksURL := s.URL() + "/.well-known/jwks.json"
	issuer := s.URL()

	static := newReceiver(t, nil)
	recvA := newReceiver(t, nil)
	recvB := newReceiver(t, nil)
	hook := c.createWebhook(t, static.URL("/static"), "batch.succeeded")

	metadata := json.RawMessage(`{"job_group":"nightly","n":[1,2]}`)
	uriA, uriB := recvA.URL("/a"), recvB.URL("/b")
	ev := c.publish(t, map[string]any{
		"type": "batch.succeeded", "data": map[string]any{"id": "batches/x"},
		"webhook_config": map[string]any{"uris": []string{uriA, uriB}, "user_metadata": metadata},
	})
	if ev.DeliveryCount != 2 {
		t.Fatalf("dynamic publish: delivery_count %d, want 2 (the two URIs, not the static webhook)", ev.DeliveryCount)
	}
	a := recvA.waitN(t, 1, deliveryTimeout)
	b := recvB.waitN(t, 1, deliveryTimeout)

	// The static receiver gets only a later static-only event.
	marker := c.publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/static-only"}})
	if marker.DeliveryCount != 1 {
		t.Fatalf("static publish: delivery_count %d, want 1", marker.DeliveryCount)
	}
	got := static.waitFor(t, deliveryTimeout, "the static-only event", func(rs []received) bool {
		for _, r := range rs {
			if bytes.Contains(r.Body, []byte("batches/static-only")) {
				return true
			}
		}
		return false
	})
	if len(got) != 1 {
		t.Fatalf("static receiver got %d requests, want only the static-only event; bodies: %s", len(got), bodies(got))
	}
	var list struct {
		Deliveries []deliveryResource `json:"deliveries"`
	}
	c.call(t, "GET", "/v1beta/webhooks/"+hook.ID+"/deliveries", nil, &list)
	if len(list.Deliveries) != 1 || list.Deliveries[0].EventID != marker.ID {
		t.Fatalf("static webhook deliveries %+v, want only event %s", list.Deliveries, marker.ID)
	}

	for _, tc := range []struct {
		r   received
		uri string
	}{{a, uriA}, {b, uriB}} {
		requireDynamicDelivery(t, tc.r, metadata)
		claims := verifyJWTAll(t, hc, tc.r, jwksURL, issuer, tc.uri)
		requireDynamicClaims(t, tc.r, claims, issuer, tc.uri, "events/"+ev.ID)
	}
	if a.Header.Get("webhook-id") == b.Header.Get("webhook-id") {
		t.Fatal("both URIs got the same webhook-id; it must be unique per destination")
	}

	// Negative: a tampered body, and the wrong audience.
	tampered := a
	tampered.Body = bytes.Replace(a.Body, []byte("batches/x"), []byte("batches/y"), 1)
	ours := newJWKSVerifier(t, hc, jwksURL, issuer, uriA)
	if _, err := ours.Verify(context.Background(), tampered.Header, tampered.Body); !errors.Is(err, webhook.ErrBodyHash) {
		t.Errorf("tampered body: webhook.JWKSVerifier got %v, want ErrBodyHash", err)
	}
	if _, err := runNode(t, "jose.mjs", jwtCase(tampered, jwksURL, issuer, uriA)); !errors.Is(err, errRejected) {
		t.Errorf("tampered body: jose accepted it")
	}
	if _, err := newJWKSVerifier(t, hc, jwksURL, issuer, uriB).Verify(context.Background(), a.Header, a.Body); !errors.Is(err, webhook.ErrAudience) {
		t.Errorf("token for %s checked for %s: got %v, want ErrAudience", uriA, uriB, err)
	}

	// Audience override: the origin of the URI (an audience elsewhere is
	// refused, see TestCrossProjectForgery).
	recvC := newReceiver(t, nil)
	aud := strings.TrimSuffix(recvC.URL(""), "/")
	c.publish(t, map[string]any{
		"type": "batch.succeeded", "data": map[string]any{"id": "batches/aud"},
		"webhook_config": map[string]any{"uris": []string{recvC.URL("/c")}, "audience": aud},
	})
	r := recvC.waitN(t, 1, deliveryTimeout)
	claims := verifyJWTAll(t, hc, r, jwksURL, issuer, aud)
	if claims["aud"] != aud {
		t.Fatalf("aud = %v, want the override %q", claims["aud"], aud)
	}
	if _, err := newJWKSVerifier(t, hc, jwksURL, issuer, recvC.URL("/c")).Verify(context.Background(), r.Header, r.Body); !errors.Is(err, webhook.ErrAudience) {
		t.Errorf("overridden audience checked against the URI: got %v, want ErrAudience", err)
	}
}

// newJWKSVerifier returns our verifier using hc (whose connections the test
// closes).
func newJWKSVerifier(t testing.TB, hc *http.Client, jwksURL, issuer, audience string, opts ...webhook.Option) *webhook.JWKSVerifier {
	t.Helper()
	v, err := webhook.NewJWKSVerifier(jwksURL, issuer, audience, append(opts, webhook.WithHTTPClient(hc))...)
	if err != nil {
		t.Fatalf("NewJWKSVerifier: %v", err)
	}
	return v
}

// verifyJWTAll verifies a dynamic delivery with all four verifiers and
// returns the claims golang-jwt decoded.
func verifyJWTAll(t testing.TB, hc *http.Client, r received, jwksURL, issuer, audience string) map[string]any {
	t.Helper()
	return verifyJWTAllAt(t, hc, r, jwksURL, issuer, audience, time.Time{})
}

// verifyJWTAllAt is verifyJWTAll with every verifier's clock at at (the
// real clock when at is zero). A test whose tokens live only seconds
// verifies at a fixed instant inside their lifetime, so that four
// verifiers taking turns on a starved machine do not outlive the token.
func verifyJWTAllAt(t testing.TB, hc *http.Client, r received, jwksURL, issuer, audience string, at time.Time) map[string]any {
	t.Helper()
	var opts []webhook.Option
	if !at.IsZero() {
		opts = append(opts, webhook.WithClock(func() time.Time { return at }))
	}
	if _, err := newJWKSVerifier(t, hc, jwksURL, issuer, audience, opts...).Verify(context.Background(), r.Header, r.Body); err != nil {
		t.Errorf("webhook.JWKSVerifier: %v", err)
	}
	set, _ := fetchJWKS(t, hc, jwksURL)
	claims, err := golangJWTVerify(r, set, issuer, audience, at)
	if err != nil {
		t.Errorf("golang-jwt: %v", err)
	}
	for _, script := range []string{"jose.mjs", "jsonwebtoken.cjs"} {
		tc := jwtCase(r, jwksURL, issuer, audience)
		if !at.IsZero() {
			tc.Now = at.Unix()
		}
		if _, err := runNode(t, script, tc); err != nil {
			t.Errorf("%s: %v", script, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return claims
}

// requireDynamicDelivery checks the body: the event with
// data.user_metadata equal to metadata.
func requireDynamicDelivery(t testing.TB, r received, metadata json.RawMessage) {
	t.Helper()
	e := r.envelope(t)
	if e.Type != "batch.succeeded" || e.Version != "v1" {
		t.Fatalf("dynamic body type %q version %q", e.Type, e.Version)
	}
	var data struct {
		ID           string          `json:"id"`
		UserMetadata json.RawMessage `json:"user_metadata"`
	}
	if err := json.Unmarshal(e.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.ID != "batches/x" || !bytes.Equal(data.UserMetadata, metadata) {
		t.Fatalf("dynamic data = %s, want id batches/x and user_metadata %s", e.Data, metadata)
	}
	if strings.HasPrefix(r.Header.Get("webhook-signature"), "v1,") || strings.Count(r.Header.Get("webhook-signature"), ".") != 2 {
		t.Fatalf("webhook-signature %q is not a compact JWS", r.Header.Get("webhook-signature"))
	}
}

// requireDynamicClaims checks iss, aud, sub, iat/exp, jti, body_sha256,
// project and the embedded event.
func requireDynamicClaims(t testing.TB, r received, claims map[string]any, issuer, aud, sub string) {
	t.Helper()
	e := r.envelope(t)
	want := map[string]any{"iss": issuer, "aud": aud, "sub": sub, "jti": r.Header.Get("webhook-id"),
		"type": e.Type, "version": e.Version, "timestamp": e.Timestamp}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if exp-iat != 300 || absDuration(time.Since(time.Unix(int64(iat), 0))) > time.Minute {
		t.Errorf("iat %v exp %v: want a recent iat and exp = iat + 5 min", claims["iat"], claims["exp"])
	}
	data, err := json.Marshal(claims["data"])
	if err != nil || !jsonEqual(t, data, e.Data) {
		t.Errorf("claim data = %s, want the body's data %s", data, e.Data)
	}
	if _, ok := claims["body_sha256"].(string); !ok {
		t.Errorf("no body_sha256 claim")
	}
	if p, _ := claims["project"].(string); p == "" {
		t.Errorf("no project claim")
	}
	if t.Failed() {
		t.FailNow()
	}
}

// jsonEqual compares two JSON documents semantically.
func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// bodies renders request bodies for a failure message.
func bodies(rs []received) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, string(r.Body))
	}
	return strings.Join(parts, "\n")
}
