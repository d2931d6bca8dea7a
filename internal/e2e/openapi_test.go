package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/longhook/longhook/docs"
	"github.com/longhook/longhook/webhook"
)

// The e2e traffic of the client commands goes through a reverse proxy that
// validates every request and response against docs/openapi.json with
// kin-openapi's openapi3filter. It finds the operation itself: the
// document's paths are Google-style ("/v1/webhooks/{id}:ping"), where a
// parameter never holds '/' or ':', which is easy to match exactly.

// openapiDoc is docs/openapi.json, loaded and validated once.
var openapiDoc = sync.OnceValues(func() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(docs.OpenAPI)
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(loader.Context)
})

// gatewayDoc is docs/gateway.openapi.json, loaded and validated once.
var gatewayDoc = sync.OnceValues(func() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(docs.GatewayOpenAPI)
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(loader.Context)
})

// docRoute is one operation of the document with its path matcher.
type docRoute struct {
	re     *regexp.Regexp
	names  []string
	path   string
	method string
}

var paramRE = regexp.MustCompile(`\\\{\w+\\\}`)

func docRoutes(doc *openapi3.T) []docRoute {
	var out []docRoute
	for path, item := range doc.Paths.Map() {
		var names []string
		// QuoteMeta escapes the braces: match {name} in its quoted form.
		pattern := paramRE.ReplaceAllStringFunc(regexp.QuoteMeta(path), func(m string) string {
			names = append(names, strings.Trim(m, `\{}`))
			return `([^/:]+)`
		})
		re := regexp.MustCompile("^" + pattern + "$")
		for method := range item.Operations() {
			out = append(out, docRoute{re: re, names: names, path: path, method: method})
		}
	}
	return out
}

// openapiProxy forwards to a serve and validates what passes.
type openapiProxy struct {
	doc    *openapi3.T
	routes []docRoute
	mu     sync.Mutex
	errs   []string
	seen   map[string]bool // operations validated
	// catchAll, when set, is the document's path whose single parameter
	// takes any path no other operation matches (the gateway's intake at
	// its sources' configured paths).
	catchAll string
}

// validatingServer returns the URL of a proxy to target that reports, when
// the test ends, every request or response that does not match the
// document. Requests are checked when the server accepted them (2xx): a
// request it rejected may break the schema on purpose.
func validatingServer(t testing.TB, target string) string {
	t.Helper()
	doc, err := openapiDoc()
	if err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	u, _ := validatingProxy(t, target, &openapiProxy{doc: doc, routes: docRoutes(doc), seen: map[string]bool{}})
	return u
}

// validatingProxy serves p in front of target and returns its URL.
func validatingProxy(t testing.TB, target string, p *openapiProxy) (string, *openapiProxy) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // streams pass through at once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := r.Clone(context.WithoutCancel(r.Context()))
		rec.Body = io.NopCloser(bytes.NewReader(body))
		rp.ModifyResponse = nil
		proxy := *rp
		proxy.ModifyResponse = func(resp *http.Response) error {
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				p.check(rec, body, resp.StatusCode, resp.Header, nil)
				return nil
			}
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			resp.Body = io.NopCloser(bytes.NewReader(data))
			p.check(rec, body, resp.StatusCode, resp.Header, data)
			return nil
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.errs {
			t.Errorf("OpenAPI: %s", e)
		}
		if len(p.seen) == 0 {
			t.Errorf("OpenAPI: no request was validated")
		}
	})
	return srv.URL, p
}

// check validates one exchange; respBody nil skips the response body (a
// stream).
func (p *openapiProxy) check(req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte) {
	path := req.URL.Path
	for _, prefix := range []string{"/", "/upload/", "/download/"} {
		for _, v := range []string{"v1beta/", "v1alpha/"} {
			if strings.HasPrefix(path, prefix+v) {
				path = prefix + "v1/" + strings.TrimPrefix(path, prefix+v)
			}
		}
	}
	var route *docRoute
	var params map[string]string
	for i := range p.routes {
		r := &p.routes[i]
		if r.method != req.Method {
			continue
		}
		if m := r.re.FindStringSubmatch(path); m != nil {
			route, params = r, map[string]string{}
			for j, n := range r.names {
				params[n] = m[j+1]
			}
			break
		}
	}
	if route == nil && p.catchAll != "" && req.Method == http.MethodPost {
		for i := range p.routes {
			if r := &p.routes[i]; r.path == p.catchAll && r.method == req.Method {
				route, params = r, map[string]string{r.names[0]: strings.TrimPrefix(path, "/")}
			}
		}
	}
	what := req.Method + " " + req.URL.Path
	if route == nil {
		p.fail("%s: no operation in the document", what)
		return
	}
	item := p.doc.Paths.Value(route.path)
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params,
		Route:   &routers.Route{Spec: p.doc, Path: route.path, PathItem: item, Method: route.method, Operation: item.GetOperation(route.method)},
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true},
	}
	ctx := context.Background()
	if status/100 == 2 {
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			p.fail("%s request: %v", what, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: respBody == nil}}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		p.fail("%s response %d: %v", what, status, err)
	}
	p.mu.Lock()
	p.seen[route.method+" "+route.path] = true
	p.mu.Unlock()
}

func (p *openapiProxy) fail(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, fmt.Sprintf(format, args...))
}

// TestOpenAPIDocumentLoads: kin-openapi loads and validates the document.
func TestOpenAPIDocumentLoads(t *testing.T) {
	t.Parallel()
	doc, err := openapiDoc()
	if err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	var ops []string
	for _, r := range docRoutes(doc) {
		ops = append(ops, r.method+" "+r.path)
	}
	sort.Strings(ops)
	if len(ops) < 40 {
		t.Fatalf("only %d operations: %v", len(ops), ops)
	}
}

// TestOpenAPIValidatesAPITraffic: requests of the API itself (not only
// the client commands' ones) and their answers match docs/openapi.json —
// the extensions' fields (rate_limit, trace_propagation, retry_schedule) on webhooks and
// webhook_config, the admin routes, the jobs routes and the Interactions
// API's error envelope, whose code is the status name.
func TestOpenAPIValidatesAPITraffic(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	c := &apiClient{base: func() string { return validatingServer(t, s.URL()) }, key: s.APIKey, hc: newHTTPClient(t, 30*time.Second)}
	base := c.base()
	c.base = func() string { return base }
	ok := func(method, path string, in any) map[string]any {
		t.Helper()
		var out map[string]any
		c.call(t, method, path, in, &out)
		return out
	}
	fails := func(status int, method, path string, in any) {
		t.Helper()
		got, raw, err := c.do(context.Background(), method, path, in, nil)
		if err != nil || got != status {
			t.Fatalf("%s %s: %d %v %s, want %d", method, path, got, err, raw, status)
		}
	}
	w := ok("POST", "/v1beta/webhooks", map[string]any{"name": "x", "uri": "http://127.0.0.1:9/h",
		"subscribed_events": []string{"batch.succeeded"}, "rate_limit": map[string]any{"per_second": 5, "burst": 2}, "trace_propagation": true,
		"retry_schedule": []string{"5s", "1.5s"}})
	id, _ := w["id"].(string)
	ok("GET", "/v1beta/webhooks/"+id, nil)
	ok("PATCH", "/v1beta/webhooks/"+id, map[string]any{"rate_limit": nil, "trace_propagation": false})
	ok("PATCH", "/v1beta/webhooks/"+id+"?update_mask=retry_schedule", map[string]any{"retry_schedule": []string{"0.25s"}})
	ok("PATCH", "/v1beta/webhooks/"+id, map[string]any{"retry_schedule": nil})
	ok("GET", "/v1beta/webhooks", nil)
	ev := ok("POST", "/v1beta/events", map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/1"},
		"webhook_config": map[string]any{"uris": []string{"http://127.0.0.1:9/d"}, "rate_limit": map[string]any{"per_second": 1}, "trace_propagation": true}})
	evID, _ := ev["id"].(string)
	ok("GET", "/v1beta/events/"+evID, nil)
	// A repeated idempotency key: Idempotent-Replayed, and "replayed" in a batch.
	keyed := map[string]any{"type": "batch.succeeded", "idempotency_key": "openapi-1"}
	ok("POST", "/v1beta/events", keyed)
	ok("POST", "/v1beta/events", keyed)
	ok("POST", "/v1beta/events:batchPublish", map[string]any{"events": []any{keyed, map[string]any{"type": "batch.succeeded"}}})
	ok("POST", "/v1beta/events:batchPublish", map[string]any{"events": []any{keyed}})
	ok("GET", "/v1beta/events", nil)

	p := ok("POST", "/v1beta/projects", map[string]any{"name": "second"})
	pid, _ := p["id"].(string)
	k := ok("POST", "/v1beta/projects/"+pid+"/keys", map[string]any{"name": "k"})
	kid, _ := k["id"].(string)
	ok("GET", "/v1beta/projects/"+pid+"/keys", nil)
	ok("POST", "/v1beta/keys/"+kid+":revoke", nil)

	ok("POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", map[string]any{"batch": map[string]any{"displayName": "d",
		"inputConfig": map[string]any{"requests": map[string]any{"requests": []any{map[string]any{"request": map[string]any{
			"contents": []any{map[string]any{"parts": []any{map[string]any{"text": "hi"}}}}}}}}}}})
	ok("GET", "/v1beta/batches", nil)
	in := ok("POST", "/v1beta/interactions", map[string]any{"model": "gemini-2.5-flash", "input": "hello"})
	inID, _ := in["id"].(string)
	ok("GET", "/v1beta/interactions/"+inID, nil)
	fails(http.StatusNotFound, "GET", "/v1beta/interactions/nope", nil)
	fails(http.StatusNotFound, "GET", "/v1beta/webhooks/nope", nil)
}

// TestGatewayOpenAPIValidatesTraffic: the gateway's requests and answers
// match docs/gateway.openapi.json — intake (stored, duplicate, forged,
// unsigned, wrong method, unknown source), the listen stream with and
// without its token, and the health routes — and every operation the
// document names is exercised, so a documented route the gateway does not
// serve fails here too.
func TestGatewayOpenAPIValidatesTraffic(t *testing.T) {
	t.Parallel()
	doc, err := gatewayDoc()
	if err != nil {
		t.Fatalf("docs/gateway.openapi.json: %v", err)
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	rcv := newReceiver(t, nil)
	const token = "gateway-openapi-listen-token-0123456789"
	gw := startGateway(t, func(string) string {
		return fmt.Sprintf("shutdown_timeout: 2s\nsources:\n  - name: src\n    path: /hooks/src\n    verify:\n      hmac_secrets: [%q]\n"+
			"    listen_tokens: [%q]\n    sinks:\n      - name: app\n        http: {url: %q}\n", secret, token, rcv.URL("/sink"))
	})
	p := &openapiProxy{doc: doc, routes: docRoutes(doc), seen: map[string]bool{}, catchAll: "/{source_path}"}
	base, _ := validatingProxy(t, gw.URL, p)
	hc := newHTTPClient(t, 30*time.Second)
	send := func(method, path string, header map[string]string, body string, want int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != want {
			raw, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, raw, want)
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			_, _ = io.Copy(io.Discard, resp.Body)
		}
	}
	sec, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"type":"batch.succeeded","data":{"id":"batches/1"}}`
	now := time.Now()
	signed := map[string]string{"Content-Type": "application/json", "webhook-id": "msg_openapi1",
		"webhook-timestamp": strconv.FormatInt(now.Unix(), 10), "webhook-signature": webhook.Sign(sec, "msg_openapi1", now, []byte(body))}
	send("POST", "/hooks/src", signed, body, http.StatusOK)
	send("POST", "/hooks/src", signed, body, http.StatusOK) // a duplicate
	forged := maps.Clone(signed)
	forged["webhook-signature"] = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	send("POST", "/hooks/src", forged, body, http.StatusUnauthorized)
	send("POST", "/hooks/src", map[string]string{"Content-Type": "application/json"}, body, http.StatusUnauthorized)
	send("POST", "/hooks/none", signed, body, http.StatusNotFound)
	send("GET", "/healthz", nil, "", http.StatusOK)
	send("GET", "/readyz", nil, "", http.StatusOK)
	send("GET", "/metrics", nil, "", http.StatusOK)
	send("GET", "/openapi.json", nil, "", http.StatusOK)
	send("GET", "/_longhook/listen/src", nil, "", http.StatusUnauthorized)
	send("GET", "/_longhook/listen/src?after=0", map[string]string{"Authorization": "Bearer " + token}, "", http.StatusOK)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.routes {
		if !p.seen[r.method+" "+r.path] {
			t.Errorf("docs/gateway.openapi.json: %s %s was not exercised (or the gateway does not serve it)", r.method, r.path)
		}
	}
}
