package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/longhook/longhook/internal/api"
)

// TestCORS: a page on another origin may call the API from a browser, as it
// may call Google's (the SDKs' browser builds do), when --cors-origins
// allows the origin: a preflight is answered 204 without a key, and every
// answer — a 401 too, a publish through the fast path's listener too —
// names the origin allowed and the headers a script may read. Never
// credentials, never the console or the unversioned routes.
func TestCORS(t *testing.T) {
	t.Parallel()
	const app = "https://app.example.com"
	f := setup(t, func(d *api.Deps) {
		d.CORSOrigins = []string{app}
		d.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	})
	origin := http.Header{"Origin": {app}}

	pre := http.Header{"Origin": {app}, "Access-Control-Request-Method": {"POST"},
		"Access-Control-Request-Headers": {"x-goog-api-key,content-type,x-goog-api-client"}}
	for _, p := range []string{"/v1beta/webhooks", "/v1/events", "/upload/v1beta/files", "/v1alpha/webhooks/x1:ping"} {
		r := f.preflight(pre, p)
		if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != app ||
			!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "PATCH") ||
			r.header.Get("Access-Control-Allow-Headers") != "x-goog-api-key,content-type,x-goog-api-client" ||
			r.header.Get("Access-Control-Max-Age") == "" || r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight of %s: %d %v", p, r.status, r.header)
		}
	}

	// Calls: the answer names the origin, a publish (the fast path hands a
	// request with an Origin to net/http) and a 401 alike.
	hook := f.callWith(f.key, origin, "POST", "/v1beta/webhooks",
		map[string]any{"uri": "https://example.com/h", "subscribed_events": []string{"batch.succeeded"}}).must(t, http.StatusOK)
	pub := f.callWith(f.key, origin, "POST", "/v1/events", publishBody).must(t, http.StatusOK)
	denied := f.callWith("", origin, "GET", "/v1/webhooks", nil)
	for name, r := range map[string]*response{"create": hook, "publish": pub, "no key": denied} {
		if r.header.Get("Access-Control-Allow-Origin") != app || !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "X-Goog-Upload-URL") ||
			!strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Origin") || r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: %d %v", name, r.status, r.header)
		}
	}
	if denied.status != http.StatusUnauthorized {
		t.Errorf("no key: %d %s", denied.status, denied.raw)
	}

	// Another origin: no CORS header (the browser hides the answer), and a
	// preflight is refused, so its request never runs.
	other := http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"DELETE"}}
	if r := f.preflight(other, "/v1beta/webhooks/"+hook.str("id")); r.status != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", r.status, r.header)
	}
	if r := f.callWith(f.key, http.Header{"Origin": {"https://evil.example"}}, "GET", "/v1beta/webhooks", nil); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a call from another origin: %v", r.header)
	}
	// The unversioned routes are not CORS resources.
	for _, p := range []string{"/metrics", "/healthz"} {
		if r := f.bare("GET", origin, p); r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s from %s: %v", p, app, r.header)
		}
	}
}

// TestCORSAnyOrigin: "*" allows every origin with the wildcard itself (a
// browser then sends no credentials with the request); no origins at all
// turns CORS off, and a preflight is an OPTIONS the API does not serve.
func TestCORSAnyOrigin(t *testing.T) {
	t.Parallel()
	anyOrigin := setup(t, func(d *api.Deps) { d.CORSOrigins = []string{"*"} })
	r := anyOrigin.preflight(http.Header{"Origin": {"http://localhost:3000"}, "Access-Control-Request-Method": {"GET"}}, "/v1/webhooks")
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight with *: %d %v", r.status, r.header)
	}
	off := setup(t)
	r = off.preflight(http.Header{"Origin": {"http://localhost:3000"}, "Access-Control-Request-Method": {"GET"}}, "/v1/webhooks")
	if r.status == http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight without CORS: %d %v", r.status, r.header)
	}
	if r := off.callWith(off.key, http.Header{"Origin": {"http://localhost:3000"}}, "GET", "/v1/webhooks", nil); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a call without CORS: %v", r.header)
	}
}

// preflight sends a browser's CORS preflight: OPTIONS with header, no key.
func (f *fixture) preflight(header http.Header, path string) *response {
	f.t.Helper()
	return f.bare("OPTIONS", header, path)
}

// bare sends a request without a key or body and reads the status and
// headers only (the answer need not be JSON).
func (f *fixture) bare(method string, header http.Header, path string) *response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header = header.Clone()
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	return &response{status: resp.StatusCode, header: resp.Header}
}
