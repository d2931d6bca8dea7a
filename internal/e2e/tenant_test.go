package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/webhook"
)

// TestCrossProjectForgery (issue 13, defect 1): all projects of a server
// share its signing keys and issuer, so a key holder of project B must not
// be able to get a token that A's receiver accepts. A's receiver is a
// `longhook gateway` source pinned to project A. B tries the three routes
// of the review: its own tokens, collected at its own URI, replayed to A
// (with and without an audience), an audience naming A's gateway (refused
// at publish), and A's URI in its own webhook_config.uris (delivered, and
// refused by A). A's own dynamic deliveries are accepted throughout.
func TestCrossProjectForgery(t *testing.T) {
	t.Parallel()
	requireNode(t)
	s := startServe(t)
	admin := s.client(t)
	hc := newHTTPClient(t, 10*time.Second)
	projA, keyA := createProject(t, admin, "tenant-a")
	projB, keyB := createProject(t, admin, "tenant-b")
	a, b := s.client(t), s.client(t)
	a.key, b.key = keyA, keyB

	accepted := newReceiver(t, nil) // the gateway's sink: what A's receiver accepted
	gw := startGateway(t, func(base string) string {
		return fmt.Sprintf("sources:\n  - name: a\n    verify:\n      jwks: {url: %q, issuer: %q, audience: %q, project: %q}\n"+
			"    sinks:\n      - name: out\n        http: {url: %q}\n",
			s.URL()+"/.well-known/jwks.json", s.URL(), base+"/hooks/a", projA, accepted.URL("/a"))
	})
	gwURI := gw.URL + "/hooks/a"
	unauthenticated := func() float64 {
		return gw.metric(t, hc, "longhook_gateway_received_total", map[string]string{"source": "a", "outcome": "unauthenticated"})
	}

	// A's own event reaches A's gateway and is accepted.
	a.publish(t, dynamicEvent("batches/A-1", gwURI, ""))
	accepted.waitN(t, 1, deliveryTimeout)

	// B cannot name A's gateway as the audience.
	rcvB := newReceiver(t, nil)
	uriB := rcvB.URL("/b")
	status, raw, err := b.do(context.Background(), "POST", "/v1beta/events", dynamicEvent("batches/VICTIM", uriB, gwURI), nil)
	if err != nil || status != http.StatusBadRequest || !bytes.Contains(raw, []byte("webhook_config.audience")) {
		t.Fatalf("B publishing with A's gateway as audience: status %d %s %v, want 400 naming webhook_config.audience", status, raw, err)
	}

	// B's tokens collected at B's own URI (audience = the URI, and = its
	// origin), replayed to A's gateway: refused.
	b.publish(t, dynamicEvent("batches/VICTIM", uriB, ""))
	b.publish(t, dynamicEvent("batches/VICTIM", uriB, strings.TrimSuffix(rcvB.URL(""), "/")))
	rcvB.waitN(t, 2, deliveryTimeout)
	for i, r := range rcvB.requests() {
		if got := replay(t, hc, gwURI, r); got != http.StatusUnauthorized {
			t.Errorf("B's token %d replayed to A's gateway: status %d, want 401", i+1, got)
		}
		// The claim names B, whatever the audience: a verifier pinned to A
		// refuses it even for B's own audience.
		pinned := newJWKSVerifier(t, hc, s.URL()+"/.well-known/jwks.json", s.URL(), tokenAudience(t, r), webhook.WithProject(projA))
		if _, err := pinned.Verify(context.Background(), r.Header, r.Body); !errors.Is(err, webhook.ErrProject) {
			t.Errorf("B's token %d checked by a verifier pinned to A: %v, want ErrProject", i+1, err)
		}
		if c := verifyJWTAll(t, hc, r, s.URL()+"/.well-known/jwks.json", s.URL(), tokenAudience(t, r)); c["project"] != projB {
			t.Errorf("B's token %d: project claim %v, want %s", i+1, c["project"], projB)
		}
	}

	// B puts A's gateway in its own uris: delivered there, refused.
	before := unauthenticated()
	b.publish(t, dynamicEvent("batches/VICTIM", gwURI, ""))
	pollUntil(t, deliveryTimeout, 20*time.Millisecond, "A's gateway refuses B's delivery", func() (bool, string) {
		n := unauthenticated()
		return n > before, fmt.Sprintf("%v unauthenticated", n)
	})

	// A still gets through, and nothing of B's was ever accepted.
	a.publish(t, dynamicEvent("batches/A-2", gwURI, ""))
	accepted.waitN(t, 2, deliveryTimeout)
	got := accepted.requests()
	for _, r := range got {
		if bytes.Contains(r.Body, []byte("VICTIM")) {
			t.Fatalf("A's gateway accepted B's event: %s", r.Body)
		}
	}
	if len(got) != 2 {
		t.Fatalf("A's gateway forwarded %d events, want A's 2: %s", len(got), bodies(got))
	}
}

// createProject creates a project with the admin client and returns its id
// and its (non-admin) API key.
func createProject(t testing.TB, admin *apiClient, name string) (id, key string) {
	t.Helper()
	var p struct {
		ID     string `json:"id"`
		APIKey struct {
			Key string `json:"key"`
		} `json:"api_key"`
	}
	admin.call(t, "POST", "/v1beta/projects", map[string]any{"name": name}, &p)
	if p.ID == "" || p.APIKey.Key == "" {
		t.Fatalf("create project %s: no id or key", name)
	}
	return p.ID, p.APIKey.Key
}

// dynamicEvent is an event for one dynamic URI, with an audience unless "".
func dynamicEvent(dataID, uri, audience string) map[string]any {
	cfg := map[string]any{"uris": []string{uri}}
	if audience != "" {
		cfg["audience"] = audience
	}
	return map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": dataID}, "webhook_config": cfg}
}

// tokenAudience returns the (single) aud of the token r carries, unverified.
func tokenAudience(t testing.TB, r received) string {
	t.Helper()
	var c struct {
		Aud string `json:"aud"`
	}
	parts := strings.Split(r.Header.Get(webhook.HeaderSignature), ".")
	if len(parts) != 3 {
		t.Fatalf("webhook-signature is not a compact JWS")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(raw, &c) != nil || c.Aud == "" {
		t.Fatalf("token claims %s: %v", raw, err)
	}
	return c.Aud
}

// replay posts a received delivery, headers and body as they were, to uri
// and returns the status.
func replay(t testing.TB, hc *http.Client, uri string, r received) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, uri, bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range []string{webhook.HeaderID, webhook.HeaderTimestamp, webhook.HeaderSignature} {
		req.Header.Set(h, r.Header.Get(h))
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("replay to %s: %v", uri, err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
