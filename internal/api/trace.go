package api

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/longhook/longhook/internal/telemetry"
)

// startSpan starts the server span of one API request (tracing is on): a
// caller's traceparent header becomes its parent. The span is named by
// the route once the mux has matched it (endSpan), never by the raw URL,
// which may carry ?key=.
func (s *server) startSpan(r *http.Request) (*http.Request, trace.Span) {
	ctx := telemetry.Extract(r.Context(), r.Header)
	ctx, span := telemetry.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
	return r.WithContext(ctx), span
}

// endSpan names the request's span after its route and records the
// status and project.
func endSpan(span trace.Span, r *http.Request, status int, project string) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(attribute.String("http.request.method", r.Method))
	if r.Pattern != "" {
		span.SetName(r.Pattern)
		span.SetAttributes(attribute.String("http.route", r.Pattern))
	}
	if status == 0 {
		status = http.StatusOK
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if project != "" {
		span.SetAttributes(attribute.String("longhook.project", project))
	}
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}
