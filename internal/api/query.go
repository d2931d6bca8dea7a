package api

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/longhook/longhook/internal/core"
)

// systemParams are the query parameters every method takes: Google's
// system parameters (https://cloud.google.com/apis/docs/system-parameters:
// the API key, the response format, field masks, JSONP, quota
// attribution, the error format) and the upload parameters of its
// discovery documents. The server reads key (auth.go), alt (files.go),
// uploadType and upload_protocol (uploads.go) and ignores the others, as
// any client library may send them.
var systemParams = []string{
	"key", "access_token",
	"alt", "$alt",
	"fields", "$fields",
	"prettyPrint", "$prettyPrint",
	"callback", "$callback",
	"quotaUser", "$quotaUser",
	"$.xgafv",
	"upload_protocol", "uploadType",
}

// params declares the query parameters one route takes besides the system
// parameters, by the ":verb" of the path's last segment ("" for a path
// without one). routes.go declares them beside each route; takesQuery
// checks them.
type params map[string][]string

// pageParams are a list method's paging parameters, in both spellings: the
// Gemini SDKs send pageSize and pageToken on the files and batches lists,
// page_size and page_token on the webhooks list, as Google's front ends
// bind a query parameter by its field's name or its JSON name.
var pageParams = []string{"page_size", "page_token", "pageSize", "pageToken"}

// takesQuery wraps h, the handler of one route, to refuse with 400
// INVALID_ARGUMENT a query the route does not take: a parameter neither
// own (for the request's verb) nor the system takes, or a query string
// that does not parse (url.Values would drop the malformed pair without a
// word). routes.go gives it longhook's own methods only, so that a
// misspelt filter (webhook= for webhook_id=) or an option longhook lacks
// is an error, not an answer that silently ignores it; the Gemini API's
// methods ignore what they do not take, as the live API does. A request
// whose verb own does not list passes through (a Gemini method sharing
// the pattern, or an unknown method its handler answers 404). Without a
// query it costs one comparison (the publish path).
func (s *server) takesQuery(own params, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			_, verb, _ := strings.Cut(r.PathValue("id"), ":")
			if names, ok := own[verb]; ok {
				if err := checkQuery(r.URL.RawQuery, names); err != nil {
					WriteError(w, r, s.d.Logger, err)
					return
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// checkQuery refuses a raw query string that does not parse or names a
// parameter neither own nor the system takes.
func checkQuery(raw string, own []string) error {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return core.Invalid("query", "Invalid query string: %v. Separate parameters with '&' and percent-encode reserved characters.", err)
	}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if slices.Contains(own, name) || slices.Contains(systemParams, name) {
			continue
		}
		takes := "no parameters but the system parameters (key, alt, fields, …)"
		if len(own) > 0 {
			takes = strings.Join(own, ", ") + " and the system parameters (key, alt, fields, …)"
		}
		return core.Invalid(name, "Invalid JSON payload received. Unknown name %q: Cannot bind query parameter. Field '%s' could not be found in request message. This method takes %s.", name, name, takes)
	}
	return nil
}
