package jobs

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/telemetry"
)

// startRunSpan starts the span of one execution of a job (tracing is on).
// The events the execution emits are published under it, so their
// publish spans, attempts and the receivers' spans are its descendants.
//
// A background execution (a runner's context, no span) continues the
// trace of the request that created the job — its traceparent is stored
// with the job, so this holds after a restart or on another instance —
// and links to that request's span; a foreground interaction runs inside
// its request's span already.
func startRunSpan(ctx context.Context, j *core.Job) (context.Context, trace.Span) {
	var opts []trace.SpanStartOption
	if created := telemetry.ParseTraceparent(j.TraceParent); created.IsValid() && !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, created)
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: created,
			Attributes: []attribute.KeyValue{attribute.String("longhook.link", "create")}}))
	}
	ctx, span := telemetry.Start(ctx, "job.run "+string(j.Kind), opts...)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("longhook.job.id", j.ID), attribute.String("longhook.job.kind", string(j.Kind)),
			attribute.String("longhook.project", j.ProjectID), attribute.Int("longhook.job.run", j.Runs))
	}
	return ctx, span
}

// createJob stores a new job with the traceparent of ctx's span (the
// creating request's) when tracing is on.
func (s *Service) createJob(ctx context.Context, j *core.Job) error {
	if telemetry.Enabled() {
		j.TraceParent = telemetry.Traceparent(ctx)
	}
	return s.store.CreateJob(ctx, j)
}
