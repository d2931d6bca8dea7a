package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/docs"
	"github.com/longhook/longhook/internal/syncbuf"
	"github.com/longhook/longhook/webhook"
)

func TestIntakeStatuses(t *testing.T) {
	t.Parallel()
	secretText, secret := mustSecret(t)
	_, other := mustSecret(t)
	rec := newRecorder(t)
	gw := startGateway(t, Config{MaxBodyBytes: 4096, Sources: []SourceConfig{{
		Name: "gemini", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{{Name: "api", HTTP: &HTTPSinkConfig{URL: rec.srv.URL}}},
	}}})
	url := gw.srv.URL + "/hooks/gemini"
	c := gw.srv.Client()
	now := time.Now()

	tests := []struct {
		name       string
		secret     webhook.Secret
		ts         time.Time
		body       []byte
		wantStatus int
		wantText   string
	}{
		{"valid", secret, now, testBody(1), 200, `"duplicate":false`},
		{"bad signature", other, now, testBody(2), 401, "no matching signature"},
		{"stale", secret, now.Add(-10 * time.Minute), testBody(3), 400, "timestamp too old"},
		{"future", secret, now.Add(10 * time.Minute), testBody(4), 400, "timestamp too new"},
		{"too large", secret, now, bytes.Repeat([]byte("x"), 5000), 413, "exceeds the limit of 4096 bytes"},
	}
	for i, tt := range tests {
		status, body := post(t, c, url, tt.secret, fmt.Sprintf("msg_status_%d", i), tt.ts, tt.body)
		if status != tt.wantStatus || !strings.Contains(body, tt.wantText) {
			t.Errorf("%s: got %d %s, want %d containing %q", tt.name, status, body, tt.wantStatus, tt.wantText)
		}
		if status >= 400 && !strings.Contains(body, `"error":{"code":`+strconv.Itoa(status)) {
			t.Errorf("%s: error body %s is not the Google envelope", tt.name, body)
		}
	}

	// Redelivery of the valid event: 200, marked duplicate, not forwarded again.
	status, body := post(t, c, url, secret, "msg_status_0", time.Now(), testBody(1))
	if status != 200 || !strings.Contains(body, `"duplicate":true`) {
		t.Errorf("redelivery: got %d %s", status, body)
	}

	// Missing signature → 401; missing id → 400; GET → 405; unknown path → 404.
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("{}"))
	req.Header.Set(webhook.HeaderID, "msg_x")
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	if resp := do(t, c, req); resp != 401 {
		t.Errorf("missing signature: got %d, want 401", resp)
	}
	req, _ = http.NewRequest(http.MethodPost, url, strings.NewReader("{}"))
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(secret, "", now, []byte("{}")))
	if resp := do(t, c, req); resp != 400 {
		t.Errorf("missing id: got %d, want 400", resp)
	}
	// A wrong method: 405 with Allow (RFC 9110 section 15.5.6) and
	// UNIMPLEMENTED, as the API server answers it; on a source and on the
	// gateway's own GET routes alike.
	for _, c2 := range []struct{ method, path, allow string }{
		{http.MethodGet, "/hooks/gemini", "POST"},
		{http.MethodPut, "/hooks/gemini", "POST"},
		{http.MethodPost, "/healthz", "GET"},
		{http.MethodDelete, "/metrics", "GET"},
	} {
		req, _ = http.NewRequest(c2.method, gw.srv.URL+c2.path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != c2.allow || !strings.Contains(string(b), `"status":"UNIMPLEMENTED"`) {
			t.Errorf("%s %s: %d Allow %q %s; want 405, Allow %q, UNIMPLEMENTED", c2.method, c2.path, resp.StatusCode, resp.Header.Get("Allow"), b, c2.allow)
		}
	}
	req, _ = http.NewRequest(http.MethodPost, gw.srv.URL+"/hooks/nope", nil)
	if resp := do(t, c, req); resp != 404 {
		t.Errorf("unknown source: got %d, want 404", resp)
	}

	waitFor(t, 30*time.Second, "forward", func() bool { return rec.count() == 1 }) // a failure bound only
	if got := rec.snapshot()["msg_status_0"]; got != 1 {
		t.Errorf("sink got msg_status_0 %d times, want 1", got)
	}
	rec.mu.Lock()
	h := rec.headers[0]
	gotBody := rec.bodies["msg_status_0"]
	rec.mu.Unlock()
	if h.Get(HeaderSource) != "gemini" || h.Get(HeaderReceivedAt) == "" || h.Get(webhook.HeaderSignature) == "" {
		t.Errorf("forwarded headers lack longhook-source, longhook-received-at or the signature: %v", h)
	}
	// The sink can verify the forwarded request itself.
	v, _ := webhook.NewVerifier([]string{secretText})
	if err := v.Verify(h, gotBody); err != nil {
		t.Errorf("forwarded request does not verify downstream: %v", err)
	}

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		req, _ := http.NewRequest(http.MethodGet, gw.srv.URL+path, nil)
		if got := do(t, c, req); got != 200 {
			t.Errorf("%s: %d", path, got)
		}
	}

	// The gateway serves its own OpenAPI document, as serve does (issue
	// 17: the documents are served at /openapi.json), without a token.
	resp, err := c.Get(gw.srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(doc, docs.GatewayOpenAPI) {
		t.Errorf("GET /openapi.json: %d %s %.80s; want 200 application/json docs/gateway.openapi.json", resp.StatusCode, resp.Header.Get("Content-Type"), doc)
	}
}

// A webhook-timestamp that is not plain decimal Unix seconds is malformed
// input (400 INVALID_ARGUMENT, the header named) whatever its spelling —
// letters, a sign, leading zeros or spaces — even when the signature was
// made over that very spelling: the same answer as for a stale one, never
// 401 as if the signature were wrong.
func TestIntakeMalformedTimestamp(t *testing.T) {
	t.Parallel()
	secretText, _ := mustSecret(t)
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secretText, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, Config{Sources: []SourceConfig{{
		Name: "s", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{{Name: "k", Discard: &DiscardSinkConfig{}}},
	}}})
	now := strconv.FormatInt(time.Now().Unix(), 10)
	for i, ts := range []string{"0" + now, "+" + now, now + ".0", "abc", "-1"} {
		id := fmt.Sprintf("msg_ts_%d", i)
		body := testBody(i)
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + ts + "." + string(body)))
		req, _ := http.NewRequest(http.MethodPost, gw.srv.URL+"/hooks/s", bytes.NewReader(body))
		req.Header.Set(webhook.HeaderID, id)
		req.Header.Set(webhook.HeaderTimestamp, ts)
		req.Header.Set(webhook.HeaderSignature, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		resp, err := gw.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), `"status":"INVALID_ARGUMENT"`) || !strings.Contains(string(b), webhook.HeaderTimestamp) {
			t.Errorf("webhook-timestamp %q: %d %s, want 400 INVALID_ARGUMENT naming %s", ts, resp.StatusCode, b, webhook.HeaderTimestamp)
		}
	}
}

func do(t *testing.T, c *http.Client, req *http.Request) int {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestJWTSource(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := webhook.NewJWTSigner("k1", key)
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(webhook.JWKS{Keys: []webhook.JWK{signer.PublicJWK()}})
	}))
	defer jwks.Close()
	rec := newRecorder(t)
	gw := startGateway(t, Config{Sources: []SourceConfig{{
		Name:   "dyn",
		Verify: VerifyConfig{JWKS: &JWKSConfig{URL: jwks.URL, Issuer: jwks.URL, Audience: "https://gw.example/hooks/dyn"}},
		Sinks:  []SinkConfig{{Name: "api", HTTP: &HTTPSinkConfig{URL: rec.srv.URL}}},
	}, {
		Name:   "pinned",
		Verify: VerifyConfig{JWKS: &JWKSConfig{URL: jwks.URL, Issuer: jwks.URL, Audience: "https://gw.example/hooks/pinned", Project: "proj-pinned-secret"}},
		Sinks:  []SinkConfig{{Name: "api", HTTP: &HTTPSinkConfig{URL: rec.srv.URL}}},
	}}})
	sendTo := func(path, id string, iat time.Time, aud, project string) (int, string) {
		body := testBody(7)
		tok, err := signer.Sign(webhook.Claims{
			Issuer: jwks.URL, Audience: aud, ID: id, BodySHA256: webhook.BodyHash(body),
			IssuedAt: webhook.NewNumericDate(iat), ExpiresAt: webhook.NewNumericDate(iat.Add(5 * time.Minute)),
			Type: "batch.succeeded", Project: project,
		})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, gw.srv.URL+path, bytes.NewReader(body))
		req.Header.Set(webhook.HeaderID, id)
		req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(iat.Unix(), 10))
		req.Header.Set(webhook.HeaderSignature, tok)
		resp, err := gw.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	send := func(id string, iat time.Time, aud string) (int, string) {
		return sendTo("/hooks/dyn", id, iat, aud, "")
	}
	aud := "https://gw.example/hooks/dyn"
	// A source pinned to a project refuses another project's token
	// without telling the unauthenticated sender which project it wants.
	if s, b := sendTo("/hooks/pinned", "msg_jwt_p1", time.Now(), "https://gw.example/hooks/pinned", "proj-other"); s != 401 || strings.Contains(b, "proj-pinned-secret") || !strings.Contains(b, "project") {
		t.Errorf("token of another project: %d %s, want 401 naming the claim but not the pinned project", s, b)
	}
	if s, b := sendTo("/hooks/pinned", "msg_jwt_p2", time.Now(), "https://gw.example/hooks/pinned", "proj-pinned-secret"); s != 200 {
		t.Errorf("token of the pinned project: %d %s", s, b)
	}
	if s, b := send("msg_jwt_1", time.Now(), aud); s != 200 {
		t.Fatalf("valid JWT: %d %s", s, b)
	}
	if s, b := send("msg_jwt_2", time.Now().Add(-time.Hour), aud); s != 400 {
		t.Errorf("expired JWT: %d %s, want 400", s, b)
	}
	if s, b := send("msg_jwt_3", time.Now(), "https://elsewhere"); s != 401 {
		t.Errorf("wrong audience: %d %s, want 401", s, b)
	}
	if s, b := send("msg_jwt_1", time.Now(), aud); s != 200 || !strings.Contains(b, `"duplicate":true`) {
		t.Errorf("JWT redelivery: %d %s", s, b)
	}
	waitFor(t, 30*time.Second, "forward", func() bool { return rec.count() == 2 }) // a failure bound only
}

// A sink that is down neither blocks the others nor intake, and receives
// everything once it is back.
func TestSinkIsolationAndRetry(t *testing.T) {
	t.Parallel()
	secretText, secret := mustSecret(t)
	up, down := newRecorder(t), newRecorder(t)
	down.fail.Store(true)
	fast := RetryConfig{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	gw := startGateway(t, Config{Sources: []SourceConfig{{
		Name: "s", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
		Sinks: []SinkConfig{
			{Name: "up", HTTP: &HTTPSinkConfig{URL: up.srv.URL}, Retry: fast},
			{Name: "down", HTTP: &HTTPSinkConfig{URL: down.srv.URL}, Retry: fast, Concurrency: 2},
		},
	}}})
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, b := post(t, gw.srv.Client(), gw.srv.URL+"/hooks/s", secret, fmt.Sprintf("msg_iso_%d", i), time.Now(), testBody(i)); s != 200 {
				t.Errorf("post %d: %d %s", i, s, b)
			}
		}()
	}
	wg.Wait()
	waitFor(t, 10*time.Second, "healthy sink", func() bool { return up.count() == n })
	waitFor(t, 10*time.Second, "failing attempts", func() bool { return down.calls.Load() >= 3 })
	if down.count() != 0 {
		t.Fatalf("down sink recorded %d events", down.count())
	}
	down.fail.Store(false)
	waitFor(t, 20*time.Second, "recovered sink", func() bool { return down.count() == n })
	for id, k := range up.snapshot() {
		if k != 1 {
			t.Errorf("up sink got %s %d times", id, k)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"no sources":         `addr: ":1"`,
		"bad name":           "sources: [{name: Bad, verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
		"no verifier":        "sources: [{name: a}]",
		"two kinds":          "sources: [{name: a, verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}, sinks: [{name: x, discard: {}, http: {url: 'http://x'}}]}]",
		"reserved":           "sources: [{name: a, path: /_longhook/x, verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
		"path /openapi.json": "sources: [{name: a, path: /openapi.json, verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
		"path /":             "sources: [{name: a, path: '/', verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
		"path /hooks/a/":     "sources: [{name: a, path: '/hooks/a/', verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
		"path /hooks/{x}":    "sources: [{name: a, path: '/hooks/{x}', verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
		"path /hooks/a b":    "sources: [{name: a, path: '/hooks/a b', verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
		"path /hooks/a?x=1":  "sources: [{name: a, path: '/hooks/a?x=1', verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
		"path /hooks/%2e":    "sources: [{name: a, path: '/hooks/%2e', verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
		"path /hooks/../x":   "sources: [{name: a, path: '/hooks/../x', verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
		"path /hooks//x":     "sources: [{name: a, path: '/hooks//x', verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
		"path hooks/x":       "sources: [{name: a, path: 'hooks/x', verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
		"unknown key":        "sources: [{name: a, colour: red}]",
		"github tolerance":   "sources: [{name: a, verify: {kind: github, hmac_secrets: [s3], tolerance: 5m}}]",
		"missing env":        "sources: [{name: a, verify: {hmac_secrets: ['${NOPE_NOT_SET}']}}]",
		"mysql":              "database: 'mysql://u:s3cr3tpw@h/db'\nsources: [{name: a, verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
		"bad pg url":         "database: 'postgres://u:s3cr3tpw@h:notaport/db'\nsources: [{name: a, verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
		// longhook listen could not read an event that large.
		"body over listen": "max_body_bytes: 67108864\nsources: [{name: a, listen_tokens: [listen-token-0123456789], verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]",
	}
	for name, y := range cases {
		cfg, err := ParseConfig([]byte(y), func(string) string { return "" })
		if err == nil {
			err = cfg.withDefaults().validate()
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "s3cr3tpw") {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
	for _, db := range []string{"postgres://u:pw@db:5432/x?sslmode=require&search_path=gw", "postgresql://db/x", "sqlite:///tmp/x.db"} {
		cfg := Config{Database: db, Sources: []SourceConfig{{Name: "a", Verify: VerifyConfig{HMACSecrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}}}
		if err := cfg.withDefaults().validate(); err != nil {
			t.Errorf("database %s: %v", db, err)
		}
	}
	cfg, err := LoadConfig("testdata/gateway.example.yaml", func(k string) string { return "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.withDefaults().validate(); err != nil {
		t.Fatalf("example config: %v", err)
	}
}

func TestWriteAccepted(t *testing.T) {
	t.Parallel()
	// Through a real server: net/http adds the Content-Length writeAccepted
	// leaves out.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, dup := r.URL.Query().Get("id"), r.URL.Query().Get("dup") == "true"
		if r.URL.Path == "/fast" {
			writeAccepted(w, id, dup)
		} else {
			writeJSON(w, http.StatusOK, acceptBody{WebhookID: id, Duplicate: dup})
		}
	}))
	defer srv.Close()
	get := func(path, id string, dup bool) (*http.Response, string) {
		resp, err := srv.Client().Get(srv.URL + path + "?" + url.Values{"id": {id}, "dup": {strconv.FormatBool(dup)}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	for _, id := range []string{"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", `a"b\\c<d>&\u2028é`} {
		for _, dup := range []bool{false, true} {
			fast, fastBody := get("/fast", id, dup)
			slow, slowBody := get("/slow", id, dup)
			if fastBody != slowBody || fast.ContentLength != slow.ContentLength || fast.ContentLength != int64(len(fastBody)) ||
				fast.Header.Get("Content-Type") != "application/json" || fast.StatusCode != http.StatusOK {
				t.Errorf("%q %v: %d %q %d vs %d %q %d", id, dup, fast.StatusCode, fastBody, fast.ContentLength, slow.StatusCode, slowBody, slow.ContentLength)
			}
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	r := RetryConfig{Initial: time.Second, Max: 10 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second} {
		got := backoff(r, n)
		if got < want*8/10 || got > want*12/10 {
			t.Errorf("backoff(%d) = %s, want %s ±20%%", n, got, want)
		}
	}
}

func TestEventType(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"type":"a.b","data":{}}`:                 "a.b",
		`{"data":{"type":"inner"},"type":"outer"}`: "outer",
		`not json`:                   "",
		`{"type":1}`:                 "",
		`{"type":"a\u002eb"}`:        "a.b",
		"{\"type\":\"caf\xc3\xa9\"}": "café",
		"{\"type\":\"bad\xff\"}":     "bad\ufffd",
		"{\"type\":\"tab\there\"}":   "",
		`[]`:                         "",
	} {
		if got := eventType([]byte(body)); got != want {
			t.Errorf("eventType(%s) = %q, want %q", body, got, want)
		}
	}
}

// --database and LONGHOOK_GATEWAY_DATABASE override database in the config.
func TestRunGatewayDatabaseFlag(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	cfg := "sources: [{name: a, verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}}]"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) string { return "" }
	err := RunGateway(context.Background(), []string{"--config", path, "--database", "mysql://db/x"}, noEnv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "database") {
		t.Errorf("--database mysql://: %v", err)
	}
	env := func(k string) string {
		if k == "LONGHOOK_GATEWAY_DATABASE" {
			return "mysql://db/x"
		}
		return ""
	}
	err = RunGateway(context.Background(), []string{"--config", path}, env, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "database") {
		t.Errorf("LONGHOOK_GATEWAY_DATABASE=mysql://: %v", err)
	}
}

// When the JWKS cannot be fetched the sender gets 503 UNAVAILABLE (retry
// later) with a message of its own: the JWKS URL and the network error
// are the operator's (in the gateway.receive log line), not something an
// unauthenticated sender learns.
func TestJWKSFetchFailureHidesTheCause(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := webhook.NewJWTSigner("k1", key)
	if err != nil {
		t.Fatal(err)
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	jwksURL := gone.URL + "/internal/jwks.json"
	gone.Close() // nothing listens there any more
	var logs syncBuffer
	gw := startGateway(t, Config{Sources: []SourceConfig{{
		Name:   "dyn",
		Verify: VerifyConfig{JWKS: &JWKSConfig{URL: jwksURL, Issuer: "https://issuer.example", Audience: "https://gw.example/hooks/dyn"}},
		Sinks:  []SinkConfig{{Name: "k", Discard: &DiscardSinkConfig{}}},
	}}}, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	body := testBody(1)
	now := time.Now()
	tok, err := signer.Sign(webhook.Claims{
		Issuer: "https://issuer.example", Audience: "https://gw.example/hooks/dyn", ID: "msg_jwks_down", BodySHA256: webhook.BodyHash(body),
		IssuedAt: webhook.NewNumericDate(now), ExpiresAt: webhook.NewNumericDate(now.Add(5 * time.Minute)), Type: "batch.succeeded",
	})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, gw.srv.URL+"/hooks/dyn", bytes.NewReader(body))
	req.Header.Set(webhook.HeaderID, "msg_jwks_down")
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, tok)
	resp, err := gw.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	host := strings.TrimPrefix(gone.URL, "http://")
	if resp.StatusCode != 503 || !strings.Contains(string(b), `"status":"UNAVAILABLE"`) {
		t.Fatalf("JWKS down: %d %s, want 503 UNAVAILABLE", resp.StatusCode, b)
	}
	if strings.Contains(string(b), host) || strings.Contains(string(b), "/internal/jwks.json") || strings.Contains(string(b), "connection refused") {
		t.Errorf("the answer to an unauthenticated sender names the JWKS URL or the network error: %s", b)
	}
	if !strings.Contains(logs.String(), "/internal/jwks.json") {
		t.Errorf("the gateway.receive log line lacks the cause for the operator:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = syncbuf.Buffer

// A negative number or duration in the config is refused, naming the
// setting, before anything is created — not silently replaced by the
// default as a zero is (a `tolerance: -5m` used to run with 5 m).
func TestNegativeSettingsRefused(t *testing.T) {
	t.Parallel()
	const src = "sources:\n  - name: a\n    verify: {hmac_secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]%s}%s\n    sinks:\n      - name: k\n        %s\n%s"
	for _, c := range []struct{ verify, source, sink, sinkExtra, want string }{
		{", tolerance: -5m", "", "discard: {}", "", "sources[0].verify.tolerance"},
		{"", "\n    dedupe_horizon: -1h", "discard: {}", "", "sources[0].dedupe_horizon"},
		{"", "", "discard: {}", "        concurrency: -1\n", "sources[0].sinks[0].concurrency"},
		{"", "", "discard: {}", "        retry: {initial: -1s}\n", "sources[0].sinks[0].retry.initial"},
		{"", "", "http: {url: 'http://127.0.0.1:1/', timeout: -2s}", "", "sources[0].sinks[0].http.timeout"},
		{"", "", "redis: {url: 'redis://127.0.0.1:1/0', stream: s, maxlen: -5}", "", "sources[0].sinks[0].redis.maxlen"},
	} {
		y := fmt.Sprintf(src, c.verify, c.source, c.sink, c.sinkExtra)
		cfg, err := ParseConfig([]byte(y), nil)
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.want, err, y)
		}
		cfg.DataDir = filepath.Join(t.TempDir(), "data")
		g, err := NewGateway(context.Background(), cfg)
		if err == nil {
			_ = g.Close()
			t.Errorf("%s: a negative value was accepted", c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want a configuration error naming it", c.want, err)
		}
		if _, err := os.Stat(cfg.DataDir); err == nil {
			t.Errorf("%s: the refused config created %s", c.want, cfg.DataDir)
		}
	}
	cfg, err := ParseConfig([]byte("max_body_bytes: -1\n"+fmt.Sprintf(src, "", "", "discard: {}", "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	if _, err := NewGateway(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "max_body_bytes") {
		t.Errorf("max_body_bytes -1: %v", err)
	}
}

// TestConfigVariablesAreData: a variable's value is taken as it is, never
// as YAML. Substituted into the text, a secret holding a quote split one
// HMAC secret in two, a leading "*" failed as an unknown alias, a comma
// inside [${SECRET}] made two secrets and a newline could add keys; a
// value of the wrong type was quoted in the error, secret or not.
func TestConfigVariablesAreData(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"QUOTED": `whsec_a", "whsec_b`, "LIST": "one, two", "STAR": "*abc", "NULL": "null",
		"LINES": "x\n    sinks: []", "COLON": "a: b # c", "MAX": "2048", "PORT": "7", "BAD": "s3cr3t-value",
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := ParseConfig([]byte(`max_body_bytes: ${MAX}
sources:
  - name: s
    verify: {hmac_secrets: ["${QUOTED}", ${LIST}, ${STAR}]}
    sinks:
      - name: k
        http:
          url: "http://127.0.0.1:${PORT}/x"
          headers: {A: ${NULL}, B: ${LINES}, C: ${COLON}, D: 'pre ${STAR} post'}
`), getenv)
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if got := cfg.Sources[0].Verify.HMACSecrets; !slices.Equal(got, []string{env["QUOTED"], env["LIST"], env["STAR"]}) {
		t.Errorf("hmac_secrets = %q", got)
	}
	h := cfg.Sources[0].Sinks[0].HTTP
	if h.URL != "http://127.0.0.1:7/x" || h.Headers["A"] != "null" || h.Headers["B"] != env["LINES"] || h.Headers["C"] != env["COLON"] || h.Headers["D"] != "pre *abc post" {
		t.Errorf("sink: %+v", h)
	}
	if cfg.MaxBodyBytes != 2048 || len(cfg.Sources[0].Sinks) != 1 {
		t.Errorf("config: %+v", cfg)
	}
	// A value of the wrong type names the variable, not the value.
	_, err = ParseConfig([]byte("max_body_bytes: ${BAD}\n"), getenv)
	if err == nil || !strings.Contains(err.Error(), "line 1: cannot unmarshal !!str (the value of ${BAD}) into int64") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("wrong type: %v", err)
	}
	// A key that is not one names the variable, not its placeholder.
	_, err = ParseConfig([]byte("${COLON}: 1\n"), getenv)
	if err == nil || !strings.Contains(err.Error(), "field ${COLON} not found") {
		t.Errorf("unknown key: %v", err)
	}
	// Unknown keys written in the file are still refused, with their line.
	_, err = ParseConfig([]byte("max_body_bytes: ${MAX}\nnope: 1\n"), getenv)
	if err == nil || !strings.Contains(err.Error(), "line 2: field nope not found") {
		t.Errorf("unknown key in the file: %v", err)
	}
}

// TestConfigVariablesInValuesOnly: ${NAME} is replaced in the config, not
// in its comments. The shipped example, whose comments explain ${NAME},
// refused to start with "environment variables not set: NAME, NAME".
func TestConfigVariablesInValuesOnly(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "TOKEN": "t0k3n", "MAX": "2048", "TOL": "2m"}
	getenv := func(k string) string { return env[k] }
	cfg, err := ParseConfig([]byte(`# a comment naming ${UNSET_IN_A_COMMENT}
max_body_bytes: ${MAX}
sources:
  - name: s   # ${ALSO_IN_A_COMMENT}
    verify: {hmac_secrets: [${SECRET}], tolerance: ${TOL}}
    sinks:
      - name: k
        http: {url: "http://127.0.0.1:1/x#${TOKEN}", headers: {X-Auth: 'it''s ${TOKEN} # ${TOKEN}', X-Other: "#${TOKEN}"}}
`), getenv)
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if cfg.MaxBodyBytes != 2048 || cfg.Sources[0].Verify.Tolerance != 2*time.Minute || cfg.Sources[0].Verify.HMACSecrets[0] != env["SECRET"] {
		t.Errorf("values: %+v", cfg)
	}
	// A # inside a quoted value or a URL is not a comment.
	if k := cfg.Sources[0].Sinks[0].HTTP; k.URL != "http://127.0.0.1:1/x#t0k3n" || k.Headers["X-Auth"] != "it's t0k3n # t0k3n" || k.Headers["X-Other"] != "#t0k3n" {
		t.Errorf("sink: %+v", k)
	}
	_, err = ParseConfig([]byte("sources:\n  - name: s\n    verify: {hmac_secrets: [\"${NOPE}\", \"${NOPE}\"]}\n"), getenv)
	if err == nil || !strings.HasSuffix(err.Error(), "environment variables not set: NOPE") {
		t.Errorf("an unset variable in a value: %v", err)
	}
	// The shipped example, with only the variables its values name.
	cfg, err = LoadConfig("testdata/gateway.example.yaml", func(k string) string {
		if k == "NAME" {
			return ""
		}
		return "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	})
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if err := cfg.withDefaults().validate(); err != nil {
		t.Fatalf("example config: %v", err)
	}
}
