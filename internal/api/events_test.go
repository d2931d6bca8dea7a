package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

func TestPublish(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("p", "batch.succeeded").str("id")
	f.createWebhook("other", "video.generated")

	r := f.call("POST", "/v1/events", map[string]any{
		"type": "batch.succeeded", "data": map[string]any{"id": "batches/1", "output_file_uri": "files/1"},
		"timestamp": "2026-05-05T12:00:00Z", "subject": "batches/1",
	}).must(t, http.StatusOK)
	if r.str("id") == "" || r.str("type") != "batch.succeeded" || r.str("timestamp") != "2026-05-05T12:00:00Z" ||
		r.body["delivery_count"] != 1.0 || r.str("create_time") == "" {
		t.Fatalf("publish: %s", r.raw)
	}
	ds := f.deliveries(hook)
	if len(ds) != 1 || ds[0].(map[string]any)["event_id"] != r.str("id") {
		t.Fatalf("deliveries: %v", ds)
	}
	ev, err := f.store.GetEvent(t.Context(), f.project.ID, r.str("id"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"batch.succeeded","version":"v1","timestamp":"2026-05-05T12:00:00Z","data":{"id":"batches/1","output_file_uri":"files/1"}}`
	if string(ev.Payload) != want || ev.Subject != "batches/1" {
		t.Errorf("payload %s subject %q", ev.Payload, ev.Subject)
	}

	// No subscriber: accepted with zero deliveries; timestamp defaults to now.
	r = f.call("POST", "/v1beta/events", `{"type":"interaction.completed"}`).must(t, http.StatusOK)
	if r.body["delivery_count"] != 0.0 || r.str("timestamp") == "" {
		t.Errorf("unsubscribed publish: %s", r.raw)
	}

	// Dynamic: only the webhook_config URIs.
	r = f.call("POST", "/v1/events", map[string]any{
		"type": "batch.succeeded", "data": map[string]any{"id": "batches/2"},
		"webhook_config": map[string]any{
			"uris":          []string{"https://a.example.com/h", "https://b.example.com/h"},
			"user_metadata": map[string]any{"job": "nightly"}, "audience": "https://b.example.com",
		},
	}).must(t, http.StatusOK)
	if r.body["delivery_count"] != 2.0 {
		t.Errorf("dynamic publish: %s", r.raw)
	}
	// An audience that is not where the tokens go (issue 13, defect 1).
	for _, aud := range []string{"aud", "https://victim.example/hook", "https://a.example.com/other", "https://a.example.com:8443"} {
		r = f.call("POST", "/v1/events", map[string]any{
			"type": "batch.succeeded", "data": map[string]any{"id": "batches/3"},
			"webhook_config": map[string]any{"uris": []string{"https://a.example.com/h"}, "audience": aud},
		}).must(t, http.StatusBadRequest)
		if !strings.Contains(string(r.raw), "webhook_config.audience") || !strings.Contains(string(r.raw), "INVALID_ARGUMENT") {
			t.Errorf("audience %q: %s", aud, r.raw)
		}
	}
	// user_metadata: null is unset (proto3 JSON's null for a Struct), as
	// on the job routes; it was 400 here alone.
	for _, path := range []string{"/v1/events", "/v1/events:batchPublish"} {
		body := `{"type":"batch.succeeded","data":{"id":"batches/4"},"webhook_config":{"uris":["https://a.example.com/h"],"user_metadata":null}}`
		if strings.HasSuffix(path, "batchPublish") {
			body = `{"events":[` + body + `]}`
		}
		r = f.call("POST", path, body).must(t, http.StatusOK)
		if strings.Contains(string(r.raw), "user_metadata") {
			t.Errorf("%s with user_metadata null: %s", path, r.raw)
		}
	}
	if len(f.deliveries(hook)) != 1 {
		t.Error("a dynamic event reached the static webhook")
	}
}

func TestPublishIdempotency(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC)}
	f := setup(t, func(d *api.Deps) { d.Clock = clock })
	f.createWebhook("p", "batch.succeeded")
	body := `{"type":"batch.succeeded","data":{"id":"batches/1"},"idempotency_key":"k1"}`
	first := f.call("POST", "/v1/events", body).must(t, http.StatusOK)
	clock.advance(time.Hour) // a fresh event would show another time
	again := f.call("POST", "/v1/events", body).must(t, http.StatusOK)
	if string(first.raw) != string(again.raw) {
		t.Errorf("repeat differs:\n%s\n%s", first.raw, again.raw)
	}

	// The header works too, and matches the body key.
	hdr := http.Header{"Idempotency-Key": {"k1"}}
	viaHeader := f.callWith(f.key, hdr, "POST", "/v1/events", `{"type":"batch.succeeded","data":{"id":"batches/1"}}`).must(t, http.StatusOK)
	if string(viaHeader.raw) != string(first.raw) {
		t.Errorf("header key: %s", viaHeader.raw)
	}
	f.callWith(f.key, hdr, "POST", "/v1/events", body).must(t, http.StatusOK)
	f.callWith(f.key, http.Header{"Idempotency-Key": {"k2"}}, "POST", "/v1/events", body).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "idempotency_key", "Idempotency-Key")

	// Keys are per project.
	other := f.newKey(f.newProject("other").ID, false)
	o := f.callWith(other, nil, "POST", "/v1/events", body).must(t, http.StatusOK)
	if o.str("id") == first.str("id") {
		t.Error("another project's publish returned this project's event")
	}
}

// A publish whose idempotency key was seen before answers the original
// event, byte for byte, and says so: Idempotent-Replayed: true, which a
// fresh publish does not carry. Both ways a publish is served: the fast
// path (the fixture's server) and net/http (the same handler behind a
// plain server), with the key in the body and in the header.
func TestPublishReplayMarked(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("p", "batch.succeeded").str("id")
	plain := httptest.NewServer(f.srv.Config.Handler)
	t.Cleanup(plain.Close)
	viaPlain := *f
	viaPlain.srv = plain
	for _, c := range []struct {
		name string
		f    *fixture
		fast bool
	}{{"fast path", f, true}, {"net/http", &viaPlain, false}} {
		for _, inHeader := range []bool{false, true} {
			key := fmt.Sprintf("%s-%v", c.name, inHeader)
			body, hdr := `{"type":"batch.succeeded","data":{"id":"batches/1"},"idempotency_key":"`+key+`"}`, http.Header(nil)
			if inHeader {
				body, hdr = `{"type":"batch.succeeded","data":{"id":"batches/1"}}`, http.Header{"Idempotency-Key": {key}}
			}
			// A new connection: the fast path serves it until its first
			// other request (createWebhook's) hands it to net/http.
			c.f.srv.Client().CloseIdleConnections()
			served := f.fast.Served()
			first := c.f.callWith(f.key, hdr, "POST", "/v1/events", body).must(t, http.StatusOK)
			again := c.f.callWith(f.key, hdr, "POST", "/v1/events", body).must(t, http.StatusOK)
			if n := f.fast.Served() - served; (n == 2) != c.fast {
				t.Fatalf("%s: the fast path served %d of the 2 publishes", c.name, n)
			}
			if v, ok := first.header["Idempotent-Replayed"]; ok {
				t.Errorf("%s, key %s: a fresh publish has Idempotent-Replayed: %q", c.name, key, v)
			}
			if v := again.header.Values("Idempotent-Replayed"); len(v) != 1 || v[0] != "true" {
				t.Errorf("%s, key %s: the repeat has Idempotent-Replayed %q, want [true]", c.name, key, v)
			}
			if string(again.raw) != string(first.raw) {
				t.Errorf("%s, key %s: the repeat's body differs:\n%s\n%s", c.name, key, first.raw, again.raw)
			}
		}
	}
	if n := len(f.deliveries(hook)); n != 4 {
		t.Errorf("%d deliveries, want 4: one per key", n)
	}
}

// In a batch each event says whether it repeats an earlier publish
// ("replayed": true; absent on a fresh event), and the header marks a
// batch that wrote nothing at all: every event a repeat.
func TestBatchPublishReplayMarked(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("p", "batch.succeeded").str("id")
	batch := func(keys ...string) string {
		evs := make([]string, len(keys))
		for i, k := range keys {
			evs[i] = `{"type":"batch.succeeded","data":{"id":"batches/1"},"idempotency_key":"` + k + `"}`
			if k == "" {
				evs[i] = `{"type":"batch.succeeded","data":{"id":"batches/1"}}`
			}
		}
		return `{"events":[` + strings.Join(evs, ",") + `]}`
	}
	first := f.call("POST", "/v1/events:batchPublish", batch("a", "")).must(t, http.StatusOK)
	for _, c := range []struct {
		body     string
		replayed []bool
		header   bool
	}{
		{batch("a", ""), []bool{true, false}, false},
		{batch("b", "a"), []bool{false, true}, false},
		{batch("c", "c"), []bool{false, true}, false}, // a key twice in one batch: the second repeats the first
		{batch("b", "a", "c"), []bool{true, true, true}, true},
	} {
		r := f.call("POST", "/v1/events:batchPublish", c.body).must(t, http.StatusOK)
		evs := r.body["events"].([]any)
		for i, want := range c.replayed {
			got, present := evs[i].(map[string]any)["replayed"]
			if want && got != true || !want && present {
				t.Errorf("%s: events[%d].replayed is %v, want %v (absent when false): %s", c.body, i, got, want, r.raw)
			}
		}
		if got := r.header.Get("Idempotent-Replayed"); (got == "true") != c.header || (got == "") == c.header {
			t.Errorf("%s: Idempotent-Replayed %q, want it only when every event is a repeat", c.body, got)
		}
	}
	if strings.Contains(string(first.raw), "replayed") || first.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("a fresh batch is marked: %v %s", first.header, first.raw)
	}
	aID := first.body["events"].([]any)[0].(map[string]any)["id"]
	r := f.call("POST", "/v1/events:batchPublish", batch("a")).must(t, http.StatusOK)
	if got := r.body["events"].([]any)[0].(map[string]any)["id"]; got != aID {
		t.Errorf("a repeat in a batch answers event %v, want the original %v", got, aID)
	}
	if n := len(f.deliveries(hook)); n != 5 {
		t.Errorf("%d deliveries, want 5: a, two unkeyed events, b and c", n)
	}
}

func TestBatchPublish(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("p", "batch.succeeded", "batch.failed").str("id")
	r := f.call("POST", "/v1/events:batchPublish", map[string]any{"events": []map[string]any{
		{"type": "batch.succeeded", "data": map[string]any{"id": "batches/1"}},
		{"type": "batch.failed", "data": map[string]any{"id": "batches/2", "error_code": 3}, "idempotency_key": "b2"},
		{"type": "video.generated"},
	}}).must(t, http.StatusOK)
	evs := r.body["events"].([]any)
	if len(evs) != 3 || evs[0].(map[string]any)["delivery_count"] != 1.0 || evs[2].(map[string]any)["delivery_count"] != 0.0 {
		t.Fatalf("batch: %s", r.raw)
	}
	if n := len(f.deliveries(hook)); n != 2 {
		t.Fatalf("%d deliveries, want 2", n)
	}

	// All or nothing: one bad event rejects the batch and names it.
	bad := []struct {
		body  string
		field string
	}{
		{`{"events":[{"type":"batch.succeeded"},{"type":"no.such"}]}`, "events[1].type"},
		{`{"events":[{"type":"batch.succeeded"},{"type":"batch.failed","data":[1]}]}`, "events[1].data"},
		{`{"events":[{"type":"batch.succeeded","timestamp":"yesterday"}]}`, "events[0].timestamp"},
		{`{"events":[{"type":"batch.succeeded","webhook_config":{"uris":["http://x.example.com"]}}]}`, "events[0].webhook_config.uris[0]"},
		{`{"events":[{"type":"batch.succeeded","webhook_config":{"uris":["https://x.example.com"],"userMetadata":{}}}]}`, `Unknown field "userMetadata"`},
		{`{"events":[{"type":"batch.succeeded","colour":1}]}`, `Unknown field "colour"`},
		{`{"events":[]}`, "events"},
		{`{}`, "events"},
	}
	for _, b := range bad {
		f.call("POST", "/v1/events:batchPublish", b.body).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", b.field)
	}
	many := `{"events":[` + strings.TrimSuffix(strings.Repeat(`{"type":"batch.succeeded"},`, 1001), ",") + `]}`
	f.call("POST", "/v1/events:batchPublish", many).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "1000")
	f.callWith(f.key, http.Header{"Idempotency-Key": {"x"}}, "POST", "/v1/events:batchPublish", `{"events":[{"type":"batch.succeeded"}]}`).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "idempotency_key")
	if n := len(f.deliveries(hook)); n != 2 {
		t.Errorf("%d deliveries after rejected batches, want 2", n)
	}
}

func TestPublishBadInput(t *testing.T) {
	t.Parallel()
	f := setup(t, func(d *api.Deps) { d.MaxPublishBodyBytes = 4 << 10 })
	hook := f.createWebhook("p", "batch.succeeded").str("id")
	for _, c := range []struct{ body, field string }{
		{`{}`, "type"},
		{`{"type":"webhook.ping"}`, "type"},
		{`{"type":"batch.succeeded","data":"x"}`, "data"},
		{`{"type":"batch.succeeded","timestamp":"2026-05-05"}`, "timestamp"},
		// The zero time of Go and .NET, a time the client never set: it
		// was read as "now" (an omitted timestamp).
		{`{"type":"batch.succeeded","timestamp":"0001-01-01T00:00:00Z"}`, "timestamp 0001-01-01T00:00:00Z is the zero time"},
		// Outside google.protobuf.Timestamp's range once in UTC: year 0 was
		// stored, and year 10000 reached receivers as "10000-01-01T04:00:00Z".
		{`{"type":"batch.succeeded","timestamp":"0000-06-01T00:00:00Z"}`, "timestamp must be between"},
		{`{"type":"batch.succeeded","timestamp":"0001-01-01T00:30:00+01:00"}`, "timestamp must be between"},
		{`{"type":"batch.succeeded","timestamp":"9999-12-31T23:00:00-05:00"}`, "timestamp must be between"},
		{`{"type":"batch.succeeded","webhook_config":{"uris":["h"]}}`, "webhook_config.uris[0]"},
		// uris is optional, but what configures the delivery to them is not.
		{`{"type":"batch.succeeded","webhook_config":{"uris":[],"audience":"https://x.example.com"}}`, "webhook_config.audience needs uris"},
		{`{"type":"batch.succeeded","webhook_config":{"uris":["https://x.example.com"],"user_metadata":[1]}}`, "webhook_config.user_metadata"},
		{`{"type":"batch.succeeded","idempotency_key":"` + strings.Repeat("k", 300) + `"}`, "idempotency_key"},
		{`{"type":"batch.succeeded","data":{"pad":"` + strings.Repeat("x", 5<<10) + `"}}`, "payload size exceeds the limit: 4096 bytes"},
		{`{"type":`, "Invalid JSON payload"},
	} {
		f.call("POST", "/v1/events", c.body).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", c.field)
	}
	f.call("POST", "/v1/events:batchPublish", `{"events":[{"type":"batch.succeeded","timestamp":"0001-01-01T00:00:00Z"}]}`).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "events[0].timestamp 0001-01-01T00:00:00Z is the zero time")
	if n := len(f.deliveries(hook)); n != 0 {
		t.Errorf("%d deliveries after rejected publishes", n)
	}
	// The range's ends and a time before 1970 are kept as written.
	for _, ts := range []string{"0001-01-01T00:00:01Z", "9999-12-31T23:59:59Z", "1969-07-20T20:17:40Z"} {
		if r := f.call("POST", "/v1/events", `{"type":"batch.succeeded","timestamp":"`+ts+`"}`).must(t, http.StatusOK); r.str("timestamp") != ts {
			t.Errorf("timestamp %s published as %q", ts, r.str("timestamp"))
		}
	}
	// The publish limit applies only to publish routes.
	f.call("POST", "/v1/webhooks", fmt.Sprintf(`{"name":"big",%s"uri":"https://example.com/h","subscribed_events":["batch.succeeded"]}`, strings.Repeat(" ", 8<<10))).
		must(t, http.StatusOK)
}

// fakeClock is a core.Clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// NewTimer is unused by the API.
func (c *fakeClock) NewTimer(d time.Duration) core.Timer { return core.SystemClock{}.NewTimer(d) }

// TestAmbiguousJSONRefused (issue 13, defect 12): a member name matched
// only case-insensitively, or given twice (event data included, where a
// first-wins and a last-wins receiver would read different signed data),
// is refused with INVALID_ARGUMENT naming it, and nothing is stored.
func TestAmbiguousJSONRefused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createWebhook("h", "batch.succeeded")
	f.call("POST", "/v1/events", `{"type":"batch.succeeded","data":{"amount":1,"amount":1000}}`).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", `duplicate field "data.amount"`)
	f.call("POST", "/v1/events", `{"Type":"batch.succeeded","data":{}}`).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", `Unknown field "Type"`)
	f.call("POST", "/v1/events:batchPublish", `{"events":[{"type":"batch.succeeded"},{"type":"batch.succeeded","webhook_config":{"URIS":["https://example.com/h"]}}]}`).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", `"events[1].webhook_config.URIS"`)
	if r := f.call("GET", "/v1/events", nil).must(t, http.StatusOK); strings.TrimSpace(string(r.raw)) != "{}" {
		t.Errorf("events stored: %s", r.raw)
	}
}

// TestLoneSurrogateRefused: an escape of half a UTF-16 surrogate pair
// ("\ud800" alone, a low half first, a high half before a non-surrogate)
// encodes no Unicode character. encoding/json reads it as U+FFFD, other
// parsers keep it or fail, and I-JSON (RFC 7493, section 2.1) and
// protobuf's JSON parser refuse it: INVALID_ARGUMENT naming the field, on
// the publish fast path and the generic decoder alike, and nothing is
// stored. A whole pair is accepted.
func TestLoneSurrogateRefused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createWebhook("h", "batch.succeeded")
	for _, c := range []struct{ body, field string }{
		{`{"type":"batch.succeeded","data":{"note":"\ud800"}}`, `data.note holds \ud800`},
		{`{"type":"batch.succeeded","data":{"note":"x\udc00y"}}`, `data.note holds \udc00`},
		{`{"type":"batch.succeeded","data":{"note":"\uD83D\u0041"}}`, `data.note holds \uD83D`},
		{`{"type":"batch.succeeded","data":{"a":["ok","\\\ud800"]}}`, `data.a[1] holds \ud800`},
		{`{"type":"batch.succeeded","data":{"\ud800":1}}`, `holds \ud800`},
		{`{"type":"batch.\ud800"}`, `type holds \ud800`},
	} {
		f.call("POST", "/v1/events", c.body).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", c.field)
	}
	f.call("POST", "/v1/events:batchPublish", `{"events":[{"type":"batch.succeeded","data":{"s":"\udfff"}}]}`).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", `events[0].data.s holds \udfff`)
	f.call("POST", "/v1/webhooks", `{"name":"n\udbff","uri":"https://example.com/h","subscribed_events":["batch.succeeded"]}`).
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", `name holds \udbff`)
	if r := f.call("GET", "/v1/events", nil).must(t, http.StatusOK); strings.TrimSpace(string(r.raw)) != "{}" {
		t.Errorf("events stored: %s", r.raw)
	}
	f.call("POST", "/v1/events", `{"type":"batch.succeeded","data":{"emoji":"\ud83d\ude00","bs":"\\ud800"}}`).must(t, http.StatusOK)
}

// TestInvalidUTF8Refused (issue 13, defect 6): a body that is not UTF-8 is
// refused with INVALID_ARGUMENT naming the field, and nothing is stored.
func TestInvalidUTF8Refused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.createWebhook("h", "batch.succeeded")
	f.call("POST", "/v1/events", "{\"type\":\"batch.succeeded\",\"data\":{\"id\":\"batches/\xff\"}}").
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "data.id")
	f.call("POST", "/v1/events", "{\"type\":\"batch.succeeded\",\"data\":{\"id\":\"x\"},\"webhook_config\":{\"uris\":[\"https://example.com/h\"],\"user_metadata\":{\"k\":\"\xc3\x28\"}}}").
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "webhook_config.user_metadata.k")
	f.call("POST", "/v1/webhooks", "{\"name\":\"caf\xe9\",\"uri\":\"https://example.com/h\",\"subscribed_events\":[\"batch.succeeded\"]}").
		mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "name")
	if r := f.call("GET", "/v1/events", nil).must(t, http.StatusOK); strings.TrimSpace(string(r.raw)) != "{}" {
		t.Errorf("events stored: %s", r.raw)
	}
	if n := len(f.call("GET", "/v1/webhooks", nil).must(t, http.StatusOK).body["webhooks"].([]any)); n != 1 {
		t.Errorf("%d webhooks, want the one created before", n)
	}
}
