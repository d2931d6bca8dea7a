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
func startRunSpan(ctx context.Context, j *core.Job) (context.Context, trace.Span) {
	ctx, span := telemetry.Start(ctx, "job.run "+string(j.Kind))
	if span.IsRecording() {
		span.SetAttributes(attribute.String("longhook.job.id", j.ID), attribute.String("longhook.job.kind", string(j.Kind)),
			attribute.String("longhook.project", j.ProjectID), attribute.Int("longhook.job.run", j.Runs))
	}
	return ctx, span
}
