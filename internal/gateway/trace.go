package gateway

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/longhook/longhook/internal/telemetry"
)

// Tracing on the gateway (tracing is on when these run): one server span
// per intake request, continuing the sender's traceparent (longhook sends
// one to webhooks with trace_propagation); a child span for the durable
// write, whose traceparent is stored with the event's kept headers; and a
// span per sink attempt, a child of that stored context however long the
// event waited, which the sink forwards in place of the stored one.

func startIntakeSpan(r *http.Request, source string) (*http.Request, trace.Span) {
	ctx := telemetry.Extract(r.Context(), r.Header)
	ctx, span := telemetry.Start(ctx, "gateway.intake "+source, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("longhook.gateway.source", source),
			attribute.String("http.request.method", r.Method)))
	return r.WithContext(ctx), span
}

func endIntakeSpan(span trace.Span, status int, outcome string) {
	span.SetAttributes(attribute.Int("http.response.status_code", status), attribute.String("longhook.gateway.outcome", outcome))
	if status >= 500 {
		span.SetStatus(codes.Error, outcome)
	}
	span.End()
}

// startStoreSpan starts the durable write's span and puts its
// traceparent in the headers kept with the event.
func startStoreSpan(ctx context.Context, webhookID, typ string, kept http.Header) (context.Context, trace.Span) {
	ctx, span := telemetry.Start(ctx, "gateway.store", trace.WithAttributes(
		attribute.String("longhook.gateway.webhook_id", truncate(webhookID, 128)),
		attribute.String("longhook.event.type", truncate(typ, 128))))
	delete(kept, "Traceparent")
	delete(kept, "Tracestate")
	telemetry.Inject(ctx, kept)
	return ctx, span
}

func endStoreSpan(span trace.Span, ar AcceptResult, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(attribute.Int64("longhook.gateway.seq", ar.Seq), attribute.Bool("longhook.gateway.duplicate", ar.Duplicate))
	}
	span.End()
}

// send is one sink attempt, in a span when tracing is on.
func (f *forwarder) send(ctx context.Context, fw *Forward) error {
	ev := fw.Event
	if f.resign != nil {
		if h, ok := f.resign(ev.Header, ev.Body, f.now()); ok {
			ev.Header = h // a copy: the stored header stays the sender's
		}
	}
	if !telemetry.Enabled() {
		return f.sink.Send(ctx, &ev)
	}
	ctx = telemetry.Extract(ctx, fw.Header)
	ctx, span := telemetry.Start(ctx, "gateway.sink "+f.id, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("longhook.gateway.sink", f.id),
			attribute.String("longhook.gateway.source", f.source),
			attribute.String("longhook.gateway.webhook_id", truncate(fw.WebhookID, 128)),
			attribute.Int64("longhook.gateway.seq", fw.Seq),
			attribute.Int("longhook.gateway.attempt", fw.Attempts+1)))
	if ev.Header.Get("Traceparent") != "" {
		// The sink forwards this span's context, not the stored one.
		ev.Header = ev.Header.Clone()
		delete(ev.Header, "Tracestate")
		telemetry.Inject(ctx, ev.Header)
	}
	err := f.sink.Send(ctx, &ev)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("longhook.gateway.outcome", "failed"))
	} else {
		span.SetAttributes(attribute.String("longhook.gateway.outcome", "ok"))
	}
	span.End()
	return err
}
