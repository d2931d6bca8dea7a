package engine

import (
	"context"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/telemetry"
)

// tracedAttempt runs one attempt inside a client span when tracing is on.
// The span continues the trace of the event's publish (its traceparent
// was stored with the event, so this holds after the queue, a restart or
// on another instance) and links to the publish span; an event published
// with tracing off starts a trace of its own.
func (e *Engine) tracedAttempt(ctx context.Context, t *task) core.Completion {
	if !telemetry.Enabled() {
		return e.attempt(ctx, t)
	}
	c := &t.c
	pub := telemetry.ParseTraceparent(c.TraceParent)
	if pub.IsValid() && !pub.IsSampled() && !propagates(t) {
		// The publish was not sampled, so (parent-based sampling) no span
		// of its trace is: skip the span's cost altogether.
		return e.attempt(ctx, t)
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
	if pub.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, pub)
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: pub,
			Attributes: []attribute.KeyValue{attribute.String("longhook.link", "publish")}}))
	}
	ctx, span := telemetry.Start(ctx, "deliver", opts...)
	t.logCtx = ctx
	comp := e.attempt(ctx, t)
	t.logCtx = nil
	if span.IsRecording() {
		endAttemptSpan(span, c, comp)
	}
	span.End()
	return comp
}

// endAttemptSpan records an attempt on its (recording) span.
func endAttemptSpan(span trace.Span, c *core.Claimed, comp core.Completion) {
	attrs := []attribute.KeyValue{
		attribute.String("longhook.delivery.id", c.ID),
		attribute.String("longhook.event.id", c.EventID),
		attribute.String("longhook.event.type", c.EventType),
		attribute.String("longhook.project", c.ProjectID),
		attribute.Int("longhook.delivery.attempt", c.Attempts+1),
	}
	if c.WebhookID != "" {
		attrs = append(attrs, attribute.String("longhook.webhook.id", c.WebhookID))
	}
	span.SetAttributes(attrs...)
	a := comp.Attempt
	if a.URI != "" {
		if u, err := url.Parse(a.URI); err == nil {
			span.SetAttributes(attribute.String("server.address", u.Hostname()))
		}
	}
	if a.StatusCode != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", a.StatusCode))
	}
	outcome := string(comp.Status)
	if comp.Status == core.DeliveryPending {
		outcome = "retry"
	}
	span.SetAttributes(attribute.String("longhook.delivery.outcome", outcome))
	if !comp.Success && a.Error != "" {
		span.SetStatus(codes.Error, a.Error)
	}
}

// propagates reports whether t's destination asked for traceparent.
func propagates(t *task) bool {
	if t.c.WebhookID != "" {
		return t.hook != nil && t.hook.TracePropagation
	}
	return t.c.Dynamic != nil && t.c.Dynamic.TracePropagation
}

// traceHeaders appends the attempt span's traceparent (and tracestate) to
// an attempt's headers when its destination asked for them: the webhook's
// trace_propagation, or its webhook_config's for a dynamic delivery.
func traceHeaders(ctx context.Context, t *task, headers [][2]string) [][2]string {
	if !propagates(t) {
		return headers
	}
	carrier := map[string][]string{}
	telemetry.Inject(ctx, carrier)
	for k, vs := range carrier {
		for _, v := range vs {
			headers = append(headers, [2]string{k, v})
		}
	}
	return headers
}
