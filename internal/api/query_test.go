package api_test

import (
	"net/http"
	"testing"
)

// TestFiltersRefuseUnknownParameters: the lists and the delivery stream
// filter by their query parameters, so a misspelt filter is 400 naming
// it and the method's parameters; it was ignored, and the answer (or the
// stream) held everything. System parameters (key, alt, …) still pass.
func TestFiltersRefuseUnknownParameters(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("h", "batch.succeeded").str("id")
	for _, c := range []struct{ path, param, takes string }{
		{"/v1/webhooks/" + hook + "/deliveries?state=failed", "state", "status, event_type, since, until, page_size, page_token"},
		{"/v1/events?event_type=batch.failed", "event_type", "type, page_size, page_token"},
		{"/v1/deliveries:stream?webhook=" + hook, "webhook", "webhook_id, event_type"},
	} {
		f.call("GET", c.path, nil).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT",
			`unknown query parameter "`+c.param+`"`, "this method takes "+c.takes)
	}
	f.call("GET", "/v1/webhooks/"+hook+"/deliveries?status=failed&alt=json&prettyPrint=false", nil).must(t, http.StatusOK)
	f.call("GET", "/v1/events?type=batch.succeeded&page_size=5&$.xgafv=2", nil).must(t, http.StatusOK)
}
