package api_test

import (
	"net/http"
	"testing"
)

// A repeated update_mask query parameter is one mask of all its values'
// paths (a FieldMask query parameter may be repeated). Only the first was
// read: ?update_mask=name&update_mask=uri changed the name and left the
// uri as it was, with a 200.
func TestRepeatedUpdateMask(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id := f.createWebhook("rm").str("id")
	r := f.call("PATCH", "/v1/webhooks/"+id+"?update_mask=name&update_mask=uri",
		map[string]any{"name": "renamed", "uri": "https://example.com/moved"}).must(t, http.StatusOK)
	if r.str("name") != "renamed" || r.str("uri") != "https://example.com/moved" {
		t.Errorf("repeated update_mask applied %s", r.raw)
	}
	// A later value's unknown path is refused like a first one's.
	f.call("PATCH", "/v1/webhooks/"+id+"?update_mask=name&update_mask=colour", map[string]any{"name": "x"}).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "colour")
	if got := f.call("GET", "/v1/webhooks/"+id, nil).must(t, http.StatusOK).str("name"); got != "renamed" {
		t.Errorf("a refused update changed the name to %q", got)
	}
}

// update_mask=* replaces the webhook's configuration (AIP-134): every
// field comes from the body, an absent one cleared — so a body without a
// required field is refused and changes nothing; the state changes only
// when the body names it. It was 400 "unknown field path".
func TestUpdateMaskStar(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id := f.createWebhook("star", "batch.succeeded").str("id")
	f.call("PATCH", "/v1/webhooks/"+id+"?update_mask=rate_limit", map[string]any{"rate_limit": map[string]any{"per_second": 5}}).must(t, http.StatusOK)
	r := f.call("PATCH", "/v1/webhooks/"+id+"?update_mask=*", map[string]any{
		"name": "whole", "uri": "https://example.com/whole", "subscribed_events": []string{"batch.failed"}}).must(t, http.StatusOK)
	if r.str("name") != "whole" || r.str("uri") != "https://example.com/whole" || r.body["rate_limit"] != nil || r.str("state") != "enabled" {
		t.Errorf("update_mask=* gave %s", r.raw)
	}
	f.call("PATCH", "/v1/webhooks/"+id+"?update_mask=*", map[string]any{"name": "no uri"}).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "uri")
	if got := f.call("GET", "/v1/webhooks/"+id, nil).must(t, http.StatusOK).str("name"); got != "whole" {
		t.Errorf("a refused replacement changed the name to %q", got)
	}
	r = f.call("PATCH", "/v1/webhooks/"+id+"?update_mask=*", map[string]any{
		"uri": "https://example.com/whole", "subscribed_events": []string{"batch.failed"}, "state": "disabled"}).must(t, http.StatusOK)
	if r.str("state") != "disabled" || r.body["name"] != nil {
		t.Errorf("update_mask=* with a state gave %s", r.raw)
	}
}
