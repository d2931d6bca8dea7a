package cli

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"
)

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

func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(p * float64(len(ds)-1))
	return float64(ds[i]) / float64(time.Millisecond)
}

// lagNote says what a paced run's median schedule lag means for its
// latencies.
func lagNote(p50ms float64) string {
	if p50ms > 2 {
		return "; NOT PACED: the machine could not keep the rate, latencies are a closed loop's"
	}
	return ""
}

// perMicros is d per item in microseconds (0 when unmeasured).
func perMicros(d time.Duration, n int) float64 {
	if d <= 0 || n <= 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// report is the report of run r, whose measured rounds added up to t.
func (r *benchRun) report(t benchTotals) *benchReport {
	c := r.c
	r.rv.mu.Lock()
	lat := slices.Clone(r.rv.latencies)
	hMin, hMax := 0, 0
	if !c.Dynamic {
		hMin, hMax = r.rv.hookRange(r.nSlow+r.nFail, c.Webhooks)
	}
	sMin, sMax := r.rv.hookRange(0, r.nSlow)
	r.rv.mu.Unlock()
	rep := &benchReport{
		Machine: fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()),
		Store:   driverOf(r.dbURL),
		Events:  c.Events, Webhooks: c.Webhooks, EventBytes: len(r.body) + 60, Concurrency: c.Concurrency, Batch: c.Batch, Rate: c.Rate, Backlog: c.Backlog,
		Deliveries:       int(t.want),
		Seconds:          t.elapsed.Seconds(),
		DeliveriesPerSec: float64(t.want) / t.elapsed.Seconds(),
		PublishPerSec:    float64(c.Events) / t.pubTime.Seconds(),
		P50ms:            percentile(lat, .50), P95ms: percentile(lat, .95), P99ms: percentile(lat, .99),
		PublishP50ms: percentile(t.calls.rtt, .50), PublishP99ms: percentile(t.calls.rtt, .99),
		ScheduleLagP50ms: percentile(t.calls.lag, .50), ScheduleLagP99ms: percentile(t.calls.lag, .99),
		CeilingPerSec:  r.ceil.signed,
		MaxRSSMB:       maxRSSMB() + serverRSS(r.servers),
		ServerMaxRSSMB: serverMaxRSS(r.servers),
		MaxGoroutines:  int(r.maxG.Load()),
		HealthyMin:     hMin, HealthyMax: hMax,
		HangingMin: sMin, HangingMax: sMax,
		CPUusPerDelivery:         perMicros(t.runCPU, int(t.want)),
		CPUusPerCeiling:          perMicros(r.ceil.signedCPU, r.ceil.n),
		UnsignedCeilingPerSec:    r.ceil.unsigned,
		CPUusPerUnsignedCeiling:  perMicros(r.ceil.unsignedCPU, r.ceil.n),
		ServerCPUusPerDelivery:   perMicros(t.srvCPU, int(t.want)),
		DatabaseCPUusPerDelivery: perMicros(t.dbCPU, int(t.want)),
	}
	rep.RatioUnsigned = rep.DeliveriesPerSec / r.ceil.unsigned
	if t.elapsed > 0 {
		rep.CPUCoresUsed = t.runCPU.Seconds() / t.elapsed.Seconds()
		rep.ServerCPUCoresUsed = t.srvCPU.Seconds() / t.elapsed.Seconds()
	}
	if rep.CPUusPerDelivery > 0 {
		rep.CPURatioToCeiling = rep.CPUusPerCeiling / rep.CPUusPerDelivery
	}
	if r.nSlow+r.nFail > 0 {
		rep.HealthyP99ms = rep.P99ms
	}
	rep.Ratio = rep.DeliveriesPerSec / rep.CeilingPerSec
	rep.Instances = max(c.Instances, 1)
	rep.window = r.window
	if c.Dynamic {
		rep.Dynamic = true
		// The reference rate is time-weighted: each round's mean of its two
		// neighbouring measurements, weighted by how long the round took.
		rep.RS256SignPerSec = t.possible / t.elapsed.Seconds()
		rep.RatioToSigning = float64(t.want) / t.possible
		rep.RoundRatios = t.roundRatios
		rep.CPUusPerRS256 = perMicros(r.signCPU, r.signs)
		if rep.CPUusPerDelivery > 0 {
			rep.CPURatioToSigning = rep.CPUusPerRS256 / rep.CPUusPerDelivery
		}
	}
	return rep
}
