package api

import (
	"net/http"
	"slices"
	"strings"
)

// CORS: a web page on another origin may call the API, as it may call
// Google's (the official SDKs' browser builds do), when Deps.CORSOrigins
// allows its origin. The API authenticates by key (a header or ?key=), never
// by cookie, and no answer here allows credentials, so a page can only do
// with the API what the key it holds allows. The console and the
// unversioned routes (health, metrics, JWKS, OpenAPI) are not CORS
// resources: a cross-site page reads nothing of them.

// corsExposed are the response headers a page's script may read: the
// resumable upload's (the SDKs read the session URL and status), a
// repeated publish's, and a 429's or 503's wait.
const corsExposed = "X-Goog-Upload-URL, X-Goog-Upload-Status, X-Goog-Upload-Control-URL, " +
	"X-Goog-Upload-Chunk-Granularity, X-Goog-Upload-Size-Received, Idempotent-Replayed, Retry-After"

// corsMethods are the methods the API serves.
const corsMethods = "GET, POST, PUT, PATCH, DELETE"

// corsMaxAge is how long a browser may keep a preflight's answer (seconds;
// Chromium keeps at most 7,200).
const corsMaxAge = "3600"

// corsResource reports whether path (routePath's) is one of the API's
// CORS resources: a versioned route, an upload or a download.
func corsResource(p string) bool {
	if rest, ok := strings.CutPrefix(p, "/upload"); ok {
		p = rest
	} else if rest, ok := strings.CutPrefix(p, "/download"); ok {
		p = rest
	}
	return versioned(p)
}

// allowedOrigin is the Access-Control-Allow-Origin value for a request from
// origin, or "" when the origin is not allowed.
func (s *server) allowedOrigin(origin string) string {
	if origin == "" || len(s.d.CORSOrigins) == 0 {
		return ""
	}
	if slices.Contains(s.d.CORSOrigins, "*") {
		return "*"
	}
	for _, o := range s.d.CORSOrigins {
		if strings.EqualFold(o, origin) {
			return origin
		}
	}
	return ""
}

// cors answers a preflight (true: the request is done) and adds the CORS
// headers to an API request from an allowed origin. A request from an
// origin that is not allowed gets no CORS header: the browser refuses to
// show its answer to the page (a preflight gets 403 and nothing runs).
func (s *server) cors(w http.ResponseWriter, r *http.Request) (done bool) {
	origin := r.Header.Get("Origin")
	if origin == "" || !corsResource(routePath(r)) {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	allow := s.allowedOrigin(origin)
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if preflight {
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		if allow == "" {
			w.WriteHeader(http.StatusForbidden)
			return true
		}
		h.Set("Access-Control-Allow-Origin", allow)
		h.Set("Access-Control-Allow-Methods", corsMethods)
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			// Any request header: the API ignores those it does not read,
			// as Google's does (the SDKs add x-goog-api-client and more).
			h.Set("Access-Control-Allow-Headers", req)
		}
		h.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	if allow != "" {
		h.Set("Access-Control-Allow-Origin", allow)
		h.Set("Access-Control-Expose-Headers", corsExposed)
	}
	return false
}
