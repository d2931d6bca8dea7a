package jobs_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/telemetry"
)

// TestJobRunSpan: with tracing on, a job's execution is a span, and the
// event it emits is published under it (the publish span is its child).
// Not parallel: tracing is process-wide.
func TestJobRunSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	shutdown, err := telemetry.Setup(context.Background(), telemetry.Config{Service: "t", Exporter: exp, Sampler: sdktrace.AlwaysSample()})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	f := setup(t, options{})
	hook := newReceiver(t)
	id := f.createBatch([]string{"ok"}, map[string]any{"uris": []string{hook.srv.URL}})
	if j := f.settled(id); j.State != core.JobSucceeded {
		t.Fatalf("batch %+v", j)
	}
	hook.next(t)
	var run, pub *tracetest.SpanStub
	waitFor(t, "the run and publish spans exported", func() bool {
		_ = telemetry.ForceFlush(context.Background())
		spans := exp.GetSpans()
		for i := range spans {
			s := &spans[i]
			for _, kv := range s.Attributes {
				if kv.Key == "longhook.job.id" && kv.Value.AsString() == id && s.Name == "job.run batch" {
					run = s
				}
			}
		}
		if run == nil {
			return false
		}
		for i := range spans {
			if s := &spans[i]; s.Name == "publish" && s.Parent.SpanID() == run.SpanContext.SpanID() {
				pub = s
			}
		}
		return pub != nil
	})
	for _, kv := range pub.Attributes {
		if kv.Key == "longhook.event.type" && kv.Value.AsString() != core.EventBatchSucceeded {
			t.Fatalf("the job's publish span has event type %s", kv.Value.AsString())
		}
	}
}
