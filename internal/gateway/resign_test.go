package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
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
	for _, kind := range []string{"standard-webhooks", "gemini"} {
		vc := VerifyConfig{Kind: kind, HMACSecrets: []string{oldText}}
		if kind == "gemini" {
			vc.JWKS = &JWKSConfig{URL: "https://issuer.example/jwks.json", Issuer: "https://issuer.example", Audience: "a"}
		}
		ks, err := newSource(SourceConfig{Name: kind, Verify: vc}, options{now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		if _, resigned := ks.resign(stored, body, now); !resigned {
			t.Errorf("kind %s: an HMAC event was not signed again", kind)
		}
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

// A destination that verifies the Standard Webhooks signature again (as
// the docs invite) takes the backlog of an outage longer than its
// tolerance: each attempt is signed when it is made. The sender's
// signature used to be forwarded as it was, so after a long outage the
// destination refused every retry as stale, until max_age parked them.
func TestForwardSignsEachAttempt(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64 // the gateway's clock minus the real one
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	secretText, secret := mustSecret(t)
	verifier, err := webhook.NewVerifier([]string{secretText}, webhook.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	var accepted, refused atomic.Int64
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case down.Load():
			http.Error(w, "down", http.StatusServiceUnavailable)
		case verifier.Verify(r.Header, body) != nil:
			refused.Add(1)
			http.Error(w, "bad signature", http.StatusBadRequest)
		default:
			accepted.Add(1)
		}
	}))
	defer dest.Close()
	down.Store(true)
	gw := startGateway(t, Config{Sources: []SourceConfig{{
		Name: "s", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{{Name: "dest", HTTP: &HTTPSinkConfig{URL: dest.URL},
			// The retry is an hour away: no attempt is in flight while the
			// test moves the clock, so each is signed and checked at one time.
			Retry: RetryConfig{Initial: time.Hour, Max: time.Hour}}},
	}}}, WithClock(clock))
	if s, body := post(t, gw.srv.Client(), gw.srv.URL+"/hooks/s", secret, "msg_outage", clock(), testBody(1)); s != 200 {
		t.Fatalf("post: %d %s", s, body)
	}
	waitFor(t, 20*time.Second, "a failed attempt queued for retry", func() bool {
		p, err := gw.inbox.PendingRetries(t.Context())
		return err == nil && p["s/dest"] == 1
	})
	down.Store(false)
	offset.Store(int64(2 * time.Hour)) // the outage lasts two hours: the retry is due
	waitFor(t, 20*time.Second, "the destination to accept the event after the outage", func() bool {
		return accepted.Load() == 1 || refused.Load() > 0
	})
	if refused.Load() > 0 {
		t.Fatalf("the destination refused the retried event's signature %d times", refused.Load())
	}
}

// A forward made soon after the sender signed (under resignAfter) carries
// the sender's own signature and timestamp, unchanged — no signing on the
// gateway's hot path; one signed longer ago (here two minutes, inside the
// gateway's own tolerance) is signed again at the attempt.
func TestForwardKeepsAFreshSignature(t *testing.T) {
	t.Parallel()
	secretText, secret := mustSecret(t)
	type seen struct{ ts, sig string }
	got := make(chan seen, 2)
	dest := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got <- seen{r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature)}
	}))
	defer dest.Close()
	gw := startGateway(t, Config{Sources: []SourceConfig{{
		Name: "s", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{{Name: "dest", HTTP: &HTTPSinkConfig{URL: dest.URL}}},
	}}})
	for _, c := range []struct {
		id   string
		age  time.Duration
		kept bool
	}{{"msg_fresh", 5 * time.Second, true}, {"msg_old", 2 * time.Minute, false}} {
		ts := time.Now().Add(-c.age)
		body := testBody(1)
		if s, b := post(t, gw.srv.Client(), gw.srv.URL+"/hooks/s", secret, c.id, ts, body); s != 200 {
			t.Fatalf("post %s: %d %s", c.id, s, b)
		}
		var h seen
		select {
		case h = <-got:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s never forwarded", c.id)
		}
		sent := seen{strconv.FormatInt(ts.Unix(), 10), webhook.Sign(secret, c.id, ts, body)}
		if (h == sent) != c.kept {
			t.Errorf("%s (signed %v ago) forwarded with %+v; the sender's was %+v, kept want %v", c.id, c.age, h, sent, c.kept)
		}
	}
}
