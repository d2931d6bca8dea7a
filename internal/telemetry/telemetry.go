// Package telemetry is longhook's OpenTelemetry tracing: one process-wide
// tracer provider, configured only by the standard OTEL_* environment
// variables and off unless they ask for it (docs/operations.md,
// "Tracing").
//
// The API is small so that hot paths pay one check when tracing is off:
//
//	if telemetry.Enabled() {
//		ctx, span = telemetry.Start(ctx, "publish", ...)
//	}
//
// Enabled is an atomic load; with tracing off nothing else runs, nothing is
// allocated and no traceparent is stored or sent.
package telemetry

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of every longhook span.
const ScopeName = "github.com/longhook/longhook"

var (
	on       atomic.Bool
	mu       sync.Mutex // serialises Setup and shutdown
	provider *sdktrace.TracerProvider
	tracer   atomic.Pointer[tracerBox] // nil while tracing is off
	// Propagator is the W3C trace-context propagator (traceparent,
	// tracestate), the only one longhook speaks.
	Propagator = propagation.TraceContext{}
)

// Enabled reports whether tracing is on in this process. It is the one
// check a hot path makes before it touches anything else here.
func Enabled() bool { return on.Load() }

// Config sets up tracing. The zero value reads everything from the
// environment.
type Config struct {
	// Service is the default service.name (OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES override it).
	Service string
	// Version is the service.version resource attribute.
	Version string
	// Getenv reads the environment (default: no variable set). The OTLP
	// exporters and the SDK read the process environment themselves for
	// their own variables (headers, timeouts, batch sizes, sampler).
	Getenv func(string) string
	// Exporter, when set, receives the spans instead of an OTLP exporter
	// chosen from the environment, and turns tracing on whatever the
	// environment says (benchmarks, tests).
	Exporter sdktrace.SpanExporter
	// Sampler, when set, overrides OTEL_TRACES_SAMPLER.
	Sampler sdktrace.Sampler
	// Log receives the SDK's errors (a collector that cannot be reached,
	// spans dropped), as "tracing.error" warnings; nil is slog.Default().
	// Without it the SDK writes them with Go's plain log, past the
	// server's --log-format and --log-level.
	Log *slog.Logger
}

// Wanted reports whether the environment asks for tracing: OTEL_SDK_DISABLED
// is not true, and OTEL_TRACES_EXPORTER is otlp, or it is unset and an
// OTLP endpoint is set. It returns an error for an exporter other than
// otlp or none.
func Wanted(getenv func(string) string) (bool, error) {
	if getenv == nil {
		return false, nil
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	want := false
	switch exp := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); exp {
	case "none":
		return false, nil
	case "otlp":
		want = true
	case "":
		want = getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%s is not supported (otlp or none)", exp)
	}
	if want {
		if err := checkSampler(getenv); err != nil {
			return false, err
		}
	}
	return want, nil
}

// checkSampler refuses an OTEL_TRACES_SAMPLER the SDK does not know, or a
// ratio sampler's OTEL_TRACES_SAMPLER_ARG that is not a number in [0, 1]:
// the SDK itself would log the mistake through Go's plain log (not the
// server's logger) and trace with another sampler than the one asked for.
func checkSampler(getenv func(string) string) error {
	name := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER")))
	switch name {
	case "", "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
		return nil
	case "traceidratio", "parentbased_traceidratio":
		arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
		if arg == "" {
			return nil // the SDK's default ratio, 1.0
		}
		if r, err := strconv.ParseFloat(arg, 64); err != nil || r < 0 || r > 1 {
			return fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%s is not a ratio between 0 and 1", arg)
		}
		return nil
	default:
		return fmt.Errorf("OTEL_TRACES_SAMPLER=%s is not supported (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio)", name)
	}
}

// protocol is the OTLP protocol the environment chooses (default
// http/protobuf, the SDK's default).
func protocol(getenv func(string) string) (string, error) {
	p := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
	if p == "" {
		p = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	switch p {
	case "", "http/protobuf":
		return "http/protobuf", nil
	case "grpc":
		return "grpc", nil
	default:
		return "", fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported (http/protobuf or grpc)", p)
	}
}

// Setup turns tracing on when cfg (or the environment) asks for it and
// returns a shutdown that flushes the spans still buffered and turns it off
// again. With tracing not wanted it does nothing and returns a no-op
// shutdown. Only one setup is active at a time.
func Setup(ctx context.Context, cfg Config) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	exp := cfg.Exporter
	if exp == nil {
		want, err := Wanted(cfg.Getenv)
		if err != nil || !want {
			return noop, err
		}
		proto, err := protocol(cfg.Getenv)
		if err != nil {
			return noop, err
		}
		if proto == "grpc" {
			exp, err = otlptracegrpc.New(ctx)
		} else {
			exp, err = otlptracehttp.New(ctx)
		}
		if err != nil {
			return noop, fmt.Errorf("tracing: OTLP exporter: %w", err)
		}
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.Service)}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	// Later options win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the defaults.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(attrs...), resource.WithFromEnv())
	if err != nil && res == nil {
		return noop, fmt.Errorf("tracing: resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
	if cfg.Sampler != nil {
		opts = append(opts, sdktrace.WithSampler(cfg.Sampler))
	}
	mu.Lock()
	defer mu.Unlock()
	if provider != nil {
		_ = exp.Shutdown(ctx)
		return noop, errors.New("tracing: already set up")
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.LogAttrs(context.Background(), slog.LevelWarn, "tracing.error", slog.String("error", err.Error()))
	}))
	tp := sdktrace.NewTracerProvider(opts...)
	provider = tp
	tracer.Store(&tracerBox{tp.Tracer(ScopeName)})
	on.Store(true)
	var once sync.Once
	return func(ctx context.Context) error {
		var err error
		once.Do(func() {
			mu.Lock()
			defer mu.Unlock()
			on.Store(false)
			tracer.Store(nil)
			provider = nil
			err = tp.Shutdown(ctx)
		})
		return err
	}, nil
}

type tracerBox struct{ trace.Tracer }

// ForceFlush exports the spans buffered so far (tests).
func ForceFlush(ctx context.Context) error {
	mu.Lock()
	tp := provider
	mu.Unlock()
	if tp == nil {
		return nil
	}
	return tp.ForceFlush(ctx)
}

// Tracer is the current tracer (a no-op one when tracing is off).
func Tracer() trace.Tracer {
	if b := tracer.Load(); b != nil {
		return b.Tracer
	}
	return noop.NewTracerProvider().Tracer(ScopeName)
}

// Start starts a span under ctx's span. With tracing off it returns ctx
// and a non-recording span; callers on hot paths check Enabled first so
// that they do not build the attributes either.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	b := tracer.Load()
	if b == nil {
		return ctx, trace.SpanFromContext(ctx)
	}
	return b.Start(ctx, name, opts...)
}

// Extract returns ctx with the remote span context of a traceparent (and
// tracestate) header in h, if it holds a valid one.
func Extract(ctx context.Context, h http.Header) context.Context {
	return Propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// Inject writes ctx's span context into h as traceparent (and tracestate).
// It writes nothing when ctx carries no valid span context.
func Inject(ctx context.Context, h http.Header) {
	Propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// Traceparent is ctx's span context as a W3C traceparent value, "" when
// ctx carries none. It is what the store keeps with an event, so a
// delivery attempt can link to its publish after the queue.
func Traceparent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	var b [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	copy(b[:], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags())})
	return string(b[:])
}

// ParseTraceparent decodes a stored traceparent (version 00, as
// Traceparent writes it) into a remote span context; the zero (invalid)
// SpanContext for "" or a malformed value. It allocates nothing: it runs
// once per delivery attempt.
func ParseTraceparent(tp string) trace.SpanContext {
	if len(tp) != 55 || tp[:3] != "00-" || tp[35] != '-' || tp[52] != '-' {
		return trace.SpanContext{}
	}
	var tid trace.TraceID
	var sid trace.SpanID
	var flags [1]byte
	if !unhex(tid[:], tp[3:35]) || !unhex(sid[:], tp[36:52]) || !unhex(flags[:], tp[53:55]) {
		return trace.SpanContext{}
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid,
		TraceFlags: trace.TraceFlags(flags[0]) & trace.FlagsSampled, Remote: true})
}

// unhex decodes lowercase hex s into dst (len(s) == 2*len(dst)).
func unhex(dst []byte, s string) bool {
	for i := range dst {
		hi, ok1 := nibble(s[2*i])
		lo, ok2 := nibble(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func nibble(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
