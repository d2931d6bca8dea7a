package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/longhook/longhook/internal/api"
)

// unknownParam is the start of the message of a refused query parameter,
// as Google's front ends word it.
func unknownParam(name string) string {
	return `Invalid JSON payload received. Unknown name "` + name + `": Cannot bind query parameter.`
}

// TestFiltersRefuseUnknownParameters: the lists and the delivery stream
// filter by their query parameters, so a misspelt filter is 400 naming
// it and the method's parameters; it was ignored, and the answer (or the
// stream) held everything. System parameters (key, alt, …) still pass.
func TestFiltersRefuseUnknownParameters(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("h", "batch.succeeded").str("id")
	for _, c := range []struct{ path, param, takes string }{
		{"/v1/webhooks/" + hook + "/deliveries?state=failed", "state", "status, event_type, since, until, page_size, page_token, pageSize, pageToken"},
		{"/v1/events?event_type=batch.failed", "event_type", "type, page_size, page_token, pageSize, pageToken"},
		{"/v1/deliveries:stream?webhook=" + hook, "webhook", "webhook_id, event_type"},
	} {
		f.call("GET", c.path, nil).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT",
			unknownParam(c.param), "This method takes "+c.takes+" and the system parameters")
	}
	f.call("GET", "/v1/webhooks/"+hook+"/deliveries?status=failed&alt=json&prettyPrint=false", nil).must(t, http.StatusOK)
	f.call("GET", "/v1/events?type=batch.succeeded&page_size=5&$.xgafv=2", nil).must(t, http.StatusOK)
}

// TestUnknownParametersByRoute: each of longhook's own API methods
// refuses a query parameter it does not take with 400 INVALID_ARGUMENT
// before it does anything (all but the three filters above ignored it);
// each method of the Gemini API ignores it, as the live API does
// (gemini-reference.md §1), so a client written for Google's API works
// unchanged. The ids in the paths name nothing: a refusal comes first,
// and a Gemini method goes on to its own answer (404, 400 for the body),
// never to the query's refusal.
func TestUnknownParametersByRoute(t *testing.T) {
	t.Parallel()
	f := setup(t, withJobs(t))
	strict, lenient := 0, 0
	for _, rt := range api.Routes() {
		if !strings.HasPrefix(rt.Path, "/{v}/") && !strings.Contains(rt.Path, "/{v}/files") {
			continue
		}
		p := strings.NewReplacer("{v}", "v1beta", "{id}", "x1", "{model}", "m1").Replace(rt.Path)
		var body any
		if rt.Method != http.MethodGet && rt.Method != http.MethodDelete {
			body = "{}"
		}
		for _, key := range []string{f.key, f.admin} {
			// The Interactions API words errors in its own envelope (a
			// string code): read the status and message, which both have.
			r := f.callWith(key, nil, rt.Method, p+"?bogus_param=1&alt=json", body)
			refused := r.status == http.StatusBadRequest && r.errStatus() == "INVALID_ARGUMENT" &&
				strings.Contains(r.errMessage(), unknownParam("bogus_param")+" Field 'bogus_param' could not be found in request message.")
			if refused != rt.Strict {
				t.Errorf("%s %s?bogus_param=1 (strict %v): %d %s", rt.Method, p, rt.Strict, r.status, r.raw)
			}
		}
		if rt.Strict {
			strict++
		} else {
			lenient++
		}
	}
	if strict < 15 || lenient < 25 {
		t.Fatalf("checked %d strict and %d lenient routes, want every API route", strict, lenient)
	}
	// A Gemini method answers as if the parameter were not there.
	hook := f.createWebhook("h", "batch.succeeded").str("id")
	f.call("GET", "/v1/webhooks/"+hook+"?view=FULL&bogus=1", nil).must(t, http.StatusOK)
	f.call("GET", "/v1/webhooks?page_size=5&filter=x", nil).must(t, http.StatusOK)
}

// TestUnknownParameterChangesNothing: a recovery or a publish with a
// parameter it does not take is refused and stores nothing. The publishes
// reach the fast path's listener, which hands a request with a query to
// net/http.
func TestUnknownParameterChangesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("h", "batch.succeeded").str("id")
	f.call("POST", "/v1/webhooks/"+hook+":recover?dryrun=true", map[string]any{"since": "2026-01-01T00:00:00Z"}).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", unknownParam("dryrun"), "This method takes no parameters but the system parameters")
	f.call("POST", "/v1/events?dry_run=true", publishBody).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", unknownParam("dry_run"))
	f.call("POST", "/v1/events:batchPublish?validate_only=true", `{"events":[`+publishBody+`]}`).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", unknownParam("validate_only"))
	if got := f.call("GET", "/v1/events", nil).must(t, http.StatusOK).body["events"]; got != nil {
		t.Fatalf("a refused publish stored %v", got)
	}
	// The system parameters pass on the publish, in both spellings.
	f.call("POST", "/v1/events?key="+url.QueryEscape(f.key)+"&%24alt=json&%24fields=x&quotaUser=u&%24prettyPrint=false", publishBody).must(t, http.StatusOK)
}

// TestQueryStringMustParse: a query string url.ParseQuery refuses (a ';'
// separator, a bad escape) is 400; the malformed pair was dropped without
// a word, a page_size=5;x=1 listed 50 (on longhook's own lists).
func TestQueryStringMustParse(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, q := range []string{"page_size=5;x=1", "page_size=%zz", "%zz=1"} {
		f.call("GET", "/v1/events?"+q, nil).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid query string")
	}
}

// TestSDKQueryParametersPass: every query parameter the official SDKs, the
// client and the console send is taken where they send it (the SDK tests
// in internal/sdktest drive the SDKs themselves).
func TestSDKQueryParametersPass(t *testing.T) {
	t.Parallel()
	f := setup(t, withJobs(t))
	hook := f.createWebhook("h", "batch.succeeded").str("id")
	for _, c := range []struct {
		method, path string
		body         any
		status       int
	}{
		{"GET", "/v1/webhooks?page_size=10&page_token=", nil, http.StatusOK},
		{"PATCH", "/v1/webhooks/" + hook + "?update_mask=state", map[string]any{"state": "disabled"}, http.StatusOK},
		{"GET", "/v1beta/files?pageSize=1&pageToken=", nil, http.StatusOK},
		{"GET", "/v1beta/batches?pageSize=1", nil, http.StatusOK},
		{"GET", "/v1beta/operations?page_size=1", nil, http.StatusOK},
		{"GET", "/v1/events?type=batch.succeeded&pageSize=2&pageToken=", nil, http.StatusOK},
		{"GET", "/v1/webhooks/" + hook + "/deliveries?pageSize=2&since=2026-01-01T00:00:00Z", nil, http.StatusOK},
		{"GET", "/v1beta/interactions/i1?include_input=true&last_event_id=e1&stream=false", nil, http.StatusNotFound},
		{"GET", "/v1beta/files/f1?alt=media", nil, http.StatusNotFound},
		{"GET", "/v1beta/files/f1:download?alt=media", nil, http.StatusNotFound},
		{"GET", "/download/v1beta/files/f1?alt=media", nil, http.StatusNotFound},
		{"GET", "/v1/webhooks?$.xgafv=2&callback=c&$callback=c&fields=webhooks&access_token=t&prettyPrint=false&upload_protocol=x&uploadType=y", nil, http.StatusOK},
	} {
		if r := f.call(c.method, c.path, c.body); r.status != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, r.status, r.raw, c.status)
		}
	}
	// A bad page token is read under the other spelling too.
	f.call("GET", "/v1/events?pageToken=nope", nil).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "page_token is invalid")
}
