package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/longhook/longhook/internal/gateway"
	"github.com/longhook/longhook/internal/procstat"
	"github.com/longhook/longhook/webhook"
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

// benchReport is the outcome of one run.
type benchReport struct {
	Machine          string  `json:"machine"`
	Store            string  `json:"store"`
	Instances        int     `json:"instances"`
	Events           int     `json:"events"`
	Webhooks         int     `json:"webhooks"`
	EventBytes       int     `json:"event_bytes"`
	Concurrency      int     `json:"concurrency"`
	Batch            int     `json:"batch"`
	Rate             float64 `json:"rate,omitempty"`
	Backlog          int     `json:"backlog,omitempty"`
	Deliveries       int     `json:"deliveries"`
	Seconds          float64 `json:"seconds"`
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	PublishPerSec    float64 `json:"events_published_per_sec"`
	P50ms            float64 `json:"latency_p50_ms"`
	P95ms            float64 `json:"latency_p95_ms"`
	P99ms            float64 `json:"latency_p99_ms"`
	// PublishP50ms and PublishP99ms are the publish calls' own round
	// trips (request sent to answer read). ScheduleLagP50ms and
	// ScheduleLagP99ms are, with --rate, how late the median and the 99th
	// percentile publish left against the paced schedule: when even the
	// median is milliseconds late the machine could not keep the rate, the
	// publishers ran as a closed loop of --concurrency calls, and the
	// latencies are those of saturation (a late p99 alone is a stall: a
	// GC, a checkpoint, a neighbour).
	PublishP50ms     float64 `json:"publish_latency_p50_ms"`
	PublishP99ms     float64 `json:"publish_latency_p99_ms"`
	ScheduleLagP50ms float64 `json:"schedule_lag_p50_ms,omitempty"`
	ScheduleLagP99ms float64 `json:"schedule_lag_p99_ms,omitempty"`
	CeilingPerSec    float64 `json:"bare_http_ceiling_per_sec"`
	Ratio            float64 `json:"ratio_to_ceiling"`
	// The unsigned ceiling is the loopback's physical limit: plain POSTs
	// of the same body, no signature headers.
	UnsignedCeilingPerSec float64 `json:"bare_http_unsigned_ceiling_per_sec"`
	RatioUnsigned         float64 `json:"ratio_to_unsigned_ceiling"`
	HealthyP99ms          float64 `json:"healthy_latency_p99_ms,omitempty"`
	Dynamic               bool    `json:"dynamic,omitempty"`
	RS256SignPerSec       float64 `json:"rs256_signs_per_sec,omitempty"`
	RatioToSigning        float64 `json:"ratio_to_rs256_signing,omitempty"`
	// RoundRatios is each round's dynamic deliveries/s over the mean of the
	// signing rates measured just before and just after it.
	RoundRatios []float64 `json:"round_ratios_to_rs256_signing,omitempty"`
	// MaxRSSMB is the peak RSS of the bench process plus, when the
	// servers are child processes, each one's peak (a sum of peaks: an
	// upper bound); ServerMaxRSSMB is the largest server's peak alone.
	MaxRSSMB       float64 `json:"max_rss_mb"`
	ServerMaxRSSMB float64 `json:"server_max_rss_mb,omitempty"`
	// MaxGoroutines is the most goroutines of the bench process (the
	// receiver and clients, and the server with --in-process) sampled
	// every 100 ms while deliveries ran.
	MaxGoroutines int `json:"max_goroutines"`
	// HealthyMin and HealthyMax are the fewest and most deliveries one
	// healthy webhook received: equal when no destination was starved.
	HealthyMin int `json:"healthy_webhook_min_deliveries,omitempty"`
	HealthyMax int `json:"healthy_webhook_max_deliveries,omitempty"`
	// HangingMin and HangingMax are the fewest and most attempts one
	// hanging webhook (--slow-share) received during the run: at least 1
	// when none of them was starved.
	HangingMin int `json:"hanging_webhook_min_attempts,omitempty"`
	HangingMax int `json:"hanging_webhook_max_attempts,omitempty"`
	// CPU time of the whole bench process per delivery, per ceiling
	// request and per RS256 signature: on a shared machine these move far
	// less than rates do, so their ratios say what the code costs.
	CPUusPerDelivery  float64 `json:"cpu_us_per_delivery"`
	CPUusPerCeiling   float64 `json:"cpu_us_per_ceiling_request"`
	CPURatioToCeiling float64 `json:"cpu_ratio_to_ceiling"`
	CPUusPerRS256     float64 `json:"cpu_us_per_rs256_signature,omitempty"`
	CPURatioToSigning float64 `json:"cpu_ratio_to_rs256_signing,omitempty"`
	// ServerCPUusPerDelivery is the CPU of the serve processes alone (0
	// with --in-process); DatabaseCPUusPerDelivery that of the PostgreSQL
	// backends serving the run's database. CPUusPerDelivery counts the
	// bench process and the serve processes.
	ServerCPUusPerDelivery float64 `json:"server_cpu_us_per_delivery,omitempty"`
	// CPUCoresUsed is the CPU of the processes CPUusPerDelivery counts
	// over the run's wall time, in cores (CPUs kept busy on average),
	// ServerCPUCoresUsed that of the serve processes alone: a run that
	// keeps fewer cores busy than the machine has is bound by latency
	// (round trips, queues, caps), not by CPU.
	CPUCoresUsed             float64 `json:"cpu_cores_used"`
	ServerCPUCoresUsed       float64 `json:"server_cpu_cores_used,omitempty"`
	DatabaseCPUusPerDelivery float64 `json:"database_cpu_us_per_delivery,omitempty"`
	CPUusPerUnsignedCeiling  float64 `json:"cpu_us_per_unsigned_ceiling_request"`

	window profileWindow // with --cpuprofile
}

// profileWindow says when a run asked for its CPU profiles, when its
// measured phase began and ended, and when the profiles were written.
type profileWindow struct{ asked, from, to, written time.Time }

// startBenchProfile starts the CPU profile of a run, of the child servers
// (each told by signal, each acknowledging) or, with --in-process, of the
// bench process; stop writes it.
func startBenchProfile(ctx context.Context, c benchConfig, servers []*benchServer) (stop func() error, err error) {
	if !c.InProcess {
		if err := signalProfiles(ctx, servers, profileStartSignal, "cpu profile started"); err != nil {
			return nil, err
		}
		return func() error { return signalProfiles(ctx, servers, profileStopSignal, "cpu profile written") }, nil
	}
	f, err := os.Create(c.CPUProfile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	runtime.SetBlockProfileRate(int(time.Millisecond))
	return func() error {
		pprof.StopCPUProfile()
		runtime.SetBlockProfileRate(0)
		if bf, err := os.Create(c.CPUProfile + ".block"); err == nil {
			_ = pprof.Lookup("block").WriteTo(bf, 0)
			bf.Close()
		}
		return f.Close()
	}, nil
}

func runBench(ctx context.Context, args []string, env Env) error {
	if rest, ok := benchGateway(args, env.Getenv); ok {
		return gateway.RunBench(ctx, rest, env.Getenv, env.Stdout, env.Stderr)
	}
	fs := newFlagSet("bench", env)
	var c benchConfig
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
	traceSampler := fs.Float64("trace-compare", 0, "run the benchmark with tracing off and on at this sampler ratio (e.g. 0.01), alternating, and report the ratio on/off (spans go to an OTLP receiver in the process unless OTEL_* variables name one)")
	traceRounds := fs.Int("trace-rounds", 2, "with --trace-compare: off/on pairs to run")
	var sk soakConfig
	fs.DurationVar(&sk.Duration, "soak", 0, "instead of a benchmark, run a soak this long: mixed load (fan-out, dynamic, a flapping and a failing webhook, retention sweeps) at --time-scale, resources printed every minute, zero accepted events lost")
	fs.Float64Var(&sk.TimeScale, "time-scale", 1800, "with --soak: the server's --time-scale")
	fs.StringVar(&sk.HeapProfile, "heap-profile", "", "with --soak: after a GC, write a heap profile to PREFIX-MINUTE.pb.gz at every sample (compare two with go tool pprof -base)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if sk.Duration > 0 {
		if sk.TimeScale <= 0 {
			return fmt.Errorf("%w: --time-scale must be positive", errUsage)
		}
		sk.Rate, sk.DatabaseURL, sk.LogLevel = c.Rate, c.DatabaseURL, c.LogLevel
		if sk.Rate <= 0 {
			sk.Rate = 20
		}
		sk.Every = min(time.Minute, sk.Duration/4)
		return soak(ctx, sk, env)
	}
	if c.Events <= 0 || c.Webhooks <= 0 || c.Concurrency <= 0 || c.Size < 100 || c.Rounds <= 0 {
		return fmt.Errorf("%w: --events, --webhooks, --concurrency, --rounds must be positive and --size ≥ 100", errUsage)
	}
	if c.CPUProfile != "" && !c.InProcess && profileStartSignal == nil {
		return fmt.Errorf("%w: --cpuprofile needs --in-process on %s (a serve child is told when to profile by SIGUSR1 and SIGUSR2)", errUsage, runtime.GOOS)
	}
	if *traceSampler != 0 {
		if *traceSampler < 0 || *traceSampler > 1 || *traceRounds <= 0 {
			return fmt.Errorf("%w: --trace-compare must be in (0, 1] and --trace-rounds positive", errUsage)
		}
		tc, err := benchTraceCompare(ctx, c, env, *traceSampler, *traceRounds)
		if err != nil {
			return err
		}
		if c.JSON {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(tc)
		}
		printTraceCompare(env.Stdout, tc)
		return nil
	}
	rep, err := bench(ctx, c, env)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBench(env.Stdout, rep)
	return nil
}

func printBench(w io.Writer, r *benchReport) {
	fmt.Fprintf(w, "machine            %s\n", r.Machine)
	fmt.Fprintf(w, "store              %s (%d instance(s))\n", r.Store, r.Instances)
	fmt.Fprintf(w, "events × webhooks  %d × %d = %d deliveries (%d-byte events, %d publishers, batch %d)\n", r.Events, r.Webhooks, r.Deliveries, r.EventBytes, r.Concurrency, r.Batch)
	if r.Backlog > 0 {
		fmt.Fprintf(w, "backlog            %d scheduled retries\n", r.Backlog)
	}
	fmt.Fprintf(w, "elapsed            %.2f s\n", r.Seconds)
	fmt.Fprintf(w, "deliveries/s       %.0f\n", r.DeliveriesPerSec)
	fmt.Fprintf(w, "published events/s %.0f\n", r.PublishPerSec)
	fmt.Fprintf(w, "publish→receipt    p50 %.2f ms  p95 %.2f ms  p99 %.2f ms\n", r.P50ms, r.P95ms, r.P99ms)
	fmt.Fprintf(w, "publish call       p50 %.2f ms  p99 %.2f ms\n", r.PublishP50ms, r.PublishP99ms)
	if r.Rate > 0 {
		fmt.Fprintf(w, "schedule lag       p50 %.2f ms  p99 %.2f ms (publishes sent late against the paced rate%s)\n", r.ScheduleLagP50ms, r.ScheduleLagP99ms, lagNote(r.ScheduleLagP50ms))
	}
	if r.HealthyP99ms > 0 {
		fmt.Fprintf(w, "healthy webhooks   p99 %.2f ms\n", r.HealthyP99ms)
	}
	if r.Dynamic {
		fmt.Fprintf(w, "RS256 signing rate %.0f tokens/s (all cores, measured before and after each of %d rounds)\n", r.RS256SignPerSec, len(r.RoundRatios))
		fmt.Fprintf(w, "dynamic ratio      %.1f %% of the signing rate (rounds:", 100*r.RatioToSigning)
		for _, x := range r.RoundRatios {
			fmt.Fprintf(w, " %.1f", 100*x)
		}
		fmt.Fprintln(w, ")")
	}
	fmt.Fprintf(w, "bare-HTTP ceiling  %.0f req/s unsigned, %.0f req/s signed (plain POSTs of the same body and concurrency)\n", r.UnsignedCeilingPerSec, r.CeilingPerSec)
	fmt.Fprintf(w, "ratio              %.1f %% of the unsigned ceiling, %.1f %% of the signed one\n", 100*r.RatioUnsigned, 100*r.Ratio)
	if r.CPUusPerDelivery > 0 {
		fmt.Fprintf(w, "CPU per delivery   %.1f µs all processes (ceiling %.1f µs per signed request: %.1f %%; %.1f µs unsigned)\n", r.CPUusPerDelivery, r.CPUusPerCeiling, 100*r.CPURatioToCeiling, r.CPUusPerUnsignedCeiling)
		fmt.Fprintf(w, "CPU busy           %.2f cores on average (server %.2f) of the machine's %d\n", r.CPUCoresUsed, r.ServerCPUCoresUsed, runtime.NumCPU())
	}
	if r.ServerCPUusPerDelivery > 0 {
		fmt.Fprintf(w, "server CPU         %.1f µs per delivery (the serve process alone)\n", r.ServerCPUusPerDelivery)
	}
	if r.DatabaseCPUusPerDelivery > 0 {
		fmt.Fprintf(w, "PostgreSQL CPU     %.1f µs per delivery (its backends serving the run's database; server + PostgreSQL %.1f µs)\n", r.DatabaseCPUusPerDelivery, r.ServerCPUusPerDelivery+r.DatabaseCPUusPerDelivery)
	}
	if r.CPUusPerRS256 > 0 {
		fmt.Fprintf(w, "CPU per RS256 sig  %.1f µs (%.1f %% of a dynamic delivery's CPU)\n", r.CPUusPerRS256, 100*r.CPURatioToSigning)
	}
	fmt.Fprintf(w, "max RSS            %.0f MB\n", r.MaxRSSMB)
	if r.ServerMaxRSSMB > 0 {
		fmt.Fprintf(w, "server max RSS     %.0f MB\n", r.ServerMaxRSSMB)
	}
	fmt.Fprintf(w, "max goroutines     %d\n", r.MaxGoroutines)
	if r.HealthyMax > 0 {
		fmt.Fprintf(w, "per healthy hook   %d to %d deliveries (of %d events)\n", r.HealthyMin, r.HealthyMax, r.Events)
	}
	if r.HangingMax > 0 {
		fmt.Fprintf(w, "per hanging hook   %d to %d attempts during the run\n", r.HangingMin, r.HangingMax)
	}
}

// receiver is the loopback destination: it answers 204 (or hangs, or 500
// for the webhooks told to) and records publish→receipt latency from the
// sent_at_ns field every benchmark event carries.
type receiver struct {
	mu        sync.Mutex
	latencies []time.Duration
	count     int64
	goal      int64
	reached   chan struct{} // closed when count reaches goal
	slow      map[string]bool
	fail      map[string]bool
	stop      chan struct{}
	perHook   map[string]int // deliveries received per healthy webhook
}

// until returns a channel closed once n deliveries have been received.
func (rv *receiver) until(n int64) <-chan struct{} {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.goal, rv.reached = n, make(chan struct{})
	if rv.count >= n {
		close(rv.reached)
	}
	return rv.reached
}

// received is the number of deliveries received so far.
func (rv *receiver) received() int64 {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.count
}

// bodyBuffers hold the receiver's request bodies: io.ReadAll grew a new
// slice through three sizes for every delivery, CPU the bench's receiver
// takes from the server it measures.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer bodyBuffers.Put(buf)
	buf.Reset()
	_, _ = buf.ReadFrom(r.Body)
	body := buf.Bytes()
	hook := strings.TrimPrefix(r.URL.Path, "/")
	switch {
	case rv.slow[hook]:
		rv.mu.Lock()
		rv.perHook[hook]++ // attempts, for HangingMin
		rv.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-rv.stop:
		}
		return
	case rv.fail[hook]:
		w.WriteHeader(http.StatusInternalServerError)
		return
	case hook == "ceiling":
		w.WriteHeader(http.StatusNoContent)
		return
	}
	now := time.Now()
	var lat time.Duration
	if i := bytes.Index(body, []byte(`"sent_at_ns":`)); i >= 0 {
		rest := body[i+len(`"sent_at_ns":`):]
		j := bytes.IndexAny(rest, ",}")
		if ns, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
			lat = now.Sub(time.Unix(0, ns))
		}
	}
	w.WriteHeader(http.StatusNoContent)
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if lat > 0 {
		rv.latencies = append(rv.latencies, lat)
	}
	rv.count++
	rv.perHook[hook]++
	if rv.count == rv.goal {
		close(rv.reached)
	}
}

func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(p * float64(len(ds)-1))
	return float64(ds[i]) / float64(time.Millisecond)
}

func bench(ctx context.Context, c benchConfig, env Env) (*benchReport, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "longhook-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	nSlow := int(c.SlowShare * float64(c.Webhooks))
	nFail := int(c.FailShare * float64(c.Webhooks))
	healthy := c.Webhooks - nSlow - nFail
	rv := &receiver{slow: map[string]bool{}, fail: map[string]bool{}, stop: make(chan struct{}), perHook: map[string]int{}}
	defer close(rv.stop)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	recvSrv := &http.Server{Handler: rv, ReadHeaderTimeout: 10 * time.Second}
	go recvSrv.Serve(ln)
	defer recvSrv.Close()
	recvURL := "http://" + ln.Addr().String()

	body := benchBody(c.Size)
	nCeiling := min(max(c.Events*c.Webhooks/2, 5000), 50000)
	cpu0 := procstat.CPUTime()
	unsigned, err := bareCeiling(ctx, recvURL+"/ceiling", body, c.Concurrency, nCeiling, false)
	if err != nil {
		return nil, err
	}
	cpu1 := procstat.CPUTime()
	ceiling, err := bareCeiling(ctx, recvURL+"/ceiling", body, c.Concurrency, nCeiling, true)
	if err != nil {
		return nil, err
	}
	unsignedCPU, ceilingCPU := cpu1-cpu0, procstat.CPUTime()-cpu1

	dbURL := c.DatabaseURL
	var pgMeter *pgBackends
	if isPostgres(dbURL) {
		tmpURL, drop, err := tempPostgresDB(ctx, dbURL)
		if err != nil {
			return nil, err
		}
		defer drop()
		if pgMeter, err = newPGBackends(ctx, dbURL, tmpURL); err != nil {
			return nil, err
		}
		defer pgMeter.close()
		dbURL = tmpURL
	} else if c.Instances > 1 {
		return nil, fmt.Errorf("%w: --instances > 1 needs a postgres:// --database-url", errUsage)
	}
	const benchKey = "bench-key-0123456789abcdef0123456789abcdef"
	masterKey := make([]byte, 32)
	_, _ = rand.Read(masterKey)
	servers, stopAll, err := startBenchServers(ctx, benchServerConfig{c: c, dbURL: dbURL, dir: dir, key: benchKey, masterKey: masterKey, env: env})
	if err != nil {
		return nil, err
	}
	defer stopAll()
	var clients []*benchClient
	for _, s := range servers {
		clients = append(clients, &benchClient{base: s.URL + "/v1beta", key: benchKey, http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.Concurrency * 2}}})
	}
	cl := clients[0]

	var dynURIs []string
	for i := range c.Webhooks {
		name := fmt.Sprintf("h%d", i)
		if c.Dynamic {
			dynURIs = append(dynURIs, recvURL+"/"+name)
			continue
		}
		switch {
		case i < nSlow:
			rv.slow[name] = true
		case i < nSlow+nFail:
			rv.fail[name] = true
		}
		if err := cl.post(ctx, "/webhooks", map[string]any{"name": name, "uri": recvURL + "/" + name, "subscribed_events": []string{"batch.succeeded"}}, nil); err != nil {
			return nil, fmt.Errorf("create webhook: %w", err)
		}
	}
	// A dynamic run is cut into rounds with the RS256 signing rate measured
	// before and after each: a shared machine's speed drifts by a quarter
	// within seconds, and interleaving makes both sides of the ratio see
	// the same machine. Servers idle while the signing rate is measured.
	rounds := 1
	var meter *rs256Meter
	var signRates []float64
	var signCPU time.Duration
	var signs int
	measureSigning := func() {
		rate, cpu, n := meter.measure(signWindow)
		signRates, signCPU, signs = append(signRates, rate), signCPU+cpu, signs+n
	}
	var goal int64 // deliveries the receiver has to have seen
	if c.Dynamic {
		rounds = c.Rounds
		if meter, err = newRS256Meter(body); err != nil {
			return nil, err
		}
		// A short warm-up, not counted: the first deliveries open the
		// receiver connections and grow stacks, heap and SQLite's page
		// cache, which a steady-state rate should not include.
		wc := c
		wc.Events = max(c.Events/20, 50)
		goal = int64(wc.Events * healthy)
		reached := rv.until(goal)
		if _, err := publishAll(ctx, clients, wc, len(body), dynURIs); err != nil {
			return nil, err
		}
		select {
		case <-reached:
		case <-ctx.Done():
			return nil, fmt.Errorf("warm-up timed out with %d of %d deliveries received", rv.received(), goal)
		}
		rv.mu.Lock()
		rv.latencies = rv.latencies[:0]
		rv.mu.Unlock()
		measureSigning()
	}
	// The sampler also draws a progress bar of the measured deliveries on
	// a terminal (nothing on a pipe or in CI logs).
	var maxG atomic.Int64
	prog := newProgress(env.Stderr, "deliveries received")
	base := goal // the warm-up's, not counted
	prog.start(c.Events * healthy)
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	defer func() {
		stopSampling()
		<-sampled
		prog.set(int(rv.received() - base)) // the last frame shows the end
		prog.done()
	}()
	go func() {
		defer close(sampled)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if n := int64(runtime.NumGoroutine()); n > maxG.Load() {
				maxG.Store(n)
			}
			prog.set(int(rv.received() - base))
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	// The CPU profile covers the measured rounds (and, with --dynamic, the
	// signing measurements between them, while the servers idle): not the
	// start-up, the webhooks' creation or the warm-up.
	var window profileWindow
	stopProfile := func() error { return nil }
	if c.CPUProfile != "" {
		window.asked = time.Now()
		if stopProfile, err = startBenchProfile(ctx, c, servers); err != nil {
			return nil, err
		}
		defer func() { _ = stopProfile() }()
	}
	var elapsed, runCPU, srvCPU, dbCPU, pubTime time.Duration
	var calls publishTimes
	var possible float64 // tokens the machine could have signed while the rounds ran
	var roundRatios []float64
	want, published := int64(0), 0
	for r := range rounds {
		n := c.Events*(r+1)/rounds - published
		if n == 0 {
			continue
		}
		published += n
		roundWant := int64(n * healthy)
		want += roundWant
		goal += roundWant
		reached := rv.until(goal)
		rc := c
		rc.Events = n
		var db0 map[int]time.Duration
		if pgMeter != nil {
			db0 = pgMeter.sample(ctx)
		}
		start, cpu0, srv0 := time.Now(), procstat.CPUTime(), serverCPU(servers)
		if r == 0 {
			window.from = start
		}
		pub, err := publishAll(ctx, clients, rc, len(body), dynURIs)
		if err != nil {
			return nil, err
		}
		calls.add(pub)
		select {
		case <-reached:
		case <-ctx.Done():
			return nil, fmt.Errorf("timed out with %d of %d deliveries received", rv.received(), goal)
		}
		d := time.Since(start)
		srvD := serverCPU(servers) - srv0
		elapsed, runCPU, srvCPU, pubTime = elapsed+d, runCPU+procstat.CPUTime()-cpu0+srvD, srvCPU+srvD, pubTime+pub.elapsed
		if pgMeter != nil {
			dbCPU += since(db0, pgMeter.sample(ctx))
		}
		if c.Dynamic {
			measureSigning()
			ref := (signRates[len(signRates)-2] + signRates[len(signRates)-1]) / 2
			possible += ref * d.Seconds()
			roundRatios = append(roundRatios, float64(roundWant)/d.Seconds()/ref)
		}
	}
	if c.CPUProfile != "" {
		window.to = time.Now()
		err := stopProfile()
		stopProfile = func() error { return nil }
		if err != nil {
			return nil, err
		}
		window.written = time.Now()
	}
	rv.mu.Lock()
	lat := slices.Clone(rv.latencies)
	hMin, hMax := 0, 0
	for i := nSlow + nFail; i < c.Webhooks && !c.Dynamic; i++ {
		n := rv.perHook[fmt.Sprintf("h%d", i)]
		if i == nSlow+nFail || n < hMin {
			hMin = n
		}
		hMax = max(hMax, n)
	}
	sMin, sMax := 0, 0
	for i := range nSlow {
		n := rv.perHook[fmt.Sprintf("h%d", i)]
		if i == 0 || n < sMin {
			sMin = n
		}
		sMax = max(sMax, n)
	}
	rv.mu.Unlock()
	rep := &benchReport{
		Machine: fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
		Store:   driverOf(dbURL),
		Events:  c.Events, Webhooks: c.Webhooks, EventBytes: len(body) + 60, Concurrency: c.Concurrency, Batch: c.Batch, Rate: c.Rate, Backlog: c.Backlog,
		Deliveries:       int(want),
		Seconds:          elapsed.Seconds(),
		DeliveriesPerSec: float64(want) / elapsed.Seconds(),
		PublishPerSec:    float64(c.Events) / pubTime.Seconds(),
		P50ms:            percentile(lat, .50), P95ms: percentile(lat, .95), P99ms: percentile(lat, .99),
		PublishP50ms: percentile(calls.rtt, .50), PublishP99ms: percentile(calls.rtt, .99),
		ScheduleLagP50ms: percentile(calls.lag, .50), ScheduleLagP99ms: percentile(calls.lag, .99),
		CeilingPerSec:  ceiling,
		MaxRSSMB:       maxRSSMB() + serverRSS(servers),
		ServerMaxRSSMB: serverMaxRSS(servers),
		MaxGoroutines:  int(maxG.Load()),
		HealthyMin:     hMin, HealthyMax: hMax,
		HangingMin: sMin, HangingMax: sMax,
		CPUusPerDelivery:         perMicros(runCPU, int(want)),
		CPUusPerCeiling:          perMicros(ceilingCPU, nCeiling),
		UnsignedCeilingPerSec:    unsigned,
		CPUusPerUnsignedCeiling:  perMicros(unsignedCPU, nCeiling),
		ServerCPUusPerDelivery:   perMicros(srvCPU, int(want)),
		DatabaseCPUusPerDelivery: perMicros(dbCPU, int(want)),
	}
	rep.RatioUnsigned = rep.DeliveriesPerSec / unsigned
	if elapsed > 0 {
		rep.CPUCoresUsed = runCPU.Seconds() / elapsed.Seconds()
		rep.ServerCPUCoresUsed = srvCPU.Seconds() / elapsed.Seconds()
	}
	if rep.CPUusPerDelivery > 0 {
		rep.CPURatioToCeiling = rep.CPUusPerCeiling / rep.CPUusPerDelivery
	}
	if nSlow+nFail > 0 {
		rep.HealthyP99ms = rep.P99ms
	}
	rep.Ratio = rep.DeliveriesPerSec / rep.CeilingPerSec
	rep.Instances = max(c.Instances, 1)
	rep.window = window
	if c.Dynamic {
		rep.Dynamic = true
		// The reference rate is time-weighted: each round's mean of its two
		// neighbouring measurements, weighted by how long the round took.
		rep.RS256SignPerSec = possible / elapsed.Seconds()
		rep.RatioToSigning = float64(want) / possible
		rep.RoundRatios = roundRatios
		rep.CPUusPerRS256 = perMicros(signCPU, signs)
		if rep.CPUusPerDelivery > 0 {
			rep.CPURatioToSigning = rep.CPUusPerRS256 / rep.CPUusPerDelivery
		}
	}
	return rep, nil
}

// benchBody is the data object of every benchmark event, padded so the
// delivered envelope is about size bytes; sent_at_ns is filled per event.
func benchBody(size int) []byte {
	pad := max(size-120, 0)
	return []byte(`{"id":"batches/bench","output_file_uri":"files/bench","pad":"` + strings.Repeat("x", pad) + `"}`)
}

type benchClient struct {
	base, key string
	http      *http.Client
}

func (b *benchClient) post(ctx context.Context, path string, body any, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return b.postJSON(ctx, path, data, out)
}

// postJSON posts a body already encoded. The load generator builds its
// publish bodies as bytes (appendEvent): encoding a map per event with
// encoding/json cost the generator ~4 µs per publish of the two CPUs it
// shares with the server, time the ceiling's client never spends.
func (b *benchClient) postJSON(ctx context.Context, path string, data []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("x-goog-api-key", b.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		rb, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, rb)
	}
	if out == nil {
		// Read to the end so the connection is reused, as the
		// ceiling's client does.
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return json.Unmarshal(rb, out)
}

// appendEvent appends one publish request's event object to dst: the
// batch.succeeded data the receiver reads its latency from (sent_at_ns),
// padded to the event size, and the dynamic webhook_config when given
// (uris is its JSON array, or empty).
func appendEvent(dst []byte, pad string, uris []byte) []byte {
	dst = append(dst, `{"type":"batch.succeeded","data":{"id":"batches/bench","output_file_uri":"files/bench","pad":"`...)
	dst = append(dst, pad...)
	dst = append(dst, `","sent_at_ns":`...)
	dst = strconv.AppendInt(dst, time.Now().UnixNano(), 10)
	dst = append(dst, '}')
	if len(uris) > 0 {
		dst = append(dst, `,"webhook_config":{"uris":`...)
		dst = append(dst, uris...)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// publishTimes is what publishAll measured: how long publishing took, each
// call's round trip and, with a rate, how late each call left against its
// slot in the schedule.
type publishTimes struct {
	elapsed  time.Duration
	rtt, lag []time.Duration
}

func (p *publishTimes) add(q publishTimes) {
	p.elapsed += q.elapsed
	p.rtt = append(p.rtt, q.rtt...)
	p.lag = append(p.lag, q.lag...)
}

// lagNote says what a paced run's median schedule lag means for its
// latencies.
func lagNote(p50ms float64) string {
	if p50ms > 2 {
		return "; NOT PACED: the machine could not keep the rate, latencies are a closed loop's"
	}
	return ""
}

// publishAll publishes c.Events events with c.Concurrency publishers and
// returns how long publishing took and each call's times.
func publishAll(ctx context.Context, clients []*benchClient, c benchConfig, padLen int, dynURIs []string) (publishTimes, error) {
	pad := strings.Repeat("x", max(padLen-110, 0))
	var uris []byte
	if len(dynURIs) > 0 {
		var err error
		if uris, err = json.Marshal(dynURIs); err != nil {
			return publishTimes{}, err
		}
	}
	per := max(c.Batch, 1)
	calls := (c.Events + per - 1) / per
	var next atomic.Int64
	var interval time.Duration
	if c.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(per) / c.Rate)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, c.Concurrency)
	times := make([]publishTimes, c.Concurrency)
	for g := range c.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := &times[g]
			for {
				i := int(next.Add(1)) - 1
				if i >= calls {
					return
				}
				if interval > 0 {
					slot := start.Add(time.Duration(i) * interval)
					if d := time.Until(slot); d > 0 {
						time.Sleep(d)
					}
					mine.lag = append(mine.lag, time.Since(slot))
				}
				sent := time.Now()
				n := min(per, c.Events-i*per)
				cl := clients[i%len(clients)]
				var err error
				if c.Batch == 0 {
					err = cl.postJSON(ctx, "/events", appendEvent(make([]byte, 0, padLen+256), pad, uris), nil)
				} else {
					body := append(make([]byte, 0, n*(padLen+256)+16), `{"events":[`...)
					for k := range n {
						if k > 0 {
							body = append(body, ',')
						}
						body = appendEvent(body, pad, uris)
					}
					err = cl.postJSON(ctx, "/events:batchPublish", append(body, "]}"...), nil)
				}
				mine.rtt = append(mine.rtt, time.Since(sent))
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	all := publishTimes{elapsed: time.Since(start)}
	for _, t := range times {
		all.rtt = append(all.rtt, t.rtt...)
		all.lag = append(all.lag, t.lag...)
	}
	close(errs)
	if err := <-errs; err != nil {
		return publishTimes{}, err
	}
	return all, nil
}

// bareCeiling measures plain POSTs of body to url with the given
// concurrency: the most any delivery system could do on this machine.
// Signed, each carries the Standard Webhooks headers a delivery does;
// unsigned, none: the loopback's physical limit.
func bareCeiling(ctx context.Context, url string, data []byte, conc, n int, signed bool) (float64, error) {
	secret, _ := webhook.NewSecret()
	sec, _ := webhook.ParseSecret(secret)
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2}}
	defer cl.CloseIdleConnections()
	var next atomic.Int64
	var failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				now := time.Now()
				id := "msg_" + strconv.FormatInt(now.UnixNano(), 36)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
				req.Header.Set("Content-Type", "application/json")
				if signed {
					req.Header.Set("webhook-id", id)
					req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
					req.Header.Set("webhook-signature", webhook.Sign(sec, id, now, data))
				}
				resp, err := cl.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("bare-HTTP ceiling: %d requests failed", f)
	}
	return float64(n) / time.Since(start).Seconds(), nil
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

// signWindow is how long each measurement of the RS256 signing rate runs.
const signWindow = 750 * time.Millisecond

// rs256Meter measures how many RS256 tokens this machine signs per second
// on all cores, with the signer the server uses: the ceiling of JWT-signed
// (dynamic) deliveries.
type rs256Meter struct {
	signer *webhook.JWTSigner
	claims []byte // encoded once: the meter measures signing, not JSON
}

// newRS256Meter signs tokens of the size the run's deliveries carry: the
// registered claims and an event whose data is data.
func newRS256Meter(data []byte) (*rs256Meter, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	signer, err := webhook.NewJWTSigner("bench", key)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	claims, err := json.Marshal(webhook.Claims{
		Issuer: "http://127.0.0.1:8080", Subject: "events/evt_0123456789abcdef", Audience: "http://127.0.0.1:8080/h0",
		IssuedAt: webhook.NewNumericDate(now), ExpiresAt: webhook.NewNumericDate(now.Add(5 * time.Minute)),
		ID: "msg_0123456789abcdef0123456789", BodySHA256: webhook.BodyHash(data),
		Type: "batch.succeeded", Version: "v1", Timestamp: now.UTC().Format(time.RFC3339), Data: data,
	})
	if err != nil {
		return nil, err
	}
	return &rs256Meter{signer: signer, claims: claims}, nil
}

// measure signs on every core for d and returns the rate, the CPU time
// spent and the number of tokens signed.
func (m *rs256Meter) measure(d time.Duration) (float64, time.Duration, int) {
	var n atomic.Int64
	deadline := time.Now().Add(d)
	start, cpu0 := time.Now(), procstat.CPUTime()
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if _, err := m.signer.SignPayload(m.claims); err == nil {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), procstat.CPUTime() - cpu0, int(n.Load())
}

// perMicros is d per item in microseconds (0 when unmeasured).
func perMicros(d time.Duration, n int) float64 {
	if d <= 0 || n <= 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}
