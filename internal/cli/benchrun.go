package cli

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/longhook/longhook/internal/procstat"
)

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

// benchRun is one run of the benchmark while it runs: the receiver, the
// servers and their clients, and what each phase measured for the report.
type benchRun struct {
	c    benchConfig
	env  Env
	rv   *receiver
	body []byte // the data of every event
	// nSlow webhooks hang (--slow-share) and nFail answer 500
	// (--fail-share); the deliveries waited for are the healthy rest's.
	nSlow, nFail, healthy int
	recvURL               string
	dbURL                 string
	pgMeter               *pgBackends // with PostgreSQL, or nil
	servers               []*benchServer
	clients               []*benchClient // one per server
	dynURIs               []string       // with --dynamic: the webhook_config URIs
	ceil                  benchCeilings
	// The RS256 signing rate (--dynamic), measured before the first round
	// and after each.
	meter     *rs256Meter
	signRates []float64
	signCPU   time.Duration
	signs     int
	goal      int64        // deliveries the receiver has to have seen
	maxG      atomic.Int64 // the most goroutines sampled
	window    profileWindow
}

// benchCeilings are the bare-HTTP ceilings of a run (n requests each) and
// the CPU each took.
type benchCeilings struct {
	n                      int
	unsigned, signed       float64
	unsignedCPU, signedCPU time.Duration
}

// benchTotals is what the measured rounds of a run add up to.
type benchTotals struct {
	want                                    int64 // deliveries
	elapsed, runCPU, srvCPU, dbCPU, pubTime time.Duration
	calls                                   publishTimes
	possible                                float64 // tokens the machine could have signed while the rounds ran
	roundRatios                             []float64
}

func bench(ctx context.Context, c benchConfig, env Env) (*benchReport, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "longhook-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	r := newBenchRun(c, env)
	defer close(r.rv.stop)
	recvURL, stopReceiver, err := listenLoopback(r.rv)
	if err != nil {
		return nil, err
	}
	defer stopReceiver()
	r.recvURL = recvURL
	if r.ceil, err = measureCeilings(ctx, recvURL, r.body, c); err != nil {
		return nil, err
	}
	dbURL, pgMeter, dropDB, err := benchDatabase(ctx, c)
	if err != nil {
		return nil, err
	}
	defer dropDB()
	r.dbURL, r.pgMeter = dbURL, pgMeter
	stopServers, err := r.startServers(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer stopServers()
	if err := r.createWebhooks(ctx); err != nil {
		return nil, err
	}
	if c.Dynamic {
		if err := r.warmUp(ctx); err != nil {
			return nil, err
		}
	}
	defer r.startSampler(ctx)()
	// The CPU profile covers the measured rounds (and, with --dynamic, the
	// signing measurements between them, while the servers idle): not the
	// start-up, the webhooks' creation or the warm-up.
	stopProfile := func() error { return nil }
	if c.CPUProfile != "" {
		r.window.asked = time.Now()
		if stopProfile, err = startBenchProfile(ctx, c, r.servers); err != nil {
			return nil, err
		}
		defer func() { _ = stopProfile() }()
	}
	t, err := r.measureRounds(ctx)
	if err != nil {
		return nil, err
	}
	if c.CPUProfile != "" {
		r.window.to = time.Now()
		err := stopProfile()
		stopProfile = func() error { return nil }
		if err != nil {
			return nil, err
		}
		r.window.written = time.Now()
	}
	return r.report(t), nil
}

func newBenchRun(c benchConfig, env Env) *benchRun {
	nSlow := int(c.SlowShare * float64(c.Webhooks))
	nFail := int(c.FailShare * float64(c.Webhooks))
	return &benchRun{
		c: c, env: env, body: benchBody(c.Size),
		nSlow: nSlow, nFail: nFail, healthy: c.Webhooks - nSlow - nFail,
		rv: &receiver{slow: map[string]bool{}, fail: map[string]bool{}, stop: make(chan struct{}), perHook: map[string]int{}},
	}
}

// measureCeilings measures the bare-HTTP ceilings of body against the
// receiver at recvURL, unsigned then signed.
func measureCeilings(ctx context.Context, recvURL string, body []byte, c benchConfig) (benchCeilings, error) {
	var m benchCeilings
	m.n = min(max(c.Events*c.Webhooks/2, 5000), 50000)
	cpu0 := procstat.CPUTime()
	var err error
	if m.unsigned, err = bareCeiling(ctx, recvURL+"/ceiling", body, c.Concurrency, m.n, false); err != nil {
		return m, err
	}
	cpu1 := procstat.CPUTime()
	if m.signed, err = bareCeiling(ctx, recvURL+"/ceiling", body, c.Concurrency, m.n, true); err != nil {
		return m, err
	}
	m.unsignedCPU, m.signedCPU = cpu1-cpu0, procstat.CPUTime()-cpu1
	return m, nil
}

// benchDatabase is the database of a run: with a postgres://
// --database-url a temporary database beside it, which drop drops, and a
// meter of its backends' CPU; otherwise --database-url as it is (SQLite).
func benchDatabase(ctx context.Context, c benchConfig) (dbURL string, pgMeter *pgBackends, drop func(), err error) {
	if !isPostgres(c.DatabaseURL) {
		if c.Instances > 1 {
			return "", nil, nil, fmt.Errorf("%w: --instances > 1 needs a postgres:// --database-url", errUsage)
		}
		return c.DatabaseURL, nil, func() {}, nil
	}
	tmpURL, dropTmp, err := tempPostgresDB(ctx, c.DatabaseURL)
	if err != nil {
		return "", nil, nil, err
	}
	if pgMeter, err = newPGBackends(ctx, c.DatabaseURL, tmpURL); err != nil {
		dropTmp()
		return "", nil, nil, err
	}
	return tmpURL, pgMeter, func() { pgMeter.close(); dropTmp() }, nil
}

// startServers starts the run's servers on its database, in dir, and a
// client of each; stop stops them.
func (r *benchRun) startServers(ctx context.Context, dir string) (stop func(), err error) {
	const benchKey = "bench-key-0123456789abcdef0123456789abcdef"
	masterKey := make([]byte, 32)
	_, _ = rand.Read(masterKey)
	servers, stopAll, err := startBenchServers(ctx, benchServerConfig{c: r.c, dbURL: r.dbURL, dir: dir, key: benchKey, masterKey: masterKey, env: r.env})
	if err != nil {
		return nil, err
	}
	r.servers = servers
	for _, s := range servers {
		r.clients = append(r.clients, &benchClient{base: s.URL + "/v1beta", key: benchKey, http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: r.c.Concurrency * 2}}})
	}
	return stopAll, nil
}

// createWebhooks creates the webhooks h0, h1, … on the receiver, the
// first nSlow hanging and the next nFail failing; with --dynamic it only
// lists their URIs for webhook_config.
func (r *benchRun) createWebhooks(ctx context.Context) error {
	cl := r.clients[0]
	for i := range r.c.Webhooks {
		name := fmt.Sprintf("h%d", i)
		if r.c.Dynamic {
			r.dynURIs = append(r.dynURIs, r.recvURL+"/"+name)
			continue
		}
		switch {
		case i < r.nSlow:
			r.rv.slow[name] = true
		case i < r.nSlow+r.nFail:
			r.rv.fail[name] = true
		}
		if err := cl.post(ctx, "/webhooks", map[string]any{"name": name, "uri": r.recvURL + "/" + name, "subscribed_events": []string{"batch.succeeded"}}, nil); err != nil {
			return fmt.Errorf("create webhook: %w", err)
		}
	}
	return nil
}

// warmUp (--dynamic) runs a short warm-up, not counted, and measures the
// signing rate before the first round.
func (r *benchRun) warmUp(ctx context.Context) error {
	var err error
	if r.meter, err = newRS256Meter(r.body); err != nil {
		return err
	}
	// A short warm-up, not counted: the first deliveries open the
	// receiver connections and grow stacks, heap and SQLite's page
	// cache, which a steady-state rate should not include.
	wc := r.c
	wc.Events = max(r.c.Events/20, 50)
	r.goal = int64(wc.Events * r.healthy)
	reached := r.rv.until(r.goal)
	if _, err := publishAll(ctx, r.clients, wc, len(r.body), r.dynURIs); err != nil {
		return err
	}
	select {
	case <-reached:
	case <-ctx.Done():
		return fmt.Errorf("warm-up timed out with %d of %d deliveries received", r.rv.received(), r.goal)
	}
	r.rv.mu.Lock()
	r.rv.latencies = r.rv.latencies[:0]
	r.rv.mu.Unlock()
	r.measureSigning()
	return nil
}

// measureSigning measures the RS256 signing rate once more.
func (r *benchRun) measureSigning() {
	rate, cpu, n := r.meter.measure(signWindow)
	r.signRates, r.signCPU, r.signs = append(r.signRates, rate), r.signCPU+cpu, r.signs+n
}

// startSampler samples the bench process's goroutines every 100 ms into
// r.maxG until stop is called. The sampler also draws a progress bar of
// the measured deliveries on a terminal (nothing on a pipe or in CI logs).
func (r *benchRun) startSampler(ctx context.Context) (stop func()) {
	prog := newProgress(r.env.Stderr, "deliveries received")
	base := r.goal // the warm-up's, not counted
	prog.start(r.c.Events * r.healthy)
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if n := int64(runtime.NumGoroutine()); n > r.maxG.Load() {
				r.maxG.Store(n)
			}
			prog.set(int(r.rv.received() - base))
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		stopSampling()
		<-sampled
		prog.set(int(r.rv.received() - base)) // the last frame shows the end
		prog.done()
	}
}

// measureRounds publishes the run's events and waits for their
// deliveries. A dynamic run is cut into rounds with the RS256 signing rate
// measured before and after each: a shared machine's speed drifts by a
// quarter within seconds, and interleaving makes both sides of the ratio
// see the same machine. Servers idle while the signing rate is measured.
func (r *benchRun) measureRounds(ctx context.Context) (benchTotals, error) {
	var t benchTotals
	rounds := 1
	if r.c.Dynamic {
		rounds = r.c.Rounds
	}
	published := 0
	for i := range rounds {
		n := r.c.Events*(i+1)/rounds - published
		if n == 0 {
			continue
		}
		published += n
		if err := r.measureRound(ctx, i, n, &t); err != nil {
			return t, err
		}
	}
	return t, nil
}

// measureRound is round i of measureRounds: it publishes n events, waits
// for their deliveries and adds what it measured to t.
func (r *benchRun) measureRound(ctx context.Context, i, n int, t *benchTotals) error {
	roundWant := int64(n * r.healthy)
	t.want += roundWant
	r.goal += roundWant
	reached := r.rv.until(r.goal)
	rc := r.c
	rc.Events = n
	var db0 map[int]time.Duration
	if r.pgMeter != nil {
		db0 = r.pgMeter.sample(ctx)
	}
	start, cpu0, srv0 := time.Now(), procstat.CPUTime(), serverCPU(r.servers)
	if i == 0 {
		r.window.from = start
	}
	pub, err := publishAll(ctx, r.clients, rc, len(r.body), r.dynURIs)
	if err != nil {
		return err
	}
	t.calls.add(pub)
	select {
	case <-reached:
	case <-ctx.Done():
		return fmt.Errorf("timed out with %d of %d deliveries received", r.rv.received(), r.goal)
	}
	d := time.Since(start)
	srvD := serverCPU(r.servers) - srv0
	t.elapsed, t.runCPU, t.srvCPU, t.pubTime = t.elapsed+d, t.runCPU+procstat.CPUTime()-cpu0+srvD, t.srvCPU+srvD, t.pubTime+pub.elapsed
	if r.pgMeter != nil {
		t.dbCPU += since(db0, r.pgMeter.sample(ctx))
	}
	if r.c.Dynamic {
		r.measureSigning()
		ref := (r.signRates[len(r.signRates)-2] + r.signRates[len(r.signRates)-1]) / 2
		t.possible += ref * d.Seconds()
		t.roundRatios = append(t.roundRatios, float64(roundWant)/d.Seconds()/ref)
	}
	return nil
}
