package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/longhook/longhook/internal/syncbuf"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestWanted(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want bool
		err  bool
	}{
		{env: nil},
		{env: map[string]string{"OTEL_SERVICE_NAME": "x"}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, want: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, want: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, want: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}},
		{env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: true},
		// The sampler, read only when tracing is on.
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}, want: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "Always_Off"}, want: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "sometimes"}, err: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, err: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"}, err: true},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}},
	} {
		got, err := Wanted(envOf(c.env))
		if got != c.want || (err != nil) != c.err {
			t.Errorf("Wanted(%v) = %v, %v; want %v, error %v", c.env, got, err, c.want, c.err)
		}
	}
}

func TestSetupOffByDefault(t *testing.T) {
	shutdown, err := Setup(context.Background(), Config{Service: "t", Getenv: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	if Enabled() {
		t.Fatal("tracing is on with no OTEL_* variable set")
	}
	ctx, span := Start(context.Background(), "x")
	if span.IsRecording() || Traceparent(ctx) != "" {
		t.Fatal("Start with tracing off made a span")
	}
	if _, err := Setup(context.Background(), Config{Getenv: envOf(map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"})}); err == nil {
		t.Fatal("an unknown protocol was accepted")
	}
}

// setupMemory turns tracing on into an in-memory exporter for one test.
func setupMemory(t *testing.T) *tracetest.InMemoryExporter {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	shutdown, err := Setup(context.Background(), Config{Service: "t", Exporter: exp, Sampler: sdktrace.AlwaysSample()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	return exp
}

func TestTraceparentRoundTrip(t *testing.T) {
	setupMemory(t)
	h := http.Header{}
	h.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ctx, span := Start(Extract(context.Background(), h), "child")
	defer span.End()
	sc := span.SpanContext()
	if sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("child's trace id %s, want the caller's", sc.TraceID())
	}
	tp := Traceparent(ctx)
	back := ParseTraceparent(tp)
	if !back.Equal(sc.WithRemote(true)) {
		t.Fatalf("ParseTraceparent(%q) = %v, want %v", tp, back, sc)
	}
	out := http.Header{}
	Inject(ctx, out)
	if out.Get("Traceparent") != tp {
		t.Fatalf("Inject wrote %q, want %q", out.Get("Traceparent"), tp)
	}
	if ParseTraceparent("garbage").IsValid() || ParseTraceparent("").IsValid() {
		t.Fatal("a malformed traceparent parsed")
	}
}

func TestLogHandlerAddsTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewTextHandler(&buf, nil)))
	log.InfoContext(context.Background(), "off")
	if strings.Contains(buf.String(), "trace_id") {
		t.Fatalf("a record without a span has a trace_id: %s", buf.String())
	}
	exp := setupMemory(t)
	ctx, span := Start(context.Background(), "s", trace.WithSpanKind(trace.SpanKindInternal))
	log.With("k", "v").InfoContext(ctx, "on")
	span.End()
	line := buf.String()
	if !strings.Contains(line, "trace_id="+span.SpanContext().TraceID().String()) ||
		!strings.Contains(line, "span_id="+span.SpanContext().SpanID().String()) {
		t.Fatalf("log line lacks the span's ids: %s", line)
	}
	_ = exp
}

// failingExporter fails every export, as an unreachable collector does.
type failingExporter struct{}

func (failingExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error {
	return errors.New("collector unreachable")
}
func (failingExporter) Shutdown(context.Context) error { return nil }

// TestSDKErrorsGoToTheLogger: an export the collector refuses is reported
// on the server's logger (so --log-format json stays JSON and --log-level
// applies), never with Go's plain log, where the SDK writes by default.
func TestSDKErrorsGoToTheLogger(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "1") // export in the background at once
	var std syncbuf.Buffer
	log.SetOutput(&std)
	defer log.SetOutput(os.Stderr)
	var buf syncbuf.Buffer
	stop, err := Setup(context.Background(), Config{Service: "t", Exporter: failingExporter{},
		Log: slog.New(slog.NewJSONHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	_, span := Start(context.Background(), "s")
	span.End()
	deadline := time.Now().Add(10 * time.Second)
	for buf.String() == "" && std.String() == "" && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	_ = stop(context.Background())
	if std.String() != "" {
		t.Errorf("the SDK wrote with Go's plain log: %q", std.String())
	}
	first, _, _ := strings.Cut(buf.String(), "\n")
	var rec struct{ Level, Msg, Error string }
	if err := json.Unmarshal([]byte(first), &rec); err != nil ||
		rec.Level != "WARN" || rec.Msg != "tracing.error" || !strings.Contains(rec.Error, "collector unreachable") {
		t.Errorf("logger got %q (%v), want a tracing.error warning naming the failure", buf.String(), err)
	}
}
