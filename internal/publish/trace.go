package publish

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/longhook/longhook/internal/telemetry"
)

// maxSpanEvents bounds the event ids a batch publish span lists.
const maxSpanEvents = 100

// startSpan starts the span of one Publish call (tracing is on), a child
// of ctx's span (the API request's, or a job's). Its traceparent is kept
// with every event the call accepts, so the delivery attempts, later and
// on any instance, continue this trace.
func startSpan(ctx context.Context, projectID string, in []Input) (context.Context, trace.Span) {
	ctx, span := telemetry.Start(ctx, "publish", trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(attribute.String("longhook.project", projectID), attribute.Int("longhook.event.count", len(in)))
		if len(in) == 1 {
			span.SetAttributes(attribute.String("longhook.event.type", in[0].Type))
		}
	}
	return ctx, span
}

// endSpan records what the call became: the event id (ids, for a batch)
// and whether it was a duplicate.
func endSpan(span trace.Span, res []Result) {
	if !span.IsRecording() {
		span.End()
		return
	}
	switch {
	case len(res) == 1 && res[0].Event != nil:
		span.SetAttributes(attribute.String("longhook.event.id", res[0].Event.ID),
			attribute.Int("longhook.event.deliveries", res[0].Deliveries),
			attribute.Bool("longhook.event.duplicate", res[0].Duplicate))
	case len(res) > 1:
		ids := make([]string, 0, min(len(res), maxSpanEvents))
		types := make([]string, 0, cap(ids))
		for _, r := range res[:cap(ids)] {
			if r.Event != nil {
				ids, types = append(ids, r.Event.ID), append(types, r.Event.Type)
			}
		}
		span.SetAttributes(attribute.StringSlice("longhook.event.ids", ids), attribute.StringSlice("longhook.event.types", types))
	}
	span.End()
}
