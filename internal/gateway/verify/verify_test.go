package verify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the generic preset supports HMAC-SHA1
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/nodetest"
	"github.com/longhook/longhook/webhook"
)

// TestPublishedVectors checks the presets against the test values the
// providers publish in their signature documentation.
func TestPublishedVectors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		spec   Spec
		now    time.Time
		header http.Header
		body   string
	}{{
		// docs.github.com, "Validating webhook deliveries", testing the
		// webhook payload validation.
		name: "github",
		spec: Spec{Kind: KindGitHub, Secrets: [][]byte{[]byte("It's a Secret to Everybody")}},
		header: http.Header{
			"X-Hub-Signature-256": {"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
			"X-Github-Delivery":   {"72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		},
		body: "Hello, World!",
	}, {
		// api.slack.com, "Verifying requests from Slack", the walk-through.
		name: "slack",
		spec: Spec{Kind: KindSlack, Secrets: [][]byte{[]byte("8f742231b10e8888abcd99yyyzzz85a5")}},
		now:  time.Unix(1531420618, 0).Add(time.Minute),
		header: http.Header{
			"X-Slack-Signature":         {"v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"},
			"X-Slack-Request-Timestamp": {"1531420618"},
		},
		body: "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := mustNew(t, c.spec, c.now)
			if _, err := v.Verify(c.header, []byte(c.body)); err != nil {
				t.Fatalf("published vector rejected: %v", err)
			}
			if _, err := v.Verify(c.header, []byte(c.body+" ")); !errors.Is(err, webhook.ErrInvalidSignature) {
				t.Fatalf("changed body: err = %v, want ErrInvalidSignature", err)
			}
			// The signature the vector produces is the one Sign produces.
			ts, _ := parseUnix(c.header.Get("X-Slack-Request-Timestamp"))
			got := v.Sign(c.spec.Secrets[0], "", ts, "", []byte(c.body)).Get(v.Header())
			if want := c.header.Get(v.Header()); got != want {
				t.Fatalf("Sign = %s, want %s", got, want)
			}
		})
	}
}

func mustNew(t *testing.T, s Spec, now time.Time) *Verifier {
	t.Helper()
	clock := time.Now
	if !now.IsZero() {
		clock = func() time.Time { return now }
	}
	v, err := New(s, clock)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// nodeCase is one input of testdata/node/provider.mjs.
type nodeCase struct {
	Op        string            `json:"op"`
	Kind      string            `json:"kind"`
	Secret    string            `json:"secret"`
	Body      string            `json:"body"`
	Timestamp int64             `json:"timestamp"`
	ID        string            `json:"id"`
	Headers   map[string]string `json:"headers,omitempty"`
}

type nodeResult struct {
	OK      bool              `json:"ok"`
	Headers map[string]string `json:"headers"`
	Error   string            `json:"error"`
}

// runNode runs the provider libraries on cases, in one node process.
func runNode(t *testing.T, cases []nodeCase) []nodeResult {
	t.Helper()
	nodetest.Require(t, "testdata/node")
	in, _ := json.Marshal(cases)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "provider.mjs")
	cmd.Dir = "testdata/node"
	cmd.Stdin = bytes.NewReader(in)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("node provider.mjs: %v\n%s", err, errb.String())
	}
	var res []nodeResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res) != len(cases) {
		t.Fatalf("node provider.mjs: %v; output %q", err, out.String())
	}
	return res
}

func toHeader(m map[string]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

func fromHeader(h http.Header) map[string]string {
	m := map[string]string{}
	for k := range h {
		m[k] = h.Get(k)
	}
	return m
}

const (
	secret  = "whsec_providerSecretForTests0123456789"
	foreign = "whsec_aSecretTheReceiverDoesNotHave000"
)

var providerKinds = []string{KindStripe, KindGitHub, KindSlack, KindShopify}

// TestProviderLibrariesSign verifies requests signed by the providers' own
// libraries (Node's crypto for Slack and Shopify, which publish none that
// signs): valid ones pass, and a changed body, a foreign secret and (for
// the timestamped schemes) a stale or future timestamp are refused.
func TestProviderLibrariesSign(t *testing.T) {
	t.Parallel()
	now := time.Now()
	body := `{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","type":"payment_intent.succeeded","event_id":"Ev0PV52K25","event":{"type":"app_mention"},"data":{"object":{"amount":2000}}}`
	type variant struct {
		name   string
		secret string
		ts     time.Time
		body   string
		want   error
	}
	variants := []variant{
		{"valid", secret, now, body, nil},
		{"foreign-secret", foreign, now, body, webhook.ErrInvalidSignature},
		{"stale", secret, now.Add(-6 * time.Minute), body, webhook.ErrTimestampTooOld},
		{"future", secret, now.Add(6 * time.Minute), body, webhook.ErrTimestampTooNew},
	}
	var cases []nodeCase
	for _, k := range providerKinds {
		for _, vr := range variants {
			cases = append(cases, nodeCase{Op: "sign", Kind: k, Secret: vr.secret, Body: vr.body, Timestamp: vr.ts.Unix(), ID: "delivery-" + k})
		}
	}
	signed := runNode(t, cases)
	i := 0
	for _, k := range providerKinds {
		v := mustNew(t, Spec{Kind: k, Secrets: [][]byte{[]byte(secret)}}, now)
		for _, vr := range variants {
			h := toHeader(signed[i].Headers)
			i++
			want := vr.want
			if !v.Timestamped() && (vr.name == "stale" || vr.name == "future") {
				want = nil // no signed timestamp: only dedupe stops a replay
			}
			res, err := v.Verify(h, []byte(vr.body))
			if want == nil && err != nil || want != nil && !errors.Is(err, want) {
				t.Errorf("%s/%s: err = %v, want %v", k, vr.name, err, want)
				continue
			}
			if err == nil {
				if _, err := v.Verify(h, []byte(vr.body[:len(vr.body)-1]+` `+"}")); !errors.Is(err, webhook.ErrInvalidSignature) {
					t.Errorf("%s/%s tampered body: err = %v, want ErrInvalidSignature", k, vr.name, err)
				}
				wantID := map[string]string{KindStripe: "evt_1NG8Du2eZvKYlo2CUI79vXWy", KindGitHub: "delivery-github",
					KindSlack: "Ev0PV52K25", KindShopify: "delivery-shopify"}[k]
				wantType := map[string]string{KindStripe: "payment_intent.succeeded", KindGitHub: "ping",
					KindSlack: "app_mention", KindShopify: "orders/create"}[k]
				if res.ID != wantID || res.Type != wantType {
					t.Errorf("%s: id, type = %q, %q; want %q, %q", k, res.ID, res.Type, wantID, wantType)
				}
			}
		}
	}
}

// TestProviderLibrariesVerify has the providers' libraries check what Sign
// produces (what `longhook check` sends): ours pass, a foreign secret's
// fail.
func TestProviderLibrariesVerify(t *testing.T) {
	t.Parallel()
	now := time.Now()
	body := `{"id":"evt_check","type":"ping"}`
	var cases []nodeCase
	for _, k := range providerKinds {
		v := mustNew(t, Spec{Kind: k, Secrets: [][]byte{[]byte(secret)}}, now)
		for _, s := range []string{secret, foreign} {
			h := v.Sign([]byte(s), "delivery-1", now, "ping", []byte(body))
			cases = append(cases, nodeCase{Op: "verify", Kind: k, Secret: secret, Body: body, Headers: fromHeader(h)})
		}
	}
	res := runNode(t, cases)
	for i, r := range res {
		k, own := cases[i].Kind, i%2 == 0
		if r.OK != own {
			t.Errorf("%s (own secret %v): library says ok=%v (%s)", k, own, r.OK, r.Error)
		}
	}
}

// TestStandardWebhooksLibrary shows which secret format the gateway's
// standard-webhooks kind expects by having the standardwebhooks library
// sign: the webhook package verifies it (the gateway's path).
func TestStandardWebhooksLibrary(t *testing.T) {
	t.Parallel()
	key, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	res := runNode(t, []nodeCase{{Op: "sign", Kind: "standard", Secret: key, Body: `{"type":"x"}`, ID: "msg_1", Timestamp: now.Unix()}})
	v, err := webhook.NewVerifier([]string{key})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(toHeader(res[0].Headers), []byte(`{"type":"x"}`)); err != nil {
		t.Fatalf("standardwebhooks-signed request rejected: %v", err)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	now := time.Now()
	slack := mustNew(t, Spec{Kind: KindSlack, Secrets: [][]byte{[]byte(secret)}}, now)
	stripe := mustNew(t, Spec{Kind: KindStripe, Secrets: [][]byte{[]byte(secret)}}, now)
	shopify := mustNew(t, Spec{Kind: KindShopify, Secrets: [][]byte{[]byte(secret)}}, now)
	cases := []struct {
		name    string
		v       *Verifier
		h       http.Header
		want    error
		missSig bool
	}{
		{"no signature", slack, http.Header{}, webhook.ErrMissingHeader, true},
		{"no timestamp", slack, http.Header{"X-Slack-Signature": {"v0=" + strings.Repeat("0", 64)}}, webhook.ErrMissingHeader, false},
		{"bad timestamp", slack, http.Header{"X-Slack-Signature": {"v0=" + strings.Repeat("0", 64)}, "X-Slack-Request-Timestamp": {"soon"}}, webhook.ErrMalformed, false},
		{"no prefix", slack, http.Header{"X-Slack-Signature": {strings.Repeat("0", 64)}, "X-Slack-Request-Timestamp": {"1"}}, webhook.ErrMalformed, false},
		{"stripe without v1", stripe, http.Header{"Stripe-Signature": {"t=1,v0=abc"}}, webhook.ErrMalformed, false},
		{"stripe without t", stripe, http.Header{"Stripe-Signature": {"v1=" + strings.Repeat("0", 64)}}, webhook.ErrMalformed, false},
		{"shopify not base64", shopify, http.Header{"X-Shopify-Hmac-Sha256": {"%%%"}}, webhook.ErrMalformed, false},
		{"shopify wrong mac", shopify, http.Header{"X-Shopify-Hmac-Sha256": {base64.StdEncoding.EncodeToString(make([]byte, 32))}}, webhook.ErrNoMatchingSignature, false},
	}
	for _, c := range cases {
		_, err := c.v.Verify(c.h, []byte("{}"))
		if !errors.Is(err, c.want) || errors.Is(err, ErrMissingSignature) != c.missSig {
			t.Errorf("%s: err = %v, want %v (missing signature %v)", c.name, err, c.want, c.missSig)
		}
	}
	// A stale forgery is reported as a forgery, not as stale.
	h := stripe.Sign([]byte(foreign), "", now.Add(-time.Hour), "", []byte("{}"))
	if _, err := stripe.Verify(h, []byte("{}")); !errors.Is(err, webhook.ErrInvalidSignature) {
		t.Errorf("stale forgery: err = %v, want ErrInvalidSignature", err)
	}
}

// TestRotation accepts a Stripe header with two v1 entries of which only
// the second matches, and a second configured secret.
func TestRotation(t *testing.T) {
	t.Parallel()
	now := time.Now()
	v := mustNew(t, Spec{Kind: KindStripe, Secrets: [][]byte{[]byte("whsec_old"), []byte(secret)}}, now)
	a := v.Sign([]byte(foreign), "", now, "", []byte("{}")).Get("Stripe-Signature")
	b := v.Sign([]byte(secret), "", now, "", []byte("{}")).Get("Stripe-Signature")
	_, v1b, _ := strings.Cut(b, ",")
	h := http.Header{"Stripe-Signature": {a + "," + v1b}}
	if _, err := v.Verify(h, []byte("{}")); err != nil {
		t.Fatalf("two entries, second matches: %v", err)
	}
}

// TestGeneric checks the generic scheme against MACs computed here
// directly with crypto/hmac.
func TestGeneric(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	key := []byte("generic-secret")
	body := []byte(`{"kind":"order.paid"}`)
	sha1mac := hmac.New(sha1.New, key)
	sha1mac.Write(body)
	s512 := hmac.New(sha512.New, key)
	s512.Write([]byte("1700000000.d-1." + string(body)))
	cases := []struct {
		name string
		spec Spec
		h    http.Header
		id   string
	}{{
		name: "sha1 hex prefix, body hash id",
		spec: Spec{Header: "X-Signature", Algorithm: "sha1", Prefix: "sha1="},
		h:    http.Header{"X-Signature": {"sha1=" + hex.EncodeToString(sha1mac.Sum(nil))}},
		id:   BodyID(body),
	}, {
		name: "sha512 base64 over id and timestamp",
		spec: Spec{Header: "X-Sig", Algorithm: "sha512", Encoding: "base64", Signed: "{timestamp}.{id}.{body}",
			TimestampHeader: "X-Ts", IDHeader: "X-Delivery", TypeHeader: "X-Event"},
		h: http.Header{"X-Sig": {base64.StdEncoding.EncodeToString(s512.Sum(nil))}, "X-Ts": {"1700000000"},
			"X-Delivery": {"d-1"}, "X-Event": {"order.paid"}},
		id: "d-1",
	}}
	for _, c := range cases {
		c.spec.Kind, c.spec.Secrets = KindHMAC, [][]byte{key}
		v := mustNew(t, c.spec, now)
		res, err := v.Verify(c.h, body)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if res.ID != c.id {
			t.Errorf("%s: id = %q, want %q", c.name, res.ID, c.id)
		}
		if got := v.Sign(key, c.h.Get("X-Delivery"), now, "", body).Get(c.spec.Header); got != c.h.Get(c.spec.Header) {
			t.Errorf("%s: Sign = %q, want %q", c.name, got, c.h.Get(c.spec.Header))
		}
		if _, err := v.Verify(c.h, append(body, ' ')); !errors.Is(err, webhook.ErrInvalidSignature) {
			t.Errorf("%s: tampered body: %v", c.name, err)
		}
	}
}

func TestSpecErrors(t *testing.T) {
	t.Parallel()
	key := [][]byte{[]byte("k")}
	cases := []struct {
		spec Spec
		want string
	}{
		{Spec{Kind: "paypal", Secrets: key}, "unknown kind"},
		{Spec{Kind: KindStripe}, "at least one secret"},
		{Spec{Kind: KindStripe, Secrets: [][]byte{{}}}, "secret 1 is empty"},
		{Spec{Kind: KindHMAC, Secrets: key}, "hmac.header is required"},
		{Spec{Kind: KindHMAC, Secrets: key, Header: "X", Algorithm: "md5"}, "hmac.algorithm"},
		{Spec{Kind: KindHMAC, Secrets: key, Header: "X", Encoding: "base32"}, "hmac.encoding"},
		{Spec{Kind: KindHMAC, Secrets: key, Header: "X", Signed: "{timestamp}"}, "must contain {body}"},
		{Spec{Kind: KindHMAC, Secrets: key, Header: "X", Signed: "{ts}.{body}"}, "only {body}"},
		{Spec{Kind: KindHMAC, Secrets: key, Header: "X", Signed: "{timestamp}.{body}"}, "timestamp_header is required"},
		{Spec{Kind: KindHMAC, Secrets: key, Header: "X", Signed: "{id}.{body}"}, "id_header is required"},
	}
	for _, c := range cases {
		if _, err := New(c.spec, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.spec, err, c.want)
		}
	}
}

// TestShopifyEventID dedupes Shopify deliveries on X-Shopify-Event-Id,
// which Shopify's duplicate-detection guide names (one event sent by two
// subscriptions, or retried, carries the same event id under different
// webhook ids), and falls back to X-Shopify-Webhook-Id without it.
func TestShopifyEventID(t *testing.T) {
	t.Parallel()
	now := time.Now()
	v := mustNew(t, Spec{Kind: KindShopify, Secrets: [][]byte{[]byte(secret)}}, now)
	body := []byte(`{"id":820982911946154508}`)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	mac := base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, c := range []struct {
		name   string
		h      http.Header
		wantID string
	}{
		{"both", http.Header{"X-Shopify-Hmac-Sha256": {mac}, "X-Shopify-Event-Id": {"evt-1"}, "X-Shopify-Webhook-Id": {"wh-a"}}, "evt-1"},
		{"other subscription", http.Header{"X-Shopify-Hmac-Sha256": {mac}, "X-Shopify-Event-Id": {"evt-1"}, "X-Shopify-Webhook-Id": {"wh-b"}}, "evt-1"},
		{"webhook id only", http.Header{"X-Shopify-Hmac-Sha256": {mac}, "X-Shopify-Webhook-Id": {"wh-a"}}, "wh-a"},
		{"neither", http.Header{"X-Shopify-Hmac-Sha256": {mac}}, BodyID(body)},
	} {
		res, err := v.Verify(c.h, body)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res.ID != c.wantID {
			t.Errorf("%s: id = %q, want %q", c.name, res.ID, c.wantID)
		}
		if got := v.HeaderID(c.h); c.wantID != BodyID(body) && got != c.wantID {
			t.Errorf("%s: HeaderID = %q, want %q", c.name, got, c.wantID)
		}
	}
	if !v.Keep("X-Shopify-Event-Id") {
		t.Error("X-Shopify-Event-Id is not kept with the event")
	}
	if h := v.Sign([]byte(secret), "evt-2", now, "orders/create", body); h.Get("X-Shopify-Event-Id") != "evt-2" || h.Get("X-Shopify-Webhook-Id") != "evt-2" {
		t.Errorf("Sign: headers %v, want both id headers set", h)
	}
}

// A tolerance on a scheme that signs no timestamp is refused: it was
// accepted and ignored, as if it bounded replays.
func TestToleranceNeedsASignedTimestamp(t *testing.T) {
	t.Parallel()
	key := [][]byte{[]byte(secret)}
	for _, s := range []Spec{
		{Kind: KindGitHub, Secrets: key, Tolerance: time.Minute},
		{Kind: KindShopify, Secrets: key, Tolerance: time.Minute},
		{Kind: KindHMAC, Secrets: key, Tolerance: time.Minute, Header: "X-Sig"},
		{Kind: KindHMAC, Secrets: key, Tolerance: time.Minute, Header: "X-Sig", Signed: "{id}.{body}", IDHeader: "X-Id"},
	} {
		if _, err := New(s, time.Now); err == nil || !strings.Contains(err.Error(), "tolerance") {
			t.Errorf("%s %q with a tolerance: %v, want an error naming tolerance", s.Kind, s.Signed, err)
		}
		s.Tolerance = 0
		if _, err := New(s, time.Now); err != nil {
			t.Errorf("%s %q without a tolerance: %v", s.Kind, s.Signed, err)
		}
	}
	for _, s := range []Spec{
		{Kind: KindStripe, Secrets: key, Tolerance: time.Minute},
		{Kind: KindSlack, Secrets: key, Tolerance: time.Minute},
		{Kind: KindHMAC, Secrets: key, Tolerance: time.Minute, Header: "X-Sig", Signed: "{timestamp}.{body}", TimestampHeader: "X-Ts"},
	} {
		if _, err := New(s, time.Now); err != nil {
			t.Errorf("%s with a tolerance: %v", s.Kind, err)
		}
	}
}

// TestSlackFormTypes: Slack's form-encoded requests get an event type,
// as its JSON ones do: a slash command (Slack's published vector) is
// "slash_command", an interactivity request its payload's type.
func TestSlackFormTypes(t *testing.T) {
	t.Parallel()
	vector := mustNew(t, Spec{Kind: KindSlack, Secrets: [][]byte{[]byte("8f742231b10e8888abcd99yyyzzz85a5")}},
		time.Unix(1531420618, 0))
	res, err := vector.Verify(http.Header{
		"X-Slack-Signature":         {"v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"},
		"X-Slack-Request-Timestamp": {"1531420618"},
	}, []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"))
	if err != nil || res.Type != "slash_command" {
		t.Fatalf("slash command: type %q, %v; want slash_command", res.Type, err)
	}

	now := time.Now()
	v := mustNew(t, Spec{Kind: KindSlack, Secrets: [][]byte{[]byte(secret)}}, now)
	for body, want := range map[string]string{
		"payload=" + url.QueryEscape(`{"type":"block_actions","trigger_id":"1.2.3","actions":[]}`): "block_actions",
		"payload=" + url.QueryEscape(`{"type":"view_submission","view":{"id":"V1"}}`):              "view_submission",
		"payload=" + url.QueryEscape(`not json`):                                                   "",
		"team_id=T1&user_id=U1":                                                                    "",
		`{"type":"event_callback","event":{"type":"app_mention"}}`:                                 "app_mention",
	} {
		res, err := v.Verify(v.Sign([]byte(secret), "", now, "", []byte(body)), []byte(body))
		if err != nil || res.Type != want {
			t.Errorf("%s: type %q, %v; want %q", body, res.Type, err, want)
		}
	}
}
