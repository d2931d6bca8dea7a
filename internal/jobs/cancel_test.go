package jobs_test

import (
	"strings"
	"testing"
)

// Cancelling a job that cannot be cancelled names its state as the API
// shows it (an interaction is "completed", a batch BATCH_STATE_SUCCEEDED),
// never by an internal name the API never returns ("succeeded"); and the
// 404 of cancel is the 404 of get.
func TestCancelNamesPublicStates(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})

	fg := f.call("POST", "/v1beta/interactions", map[string]any{"model": "m", "input": "x"}).must(t, 200)
	if fg.str("status") != "completed" {
		t.Fatalf("foreground: %s", fg.raw)
	}
	r := f.call("POST", "/v1beta/interactions/"+fg.str("id")+"/cancel", nil)
	if msg := r.str("error.message"); r.status != 400 || r.str("error.status") != "FAILED_PRECONDITION" ||
		!strings.Contains(msg, " is completed") || strings.Contains(msg, "succeeded") {
		t.Errorf("cancel a completed interaction: %d %s", r.status, r.raw)
	}

	id := f.createBatch([]string{"a"}, nil)
	f.settled(id)
	r = f.call("POST", "/v1beta/batches/"+id+":cancel", nil)
	if msg := r.str("error.message"); r.status != 400 || !strings.Contains(msg, "batches/"+id+" is BATCH_STATE_SUCCEEDED") {
		t.Errorf("cancel a succeeded batch: %d %s", r.status, r.raw)
	}

	for _, p := range []string{"/v1beta/interactions/nope", "/v1beta/batches/nope"} {
		get := f.call("GET", p, nil).must(t, 404)
		verb := "/cancel"
		if strings.Contains(p, "batches") {
			verb = ":cancel"
		}
		c := f.call("POST", p+verb, nil).must(t, 404)
		if c.str("error.message") != get.str("error.message") {
			t.Errorf("%s: cancel answered %q, get %q", p, c.str("error.message"), get.str("error.message"))
		}
	}
}
