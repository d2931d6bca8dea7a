package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"time"

	"github.com/longhook/longhook/internal/gateway"
)

// benchConfig are the flags of `longhook bench`.
type benchConfig struct {
	Events      int
	Webhooks    int
	Size        int
	Concurrency int
	Batch       int
	Rate        float64
	SlowShare   float64
	FailShare   float64
	Backlog     int
	JSON        bool
	DatabaseURL string
	Workers     int
	PerDest     int
	PerDestMax  int
	Timeout     time.Duration
	CPUProfile  string
	LogLevel    string
	Dynamic     bool
	Rounds      int
	Instances   int
	InProcess   bool
	// ServeEnv is added to the environment of `longhook serve` children
	// (--trace-compare turns tracing on and off with it).
	ServeEnv []string
}

// benchFlags are the flags of bench that are not benchConfig's.
type benchFlags struct {
	traceSampler float64 // --trace-compare
	traceRounds  int
	soak         soakConfig // --soak and its flags
}

func runBench(ctx context.Context, args []string, env Env) error {
	if rest, ok := benchGateway(args, env.Getenv); ok {
		return gateway.RunBench(ctx, rest, env.Getenv, env.Stdout, env.Stderr)
	}
	fs := newFlagSet("bench", env)
	fs.Describe("longhook bench [flags]", `Measures delivery throughput and latency of serve (child processes on a temporary SQLite
database, or --database-url) against the bare-HTTP ceiling of this machine. It loads the
machine: run it on a quiet one. docs/benchmarks.md explains the report.

Examples:
  longhook bench --events 20000 --webhooks 1 --concurrency 64
  longhook bench --events 10000 --webhooks 10 --batch 100 --json
  longhook bench --gateway -h                           # the receiving gateway's benchmark`)
	var c benchConfig
	var f benchFlags
	declareBenchFlags(fs, &c, &f)
	// Flags anywhere, and no arguments: Go's flag package stops at the
	// first argument, so "--dev false --addr :9000" ran in development
	// mode on the default address, the rest unread.
	if _, err := parseArgs(fs, args, 0, 0, "no arguments"); err != nil {
		return err
	}
	if f.soak.Duration > 0 {
		return runBenchSoak(ctx, c, f.soak, env)
	}
	if c.Events <= 0 || c.Webhooks <= 0 || c.Concurrency <= 0 || c.Size < 100 || c.Rounds <= 0 {
		return fmt.Errorf("%w: --events, --webhooks, --concurrency, --rounds must be positive and --size ≥ 100", errUsage)
	}
	if c.CPUProfile != "" && !c.InProcess && profileStartSignal == nil {
		return fmt.Errorf("%w: --cpuprofile needs --in-process on %s (a serve child is told when to profile by SIGUSR1 and SIGUSR2)", errUsage, runtime.GOOS)
	}
	if f.traceSampler != 0 {
		return runTraceCompare(ctx, c, env, f.traceSampler, f.traceRounds)
	}
	rep, err := bench(ctx, c, env)
	if err != nil {
		return err
	}
	if c.JSON {
		return writeBenchJSON(env.Stdout, rep)
	}
	printBench(env.Stdout, rep)
	return nil
}

// declareBenchFlags declares the flags of bench on fs, into c and f.
func declareBenchFlags(fs *flagSet, c *benchConfig, f *benchFlags) {
	// --gateway is taken above (benchGateway); declared here so -h and
	// completion list it.
	fs.Bool("gateway", false, "measure the receiving gateway (verify, dedupe, store, forward) instead of serve; bench --gateway -h lists its flags")
	fs.IntVar(&c.Events, "events", 20000, "events to publish")
	fs.IntVar(&c.Webhooks, "webhooks", 10, "webhooks subscribed to every event (fan-out)")
	fs.IntVar(&c.Size, "size", 600, "event body size in bytes")
	fs.IntVar(&c.Concurrency, "concurrency", 64, "concurrent publishers (and bare-HTTP client connections)")
	fs.IntVar(&c.Batch, "batch", 0, "events per events:batchPublish call (0: single-event publishes)")
	fs.Float64Var(&c.Rate, "rate", 0, "publish at this many events/s (0: as fast as accepted)")
	fs.Float64Var(&c.SlowShare, "slow-share", 0, "share of webhooks that hang until the attempt timeout")
	fs.Float64Var(&c.FailShare, "fail-share", 0, "share of webhooks that answer 500")
	fs.IntVar(&c.Backlog, "backlog", 0, "scheduled retries to insert before the run")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "database URL (default: SQLite in a temporary directory)")
	fs.IntVar(&c.Workers, "workers", 512, "engine attempts in flight")
	fs.IntVar(&c.PerDest, "per-destination", 32, "engine attempts in flight per destination")
	fs.IntVar(&c.PerDestMax, "per-destination-max", 0, "serve --per-destination-max: how far a destination's cap may grow (0: a fixed cap)")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Minute, "give up after this long")
	fs.IntVar(&c.Instances, "instances", 1, "serve instances sharing the database (PostgreSQL only); publishers are spread across them")
	fs.BoolVar(&c.Dynamic, "dynamic", false, "publish with webhook_config (JWT-signed dynamic deliveries, one per --webhooks URI) and compare with the raw RS256 signing rate")
	fs.IntVar(&c.Rounds, "rounds", 4, "with --dynamic: split the events into this many rounds and measure the RS256 signing rate before and after each, so a neighbour's load drifting during the run weighs the same on both sides")
	fs.StringVar(&c.LogLevel, "log-level", "error", "server log level (logs go to stderr)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured deliveries to this file: of each serve child (FILE, then FILE.iN for more instances; serve --cpuprofile-on-signal, started and stopped by the bench), or with --in-process of the bench process; start-up, set-up and warm-up are not in it")
	fs.BoolVar(&c.InProcess, "in-process", false, "run the servers in the bench process instead of as child serve processes (server CPU is then not told apart)")
	fs.Float64Var(&f.traceSampler, "trace-compare", 0, "run the benchmark with tracing off and on at this sampler ratio (e.g. 0.01), alternating, and report the ratio on/off (spans go to an OTLP receiver in the process unless OTEL_* variables name one)")
	fs.IntVar(&f.traceRounds, "trace-rounds", 2, "with --trace-compare: off/on pairs to run")
	fs.DurationVar(&f.soak.Duration, "soak", 0, "instead of a benchmark, run a soak this long: mixed load (fan-out, dynamic, a flapping and a failing webhook, retention sweeps) at --time-scale, resources printed every minute, zero accepted events lost")
	fs.Float64Var(&f.soak.TimeScale, "time-scale", 1800, "with --soak: the server's --time-scale")
	fs.StringVar(&f.soak.HeapProfile, "heap-profile", "", "with --soak: after a GC, write a heap profile to PREFIX-MINUTE.pb.gz at every sample (compare two with go tool pprof -base)")
}

// writeBenchJSON writes a bench report indented (and HTML-escaped,
// unlike printJSON), for --json.
func writeBenchJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// driverOf names the store a database URL selects.
func driverOf(dbURL string) string {
	if isPostgres(dbURL) {
		return "postgres"
	}
	return "sqlite"
}

func benchLogger(env Env, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelError
	}
	return newLogger(env, l, false)
}
