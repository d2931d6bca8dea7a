package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/longhook/longhook/internal/envflag"
	"github.com/longhook/longhook/internal/procstat"
	"github.com/longhook/longhook/webhook"
)

// BenchResult is one scenario of `longhook bench --gateway`.
type BenchResult struct {
	Scenario    string  `json:"scenario"` // "bare-http", "gateway-hmac", "gateway-jwt"
	Events      int     `json:"events"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"events_per_second"`
	Ratio       float64 `json:"ratio_to_bare"` // PerSecond / bare-http PerSecond
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	// CPUus is the process CPU time (user+system) per event in
	// microseconds: client and server together, robust to a busy machine.
	CPUus float64 `json:"cpu_us_per_event"`
	// GroupSize is the mean number of writes per inbox transaction.
	GroupSize float64 `json:"group_commit_size,omitempty"`
	Errors    int     `json:"errors"`
}

// BenchReport is the --json output of RunBench.
type BenchReport struct {
	BodyBytes   int           `json:"body_bytes"`
	Synchronous string        `json:"sqlite_synchronous"`
	CPUs        int           `json:"cpus"`
	Rounds      int           `json:"rounds"`
	Results     []BenchResult `json:"results"`
}

// RunBench is `longhook bench --gateway`: it measures how many signed
// events per second an in-process gateway on loopback verifies,
// deduplicates and durably stores (SQLite inbox, a discard sink), against
// a bare-HTTP ceiling measured in the same run: a trivial handler that
// reads the same body with the same concurrency. Requests are signed
// before the clock starts, so client-side signing cost is excluded.
//
// Each scenario runs --rounds times, interleaved, and the best round
// counts, which filters out noise from other work on the machine.
//
// Flags: --gateway (selects this benchmark), -n events per scenario and
// round (default 20000), --jwt-n events for the JWT scenario (default
// n/4), -c concurrent clients (default 32), --rounds (default 3),
// --body-bytes (default 512), --data-dir (default a temporary
// directory), --synchronous (NORMAL or FULL), --json, --cpuprofile FILE
// (after the measured rounds, --rounds more gateway-hmac rounds run under
// the CPU profiler, which writes FILE; they are not counted), --sinks
// KIND[=ADDRESS],... and --sink-n (one scenario per sink, timed until its
// broker confirmed every event; see bench_sinks.go).
func RunBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseBenchFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	dir := o.dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "longhook-bench-")
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	b, err := newBench(ctx, dir, o.conc, o.bodyBytes, o.synchronous, o.sinkSpec)
	if err != nil {
		return err
	}
	defer b.close()
	best, err := b.runScenarios(ctx, o, stderr)
	if err != nil {
		return err
	}
	if o.cpuProfile != "" {
		if err := b.profile(ctx, o.cpuProfile, o.rounds, o.n); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "bench: wrote a CPU profile of %d gateway-hmac rounds to %s\n", o.rounds, o.cpuProfile)
	}
	best = append(best, b.runSinkScenarios(ctx, o, stderr)...)
	rep := BenchReport{BodyBytes: len(b.body), Synchronous: o.synchronous, CPUs: runtime.GOMAXPROCS(0), Rounds: o.rounds, Results: best}
	for i := range rep.Results[:3] {
		rep.Results[i].Ratio = rep.Results[i].PerSecond / best[0].PerSecond
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBenchTable(stdout, rep)
	for _, r := range rep.Results {
		if r.Errors > 0 {
			return fmt.Errorf("bench: %s: %d requests failed", r.Scenario, r.Errors)
		}
	}
	return nil
}

// benchOptions are RunBench's flags, with their defaults applied.
type benchOptions struct {
	n, jwtN, sinkN int // events per round: core scenarios, JWT, each sink
	conc, rounds   int
	bodyBytes      int
	dataDir        string
	synchronous    string // upper case
	asJSON         bool
	cpuProfile     string
	sinkSpec       string
}

func parseBenchFlags(args []string, getenv func(string) string, stderr io.Writer) (benchOptions, error) {
	fs := envflag.New("bench", getenv, stderr)
	fs.Describe("longhook bench --gateway [flags]", `Measures the receiving gateway (verify, deduplicate, store, forward) against the bare-HTTP
ceiling, each scenario in the same run.`)
	fs.Bool("gateway", true, "benchmark the gateway (the only benchmark here)")
	n := fs.Int("n", 20000, "events per scenario and round")
	jwtN := fs.Int("jwt-n", 0, "events for the JWT scenario (default n/4; RS256 signing them takes a while)")
	conc := fs.Int("c", 32, "concurrent clients")
	rounds := fs.Int("rounds", 3, "rounds; the best counts")
	bodyBytes := fs.Int("body-bytes", 512, "approximate body size")
	dataDir := fs.String("data-dir", "", "directory for the inbox (default: a temporary one)")
	sync := fs.String("synchronous", "NORMAL", "SQLite synchronous pragma: NORMAL or FULL")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of extra, uncounted gateway-hmac rounds to this file")
	sinkSpec := fs.String("sinks", "", "also measure forwarding into these sinks: comma list of KIND[=ADDRESS], KIND one of "+strings.Join(benchSinkKinds, ", ")+
		" (kafka and pubsub without an address run in process)")
	sinkN := fs.Int("sink-n", 0, "events per sink scenario and round (default n/4)")
	fs.Alias("data-dir", "LONGHOOK_BENCH_DIR")
	if err := fs.Parse(args); err != nil {
		return benchOptions{}, err
	}
	for _, d := range fs.Deprecated() {
		fmt.Fprintln(stderr, "bench: warning:", d)
	}
	if *n <= 0 || *conc <= 0 || *rounds <= 0 {
		return benchOptions{}, errors.New("bench: -n, -c and --rounds must be positive")
	}
	if *jwtN <= 0 {
		*jwtN = max(*n/4, 1)
	}
	if *sinkN <= 0 {
		*sinkN = max(*n/4, 1)
	}
	return benchOptions{n: *n, jwtN: *jwtN, sinkN: *sinkN, conc: *conc, rounds: *rounds, bodyBytes: *bodyBytes,
		dataDir: *dataDir, synchronous: strings.ToUpper(*sync), asJSON: *asJSON, cpuProfile: *cpuProfile, sinkSpec: *sinkSpec}, nil
}

// runScenarios signs every round's requests up front, warms up, then runs
// the bare-http, gateway-hmac and gateway-jwt scenarios interleaved for
// o.rounds rounds and returns each one's best round (errors summed).
func (b *bench) runScenarios(ctx context.Context, o benchOptions, stderr io.Writer) ([]BenchResult, error) {
	fmt.Fprintf(stderr, "bench: signing %d HMAC and %d JWT requests...\n", o.n*o.rounds, o.jwtN*o.rounds)
	hmacReqs := make([][]benchReq, o.rounds)
	jwtReqs := make([][]benchReq, o.rounds)
	for r := range o.rounds {
		hmacReqs[r] = b.hmacRequests(o.n)
		var err error
		if jwtReqs[r], err = b.jwtRequests(o.jwtN); err != nil {
			return nil, err
		}
	}
	// Warm up connections and code paths with requests that are not counted.
	b.drive(ctx, "warmup", b.bareURL, b.hmacRequests(min(o.n, 500)))
	b.drive(ctx, "warmup", b.gwURL+"/hooks/bench-hmac", b.hmacRequests(min(o.n, 500)))
	best := make([]BenchResult, 3)
	for r := range o.rounds {
		for i, res := range []BenchResult{
			b.drive(ctx, "bare-http", b.bareURL, hmacReqs[r]),
			b.drive(ctx, "gateway-hmac", b.gwURL+"/hooks/bench-hmac", hmacReqs[r]),
			b.drive(ctx, "gateway-jwt", b.gwURL+"/hooks/bench-jwt", jwtReqs[r]),
		} {
			fmt.Fprintf(stderr, "bench: round %d %-12s %8.0f events/s\n", r+1, res.Scenario, res.PerSecond)
			errs := best[i].Errors + res.Errors
			if res.PerSecond > best[i].PerSecond {
				best[i] = res
			}
			best[i].Errors = errs
		}
	}
	return best, nil
}

// runSinkScenarios returns each sink scenario's best round, with its ratio
// to the best bare run. The bare ceiling is measured again right before
// each round, so every ratio compares runs seconds apart.
func (b *bench) runSinkScenarios(ctx context.Context, o benchOptions, stderr io.Writer) []BenchResult {
	var results []BenchResult
	for _, kind := range b.sinks.order {
		var sinkBest, bareBest BenchResult
		for range o.rounds {
			bare := b.drive(ctx, "bare-http", b.bareURL, b.hmacRequests(o.sinkN))
			res := b.driveSink(ctx, kind, b.hmacRequests(o.sinkN))
			fmt.Fprintf(stderr, "bench: sink %-7s %8.0f events/s confirmed by the broker (bare %0.f)\n", kind, res.PerSecond, bare.PerSecond)
			errs := sinkBest.Errors + res.Errors
			if res.PerSecond > sinkBest.PerSecond {
				sinkBest = res
			}
			sinkBest.Errors = errs
			bareBest.PerSecond = max(bareBest.PerSecond, bare.PerSecond)
		}
		sinkBest.Ratio = sinkBest.PerSecond / bareBest.PerSecond
		results = append(results, sinkBest)
	}
	return results
}

// printBenchTable writes the report as a table and what it measured.
func printBenchTable(stdout io.Writer, rep BenchReport) {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\tevents\tclients\tseconds\tevents/s\tvs bare\tp50 ms\tp99 ms\tCPU µs/event\tgroup\terrors\t\n")
	for _, r := range rep.Results {
		group := "-"
		if r.Scenario != "bare-http" {
			group = fmt.Sprintf("%.1f", r.GroupSize)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.0f\t%.0f%%\t%.2f\t%.2f\t%.0f\t%s\t%d\t\n",
			r.Scenario, r.Events, r.Concurrency, r.Seconds, r.PerSecond, 100*r.Ratio, r.P50ms, r.P99ms, r.CPUus, group, r.Errors)
	}
	_ = tw.Flush()
	fmt.Fprintf(stdout, "best of %d rounds; body %d bytes; SQLite synchronous=%s; %d CPUs shared by client and server;\n"+
		"gateway = verify + dedupe + durable write, forwarding to a discard sink;\n"+
		"sink-* = the same, until the sink's broker confirmed every event (vs a bare run just before it)\n",
		rep.Rounds, rep.BodyBytes, rep.Synchronous, rep.CPUs)
}

// profile runs the gateway-hmac scenario rounds more times, n events each,
// under the CPU profiler, and writes the profile to path. Requests are
// signed before the profiler starts.
func (b *bench) profile(ctx context.Context, path string, rounds, n int) error {
	reqs := make([][]benchReq, rounds)
	for r := range reqs {
		reqs[r] = b.hmacRequests(n)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("bench: cpuprofile: %w", err)
	}
	errs := 0
	for _, rr := range reqs {
		errs += b.drive(ctx, "gateway-hmac", b.gwURL+"/hooks/bench-hmac", rr).Errors
	}
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: cpuprofile: %w", err)
	}
	if errs > 0 {
		return fmt.Errorf("bench: profiled gateway-hmac rounds: %d requests failed", errs)
	}
	return nil
}

type benchReq struct {
	id, ts, sig string
}

type bench struct {
	conc    int
	body    []byte
	secret  webhook.Secret
	signer  *webhook.JWTSigner
	issuer  string
	client  *http.Client
	servers []*http.Server
	gw      *Gateway
	gwStop  context.CancelFunc
	gwDone  chan error
	bareURL string
	gwURL   string
	seq     atomic.Int64
	sinks   *benchSinks
}

func newBench(ctx context.Context, dir string, conc, bodyBytes int, synchronous, sinkSpec string) (*bench, error) {
	b := &bench{conc: conc, body: benchBody(bodyBytes)}
	secretText, err := webhook.NewSecret()
	if err != nil {
		return nil, err
	}
	if b.secret, err = webhook.ParseSecret(secretText); err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if b.signer, err = webhook.NewJWTSigner("bench", key); err != nil {
		return nil, err
	}
	b.client = &http.Client{Transport: &http.Transport{
		MaxIdleConns: conc, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, IdleConnTimeout: time.Minute,
	}}

	bareURL, err := b.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		writeJSON(w, http.StatusOK, acceptBody{WebhookID: r.Header.Get(webhook.HeaderID)})
	}))
	if err != nil {
		return nil, err
	}
	b.bareURL = bareURL
	jwks := webhook.JWKS{Keys: []webhook.JWK{b.signer.PublicJWK()}}
	jwksURL, err := b.serve(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, jwks)
	}))
	if err != nil {
		b.close()
		return nil, err
	}
	b.issuer = jwksURL
	if b.sinks, err = parseBenchSinks(sinkSpec, func() (string, error) {
		return b.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
		}))
	}); err != nil {
		b.close()
		return nil, err
	}
	cfg := Config{
		DataDir:     dir,
		Synchronous: synchronous,
		Sources: []SourceConfig{
			{Name: "bench-hmac", Verify: VerifyConfig{HMACSecrets: []string{secretText}},
				Sinks: []SinkConfig{{Name: "discard", Discard: &DiscardSinkConfig{}, Concurrency: 64}}},
			{Name: "bench-jwt", Verify: VerifyConfig{JWKS: &JWKSConfig{URL: jwksURL, Issuer: jwksURL, Audience: "bench"}},
				Sinks: []SinkConfig{{Name: "discard", Discard: &DiscardSinkConfig{}, Concurrency: 64}}},
		},
	}
	cfg.Sources = append(cfg.Sources, b.sinks.sources(secretText)...)
	// Logs are formatted as in production, then discarded.
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if b.gw, err = NewGateway(ctx, cfg, WithLogger(log)); err != nil {
		b.close()
		return nil, err
	}
	if b.gwURL, err = b.serve(b.gw.Handler()); err != nil {
		b.close()
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	b.gwStop, b.gwDone = stop, make(chan error, 1)
	go func() { b.gwDone <- b.gw.Run(runCtx) }()
	return b, nil
}

// serve starts an HTTP server on a loopback port and returns its URL.
func (b *bench) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	b.servers = append(b.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

func (b *bench) close() {
	for _, s := range b.servers {
		_ = s.Close()
	}
	if b.gwStop != nil {
		b.gwStop()
		<-b.gwDone
	}
	if b.gw != nil {
		_ = b.gw.Close()
	}
	if b.sinks != nil {
		b.sinks.close()
	}
	b.client.CloseIdleConnections()
}

// benchBody is an event envelope of about size bytes, members in the
// order senders write them (type first).
func benchBody(size int) []byte {
	pad := max(size-170, 0)
	return fmt.Appendf(nil, `{"type":"batch.succeeded","version":"v1","timestamp":%q,"data":{"id":"batches/bench","output_file_uri":"files/batch-bench","note":%q}}`,
		time.Now().UTC().Format(time.RFC3339), strings.Repeat("x", pad))
}

func (b *bench) commitStats() (int64, int64) {
	if cs, ok := b.gw.inbox.(commitStater); ok {
		return cs.CommitStats()
	}
	return 0, 0
}

func (b *bench) nextID() string { return fmt.Sprintf("msg_bench%015d", b.seq.Add(1)) }

func (b *bench) hmacRequests(n int) []benchReq {
	now := time.Now()
	reqs := make([]benchReq, n)
	for i := range reqs {
		id := b.nextID()
		reqs[i] = benchReq{id: id, ts: fmt.Sprint(now.Unix()), sig: webhook.Sign(b.secret, id, now, b.body)}
	}
	return reqs
}

func (b *bench) jwtRequests(n int) ([]benchReq, error) {
	now := time.Now()
	reqs := make([]benchReq, n)
	var env struct {
		Type, Version, Timestamp string
		Data                     json.RawMessage
	}
	_ = json.Unmarshal(b.body, &env)
	hash := webhook.BodyHash(b.body)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				id := fmt.Sprintf("msg_benchjwt%012d_%d", i, now.UnixNano())
				tok, err := b.signer.Sign(webhook.Claims{
					Issuer: b.issuer, Audience: "bench", Subject: "batches/bench", ID: id, BodySHA256: hash,
					IssuedAt: webhook.NewNumericDate(now), ExpiresAt: webhook.NewNumericDate(now.Add(5 * time.Minute)),
					Type: env.Type, Version: env.Version, Timestamp: env.Timestamp, Data: env.Data,
				})
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				reqs[i] = benchReq{id: id, ts: fmt.Sprint(now.Unix()), sig: tok}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("bench: sign jwt: %w", firstErr)
	}
	return reqs, nil
}

// drive sends reqs to url with b.conc clients and measures the run.
func (b *bench) drive(ctx context.Context, name, url string, reqs []benchReq) BenchResult {
	var next atomic.Int64
	var errs atomic.Int64
	lat := make([]time.Duration, len(reqs))
	var wg sync.WaitGroup
	commits0, ops0 := b.commitStats()
	start := time.Now()
	cpu0 := procstat.CPUTime()
	for range b.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) || ctx.Err() != nil {
					return
				}
				r := reqs[i]
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b.body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(webhook.HeaderID, r.id)
				req.Header.Set(webhook.HeaderTimestamp, r.ts)
				req.Header.Set(webhook.HeaderSignature, r.sig)
				resp, err := b.client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					errs.Add(1)
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := procstat.CPUTime() - cpu0
	commits1, ops1 := b.commitStats()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(int(p*float64(len(lat))), len(lat)-1)]) / float64(time.Millisecond)
	}
	return BenchResult{
		Scenario: name, Events: len(reqs), Concurrency: b.conc, Seconds: elapsed.Seconds(),
		PerSecond: float64(len(reqs)) / elapsed.Seconds(), P50ms: pct(0.50), P99ms: pct(0.99),
		CPUus: float64(cpu.Microseconds()) / float64(len(reqs)), Errors: int(errs.Load()),
		GroupSize: float64(ops1-ops0) / float64(max(commits1-commits0, 1)),
	}
}
