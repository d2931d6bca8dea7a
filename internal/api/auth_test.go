package api_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
	"github.com/longhook/longhook/internal/publish"
)

func TestAuthentication(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.callWith("", nil, "GET", "/v1/webhooks", nil).mustError(t, http.StatusUnauthorized, "UNAUTHENTICATED", "x-goog-api-key")
	f.callWith("lh_wrong", nil, "GET", "/v1beta/webhooks", nil).mustError(t, http.StatusUnauthorized, "UNAUTHENTICATED", "API key not valid")
	f.callWith("", nil, "POST", "/v1alpha/webhooks:anything", "{}").mustError(t, http.StatusUnauthorized, "UNAUTHENTICATED")
	f.callWith("", nil, "GET", "/v1", nil).mustError(t, http.StatusUnauthorized, "UNAUTHENTICATED")
	for _, p := range []string{"//v1/webhooks", "/x/../v1/webhooks", "/v1beta/./webhooks"} {
		f.callWith("", nil, "GET", p, nil).mustError(t, http.StatusUnauthorized, "UNAUTHENTICATED")
	}

	// ?key= works; Google headers are ignored.
	f.callWith("", nil, "GET", "/v1/webhooks?key="+f.key, nil).must(t, http.StatusOK)
	hdr := http.Header{"Api-Revision": {"2026-05-20"}, "X-Goog-Api-Client": {"google-genai-sdk/3.1.0 gl-node/20"}}
	f.callWith(f.key, hdr, "GET", "/v1/webhooks", nil).must(t, http.StatusOK)

	// Health and JWKS need no key.
	f.callWith("", nil, "GET", "/healthz", nil).must(t, http.StatusOK)
}

func TestRevokedKeyIsRejected(t *testing.T) {
	t.Parallel()
	f := setup(t, func(d *api.Deps) { d.KeyCacheTTL = 50 * time.Millisecond })
	key := f.newKey(f.project.ID, false)
	f.callWith(key, nil, "GET", "/v1/webhooks", nil).must(t, http.StatusOK) // now cached

	keys, err := f.store.ListAPIKeys(t.Context(), f.project.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if bytes.Equal(k.Digest, api.KeyDigest(key)) {
			if err := f.store.RevokeAPIKey(t.Context(), k.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Revoked behind the server's back: rejected once the cache entry ages out.
	deadline := time.Now().Add(5 * time.Second)
	for f.callWith(key, nil, "GET", "/v1/webhooks", nil).status != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("revoked key still accepted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAdmin(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// Non-admin keys may not use admin routes.
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/projects"}, {"GET", "/v1/projects"},
		{"POST", "/v1/projects/" + f.project.ID + "/keys"}, {"GET", "/v1/projects/" + f.project.ID + "/keys"},
		{"POST", "/v1/keys/abc:revoke"},
	} {
		f.call(c.method, c.path, "{}").mustError(t, http.StatusForbidden, "PERMISSION_DENIED", "admin")
	}

	p := f.callWith(f.admin, nil, "POST", "/v1/projects", `{"name":"acme"}`).must(t, http.StatusOK)
	k := p.body["api_key"].(map[string]any)
	plain := k["key"].(string)
	if p.str("name") != "acme" || p.str("id") == "" || !strings.HasPrefix(plain, "lh_") || len(plain) != 3+43 || k["hint"] != plain[len(plain)-4:] {
		t.Fatalf("create project: %s", p.raw)
	}
	f.callWith(f.admin, nil, "POST", "/v1/projects", `{"name":" "}`).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "name")
	f.callWith(f.admin, nil, "POST", "/v1/projects", `{"name":"x","admin":true}`).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", `"admin"`)

	// The new key works and sees only its project.
	if r := f.callWith(plain, nil, "GET", "/v1/webhooks", nil).must(t, http.StatusOK); string(r.raw) != "{}\n" {
		t.Errorf("new project's webhooks: %s", r.raw)
	}
	ps := f.callWith(f.admin, nil, "GET", "/v1/projects", nil).must(t, http.StatusOK)
	if n := len(ps.body["projects"].([]any)); n != 3 {
		t.Errorf("%d projects, want 3", n)
	}

	// Second key; listings show hints, never keys.
	nk := f.callWith(f.admin, nil, "POST", "/v1beta/projects/"+p.str("id")+"/keys", `{"name":"ci"}`).must(t, http.StatusOK)
	second := nk.str("key")
	if nk.str("name") != "ci" || second == "" || second == plain {
		t.Fatalf("create key: %s", nk.raw)
	}
	l := f.callWith(f.admin, nil, "GET", "/v1/projects/"+p.str("id")+"/keys", nil).must(t, http.StatusOK)
	if strings.Contains(string(l.raw), plain) || strings.Contains(string(l.raw), second) || len(l.body["keys"].([]any)) != 2 {
		t.Errorf("list keys: %s", l.raw)
	}
	f.callWith(f.admin, nil, "GET", "/v1/projects/nope/keys", nil).mustError(t, http.StatusNotFound, "NOT_FOUND", "nope")
	f.callWith(f.admin, nil, "POST", "/v1/projects/nope/keys", nil).mustError(t, http.StatusNotFound, "NOT_FOUND", "nope")

	// Revocation takes effect at once on this server.
	f.callWith(second, nil, "GET", "/v1/webhooks", nil).must(t, http.StatusOK)
	rv := f.callWith(f.admin, nil, "POST", "/v1/keys/"+nk.str("id")+":revoke", nil).must(t, http.StatusOK)
	if string(rv.raw) != "{}\n" {
		t.Errorf("revoke = %s", rv.raw)
	}
	f.callWith(second, nil, "GET", "/v1/webhooks", nil).mustError(t, http.StatusUnauthorized, "UNAUTHENTICATED")
	f.callWith(plain, nil, "GET", "/v1/webhooks", nil).must(t, http.StatusOK)
	f.callWith(f.admin, nil, "POST", "/v1/keys/nope:revoke", nil).mustError(t, http.StatusNotFound, "NOT_FOUND")
	f.callWith(f.admin, nil, "POST", "/v1/keys/"+nk.str("id")+":destroy", nil).mustError(t, http.StatusNotFound, "NOT_FOUND")
}

func TestHealthMetricsJWKS(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	f := setup(t, func(d *api.Deps) {
		d.Ready = ready.Load
		d.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"metrics":true}`))
		})
		d.JWKS = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"keys":[]}`))
		})
	})
	if r := f.callWith("", nil, "GET", "/healthz", nil).must(t, http.StatusOK); r.str("status") != "ok" {
		t.Errorf("healthz: %s", r.raw)
	}
	f.callWith("", nil, "GET", "/readyz", nil).must(t, http.StatusServiceUnavailable)
	ready.Store(true)
	f.callWith("", nil, "GET", "/readyz", nil).must(t, http.StatusOK)
	if r := f.callWith("", nil, "GET", "/metrics", nil).must(t, http.StatusOK); r.body["metrics"] != true {
		t.Errorf("metrics: %s", r.raw)
	}
	if r := f.callWith("", nil, "GET", "/.well-known/jwks.json", nil).must(t, http.StatusOK); r.body["keys"] == nil {
		t.Errorf("jwks: %s", r.raw)
	}
}

// File transfers outside the version prefixes (/upload/{v}, /download/{v})
// take the key like every other route, in the header or the key query
// parameter; an upload session URL is its own credential.
func TestFileTransferAuthentication(t *testing.T) {
	t.Parallel()
	f := setup(t, withJobs(t))
	for _, path := range []string{"/download/v1beta/files/nope", "/upload/v1beta/files", "/v1beta/files"} {
		method := "GET"
		if strings.HasPrefix(path, "/upload") {
			method = "POST"
		}
		r := f.callWith("", nil, method, path, nil)
		r.mustError(t, http.StatusUnauthorized, "UNAUTHENTICATED", "missing an API key")
		f.callWith("", nil, method, path+"?key=lh_wrong", nil).mustError(t, http.StatusUnauthorized, "UNAUTHENTICATED", "API key not valid")
	}
	f.callWith(f.key, nil, "GET", "/download/v1beta/files/nope", nil).mustError(t, http.StatusNotFound, "NOT_FOUND", "files/nope")
	f.callWith("", nil, "GET", "/download/v1/files/nope?key="+f.key, nil).mustError(t, http.StatusNotFound, "NOT_FOUND", "files/nope")
	f.callWith("", nil, "PUT", "/upload/v1beta/files?upload_id=nope", nil).mustError(t, http.StatusNotFound, "NOT_FOUND", "upload session")
}

// withJobs serves the jobs APIs from a jobs service on the fixture's store
// (no runner: jobs stay pending).
func withJobs(t *testing.T) func(*api.Deps) {
	return func(d *api.Deps) {
		cat, err := core.NewCatalog()
		if err != nil {
			t.Fatal(err)
		}
		svc, err := jobs.New(jobs.Config{Store: d.Store, Dir: t.TempDir(),
			Publisher: publish.New(publish.Config{Store: d.Store, Catalog: cat})})
		if err != nil {
			t.Fatal(err)
		}
		d.Jobs = svc
	}
}

func TestOptionalRoutesAbsent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.callWith("", nil, "GET", "/metrics", nil).mustError(t, http.StatusNotFound, "NOT_FOUND")
	f.callWith("", nil, "GET", "/.well-known/jwks.json", nil).mustError(t, http.StatusNotFound, "NOT_FOUND")
	f.callWith("", nil, "GET", "/readyz", nil).must(t, http.StatusOK)
}

// TestNoSecretsInLogs runs the secret-bearing calls with a debug logger and
// checks that no full signing secret or API key reaches the log.
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	created := f.createWebhook("logs")
	id := created.str("id")
	secrets := []string{created.str("new_signing_secret"), f.key, f.admin}
	for range 2 {
		secrets = append(secrets, f.call("POST", "/v1/webhooks/"+id+":rotateSigningSecret", nil).must(t, http.StatusOK).str("secret"))
	}
	f.call("POST", "/v1/webhooks/"+id+":ping", nil).must(t, http.StatusOK)
	f.callWith("", nil, "GET", "/v1/webhooks/"+id+"?key="+f.key, nil).must(t, http.StatusOK)
	p := f.callWith(f.admin, nil, "POST", "/v1/projects", `{"name":"logs"}`).must(t, http.StatusOK)
	secrets = append(secrets, p.body["api_key"].(map[string]any)["key"].(string))
	f.callWith("lh_not_a_key_but_secret_looking", nil, "GET", "/v1/webhooks", nil).must(t, http.StatusUnauthorized)
	secrets = append(secrets, "lh_not_a_key_but_secret_looking")

	logs := f.logs.String()
	if !strings.Contains(logs, `"msg":"api.request"`) {
		t.Fatalf("no request lines logged: %q", logs)
	}
	for _, s := range secrets {
		if s == "" {
			t.Fatal("empty secret")
		}
		if strings.Contains(logs, s) || strings.Contains(logs, strings.TrimPrefix(s, "whsec_")) {
			t.Errorf("log contains a secret or key (%s...)", s[:8])
		}
	}
}

// deadlineRecorder is a ResponseWriter that records the read deadlines a
// handler sets through http.ResponseController.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	reads []time.Time
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	d.reads = append(d.reads, t)
	return nil
}

func (d *deadlineRecorder) SetWriteDeadline(time.Time) error { return nil }

// TestUploadDeadlineOnlyForKnownSessions (issue 13, defect 7): a request to
// an upload session URL keeps the server's ordinary timeouts until its
// upload_id names a live session, so an unauthenticated caller cannot hold
// a connection open for the hour a file transfer may take.
func TestUploadDeadlineOnlyForKnownSessions(t *testing.T) {
	t.Parallel()
	f := setup(t, withJobs(t))
	h := f.srv.Config.Handler
	send := func(method, target string, key string) *deadlineRecorder {
		req := httptest.NewRequest(method, target, strings.NewReader("bytes that never were asked for"))
		if key != "" {
			req.Header.Set("x-goog-api-key", key)
		}
		rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, target := range []string{"/upload/v1beta/files?upload_id=nope", "/upload/v1/files?upload_id=" + strings.Repeat("x", 40)} {
		rec := send("PUT", target, "")
		if rec.Code != http.StatusNotFound || len(rec.reads) != 0 {
			t.Errorf("PUT %s: status %d, read deadline moved %d times; want 404 and none", target, rec.Code, len(rec.reads))
		}
	}
	if rec := send("POST", "/upload/v1beta/files", ""); rec.Code != http.StatusUnauthorized || len(rec.reads) != 0 {
		t.Errorf("upload without a key: status %d, read deadline moved %d times; want 401 and none", rec.Code, len(rec.reads))
	}
	// An authenticated upload carries file bytes: its deadline is lifted.
	if rec := send("POST", "/upload/v1beta/files", f.key); rec.Code != http.StatusOK || len(rec.reads) == 0 || time.Until(rec.reads[0]) < 30*time.Minute {
		t.Errorf("authenticated upload: status %d, read deadlines %v; want 200 and one lifted", rec.Code, rec.reads)
	}
}

// TestGateReadsPathsAsRouted (issue 13, defect 11): the auth gate reads a
// path as the router does, so an encoded slash or dot segment inside an id
// reaches the handler authenticated (and is refused there as an unknown
// id), and without a key it is refused at the gate.
func TestGateReadsPathsAsRouted(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, p := range []string{
		"/v1beta/webhooks/..%2f..%2fx",
		"/v1beta/webhooks/..%2F..%2Fv1beta%2Fwebhooks",
		"/v1/deliveries/%2e%2e%2fx",
	} {
		f.callWith(f.key, nil, "GET", p, nil).mustError(t, http.StatusNotFound, "NOT_FOUND")
		f.callWith("", nil, "GET", p, nil).mustError(t, http.StatusUnauthorized, "UNAUTHENTICATED")
	}
}

// TestModelNamesValidated (issue 13, defect 12): a model path segment that
// could read as a path, or runs on without bound, is refused before
// anything is stored.
func TestModelNamesValidated(t *testing.T) {
	t.Parallel()
	f := setup(t, withJobs(t))
	batch := `{"batch":{"input_config":{"requests":{"requests":[{"request":{"contents":[{"parts":[{"text":"hi"}]}]}}]}}}}`
	for _, model := range []string{"..%2f..%2fx", "a%2fb", strings.Repeat("m", 5000)} {
		f.call("POST", "/v1beta/models/"+model+":batchGenerateContent", batch).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "model")
		f.call("POST", "/v1beta/models/"+model+":predictLongRunning", `{"instances":[{"prompt":"a cat"}]}`).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "model")
	}
	if r := f.call("GET", "/v1beta/batches", nil).must(t, http.StatusOK); strings.TrimSpace(string(r.raw)) != "{}" {
		t.Errorf("batches stored: %s", r.raw)
	}
	f.call("POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", batch).must(t, http.StatusOK)
}

// TestJobPageTokensSigned (issue 13, defect 12): the jobs lists take only
// page tokens this server minted for the same collection and project; a
// plain base64 cursor, a token of another list and one of another project
// are refused.
func TestJobPageTokensSigned(t *testing.T) {
	t.Parallel()
	f := setup(t, withJobs(t))
	batch := `{"batch":{"input_config":{"requests":{"requests":[{"request":{"contents":[{"parts":[{"text":"hi"}]}]}}]}}}}`
	for range 3 {
		f.call("POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", batch).must(t, http.StatusOK)
	}
	next := f.call("GET", "/v1beta/batches?pageSize=1", nil).must(t, http.StatusOK).str("nextPageToken")
	if next == "" {
		t.Fatal("no nextPageToken")
	}
	f.call("GET", "/v1beta/batches?pageSize=1&pageToken="+url.QueryEscape(next), nil).must(t, http.StatusOK)
	plain := base64.RawURLEncoding.EncodeToString([]byte("zzzzzzzz"))
	other := f.newKey(f.newProject("other").ID, false)
	edited := []byte(next)
	edited[len(edited)/2] ^= 3 // one character changed
	for name, call := range map[string]*response{
		"a plain cursor":      f.call("GET", "/v1beta/batches?pageToken="+plain, nil),
		"another collection":  f.call("GET", "/v1beta/files?pageToken="+url.QueryEscape(next), nil),
		"another project":     f.callWith(other, nil, "GET", "/v1beta/batches?pageToken="+url.QueryEscape(next), nil),
		"an edited signature": f.call("GET", "/v1beta/batches?pageToken="+url.QueryEscape(string(edited)), nil),
	} {
		if call.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", name, call.status, call.raw)
		}
	}
}

// projectHeader is api.ProjectHeader as net/http keys it.
var projectHeader = textproto.CanonicalMIMEHeaderKey(api.ProjectHeader)

// TestProjectHeaderOnce: the project header sent twice with different
// values is 400 and changes nothing, on every route and on the publish
// fast path; the first value won, and the request acted in a project the
// second copy did not name. Repeating one value is harmless.
func TestProjectHeaderOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	other := f.newProject("other")
	twice := http.Header{projectHeader: {f.project.ID, other.ID}}
	f.callWith(f.admin, twice, "POST", "/v1/webhooks", map[string]any{"name": "h", "uri": "https://example.com/h", "subscribed_events": []string{"batch.succeeded"}}).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "x-longhook-project is sent more than once with different values")
	f.callWith(f.admin, twice, "GET", "/v1/webhooks", nil).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "x-longhook-project")
	f.callWith(f.key, twice, "GET", "/v1/webhooks", nil).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "x-longhook-project")
	for _, p := range []string{f.project.ID, other.ID} {
		r := f.callWith(f.admin, http.Header{projectHeader: {p}}, "GET", "/v1/webhooks", nil).must(t, http.StatusOK)
		if string(r.raw) != "{}\n" {
			t.Fatalf("project %s: a refused create stored %s", p, r.raw)
		}
	}
	f.callWith(f.admin, http.Header{projectHeader: {other.ID, other.ID}}, "GET", "/v1/webhooks", nil).must(t, http.StatusOK)

	// A publish the fast path serves: both copies reach the handler.
	f.createWebhook("h", "batch.succeeded")
	c := dial(t, f.srv)
	req := rawRequest("POST", "/v1/events", f.admin, "x-longhook-project: "+f.project.ID+"\r\nx-longhook-project: "+other.ID+"\r\n", publishBody)
	before := f.fast.Served()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "x-longhook-project is sent more than once") || f.fast.Served() != before+1 {
		t.Fatalf("publish with two project headers: %d %s (fast path served %d)", resp.StatusCode, body, f.fast.Served()-before)
	}
	if got := f.call("GET", "/v1/events", nil).must(t, http.StatusOK).body["events"]; got != nil {
		t.Fatalf("a refused publish stored %v", got)
	}
}
