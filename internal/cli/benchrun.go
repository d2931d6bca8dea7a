package cli

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
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
