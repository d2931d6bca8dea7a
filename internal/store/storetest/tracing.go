package storetest

import (
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// testTracing: a webhook's trace_propagation is stored and updated, and an
// event's traceparent reaches every claimed delivery of it (after the
// queue, on whichever instance claims).
func testTracing(t *testing.T, b *bundle) {
	w := NewWebhook(b.p.ID)
	w.TracePropagation = true
	if err := b.s.CreateWebhook(b.ctx, w); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "GetWebhook", b.getWebhook(w.ID), w)
	got, err := b.s.UpdateWebhook(b.ctx, b.p.ID, w.ID, func(x *core.Webhook) error { x.TracePropagation = false; return nil })
	if err != nil || got.TracePropagation || b.getWebhook(w.ID).TracePropagation {
		t.Fatalf("UpdateWebhook to trace_propagation false = %+v, %v; stored %v", got, err, b.getWebhook(w.ID).TracePropagation)
	}

	w2 := b.webhook("")
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	traced := NewEvent(b.p.ID, "batch.succeeded", T0, w, w2)
	traced.Event.TraceParent = tp
	plain := NewEvent(b.p.ID, "batch.succeeded", T0, w)
	b.publish(traced, plain)
	cs := b.claim("a", T0.Add(time.Second), 10)
	if len(cs) != 3 {
		t.Fatalf("claimed %d deliveries, want 3", len(cs))
	}
	for _, c := range cs {
		want := ""
		if c.EventID == traced.Event.ID {
			want = tp
		}
		if c.TraceParent != want {
			t.Errorf("delivery of event %s claimed with traceparent %q, want %q", c.EventID, c.TraceParent, want)
		}
	}
}
