package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// joseDelivery is one captured dynamic delivery for verify_jose.mjs.
type joseDelivery struct {
	Audience  string `json:"audience"`
	WebhookID string `json:"webhook_id"`
	Token     string `json:"token"`
	Body      string `json:"body"`
}

// joseResult is verify_jose.mjs's verdict on one delivery.
type joseResult struct {
	OK      bool           `json:"ok"`
	Error   string         `json:"error"`
	Payload map[string]any `json:"payload"`
}

// newJoseDelivery captures what a receiver got, for audience.
func newJoseDelivery(d delivery, audience string) joseDelivery {
	return joseDelivery{Audience: audience, WebhookID: d.header.Get("webhook-id"),
		Token: d.header.Get("webhook-signature"), Body: string(d.body)}
}

// verifyWithJose runs testdata/sdk/verify_jose.mjs, which verifies each
// delivery's JWT with npm jose against f's JWKS (issuer f.srv.URL), and
// returns the verdicts in order. npmCI must have run.
func verifyWithJose(t *testing.T, f *fixture, ds ...joseDelivery) []joseResult {
	t.Helper()
	in, err := json.Marshal(map[string]any{
		"jwks_url":   f.srv.URL + "/.well-known/jwks.json",
		"issuer":     f.srv.URL,
		"deliveries": ds,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "verify_jose.mjs")
	cmd.Dir = sdkDir
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node verify_jose.mjs: %v\n%s", err, out.String())
	}
	_, line, ok := strings.Cut(out.String(), "RESULT ")
	if !ok {
		t.Fatalf("verify_jose.mjs: no RESULT line:\n%s", out.String())
	}
	var res []joseResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(line)), &res); err != nil {
		t.Fatalf("verify_jose.mjs RESULT: %v: %s", err, line)
	}
	if len(res) != len(ds) {
		t.Fatalf("verify_jose.mjs: %d results for %d deliveries", len(res), len(ds))
	}
	return res
}

// checkWithJose verifies the batch.succeeded delivery d (sent to the
// dynamic URI hook for batch id) with npm jose against the server's JWKS,
// and checks that the signed payload carries user_metadata verbatim. Two
// altered copies (another audience, another body) must be rejected, so
// the check can fail.
func checkWithJose(t *testing.T, f *fixture, hook, id string, d delivery, wantMeta map[string]any) {
	t.Helper()
	good := newJoseDelivery(d, hook)
	wrongAud := good
	wrongAud.Audience = hook + "/other"
	tampered := good
	tampered.Body = strings.Replace(good.Body, "nightly-eval", "nightly-evil", 1)
	if tampered.Body == good.Body {
		t.Fatalf("delivery body has no user_metadata to tamper with: %s", good.Body)
	}
	res := verifyWithJose(t, f, good, wrongAud, tampered)
	if !res[0].OK {
		t.Fatalf("%s: jose rejected the batch.succeeded delivery: %s", id, res[0].Error)
	}
	if res[1].OK || !strings.Contains(res[1].Error, "aud") {
		t.Fatalf("%s: jose accepted another audience (%+v)", id, res[1])
	}
	if res[2].OK || !strings.Contains(res[2].Error, "body_sha256") {
		t.Fatalf("%s: a tampered body passed (%+v)", id, res[2])
	}

	p := res[0].Payload
	if p["iss"] != f.srv.URL || p["aud"] != hook || p["sub"] != id || p["type"] != "batch.succeeded" {
		t.Fatalf("%s: jose payload iss %v aud %v sub %v type %v", id, p["iss"], p["aud"], p["sub"], p["type"])
	}
	data, _ := p["data"].(map[string]any)
	if data["id"] != id {
		t.Fatalf("%s: payload data.id %v", id, data["id"])
	}
	// Verbatim: the same keys and values the SDK sent, nothing added.
	got, _ := json.Marshal(data["user_metadata"])
	want, _ := json.Marshal(wantMeta)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: signed data.user_metadata %s, want %s", id, got, want)
	}
}
