package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// publishBody is a typical publish request: a small data object and a
// webhook_config.
const publishBody = `{"type":"batch.succeeded","subject":"batches/abc123","idempotency_key":"k-0001",` +
	`"data":{"id":"batches/abc123","state":"JOB_STATE_SUCCEEDED","output":{"file":"files/out-1","count":42},` +
	`"labels":{"team":"ml","env":"prod"},"items":[1,2,3,"four",{"five":5}]},` +
	`"webhook_config":{"uris":["https://receiver.example/hook"],"user_metadata":{"trace":"t-1"}}}`

// BenchmarkDecodePublish measures the strict decoder on the publish hot
// path: one event, and a batch of 100.
func BenchmarkDecodePublish(b *testing.B) {
	one, batch := []byte(publishBody), batchBody(100)
	benchDecode(b, "event", one, func(body []byte) error {
		var req publishRequest
		return decodeBytes(body, &req)
	})
	benchDecode(b, "event-checkonly", one, func(body []byte) error {
		var req publishRequest
		return checkStrict(body, &req)
	})
	benchDecode(b, "batch100", batch, func(body []byte) error {
		var req batchPublishRequest
		return decodeBytes(body, &req)
	})
}

// BenchmarkDecodePublishFast is BenchmarkDecodePublish through the
// publish requests' own decoder (publishjson.go).
func BenchmarkDecodePublishFast(b *testing.B) {
	// What longhook bench sends: 600 bytes, most of them one string.
	padded := []byte(`{"data":{"id":"batches/bench","output_file_uri":"files/bench","pad":"` + strings.Repeat("x", 490) +
		`","sent_at_ns":1765000000000000000},"type":"batch.succeeded"}`)
	one := func(body []byte) error {
		var req publishRequest
		return decodePublish(body, &req)
	}
	benchDecode(b, "bench-body", padded, one)
	benchDecode(b, "event", []byte(publishBody), one)
	benchDecode(b, "batch100", batchBody(100), func(body []byte) error {
		var req batchPublishRequest
		return decodeBatchPublish(body, &req)
	})
}

// batchBody is an events:batchPublish body of n copies of publishBody,
// each with its own idempotency key.
func batchBody(n int) []byte {
	evs := make([]string, n)
	for i := range evs {
		evs[i] = strings.Replace(publishBody, "k-0001", fmt.Sprintf("k-%04d", i), 1)
	}
	return []byte(`{"events":[` + strings.Join(evs, ",") + `]}`)
}

// benchDecode runs decode over body as the sub-benchmark name.
func benchDecode(b *testing.B, name string, body []byte, decode func([]byte) error) {
	b.Run(name, func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if err := decode(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWriteJSONEvent measures the publish response: eventJSON
// written by its appendJSON, and the same value through json.Marshal
// (reflectedEvent has eventJSON's fields and tags, not its method).
func BenchmarkWriteJSONEvent(b *testing.B) {
	type reflectedEvent eventJSON
	ev := &eventJSON{ID: "evt_01KBQ4S8Y6M3H0G4Z2V7N9T5RX", Type: "batch.succeeded",
		Timestamp: "2026-12-06T10:15:00.123456789Z", CreateTime: "2026-12-06T10:15:00.123456Z", DeliveryCount: 1}
	for _, c := range []struct {
		name string
		v    any
	}{{"appender", (*publishedEvent)(ev)}, {"reflect", (*reflectedEvent)(ev)}} {
		b.Run(c.name, func(b *testing.B) {
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				w.Body.Reset()
				WriteJSON(w, http.StatusOK, c.v)
			}
		})
	}
}

// BenchmarkBatchInputs measures the conversion of a decoded batch of 100
// events to publish inputs.
func BenchmarkBatchInputs(b *testing.B) {
	evs := make([]string, 100)
	for i := range evs {
		evs[i] = strings.Replace(publishBody, "k-0001", fmt.Sprintf("k-%04d", i), 1)
	}
	var req batchPublishRequest
	if err := decodeBatchPublish([]byte(`{"events":[`+strings.Join(evs, ",")+`]}`), &req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := req.inputs(); err != nil {
			b.Fatal(err)
		}
	}
}
