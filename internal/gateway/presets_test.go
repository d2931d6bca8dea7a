package gateway

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/gateway/verify"
)

// TestPresetIntake runs every provider preset through the gateway: a
// delivery signed the provider's way is accepted and forwarded once with
// the provider's headers (so the destination can verify again) and the
// dedupe key; a redelivery (re-signed later, same delivery id or body) is
// a duplicate; forgeries are 401, malformed or stale requests 400.
func TestPresetIntake(t *testing.T) {
	t.Parallel()
	const secret = "whsec_presetIntakeSecret"
	generic := &GenericHMACConfig{Header: "X-Acme-Signature", Algorithm: "sha512", Encoding: "base64",
		Prefix: "v2=", Signed: "{id}:{timestamp}:{body}", TimestampHeader: "X-Acme-Time", IDHeader: "X-Acme-Delivery",
		TypeHeader: "X-Acme-Event"}
	kinds := []string{verify.KindStripe, verify.KindGitHub, verify.KindSlack, verify.KindShopify, verify.KindHMAC}
	rec := newRecorder(t)
	var sources []SourceConfig
	for _, k := range kinds {
		vc := VerifyConfig{Kind: k, HMACSecrets: []string{secret}}
		if k == verify.KindHMAC {
			vc.HMAC = generic
		}
		sources = append(sources, SourceConfig{Name: k, Verify: vc,
			Sinks: []SinkConfig{{Name: "api", HTTP: &HTTPSinkConfig{URL: rec.srv.URL}}}})
	}
	gw := startGateway(t, Config{Sources: sources})
	c := gw.srv.Client()
	body := []byte(`{"id":"evt_preset_1","type":"invoice.paid","event_id":"EvSLACK1","event":{"type":"app_mention"}}`)
	send := func(kind string, h http.Header, b []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, gw.srv.URL+"/hooks/"+kind, bytes.NewReader(b))
		req.Header = h
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	for _, k := range kinds {
		vc := VerifyConfig{Kind: k, HMACSecrets: []string{secret}}
		if k == verify.KindHMAC {
			vc.HMAC = generic
		}
		v, err := vc.preset(nil)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		sign := func(key string, ts time.Time, b []byte) http.Header {
			return v.Sign([]byte(key), "delivery-"+k, ts, "invoice.paid", b)
		}
		if st, out := send(k, sign(secret, now, body), body); st != 200 || !strings.Contains(out, `"duplicate":false`) {
			t.Errorf("%s valid: %d %s", k, st, out)
		}
		if st, out := send(k, sign(secret, now.Add(time.Second), body), body); st != 200 || !strings.Contains(out, `"duplicate":true`) {
			t.Errorf("%s redelivery: %d %s", k, st, out)
		}
		if st, out := send(k, sign("whsec_wrong", now, body), body); st != 401 || !strings.Contains(out, "UNAUTHENTICATED") {
			t.Errorf("%s foreign secret: %d %s", k, st, out)
		}
		if st, _ := send(k, http.Header{}, body); st != 401 {
			t.Errorf("%s no signature: %d, want 401", k, st)
		}
		if v.Timestamped() {
			if st, out := send(k, sign(secret, now.Add(-10*time.Minute), body), body); st != 400 || !strings.Contains(out, "timestamp too old") {
				t.Errorf("%s stale: %d %s", k, st, out)
			}
		}
	}
	// Slack without its timestamp header is malformed, not unauthenticated.
	sl, _ := VerifyConfig{Kind: verify.KindSlack, HMACSecrets: []string{secret}}.preset(nil)
	h := sl.Sign([]byte(secret), "", time.Now(), "", body)
	h.Del("X-Slack-Request-Timestamp")
	if st, out := send(verify.KindSlack, h, body); st != 400 || !strings.Contains(out, "INVALID_ARGUMENT") {
		t.Errorf("slack without timestamp: %d %s", st, out)
	}

	waitFor(t, 10*time.Second, "one forward per source", func() bool { return rec.count() == len(kinds) })
	want := map[string]string{ // dedupe key → signature header forwarded
		"evt_preset_1":     "Stripe-Signature",
		"delivery-github":  "X-Hub-Signature-256",
		"EvSLACK1":         "X-Slack-Signature",
		"delivery-shopify": "X-Shopify-Hmac-Sha256",
		"delivery-hmac":    "X-Acme-Signature",
	}
	got := rec.snapshot()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for id, sig := range want {
		if got[id] != 1 {
			t.Errorf("%s forwarded %d times, want 1 (all: %v)", id, got[id], got)
		}
		found := false
		for _, h := range rec.headers {
			if h.Get(HeaderEventID) == id {
				found = h.Get(sig) != "" && h.Get(HeaderEventType) != ""
			}
		}
		if !found {
			t.Errorf("%s: forwarded without %s or %s", id, sig, HeaderEventType)
		}
	}
}

// TestSlackURLVerification: Slack sets an Events API Request URL only
// after the endpoint answered its signed url_verification request with the
// challenge ({"challenge": ...}, Slack's documented answer). The gateway
// verifies it like any request, stores it, and echoes the challenge — also
// for Slack's retry of it (a duplicate); a forged one is 401 and echoes
// nothing.
func TestSlackURLVerification(t *testing.T) {
	t.Parallel()
	const secret = "8f742231b10e8888abcd99yyyzzz85a5"
	gw := startGateway(t, Config{Sources: []SourceConfig{{Name: "slack",
		Verify: VerifyConfig{Kind: verify.KindSlack, HMACSecrets: []string{secret}}}}})
	v, err := VerifyConfig{Kind: verify.KindSlack, HMACSecrets: []string{secret}}.preset(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The request of api.slack.com's url_verification event.
	body := []byte(`{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	send := func(key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, gw.srv.URL+"/hooks/slack", bytes.NewReader(body))
		req.Header = v.Sign([]byte(key), "", time.Now(), "", body)
		req.Header.Set("Content-Type", "application/json")
		resp, err := gw.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	const want = `{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}` + "\n"
	for _, round := range []string{"first", "Slack's retry"} {
		if st, out := send(secret); st != 200 || out != want {
			t.Errorf("%s: %d %q, want 200 %q", round, st, out, want)
		}
	}
	if st, out := send("another secret"); st != 401 || strings.Contains(out, "3eZbrw1a") {
		t.Errorf("forged: %d %s, want 401 without the challenge", st, out)
	}
}

func TestVerifyConfigErrors(t *testing.T) {
	t.Parallel()
	jwks := &JWKSConfig{URL: "https://x.example/jwks", Issuer: "i", Audience: "a"}
	cases := []struct {
		v    VerifyConfig
		want string
	}{
		{VerifyConfig{}, "set hmac_secrets, jwks or both"},
		{VerifyConfig{Kind: "paypal", HMACSecrets: []string{"s"}}, `"paypal" is not one of standard-webhooks, gemini, stripe`},
		{VerifyConfig{Kind: "stripe"}, "kind stripe takes hmac_secrets and no jwks"},
		{VerifyConfig{Kind: "github", HMACSecrets: []string{"s"}, JWKS: jwks}, "kind github takes hmac_secrets and no jwks"},
		{VerifyConfig{Kind: "gemini", HMACSecrets: []string{"s"}}, "kind gemini needs jwks"},
		{VerifyConfig{Kind: "standard-webhooks", JWKS: jwks}, "kind standard-webhooks takes hmac_secrets"},
		{VerifyConfig{Kind: "hmac", HMACSecrets: []string{"s"}}, "kind hmac needs the hmac block"},
		{VerifyConfig{Kind: "hmac", HMACSecrets: []string{"s"}, HMAC: &GenericHMACConfig{Header: "X", Algorithm: "md5"}}, "hmac.algorithm"},
		{VerifyConfig{Kind: "hmac", HMACSecrets: []string{"!"}, HMAC: &GenericHMACConfig{Header: "X", SecretEncoding: "base64"}}, "hmac_secrets[0] is not base64"},
		{VerifyConfig{Kind: "slack", HMACSecrets: []string{"s"}, HMAC: &GenericHMACConfig{Header: "X"}}, "hmac: only for kind hmac"},
	}
	for _, c := range cases {
		cfg := Config{Sources: []SourceConfig{{Name: "s", Verify: c.v}}}.withDefaults()
		err := cfg.validate()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "sources[0].verify") {
			t.Errorf("%+v: err = %v, want %q", c.v, err, c.want)
		}
	}
	// The secret never appears in a message.
	cfg := Config{Sources: []SourceConfig{{Name: "s", Verify: VerifyConfig{Kind: "hmac", HMACSecrets: []string{"sekrit!"},
		HMAC: &GenericHMACConfig{Header: "X", SecretEncoding: "base64"}}}}}.withDefaults()
	if err := cfg.validate(); err == nil || strings.Contains(err.Error(), "sekrit") {
		t.Errorf("err = %v", err)
	}
}
