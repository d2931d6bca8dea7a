package jobs

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

// apiVersions are the prefixes every route is served under (product.md §1).
var apiVersions = []string{"v1", "v1beta", "v1alpha"}

// Routes registers the jobs and files API on mux (api.Deps.Extra). Routes
// under /{v}/ are authenticated by the API server before they run; the
// upload and download routes (/upload/{v}/files, /download/{v}/files/...)
// are outside those prefixes and authenticate here.
func (s *Service) Routes(mux *http.ServeMux) {
	small, big := s.cfg.MaxBodyBytes, s.cfg.MaxBatchBodyBytes
	for _, v := range apiVersions {
		h := func(method, path string, limit int64, fn apiFunc) {
			mux.Handle(method+" /"+v+path, s.handle(limit, fn))
		}
		// models/{model}:batchGenerateContent and :predictLongRunning.
		h("POST", "/models/{id}", big, s.verbs(map[string]apiFunc{
			"batchGenerateContent": s.createBatch,
			"predictLongRunning":   s.createVideo,
		}))
		h("GET", "/models/{model}/operations/{id}", small, s.noVerb(s.getVideoOperation))

		h("GET", "/batches", small, s.listBatches)
		h("GET", "/batches/{id}", small, s.noVerb(s.getBatch))
		h("DELETE", "/batches/{id}", small, s.noVerb(s.deleteBatch))
		h("POST", "/batches/{id}", small, s.verbs(map[string]apiFunc{"cancel": s.cancelBatch}))

		h("GET", "/operations", small, s.listOperations)
		h("GET", "/operations/{id}", small, s.noVerb(s.getOperation))

		h("GET", "/files", small, s.listFiles)
		h("DELETE", "/files/{id}", small, s.noVerb(s.deleteFile))
		mux.Handle("GET /"+v+"/files/{id}", s.authed(s.getOrDownloadFile))
		mux.Handle("POST /upload/"+v+"/files", s.authedUpload(s.upload))
		mux.Handle("PUT /upload/"+v+"/files", s.authedUpload(s.upload))
		mux.Handle("GET /download/"+v+"/files/{id}", s.authedDownload(s.getOrDownloadFile))

		h("POST", "/interactions", small, s.createInteraction)
		h("GET", "/interactions/{id}", small, s.noVerb(s.getInteraction))
		h("DELETE", "/interactions/{id}", small, s.noVerb(s.deleteInteraction))
		h("POST", "/interactions/{id}", small, s.verbs(map[string]apiFunc{"cancel": s.cancelInteraction}))
		h("POST", "/interactions/{id}/cancel", small, s.noVerb(s.cancelInteraction))
	}
}

// apiFunc is one API method: it returns the response object (nil means {})
// or an error.
type apiFunc func(r *http.Request, key core.APIKey) (any, error)

// handle adapts an apiFunc to an http.Handler with a body limit.
func (s *Service) handle(limit int64, fn apiFunc) http.Handler {
	return s.authed(func(w http.ResponseWriter, r *http.Request, key core.APIKey) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		res, err := fn(r, key)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, res)
	})
}

// authed passes the key the API server authenticated.
func (s *Service) authed(fn func(http.ResponseWriter, *http.Request, core.APIKey)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := api.KeyFromContext(r.Context())
		if !ok {
			s.writeError(w, r, core.ErrUnauthenticated)
			return
		}
		fn(w, r, key)
	})
}

// verbs dispatches "{id}:verb" to the apiFunc of the verb, with the bare
// id in PathValue("id").
func (s *Service) verbs(table map[string]apiFunc) apiFunc {
	return func(r *http.Request, key core.APIKey) (any, error) {
		id, verb, _ := strings.Cut(r.PathValue("id"), ":")
		fn, ok := table[verb]
		if !ok || id == "" {
			return nil, notFoundf("Method %s %s not found.", r.Method, r.URL.Path)
		}
		r.SetPathValue("id", id)
		return fn(r, key)
	}
}

// noVerb rejects "{id}:verb" on methods that take a plain id.
func (s *Service) noVerb(fn apiFunc) apiFunc {
	return func(r *http.Request, key core.APIKey) (any, error) {
		if strings.Contains(r.PathValue("id"), ":") {
			return nil, notFoundf("Method %s %s not found.", r.Method, r.URL.Path)
		}
		return fn(r, key)
	}
}

// apiError is an error with its own Google status and client message.
type apiError struct {
	code   int
	status string
	msg    string
}

// Error returns the client message.
func (e *apiError) Error() string { return e.msg }

func notFoundf(format string, args ...any) error {
	return &apiError{http.StatusNotFound, "NOT_FOUND", fmt.Sprintf(format, args...)}
}

// preconditionf is FAILED_PRECONDITION (400): the resource's state does
// not allow the call. Never 409, which the SDKs retry.
func preconditionf(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "FAILED_PRECONDITION", fmt.Sprintf(format, args...)}
}

// orNotFound replaces the store's ErrNotFound with a message naming what.
func orNotFound(err error, what string) error {
	if errors.Is(err, core.ErrNotFound) {
		return notFoundf("%s was not found.", what)
	}
	return err
}

// writeError answers err in the Google error envelope.
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		api.WriteJSON(w, ae.code, map[string]any{"error": map[string]any{"code": ae.code, "message": ae.msg, "status": ae.status}})
		return
	}
	api.WriteError(w, r, s.log, err)
}

// pageParams reads pageSize/page_size and pageToken/page_token: default
// 50, at most 1000. The token is an opaque cursor (the last id of the
// previous page); every query is scoped to the caller's project, so a
// forged token can only skip within the caller's own resources.
func pageParams(r *http.Request) (size int, cursor string, err error) {
	q := r.URL.Query()
	size = 50
	if v := firstNonEmpty(q.Get("pageSize"), q.Get("page_size")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, "", core.Invalid("page_size", "page_size must be a non-negative integer, not %q", v)
		}
		if n > 0 {
			size = min(n, 1000)
		}
	}
	if tok := firstNonEmpty(q.Get("pageToken"), q.Get("page_token")); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || !strings.HasPrefix(string(b), "after:") {
			return 0, "", core.Invalid("page_token", "page_token is not a token returned by a previous list call")
		}
		cursor = strings.TrimPrefix(string(b), "after:")
	}
	return size, cursor, nil
}

// nextToken returns the token of the page after lastID.
func nextToken(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("after:" + lastID))
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// apiBase is the external URL of the version prefix the request used, e.g.
// "http://127.0.0.1:8080/v1beta" (PublicURL when configured, else the
// request's scheme and Host).
func (s *Service) apiBase(r *http.Request, version string) string {
	base := strings.TrimSuffix(s.cfg.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + "/" + version
}

// versionOf returns the version prefix of a request path ("v1beta"), for
// /v1beta/..., /upload/v1beta/... and /download/v1beta/....
func versionOf(path string) string {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for _, p := range parts[:min(2, len(parts))] {
		for _, v := range apiVersions {
			if p == v {
				return v
			}
		}
	}
	return "v1beta"
}

// timestamp renders a time the way Google APIs do (RFC 3339, UTC, with
// nanoseconds when present); the zero time is omitted by callers.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// wireWebhookConfig is webhook_config as clients send it: lowerCamel
// (batches, video) or snake_case (interactions, and tolerated everywhere).
type wireWebhookConfig struct {
	URIs          []string        `json:"uris"`
	UserMetadata  json.RawMessage `json:"userMetadata"`
	UserMetadataS json.RawMessage `json:"user_metadata"`
	Audience      string          `json:"audience"`
}

// config validates c under field and returns the core form (nil for nil).
func (s *Service) config(field string, c *wireWebhookConfig) (*core.WebhookConfig, error) {
	if c == nil {
		return nil, nil
	}
	meta := c.UserMetadata
	if len(c.UserMetadataS) > 0 {
		if len(meta) > 0 {
			return nil, core.Invalid(field, "%s: set user_metadata or userMetadata, not both", field)
		}
		meta = c.UserMetadataS
	}
	if string(meta) == "null" {
		meta = nil
	}
	cfg := &core.WebhookConfig{URIs: c.URIs, UserMetadata: meta, Audience: c.Audience}
	if err := s.cfg.Policy.ValidateWebhookConfig(field, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// renderWebhookConfig echoes a job's webhook_config in snake_case.
func renderWebhookConfig(c *core.WebhookConfig) map[string]any {
	if c == nil {
		return nil
	}
	m := map[string]any{"uris": c.URIs}
	if len(c.UserMetadata) > 0 {
		m["user_metadata"] = c.UserMetadata
	}
	if c.Audience != "" {
		m["audience"] = c.Audience
	}
	return m
}
