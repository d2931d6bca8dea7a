package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/longhook/longhook/internal/telemetry"
)

// traceCompare is `longhook bench --trace-compare`: the same benchmark
// with tracing off and on (sampler ratio, default 1 %), alternating for
// rounds, in one process, so the machine's load weighs the same on both.
// With tracing on, spans are exported over OTLP/HTTP to a receiver in
// this process that reads and discards them (or to the collector the
// OTEL_* variables name).
type traceCompare struct {
	Sampler float64        `json:"sampler"`
	Rounds  int            `json:"rounds"`
	Off     []*benchReport `json:"off"`
	On      []*benchReport `json:"on"`
	// RatioOnOff is the mean ratio-to-ceiling with tracing on over the
	// mean with it off; CPUOnOff the same for CPU per delivery.
	RatioOnOff    float64 `json:"ratio_on_off"`
	DeliveriesOff float64 `json:"deliveries_per_sec_off"`
	DeliveriesOn  float64 `json:"deliveries_per_sec_on"`
	CPUOnOff      float64 `json:"cpu_per_delivery_on_off"`
	ExportedBytes int64   `json:"otlp_bytes_exported"`
	ExportCalls   int64   `json:"otlp_export_calls"`
}

// runTraceCompare runs `bench --trace-compare` and prints its report.
func runTraceCompare(ctx context.Context, c benchConfig, env Env, sampler float64, rounds int) error {
	if sampler < 0 || sampler > 1 || rounds <= 0 {
		return fmt.Errorf("%w: --trace-compare must be in (0, 1] and --trace-rounds positive", errUsage)
	}
	tc, err := benchTraceCompare(ctx, c, env, sampler, rounds)
	if err != nil {
		return err
	}
	if c.JSON {
		return writeBenchJSON(env.Stdout, tc)
	}
	printTraceCompare(env.Stdout, tc)
	return nil
}

func benchTraceCompare(ctx context.Context, c benchConfig, env Env, sampler float64, rounds int) (*traceCompare, error) {
	tc := &traceCompare{Sampler: sampler, Rounds: rounds}
	var bytes, calls atomic.Int64
	endpoint := ""
	if want, _ := telemetry.Wanted(env.Getenv); !want {
		url, stop, err := listenLoopback(otlpSink(&bytes, &calls))
		if err != nil {
			return nil, err
		}
		defer stop()
		endpoint = url + "/v1/traces"
	}
	offEnv, onEnv := traceCompareEnvs(c.ServeEnv, sampler, endpoint)
	for i := range rounds {
		fmt.Fprintf(env.Stderr, "trace-compare round %d/%d: tracing off\n", i+1, rounds)
		c.ServeEnv = offEnv
		off, err := benchRetried(ctx, c, env)
		if err != nil {
			return nil, err
		}
		tc.Off = append(tc.Off, off)

		fmt.Fprintf(env.Stderr, "trace-compare round %d/%d: tracing on (sampler %g)\n", i+1, rounds, sampler)
		c.ServeEnv = onEnv
		var on *benchReport
		if c.InProcess {
			on, err = benchTracedInProcess(ctx, c, env, sampler, endpoint)
		} else {
			on, err = benchRetried(ctx, c, env)
		}
		if err != nil {
			return nil, err
		}
		tc.On = append(tc.On, on)
	}
	tc.summarize(c.InProcess)
	tc.ExportedBytes, tc.ExportCalls = bytes.Load(), calls.Load()
	return tc, nil
}

// otlpSink is an OTLP/HTTP receiver that reads and discards the spans
// exported to it, counting the bytes and the requests.
func otlpSink(bytes, calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		bytes.Add(n)
		calls.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
	})
}

// traceCompareEnvs are the environments of the serve children with tracing
// off and on (sampler, exported to endpoint unless it is "").
func traceCompareEnvs(serveEnv []string, sampler float64, endpoint string) (offEnv, onEnv []string) {
	// serve children get tracing from their environment; an in-process
	// server from telemetry.Setup here.
	offEnv = append(slices.Clone(serveEnv), "OTEL_SDK_DISABLED=true")
	onEnv = append(slices.Clone(serveEnv), "OTEL_SDK_DISABLED=false", "OTEL_TRACES_EXPORTER=otlp",
		"OTEL_TRACES_SAMPLER=parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG="+strconv.FormatFloat(sampler, 'g', -1, 64))
	if endpoint != "" {
		onEnv = append(onEnv, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+endpoint)
	}
	return offEnv, onEnv
}

// benchRetried is bench, except that a run whose ceiling measurement lost
// a request (a loaded machine) is run again once rather than ending the
// comparison.
func benchRetried(ctx context.Context, c benchConfig, env Env) (*benchReport, error) {
	r, err := bench(ctx, c, env)
	if err != nil && strings.Contains(err.Error(), "bare-HTTP ceiling") {
		fmt.Fprintf(env.Stderr, "trace-compare: %v; running it again\n", err)
		r, err = bench(ctx, c, env)
	}
	return r, err
}

// benchTracedInProcess runs the benchmark (--in-process) with this
// process's tracing on at sampler, exported to endpoint unless it is "".
func benchTracedInProcess(ctx context.Context, c benchConfig, env Env, sampler float64, endpoint string) (*benchReport, error) {
	cfg := telemetry.Config{Service: "longhook-bench", Version: Version, Getenv: env.Getenv,
		Sampler: sdktrace.ParentBased(sdktrace.TraceIDRatioBased(sampler))}
	if endpoint != "" {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
		if err != nil {
			return nil, err
		}
		cfg.Exporter = exp
	}
	stop, err := telemetry.Setup(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if !telemetry.Enabled() {
		return nil, fmt.Errorf("bench: tracing did not turn on (OTEL_SDK_DISABLED?)")
	}
	on, err := benchRetried(ctx, c, env)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	_ = stop(sctx)
	cancel()
	return on, err
}

// summarize sets the ratios of the means of the runs with tracing on and
// off: the CPU is the serve children's, or the bench process's with
// --in-process.
func (tc *traceCompare) summarize(inProcess bool) {
	mean := func(rs []*benchReport, f func(*benchReport) float64) float64 {
		s := 0.0
		for _, r := range rs {
			s += f(r)
		}
		return s / float64(len(rs))
	}
	ratio := func(r *benchReport) float64 { return r.Ratio }
	dps := func(r *benchReport) float64 { return r.DeliveriesPerSec }
	cpu := func(r *benchReport) float64 { return r.CPUusPerDelivery }
	if !inProcess {
		cpu = func(r *benchReport) float64 { return r.ServerCPUusPerDelivery }
	}
	tc.RatioOnOff = mean(tc.On, ratio) / mean(tc.Off, ratio)
	tc.DeliveriesOff, tc.DeliveriesOn = mean(tc.Off, dps), mean(tc.On, dps)
	if off := mean(tc.Off, cpu); off > 0 {
		tc.CPUOnOff = mean(tc.On, cpu) / off
	}
}

func printTraceCompare(w io.Writer, tc *traceCompare) {
	fmt.Fprintf(w, "tracing compare    sampler %g, %d round(s) alternating off/on\n", tc.Sampler, tc.Rounds)
	cpu := func(r *benchReport) float64 {
		if r.ServerCPUusPerDelivery > 0 {
			return r.ServerCPUusPerDelivery
		}
		return r.CPUusPerDelivery
	}
	for i := range tc.Off {
		fmt.Fprintf(w, "  round %d          off: %.0f deliveries/s, %.1f %% of the ceiling, %.1f µs CPU/delivery; on: %.0f/s, %.1f %%, %.1f µs\n",
			i+1, tc.Off[i].DeliveriesPerSec, 100*tc.Off[i].Ratio, cpu(tc.Off[i]),
			tc.On[i].DeliveriesPerSec, 100*tc.On[i].Ratio, cpu(tc.On[i]))
	}
	fmt.Fprintf(w, "deliveries/s       off %.0f, on %.0f: on/off %.3f\n", tc.DeliveriesOff, tc.DeliveriesOn, tc.DeliveriesOn/tc.DeliveriesOff)
	fmt.Fprintf(w, "ratio on/off       %.3f (ratio to the bare-HTTP ceiling with tracing on over off)\n", tc.RatioOnOff)
	fmt.Fprintf(w, "CPU on/off         %.3f (server CPU per delivery; the bench process's with --in-process)\n", tc.CPUOnOff)
	if tc.ExportCalls > 0 {
		fmt.Fprintf(w, "exported           %d OTLP requests, %d bytes\n", tc.ExportCalls, tc.ExportedBytes)
	}
}
