package jobs_test

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/telemetry"
)

// TestJobRunSpan: with tracing on, a job's execution is a span that
// continues the trace of the request that created the job, and the event
// it emits is published under it (the publish span is its child).
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
	// The run continues the trace of the request that created the batch
	// (its traceparent is stored with the job) and links to it.
	var create *tracetest.SpanStub
	for i := range exp.GetSpans() {
		if s := exp.GetSpans()[i]; s.SpanKind == trace.SpanKindServer && strings.HasPrefix(s.Name, "POST ") && strings.Contains(s.Name, "/models/") {
			create = &s
		}
	}
	if create == nil {
		var names []string
		for _, s := range exp.GetSpans() {
			names = append(names, s.Name)
		}
		t.Fatalf("no server span for the create request among %q", names)
	}
	if run.Parent.TraceID() != create.SpanContext.TraceID() || run.Parent.SpanID() != create.SpanContext.SpanID() {
		t.Errorf("the run's parent is %s/%s, want the create request's span %s/%s", run.Parent.TraceID(), run.Parent.SpanID(),
			create.SpanContext.TraceID(), create.SpanContext.SpanID())
	}
	if len(run.Links) != 1 || run.Links[0].SpanContext.SpanID() != create.SpanContext.SpanID() {
		t.Errorf("the run's links %+v, want one to the create request's span", run.Links)
	}
	for _, kv := range pub.Attributes {
		if kv.Key == "longhook.event.type" && kv.Value.AsString() != core.EventBatchSucceeded {
			t.Fatalf("the job's publish span has event type %s", kv.Value.AsString())
		}
	}
}
