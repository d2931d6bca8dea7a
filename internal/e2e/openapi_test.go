package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/longhook/longhook/docs"
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
	p := &openapiProxy{doc: doc, routes: docRoutes(doc), seen: map[string]bool{}}
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
	return srv.URL
}

// check validates one exchange; respBody nil skips the response body (a
// stream).
func (p *openapiProxy) check(req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte) {
	path := req.URL.Path
	for _, v := range []string{"/v1beta/", "/v1alpha/"} {
		if strings.HasPrefix(path, v) {
			path = "/v1/" + strings.TrimPrefix(path, v)
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
