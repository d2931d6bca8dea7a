package api

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// The scan of an envelope reads what the decoder reads, for every type
// name core.Envelope may write, and leaves other shapes to the decoder.
func TestEnvelopeTimestampScan(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC)
	for _, typ := range []string{"batch.succeeded", `we"ird\type`, "ünï", `x","version":"v1","timestamp":"1999`} {
		p, err := core.Envelope(typ, at, json.RawMessage(`{"timestamp":"nope"}`))
		if err != nil {
			t.Fatal(err)
		}
		ts, ok := envelopeTimestampFast(p)
		if !ok || ts != "2026-05-05T12:00:00Z" || ts != decodedTimestamp(p) || envelopeTimestamp(p) != ts {
			t.Fatalf("%q: scan %q %v, decoder %q", typ, ts, ok, decodedTimestamp(p))
		}
	}
	for _, p := range []string{
		`{"type":"a","data":{"version":"v1","timestamp":"2000-01-01T00:00:00Z"},"timestamp":"2026-01-01T00:00:00Z"}`,
		`{"type":"a", "version":"v1","timestamp":"2026-01-01T00:00:00Z"}`,
		`{"Type":"a","version":"v1","timestamp":"2026-01-01T00:00:00Z"}`,
		`{"type":"a","version":"v1","timestamp":"2026\u002d01"}`,
		`{"type":"a`,
		``,
	} {
		if _, ok := envelopeTimestampFast([]byte(p)); ok {
			t.Fatalf("%s: scanned", p)
		}
		if got, want := envelopeTimestamp([]byte(p)), decodedTimestamp([]byte(p)); got != want {
			t.Fatalf("%s: %q, decoder %q", p, got, want)
		}
	}
}

func BenchmarkEnvelopeTimestamp(b *testing.B) {
	p, _ := core.Envelope("batch.succeeded", time.Now(), json.RawMessage(`{"id":"batches/x","pad":"`+strings.Repeat("x", 500)+`"}`))
	b.ReportAllocs()
	for b.Loop() {
		_ = envelopeTimestamp(p)
	}
}

func BenchmarkEnvelopeTimestampDecoder(b *testing.B) {
	p, _ := core.Envelope("batch.succeeded", time.Now(), json.RawMessage(`{"id":"batches/x","pad":"`+strings.Repeat("x", 500)+`"}`))
	b.ReportAllocs()
	for b.Loop() {
		_ = decodedTimestamp(p)
	}
}

// A batch's messages name the event's field by its index.
func TestBatchInputsNameTheEvent(t *testing.T) {
	t.Parallel()
	req := batchPublishRequest{Events: []publishRequest{{Type: "t"}, {Type: "t"}, {Type: "t", Timestamp: "yesterday"}}}
	if _, err := req.inputs(); err == nil || !strings.Contains(err.Error(), "events[2].timestamp must be an RFC 3339 time") {
		t.Fatalf("bad timestamp: %v", err)
	}
	req.Events[2] = publishRequest{Type: "t", Subject: strings.Repeat("s", core.MaxURILength+1)}
	if _, err := req.inputs(); err == nil || !strings.Contains(err.Error(), "events[2].subject is longer") {
		t.Fatalf("long subject: %v", err)
	}
	one := publishRequest{Type: "t", Timestamp: "yesterday"}
	var ie *core.InvalidArgumentError
	if _, err := one.input(-1); !errors.As(err, &ie) || ie.Field != "timestamp" || !strings.HasPrefix(ie.Message, "timestamp must") {
		t.Fatalf("single: %v", err)
	}
}

// TestRecoverLimit: :recover's limit follows AIP-158's page_size rule —
// absent or 0 is the default, above the maximum is the maximum, negative
// is 400 — and its message states that rule.
func TestRecoverLimit(t *testing.T) {
	t.Parallel()
	n := func(v int) *int { return &v }
	for _, c := range []struct {
		in   *int
		want int
	}{{nil, 1000}, {n(0), 1000}, {n(1), 1}, {n(10000), 10000}, {n(10001), 10000}, {n(20000), 10000}} {
		if got, err := recoverLimit(c.in); err != nil || got != c.want {
			t.Errorf("recoverLimit(%v) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	_, err := recoverLimit(n(-1))
	want := "limit must be a non-negative integer (0 or absent: the default, 1000; more than 10000: 10000), got -1"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("recoverLimit(-1) error %v, want %q", err, want)
	}
}
