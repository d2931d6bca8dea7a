package gateway

import (
	"net/http"
	"testing"
	"time"

	"github.com/longhook/longhook/webhook"
)

// A listen stream signs a Standard Webhooks event again at the time it
// streams it, with every secret of the source, keeping its webhook-id; an
// event with a JWT, or of a source without hmac_secrets (a provider
// preset, a JWKS source), keeps the headers it came with.
func TestStreamResign(t *testing.T) {
	t.Parallel()
	oldText, _ := webhook.NewSecret()
	newText, _ := webhook.NewSecret()
	src, err := newSource(SourceConfig{Name: "s", Verify: VerifyConfig{HMACSecrets: []string{oldText, newText}}}, options{now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"x"}`)
	signedAt := time.Now().Add(-time.Hour)
	old, _ := webhook.ParseSecret(oldText)
	stored := http.Header{
		"Webhook-Id":        {"msg_1"},
		"Webhook-Timestamp": {"1"},
		"Webhook-Signature": {webhook.Sign(old, "msg_1", signedAt, body)},
		"Content-Type":      {"application/json"},
	}
	now := time.Now().Add(time.Minute)
	h, resigned := src.resign(stored, body, now)
	if !resigned || h.Get("Webhook-Id") != "msg_1" || h.Get("Content-Type") != "application/json" {
		t.Fatalf("resign: %v %v", resigned, h)
	}
	if stored.Get("Webhook-Timestamp") != "1" {
		t.Error("resign changed the stored header")
	}
	for _, text := range []string{oldText, newText} { // either side of a rotation verifies it
		v, _ := webhook.NewVerifier([]string{text}, webhook.WithClock(func() time.Time { return now }))
		if err := v.Verify(h, body); err != nil {
			t.Errorf("re-signed event: %v", err)
		}
	}

	jwt := stored.Clone()
	jwt.Set("Webhook-Signature", "eyJhbGciOiJSUzI1NiJ9.eyJqdGkiOiJtc2dfMSJ9.c2ln")
	if h, resigned := src.resign(jwt, body, now); resigned || h.Get("Webhook-Signature") != jwt.Get("Webhook-Signature") {
		t.Errorf("a JWT event was signed again: %v", h)
	}
	gh, err := newSource(SourceConfig{Name: "gh", Verify: VerifyConfig{Kind: "github", HMACSecrets: []string{"gh-secret"}}}, options{now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	preset := http.Header{"X-Hub-Signature-256": {"sha256=00"}, "X-Github-Delivery": {"d1"}}
	if h, resigned := gh.resign(preset, body, now); resigned || len(h) != len(preset) {
		t.Errorf("a github event was signed again: %v", h)
	}
}
