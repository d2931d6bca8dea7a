package api

import (
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/longhook/longhook/internal/core"
)

// systemParams are the query parameters any method takes (Google's
// system parameters: the key, the response format, field masks, …);
// checkQueryParams adds a method's own to them.
var systemParams = []string{"key", "alt", "fields", "prettyPrint", "$.xgafv", "quotaUser", "access_token", "callback"}

// checkQueryParams refuses a query parameter that neither the method
// (own) nor the system takes. The lists and the stream filter their
// answer by their parameters, so a misspelt one (webhook= for
// webhook_id=) would widen it to everything without a word.
func checkQueryParams(q url.Values, own ...string) error {
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(own, name) && !slices.Contains(systemParams, name) {
			return core.Invalid(name, "unknown query parameter %q; this method takes %s", name, strings.Join(own, ", "))
		}
	}
	return nil
}
