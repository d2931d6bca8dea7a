package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/longhook/longhook/internal/core"
)

// nested is a JSON value of depth levels of objects and arrays, a string
// of brackets (not nesting) at its core.
func nested(depth int) string {
	var open, closing strings.Builder
	for i := 1; i < depth; i++ {
		if i%2 == 0 {
			open.WriteString(`[1,`)
		} else {
			open.WriteString(`{"k":`)
		}
	}
	for i := depth - 1; i >= 1; i-- {
		if i%2 == 0 {
			closing.WriteString(`]`)
		} else {
			closing.WriteString(`}`)
		}
	}
	return open.String() + `{"s":"[[{{\"["}` + closing.String()
}

// TestDeepDataRefused: event data nested deeper than core.MaxDataDepth
// (so that its payload would nest beyond core.MaxPayloadDepth) is 400
// naming the field and where, single or in a batch, through the fast
// decoder's depth or the generic path's, and nothing is published; it was
// taken up to 10,000 levels and then refused by receivers' parsers.
// user_metadata, delivered inside data, may nest one level less.
func TestDeepDataRefused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createWebhook("h", "batch.succeeded")
	ok := nested(core.MaxDataDepth)
	deep := nested(core.MaxDataDepth + 1)
	deepest := nested(600) // beyond the fast decoder's own fallback
	for _, body := range []string{
		`{"type":"batch.succeeded","data":` + deep + `}`,
		`{"type":"batch.succeeded","data":` + deepest + `}`,
	} {
		f.call("POST", "/v1/events", body).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT",
			"data nests deeper than 63 levels of objects and arrays (the level 64 opens at byte", "of data)", "more than 64 levels deep")
	}
	f.call("POST", "/v1/events:batchPublish", `{"events":[{"type":"batch.succeeded","data":`+ok+`},{"type":"batch.succeeded","data":`+deep+`}]}`).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "events[1].data nests deeper than 63 levels")
	meta := func(m string) string {
		return `{"type":"batch.succeeded","webhook_config":{"uris":["https://example.com/h"],"user_metadata":` + m + `}}`
	}
	f.call("POST", "/v1/events", meta(nested(core.MaxUserMetadataDepth+1))).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT",
		"webhook_config.user_metadata nests deeper than 62 levels")
	f.call("POST", "/v1/events:batchPublish", `{"events":[`+meta(nested(core.MaxUserMetadataDepth+1))+`]}`).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT",
		"events[0].webhook_config.user_metadata nests deeper than 62 levels")
	if got := f.call("GET", "/v1/events", nil).must(t, http.StatusOK).body["events"]; got != nil {
		t.Fatalf("a refused publish stored %v", got)
	}

	// At the limits, both are taken.
	f.call("POST", "/v1/events", `{"type":"batch.succeeded","data":`+ok+`}`).must(t, http.StatusOK)
	f.call("POST", "/v1/events:batchPublish", `{"events":[{"type":"batch.succeeded","data":`+ok+`}]}`).must(t, http.StatusOK)
	f.call("POST", "/v1/events", meta(nested(core.MaxUserMetadataDepth))).must(t, http.StatusOK)
}

// TestDeepUserMetadataRefusedOnJobs: a batch's webhook_config carries
// user_metadata into every event of the job, so its depth is checked when
// the job is made, and nothing is stored.
func TestDeepUserMetadataRefusedOnJobs(t *testing.T) {
	t.Parallel()
	f := setup(t, withJobs(t))
	batch := func(meta string) string {
		return `{"batch":{"input_config":{"requests":{"requests":[{"request":{"contents":[{"parts":[{"text":"hi"}]}]}}]}},` +
			`"webhook_config":{"uris":["https://example.com/h"],"user_metadata":` + meta + `}}}`
	}
	f.call("POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", batch(nested(core.MaxUserMetadataDepth+1))).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "webhook_config.user_metadata nests deeper than 62 levels")
	if r := f.call("GET", "/v1beta/batches", nil).must(t, http.StatusOK); strings.TrimSpace(string(r.raw)) != "{}" {
		t.Errorf("batches stored: %s", r.raw)
	}
	f.call("POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", batch(nested(core.MaxUserMetadataDepth))).must(t, http.StatusOK)
}
