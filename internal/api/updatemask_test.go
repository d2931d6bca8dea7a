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
