// Package api serves longhook's whole HTTP API: the Gemini-compatible
// WebhookService, the Batch, Files, video and Interactions APIs (over the
// domain services of internal/jobs), the publish, deliveries, listen and
// admin extensions, and the health endpoints (docs/contract.md §1–§7).
//
// routes.go lists every route. Conventions that hold for all of them:
//
//   - Every API route is served under /v1, /v1beta and /v1alpha, and every
//     request under those prefixes is authenticated first (x-goog-api-key
//     header or ?key=), as are file transfers under /upload/{v} and
//     /download/{v} (an upload session URL is its own credential).
//   - Custom methods use Google's ":verb" suffix on the last path segment,
//     which ServeMux cannot split on, so those routes dispatch by hand.
//   - Responses are always JSON: results are 200 (an empty result is {}),
//     errors use the Google envelope through the one table in errors.go.
//   - Request bodies are size-limited, snake_case, and unknown fields are
//     rejected; so are query parameters a route does not declare beside
//     it in routes.go, but Google's system parameters (query.go).
package api

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
	"github.com/longhook/longhook/internal/publish"
	"github.com/longhook/longhook/internal/telemetry"
)

// Deps are the server's dependencies. Store and Cipher are required; every
// other field has a default, filled by withDefaults.
type Deps struct {
	// Store is the persistence layer (required).
	Store core.Store
	// Publisher accepts events for POST /{v}/events and ping. Default: a
	// publisher over Store with Catalog, Clock and Policy.
	Publisher *publish.Publisher
	// Catalog is the set of subscribable event types. Default: the
	// built-in catalog.
	Catalog *core.Catalog
	// Cipher seals signing secrets before they reach the store (required).
	Cipher core.Cipher
	// Policy validates destination URIs. The zero value is production:
	// https and public addresses only.
	Policy core.AddressPolicy
	// Clock stamps resources. Default: core.SystemClock.
	Clock core.Clock
	// TimeScale divides the API's own periods (--time-scale): the 24 h
	// during which rotated signing secrets stay valid. Default 1.
	TimeScale float64
	// Logger receives one debug line per request and internal errors; it
	// never receives secrets, API keys or bodies. Default: discard.
	Logger *slog.Logger
	// PageTokenKey is the HMAC key for page tokens. Default: 32 random
	// bytes, so tokens do not survive a restart nor work across instances;
	// set it when several instances serve one database.
	PageTokenKey []byte
	// Ready reports readiness for /readyz. Default: always ready.
	Ready func() bool
	// Degraded, when set, says why the server cannot take writes (a full
	// disk, say) even though it is up: /readyz answers 503 with it as
	// the reason while it returns a non-empty string.
	Degraded func() string
	// Metrics serves GET /metrics when set.
	Metrics http.Handler
	// JWKS serves GET /.well-known/jwks.json (no auth) when set.
	JWKS http.Handler
	// Jobs serves batches, operations, video, interactions and files
	// (routes.go). Nil leaves those routes out.
	Jobs *jobs.Service
	// PublicURL is the server's external base URL, used in upload session
	// URLs and file URIs. Default: derived from each request's Host.
	PublicURL string
	// CORSOrigins are the web origins whose pages may call the API from a
	// browser ("https://app.example.com"; "*" for any): cors.go. Empty:
	// none (no CORS headers; a preflight is 403).
	CORSOrigins []string
	// Console, when set, builds the operator console mounted at /console/
	// from this server's handler (the console makes its changes through
	// it). The console authenticates its own requests.
	Console func(api http.Handler) http.Handler
	// MaxBodyBytes limits management request bodies. Default: 1 MiB.
	MaxBodyBytes int64
	// MaxBatchBodyBytes limits a batch create request, which may carry its
	// requests inline. Default: 20 MiB.
	MaxBatchBodyBytes int64
	// MaxPublishBodyBytes limits POST /{v}/events and
	// /{v}/events:batchPublish bodies. Default: 16 MiB.
	MaxPublishBodyBytes int64
	// KeyCacheTTL is how long an authenticated API key is cached in memory
	// (every publish is authenticated). A key revoked elsewhere (another
	// instance, the CLI) keeps working here for up to this long; revoking
	// through this server's API takes effect at once. Default: 2 s;
	// negative disables the cache.
	KeyCacheTTL time.Duration
	// StreamRecheck is how often an open stream (a webhook's :listen,
	// deliveries:stream) looks its API key up again, and the webhook of a
	// listen stream: a stream closes within this long after its key is
	// revoked or its webhook deleted. Default: 2 s.
	StreamRecheck time.Duration
	// MaxStreamsPerKey caps the streams one API key holds open at once on
	// this server; one more is refused with 429 RESOURCE_EXHAUSTED.
	// Default: 8.
	MaxStreamsPerKey int
}

const (
	defaultMaxBodyBytes        = 1 << 20
	defaultMaxPublishBodyBytes = 16 << 20
	defaultMaxBatchBodyBytes   = 20 << 20
	defaultKeyCacheTTL         = 2 * time.Second
	keyCacheSize               = 1024
	defaultStreamRecheck       = 2 * time.Second
	defaultMaxStreamsPerKey    = 8
)

// withDefaults returns d with every optional field filled.
func (d Deps) withDefaults() Deps {
	if d.Clock == nil {
		d.Clock = core.SystemClock{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Catalog == nil {
		c, err := core.NewCatalog()
		if err != nil {
			panic("api: built-in catalog: " + err.Error())
		}
		d.Catalog = c
	}
	if d.Publisher == nil && d.Store != nil {
		d.Publisher = publish.New(publish.Config{Store: d.Store, Catalog: d.Catalog, Clock: d.Clock, Policy: d.Policy})
	}
	if len(d.PageTokenKey) == 0 {
		d.PageTokenKey = make([]byte, 32)
		_, _ = rand.Read(d.PageTokenKey)
	}
	if d.Ready == nil {
		d.Ready = func() bool { return true }
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = defaultMaxBodyBytes
	}
	if d.MaxPublishBodyBytes <= 0 {
		d.MaxPublishBodyBytes = defaultMaxPublishBodyBytes
	}
	if d.TimeScale < 1 {
		d.TimeScale = 1
	}
	if d.MaxBatchBodyBytes <= 0 {
		d.MaxBatchBodyBytes = defaultMaxBatchBodyBytes
	}
	if d.KeyCacheTTL == 0 {
		d.KeyCacheTTL = defaultKeyCacheTTL
	}
	if d.StreamRecheck <= 0 {
		d.StreamRecheck = defaultStreamRecheck
	}
	if d.MaxStreamsPerKey <= 0 {
		d.MaxStreamsPerKey = defaultMaxStreamsPerKey
	}
	return d
}

// validate reports missing required dependencies.
func (d Deps) validate() error {
	var errs []error
	if d.Store == nil {
		errs = append(errs, errors.New("api: Deps.Store is required"))
	}
	if d.Cipher == nil {
		errs = append(errs, errors.New("api: Deps.Cipher is required"))
	}
	return errors.Join(errs...)
}

// server is the API's http.Handler.
type server struct {
	d Deps
	// The store as each handler group sees it: narrow interfaces declared
	// in the files that use them.
	apiKeys    keyLookup
	projects   projectStore
	hooks      webhookStore
	deliveries deliveryStore
	events     eventStore

	mux    *http.ServeMux
	keys   *keyCache
	tokens pageTokens
	// streams counts the open streams of each API key.
	streams *streamGate
	// registered is every route routes registered (see Routes).
	registered []Route
	// idRoutes are the mux patterns whose last segment is the {id}
	// wildcard, with what each serves there (see allowed).
	idRoutes map[string]idRoute
}

// idRoute is what a route ending in {id} serves in that segment: a bare id
// (GET /webhooks/{id}) and the ":verb" suffixes it dispatches
// (POST /webhooks/{id}:ping, GET /files/{id}:download).
type idRoute struct {
	bare  bool
	verbs []string
}

// NewServer returns the API handler. It panics if a required dependency
// (Store, Cipher) is missing: that is a wiring bug, not a runtime condition.
// Server timeouts are the caller's job; body limits are set here.
func NewServer(d Deps) http.Handler {
	if err := d.validate(); err != nil {
		panic(err)
	}
	d = d.withDefaults()
	s := &server{
		d:       d,
		mux:     http.NewServeMux(),
		keys:    newKeyCache(d.KeyCacheTTL, keyCacheSize),
		tokens:  pageTokens{key: d.PageTokenKey},
		streams: &streamGate{max: d.MaxStreamsPerKey, open: map[string]int{}},

		apiKeys: d.Store, projects: d.Store, hooks: d.Store, deliveries: d.Store, events: d.Store,
	}
	s.routes(s.mux)
	return s
}

// scaled returns a period of the API compressed by Deps.TimeScale.
func (s *server) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) / s.d.TimeScale)
}

// apiVersions are the path prefixes every API route is served under.
var apiVersions = []string{"v1", "v1beta", "v1alpha"}

// needsKey reports whether a request must carry an API key: every path
// under a version prefix, and the file transfer paths (/upload/{v}/...,
// /download/{v}/...) except an upload session URL (?upload_id=), which is
// its own credential, as with Google's resumable uploads.
func needsKey(r *http.Request) bool {
	p := routePath(r)
	if rest, ok := strings.CutPrefix(p, "/upload"); ok && versioned(rest) {
		return r.URL.Query().Get("upload_id") == ""
	}
	if rest, ok := strings.CutPrefix(p, "/download"); ok && versioned(rest) {
		return true
	}
	return versioned(p)
}

// routePath is the path as ServeMux matches it: the escaped path (an
// encoded slash stays inside its segment, "..%2f" is no parent step),
// cleaned. The auth gate and the choice of error shape read it, so no
// spelling of a path is judged differently from how it is routed.
func routePath(r *http.Request) string { return cleanPath(r.URL.EscapedPath()) }

// cleanPath is path.Clean("/" + p) without the concatenation when p is
// rooted already (as every request's path is): Clean collapses the double
// slash anyway, and returns a clean path without allocating.
func cleanPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return path.Clean(p)
}

// versioned reports whether path is under an API version prefix.
func versioned(p string) bool {
	// Clean as ServeMux does before it matches (it redirects unclean
	// paths), so no spelling of a path reaches a route unauthenticated.
	p = cleanPath(p)
	for _, v := range apiVersions {
		if rest, ok := strings.CutPrefix(p, "/"+v); ok && (rest == "" || rest[0] == '/') {
			return true
		}
	}
	return false
}

// statusRecorder remembers the status code for the request log line.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush keeps streaming handlers (listen) that assert http.Flusher
// working.
func (r *statusRecorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// ServeHTTP authenticates versioned requests, then dispatches. It logs one
// debug line per request: method, route pattern (never the raw URL, which
// may carry ?key=), status, duration and project.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	var project string
	if telemetry.Enabled() {
		var span trace.Span
		r, span = s.startSpan(r)
		defer func() { endSpan(span, r, rec.status, project) }()
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.d.Logger.LogAttrs(r.Context(), slog.LevelError, "api.panic",
				slog.String("method", r.Method), slog.String("route", r.Pattern), slog.Any("panic", v))
			if rec.status == 0 {
				WriteError(rec, r, s.d.Logger, errors.New("panic"))
			}
		}
		s.d.Logger.LogAttrs(r.Context(), slog.LevelDebug, "api.request",
			slog.String("method", r.Method), slog.String("route", r.Pattern),
			slog.Int("status", rec.status), slog.Duration("duration", time.Since(start)),
			slog.String("project", project))
	}()
	if s.cors(rec, r) {
		return // a preflight, answered
	}
	if needsKey(r) {
		key, err := s.authenticate(r)
		if err == nil {
			key, err = s.actAs(r, key)
		}
		if err != nil {
			WriteError(rec, r, s.d.Logger, err)
			return
		}
		project = key.ProjectID
		r = r.WithContext(context.WithValue(r.Context(), keyContextKey{}, key))
	}
	s.mux.ServeHTTP(rec, r)
}

// apiFunc is an API method: it returns the response object (nil means {})
// or an error for the error table.
type apiFunc func(r *http.Request, key core.APIKey) (any, error)

// api adapts an apiFunc to http.Handler with a body limit.
func (s *server) api(limit int64, fn apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := KeyFromContext(r.Context())
		if !ok {
			// Unreachable: ServeHTTP authenticates every versioned path.
			WriteError(w, r, s.d.Logger, errorf(core.ErrUnauthenticated, "Request is missing a valid API key."))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if err := decodeContent(w, r, limit); err != nil {
			WriteError(w, r, s.d.Logger, err)
			return
		}
		res, err := fn(r, key)
		if err != nil {
			WriteError(w, r, s.d.Logger, err)
			return
		}
		if rp, ok := res.(replayer); ok && rp.replayed() {
			// Set by hand, as WriteJSON sets its headers: no allocation.
			w.Header()[replayedHeader] = replayedTrue
		}
		WriteJSON(w, http.StatusOK, res)
	})
}

// admin restricts fn to admin keys.
func admin(fn apiFunc) apiFunc {
	return func(r *http.Request, key core.APIKey) (any, error) {
		if !key.Admin {
			return nil, errorf(core.ErrPermissionDenied, "This method requires an admin API key.")
		}
		return fn(r, key)
	}
}

// verbs dispatches a "{id}:verb" path segment (the wildcard named id) to
// the apiFunc registered for the verb, with the bare id in PathValue("id").
// A segment without a known verb is 404.
func verbs(table map[string]apiFunc) apiFunc {
	return func(r *http.Request, key core.APIKey) (any, error) {
		id, verb, _ := strings.Cut(r.PathValue("id"), ":")
		fn, ok := table[verb]
		if !ok || id == "" {
			return nil, errorf(core.ErrNotFound, "Method %s %s not found.", r.Method, r.URL.Path)
		}
		r.SetPathValue("id", id)
		return fn(r, key)
	}
}

// noVerb rejects "{id}:verb" segments on methods that take a plain id
// (GET/PATCH/DELETE), which would otherwise look like ids.
func noVerb(fn apiFunc) apiFunc {
	return func(r *http.Request, key core.APIKey) (any, error) {
		if strings.Contains(r.PathValue("id"), ":") {
			return nil, errorf(core.ErrNotFound, "Method %s %s not found.", r.Method, r.URL.Path)
		}
		return fn(r, key)
	}
}

// notFound answers every request no route matches: 405 Method Not
// Allowed with an Allow header when the path is served with other methods
// (RFC 9110 section 15.5.6), else 404 NOT_FOUND.
func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	if allow := s.allowed(r); len(allow) > 0 {
		s.methodNotAllowed(w, r, allow)
		return
	}
	WriteError(w, r, s.d.Logger, errorf(core.ErrNotFound, "Method %s %s not found.", r.Method, r.URL.Path))
}

// probeMethods are the methods the API's routes use, in Allow order.
var probeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowed returns the methods other than r's that serve r's path. A route
// ending in {id} counts only for what it serves in that segment: a ":verb"
// route for its own verbs (POST on a plain resource path is an unknown
// custom method), a plain route for a bare id (GET on "{id}:ping" is not
// a get of the webhook "x:ping"). A ':' in an earlier segment is never
// served: no route has a verb or a colon in an id there.
func (s *server) allowed(r *http.Request) []string {
	var allow []string
	cut := strings.LastIndexByte(r.URL.Path, '/')
	if strings.Contains(r.URL.Path[:cut+1], ":") {
		return nil
	}
	last := r.URL.Path[cut+1:]
	for _, m := range probeMethods {
		if m == r.Method {
			continue
		}
		probe := *r
		probe.Method = m
		_, pattern := s.mux.Handler(&probe)
		if pattern == "" || pattern == "/" || !s.serves(pattern, last) {
			continue
		}
		allow = append(allow, m)
	}
	return allow
}

// serves reports whether the route registered as pattern answers a path
// whose last segment is last (anything but a 404 of the path itself).
func (s *server) serves(pattern, last string) bool {
	route, ok := s.idRoutes[pattern]
	if !ok {
		return true
	}
	id, verb, hasVerb := strings.Cut(last, ":")
	switch {
	case id == "":
		return false
	case !hasVerb:
		return route.bare
	default:
		return slices.Contains(route.verbs, verb)
	}
}

// methodNotAllowed answers 405 with the Allow header (errMethodNotAllowed).
func (s *server) methodNotAllowed(w http.ResponseWriter, r *http.Request, allow []string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	WriteError(w, r, s.d.Logger, errorf(errMethodNotAllowed, "Method %s is not allowed on %s; it takes %s.", r.Method, r.URL.Path, strings.Join(allow, ", ")))
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.d.Ready() {
		WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	if s.d.Degraded != nil {
		if why := s.d.Degraded(); why != "" {
			WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": why})
			return
		}
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
