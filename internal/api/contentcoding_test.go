package api_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"

	"github.com/longhook/longhook/internal/api"
)

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A gzip-compressed body (Content-Encoding: gzip) is decompressed, on the
// publish routes as on the others, and held to the route's size limit
// after decompression; a coding the server does not speak, or a body that
// is not what its coding says, is 400 INVALID_ARGUMENT naming it, and
// nothing is stored. Read as it came, a compressed publish was refused as
// "not valid UTF-8", and Content-Encoding: br was ignored.
func TestRequestContentEncoding(t *testing.T) {
	t.Parallel()
	const limit = 4 << 10
	f := setup(t, func(d *api.Deps) { d.MaxPublishBodyBytes = limit })
	gz := http.Header{"Content-Encoding": {"gzip"}}

	// Publish, through the server as serve runs it (the fast path hands a
	// coded body to the generic path).
	r := f.callWith(f.key, gz, "POST", "/v1/events", gzipped(t, `{"type":"batch.succeeded","data":{"id":"batches/z"}}`)).must(t, http.StatusOK)
	ev, err := f.store.GetEvent(t.Context(), f.project.ID, r.str("id"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ev.Payload), `"data":{"id":"batches/z"}`) {
		t.Fatalf("stored payload %s", ev.Payload)
	}
	r = f.callWith(f.key, http.Header{"Content-Encoding": {"x-gzip"}}, "POST", "/v1/events:batchPublish",
		gzipped(t, `{"events":[{"type":"batch.succeeded"},{"type":"batch.failed"}]}`)).must(t, http.StatusOK)
	if n := len(r.body["events"].([]any)); n != 2 {
		t.Fatalf("batch publish: %s", r.raw)
	}
	// Another route (webhooks, the small limit).
	f.callWith(f.key, gz, "POST", "/v1/webhooks",
		gzipped(t, `{"name":"z","uri":"https://example.com/h","subscribed_events":["batch.succeeded"]}`)).must(t, http.StatusOK)

	count := func() int { return len(f.call("GET", "/v1/events", nil).must(t, http.StatusOK).body["events"].([]any)) }
	before := count()
	refused := []struct {
		name   string
		header http.Header
		body   []byte
		want   string
	}{
		{"unknown coding", http.Header{"Content-Encoding": {"br"}}, []byte(`{"type":"batch.succeeded"}`), "Content-Encoding \"br\" is not supported"},
		{"two codings", http.Header{"Content-Encoding": {"gzip, gzip"}}, gzipped(t, string(gzipped(t, `{"type":"batch.succeeded"}`))), "Content-Encoding \"gzip, gzip\" is not supported"},
		{"not gzip", gz, []byte(`{"type":"batch.succeeded"}`), "not valid gzip"},
		{"cut short", gz, gzipped(t, `{"type":"batch.succeeded"}`)[:20], "not valid gzip"},
		// 64 KiB of spaces compress to well under the 4 KiB limit.
		{"over the limit once decompressed", gz, gzipped(t, `{"type":"batch.succeeded","data":{"pad":"`+strings.Repeat(" ", 64<<10)+`"}}`), "exceeds the limit: 4096 bytes"},
	}
	for _, c := range refused {
		if c.name == "over the limit once decompressed" && len(c.body) >= limit {
			t.Fatalf("the compressed body is %d bytes, not under the limit", len(c.body))
		}
		r := f.callWith(f.key, c.header, "POST", "/v1/events", c.body)
		r.mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", c.want)
	}
	if n := count(); n != before {
		t.Fatalf("%d events after the refused publishes, want %d", n, before)
	}
}
