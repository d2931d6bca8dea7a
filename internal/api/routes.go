package api

import (
	"net/http"
	"strings"

	"github.com/longhook/longhook/internal/jobs"
	"github.com/longhook/longhook/internal/relay"
)

// routes registers the whole API. Every API route exists under /v1,
// /v1beta and /v1alpha; ServeHTTP has authenticated the caller before any
// of them runs. Routes with a ":verb" suffix share one pattern per resource
// and dispatch on the verb by hand (ServeMux cannot split on ':').
//
// Every registration goes through reg (or handle, handleVerbs), which also
// records the route for Routes: the OpenAPI coverage test reads that list.
// Beside each API route stand the query parameters it takes besides the
// system ones (query.go): handle's trailing arguments, or a params by
// verb; takesQuery refuses any other on longhook's own methods. The
// Gemini API's methods (geminiMethods) ignore what they do not take, as
// the live API does. Custom methods (handleVerbs) take none.
func (s *server) routes(mux *http.ServeMux) {
	reg := func(method, path string, h http.Handler) {
		mux.Handle(method+" "+path, h)
		s.registered = append(s.registered, Route{Method: method, Path: path})
	}
	reg("GET", "/healthz", http.HandlerFunc(s.healthz))
	reg("GET", "/readyz", http.HandlerFunc(s.readyz))
	reg("GET", "/openapi.json", http.HandlerFunc(serveOpenAPI))
	if s.d.Metrics != nil {
		reg("GET", "/metrics", s.d.Metrics)
	}
	if s.d.JWKS != nil {
		reg("GET", "/.well-known/jwks.json", s.d.JWKS)
	}
	s.idRoutes = map[string]idRoute{}
	mux.HandleFunc("/", s.notFound)
	if s.d.Console != nil {
		mux.Handle("/console/", s.d.Console(s))
	}

	small, large := s.d.MaxBodyBytes, s.d.MaxPublishBodyBytes
	for i, v := range apiVersions {
		// serve registers h for method on /{v}path, behind takesQuery's
		// check of own, and records the route once, as /{v}/..., with one
		// entry per key of own: the path itself for "", path:verb for a
		// verb sharing the pattern.
		serve := func(method, path string, own params, h http.Handler) {
			strict := params{}
			for verb, names := range own {
				if !geminiMethods[method+" "+recordedPath(path, verb)] {
					strict[verb] = names
				}
			}
			mux.Handle(method+" /"+v+path, s.takesQuery(strict, h))
			if i > 0 {
				return
			}
			for _, verb := range sortedKeys(own) {
				_, refuses := strict[verb]
				s.registered = append(s.registered, Route{Method: method, Path: recordedPath(path, verb), Query: own[verb], Strict: refuses})
			}
		}
		// noteID notes what a route ending in {id} serves there (allowed).
		noteID := func(pattern string, bare bool, verbs ...string) {
			s.idRoutes[pattern] = idRoute{bare: bare, verbs: verbs}
		}
		// handle registers an API method taking the query parameters own.
		handle := func(method, path string, limit int64, fn apiFunc, own ...string) {
			serve(method, path, params{"": own}, s.api(limit, fn))
			if strings.HasSuffix(path, "/{id}") {
				noteID(method+" /"+v+path, true)
			}
		}
		// verbs registers a "{id}:verb" pattern dispatching on the verb.
		handleVerbs := func(method, path string, limit int64, table map[string]apiFunc) {
			own := params{}
			for verb := range table {
				own[verb] = nil // custom methods take no query parameters
			}
			serve(method, path, own, s.api(limit, verbs(table)))
			noteID(method+" /"+v+path, false, sortedKeys(table)...)
		}

		// WebhookService (docs/contract.md §2).
		handle("POST", "/webhooks", small, s.createWebhook)
		handle("GET", "/webhooks", small, s.listWebhooks, pageParams...)
		serve("GET", "/webhooks/{id}", params{"": nil, relay.Verb: {"after"}}, // {id}:listen streams (listen.go)
			s.listenOr(s.api(small, noVerb(s.getWebhook))))
		noteID("GET /"+v+"/webhooks/{id}", true, relay.Verb)
		handle("PATCH", "/webhooks/{id}", small, noVerb(s.updateWebhook), "update_mask")
		handle("DELETE", "/webhooks/{id}", small, noVerb(s.deleteWebhook))
		handleVerbs("POST", "/webhooks/{id}", small, map[string]apiFunc{
			"ping":                s.pingWebhook,
			"rotateSigningSecret": s.rotateSigningSecret,
			"recover":             s.recoverDeliveries, // extension (§7)
		})
		// Alias used by Google's guide.
		handle("POST", "/webhooks/{id}/rotate_secret", small, noVerb(s.rotateSigningSecret))

		// Publish (§7).
		handle("POST", "/events", large, s.publishEvent)
		handle("POST", "/events:batchPublish", large, s.batchPublish)
		handle("GET", "/events", small, s.listEvents, append([]string{"type"}, pageParams...)...)
		handle("GET", "/events/{id}", small, noVerb(s.getEvent))

		// Deliveries (§7).
		handle("GET", "/webhooks/{id}/deliveries", small, noVerb(s.listDeliveries),
			append([]string{"status", "event_type", "since", "until"}, pageParams...)...)
		handle("GET", "/deliveries/{id}", small, noVerb(s.getDelivery))
		handleVerbs("POST", "/deliveries/{id}", small, map[string]apiFunc{
			"redeliver": s.redeliver,
		})
		serve("GET", "/deliveries:stream", params{"": {"webhook_id", "event_type"}}, http.HandlerFunc(s.deliveriesStream)) // tail.go

		// Admin (admin API keys only).
		handle("POST", "/projects", small, admin(s.createProject))
		handle("GET", "/projects", small, admin(s.listProjects))
		handle("POST", "/projects/{id}/keys", small, admin(noVerb(s.createKey)))
		handle("GET", "/projects/{id}/keys", small, admin(noVerb(s.listKeys)))
		handleVerbs("POST", "/keys/{id}", small, map[string]apiFunc{
			"revoke": admin(s.revokeKey),
		})

		if s.d.Jobs == nil {
			continue
		}
		big := s.d.MaxBatchBodyBytes
		// Batches and video (docs/contract.md §11): models/{model}:batchGenerateContent
		// and :predictLongRunning, and their operations.
		handleVerbs("POST", "/models/{id}", big, map[string]apiFunc{
			"batchGenerateContent": s.createBatch,
			"predictLongRunning":   s.createVideo,
		})
		handle("GET", "/models/{model}/operations/{id}", small, noVerb(s.getVideoOperation))
		handle("GET", "/batches", small, s.listBatches, pageParams...)
		handle("GET", "/batches/{id}", small, noVerb(s.getBatch))
		handle("DELETE", "/batches/{id}", small, noVerb(s.deleteBatch))
		handleVerbs("POST", "/batches/{id}", small, map[string]apiFunc{"cancel": s.cancelBatch})
		handle("GET", "/operations", small, s.listOperations, pageParams...)
		handle("GET", "/operations/{id}", small, noVerb(s.getOperation))

		// Files (§11): metadata, bytes (/{v}/files/{id}:download or
		// ?alt=media, /download/{v}/files/{id}) and uploads (/upload/{v}/files;
		// ServeHTTP authenticates both prefixes, files.go and uploads.go).
		handle("GET", "/files", small, s.listFiles, pageParams...)
		handle("DELETE", "/files/{id}", small, noVerb(s.deleteFile))
		serve("GET", "/files/{id}", params{"": nil, "download": nil}, http.HandlerFunc(s.getOrDownloadFile)) // alt=media is a system parameter
		noteID("GET /"+v+"/files/{id}", true, "download")
		mux.HandleFunc("GET /download/"+v+"/files/{id}", s.getOrDownloadFile)
		noteID("GET /download/"+v+"/files/{id}", true, "download")
		// upload_id names a resumable session; uploadType and
		// upload_protocol are system parameters.
		uploadParams := params{"": {"upload_id"}}
		mux.HandleFunc("POST /upload/"+v+"/files", s.upload) // Gemini methods: geminiMethods
		mux.HandleFunc("PUT /upload/"+v+"/files", s.upload)
		if i == 0 {
			s.registered = append(s.registered, Route{Method: "GET", Path: "/download/{v}/files/{id}"},
				Route{Method: "POST", Path: "/upload/{v}/files", Query: uploadParams[""]},
				Route{Method: "PUT", Path: "/upload/{v}/files", Query: uploadParams[""]})
		}

		// Interactions (§11).
		handle("POST", "/interactions", small, s.createInteraction)
		// The SDKs' last_event_id resumes a stream, which stream=true asks for and is refused.
		handle("GET", "/interactions/{id}", small, noVerb(s.getInteraction), "include_input", "stream", "last_event_id")
		handle("DELETE", "/interactions/{id}", small, noVerb(s.deleteInteraction))
		handleVerbs("POST", "/interactions/{id}", small, map[string]apiFunc{"cancel": s.cancelInteraction})
		handle("POST", "/interactions/{id}/cancel", small, noVerb(s.cancelInteraction))
	}
}

// recordedPath is the recorded path of a route registered on /{v}path, with
// ":verb" for a custom method sharing the pattern.
func recordedPath(path, verb string) string {
	if verb == "" {
		return "/{v}" + path
	}
	return "/{v}" + path + ":" + verb
}

// geminiMethods are the routes of the Gemini API itself, as Routes records
// them. They ignore a query parameter they do not take, as the live API
// does (docs/api.md, "Query parameters"): a client written for Google's
// API must not break here on one it adds. longhook's own methods (publish,
// events, deliveries, recovery, projects, keys, listen) refuse it, so that
// a misspelt filter or an option longhook lacks (?dry_run=1) is an error
// instead of acting on everything.
var geminiMethods = map[string]bool{
	"POST /{v}/webhooks": true, "GET /{v}/webhooks": true,
	"GET /{v}/webhooks/{id}": true, "PATCH /{v}/webhooks/{id}": true, "DELETE /{v}/webhooks/{id}": true,
	"POST /{v}/webhooks/{id}:ping": true, "POST /{v}/webhooks/{id}:rotateSigningSecret": true,
	"POST /{v}/webhooks/{id}/rotate_secret":      true,
	"POST /{v}/models/{id}:batchGenerateContent": true, "POST /{v}/models/{id}:predictLongRunning": true,
	"GET /{v}/models/{model}/operations/{id}": true,
	"GET /{v}/batches":                        true, "GET /{v}/batches/{id}": true, "DELETE /{v}/batches/{id}": true,
	"POST /{v}/batches/{id}:cancel": true,
	"GET /{v}/operations":           true, "GET /{v}/operations/{id}": true,
	"GET /{v}/files": true, "GET /{v}/files/{id}": true, "GET /{v}/files/{id}:download": true,
	"DELETE /{v}/files/{id}": true,
	"POST /{v}/interactions": true, "GET /{v}/interactions/{id}": true, "DELETE /{v}/interactions/{id}": true,
	"POST /{v}/interactions/{id}:cancel": true, "POST /{v}/interactions/{id}/cancel": true,
}

// Route is one operation the API serves.
type Route struct {
	// Method is the HTTP method.
	Method string
	// Path is the path pattern. Versioned routes start with "/{v}" (served
	// under /v1, /v1beta and /v1alpha); custom methods end in ":verb".
	Path string
	// Query is the query parameters the route takes besides Google's
	// system parameters (key, alt, fields, …), which every route takes;
	// any other is 400 when Strict. Unversioned routes ignore their query.
	Query []string
	// Strict: the route refuses a query parameter it does not take
	// (longhook's own methods); the Gemini API's methods ignore it.
	Strict bool
}

// Routes lists every route NewServer registers, in registration order, the
// optional ones (/metrics, JWKS, the jobs APIs) included.
func Routes() []Route {
	// The handlers are registered, never called: a zero jobs.Service
	// stands for Deps.Jobs.
	s := &server{d: Deps{Metrics: http.NotFoundHandler(), JWKS: http.NotFoundHandler(), Jobs: &jobs.Service{}}}
	s.routes(http.NewServeMux())
	return s.registered
}
