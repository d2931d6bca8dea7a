package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// soakConfig are the flags of `longhook bench --soak`.
type soakConfig struct {
	Duration    time.Duration
	Rate        float64
	TimeScale   float64
	DatabaseURL string
	Every       time.Duration
	LogLevel    string
	HeapProfile string // prefix of heap profiles written at every sample
}

// The soak's webhooks: every event fans out to all four, and every
// fourth event also carries webhook_config (a dynamic delivery).
const (
	soakHealthy  = "healthy"  // answers 204
	soakSecond   = "second"   // answers 204
	soakFlapping = "flapping" // 503 for a tenth of the horizon in every 2.5 tenths, 204 otherwise
	soakFailing  = "failing"  // always 500: retried until the 24 h horizon, then failed
	soakDynamic  = "dynamic"  // the webhook_config URI
)

// soakReceiver records, per webhook, which event sequence numbers got a
// 2xx.
type soakReceiver struct {
	// down and period shape the flapping webhook's outages: down out of
	// every period (scaled with the horizon, so that its retries, spread
	// over more than half the horizon, cannot all fall in outages).
	down, period time.Duration
	mu           sync.Mutex
	got          map[string]map[int64]bool
	hits         atomic.Int64
	// tries records the flapping webhook's requests per sequence number
	// (when, and whether it was in an outage), to explain a delivery
	// that never got through; a delivered one's record is dropped.
	start time.Time
	tries map[int64][]time.Duration // since start
}

func (rv *soakReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	hook := r.URL.Path[1:]
	rv.hits.Add(1)
	status := http.StatusNoContent
	switch hook {
	case soakFailing:
		status = http.StatusInternalServerError
	case soakFlapping:
		if time.Duration(time.Now().UnixNano())%rv.period < rv.down {
			status = http.StatusServiceUnavailable
		}
	}
	if i := bytes.Index(body, []byte(`"seq":`)); i >= 0 {
		rest := body[i+len(`"seq":`):]
		if j := bytes.IndexAny(rest, ",}"); j > 0 {
			if n, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
				rv.mu.Lock()
				if status < 300 {
					rv.got[hook][n] = true
				}
				if hook == soakFlapping {
					if status < 300 {
						delete(rv.tries, n)
					} else if !rv.got[hook][n] {
						rv.tries[n] = append(rv.tries[n], time.Since(rv.start))
					}
				}
				rv.mu.Unlock()
			}
		}
	}
	w.WriteHeader(status)
}

// missing counts, per webhook, the accepted sequence numbers it has not
// seen.
func (rv *soakReceiver) missing(accepted []int64) map[string]int {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	out := map[string]int{}
	for hook, seen := range rv.got {
		if hook == soakFailing {
			continue // auto-disabled after a day of failures; see soak
		}
		for _, n := range accepted {
			if (hook == soakDynamic) != (n%4 == 0) {
				continue // events with webhook_config go to its URIs only
			}
			if !seen[n] {
				out[hook]++
			}
		}
	}
	return out
}

// runBenchSoak runs `bench --soak` with sk's flags and, from bench's
// own, --rate (default 20), --database-url and --log-level.
func runBenchSoak(ctx context.Context, c benchConfig, sk soakConfig, env Env) error {
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

// soak runs mixed load against one in-process `serve` for c.Duration and
// prints the process's resources every c.Every; then it waits for every
// accepted event to reach every webhook that answers (the flapping one
// between its outages) and for no delivery to be left pending (the
// failing webhook's are retried to the 24 h horizon or until it is
// auto-disabled), and fails otherwise.
func soak(ctx context.Context, c soakConfig, env Env) error {
	dir, err := os.MkdirTemp("", "longhook-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	horizon := time.Duration(float64(24*time.Hour) / c.TimeScale)
	r := &soakRun{c: c, env: env, rv: newSoakReceiver(horizon)}
	recvURL, stopReceiver, err := listenLoopback(r.rv)
	if err != nil {
		return err
	}
	defer stopReceiver()
	dbURL, size, dropDB, err := soakDatabase(ctx, c.DatabaseURL, dir, env)
	if err != nil {
		return err
	}
	defer dropDB()
	r.size = size
	stopServer, err := r.startServer(ctx, dir, dbURL)
	if err != nil {
		return err
	}
	defer stopServer()
	for _, h := range []string{soakHealthy, soakSecond, soakFlapping, soakFailing} {
		if err := r.cl.post(ctx, "/webhooks", map[string]any{"name": h, "uri": recvURL + "/" + h, "subscribed_events": []string{"batch.succeeded"}}, nil); err != nil {
			return fmt.Errorf("create webhook: %w", err)
		}
	}

	pubCtx, stopPub := context.WithTimeout(ctx, c.Duration)
	defer stopPub()
	published := r.publish(ctx, pubCtx, recvURL)
	fmt.Fprintf(env.Stdout, "soak: %s on %s, %.0f events/s, time scale %g (24 h horizon = %s)\n",
		c.Duration, r.srv.store.Capabilities().Driver, c.Rate, c.TimeScale, time.Duration(float64(24*time.Hour)/c.TimeScale).Round(time.Second))
	fmt.Fprintf(env.Stdout, "%8s %9s %8s %8s %10s %6s %9s\n", "minute", "accepted", "rss_mb", "gorout", "open_files", "db_mb", "requests")
	r.start = time.Now()
	tick := time.NewTicker(c.Every)
	defer tick.Stop()
	for pubCtx.Err() == nil {
		select {
		case <-tick.C:
			r.samples = append(r.samples, r.report())
		case <-pubCtx.Done():
		}
	}
	published()
	acc, miss := r.drain(ctx, tick)
	return r.verdict(acc, miss)
}

// soakRun is a soak while it runs.
type soakRun struct {
	c     soakConfig
	env   Env
	rv    *soakReceiver
	srv   *Server
	cl    *benchClient
	size  func() int64 // of the database, in bytes
	start time.Time    // of the sampling
	// accepted are the sequence numbers of the events the server
	// accepted; refused counts the publishes that failed.
	mu       sync.Mutex
	accepted []int64
	refused  atomic.Int64
	samples  []resources
}

func newSoakReceiver(horizon time.Duration) *soakReceiver {
	rv := &soakReceiver{got: map[string]map[int64]bool{}, down: horizon / 10, period: horizon / 4,
		start: time.Now(), tries: map[int64][]time.Duration{}}
	for _, h := range []string{soakHealthy, soakSecond, soakFlapping, soakFailing, soakDynamic} {
		rv.got[h] = map[int64]bool{}
	}
	return rv
}

// soakDatabase is the database of a soak: with a postgres:// dbURL a
// temporary database beside it, which drop drops; otherwise dbURL as it
// is (SQLite, by default in dir). size measures it.
func soakDatabase(ctx context.Context, dbURL, dir string, env Env) (url string, size func() int64, drop func(), err error) {
	if !isPostgres(dbURL) {
		return dbURL, func() int64 { return dirSize(dir) }, func() {}, nil
	}
	tmp, drop, err := tempPostgresDB(ctx, dbURL)
	if err != nil {
		return "", nil, nil, err
	}
	size = func() int64 { return pgSize(ctx, tmp) }
	if pgAutovacuumOff(ctx, tmp) {
		// Retention deletes rows; without autovacuum (off on some test
		// servers, on by default in production) their space is never
		// reused. Stand in for it, and say so.
		fmt.Fprintln(env.Stdout, "soak: autovacuum is off on this server: the soak runs VACUUM every minute instead")
		size = func() int64 { pgVacuum(ctx, tmp); return pgSize(ctx, tmp) }
	}
	return tmp, size, drop, nil
}

// startServer runs the soak's server in this process, on dbURL and in
// dir, and makes a client of it; stop stops it.
func (r *soakRun) startServer(ctx context.Context, dir, dbURL string) (stop func(), err error) {
	const key = "soak-key-0123456789abcdef0123456789abcdef"
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	// Retention of two days: at the default scale deliveries are swept
	// about 100 s after they finish, so sweeps run all along.
	srv, err := NewServer(ctx, ServeConfig{
		Addr: "127.0.0.1:0", DataDir: dir, DatabaseURL: dbURL, Dev: true, TimeScale: r.c.TimeScale,
		Retention: 48 * time.Hour, SoftStop: time.Second, Migrate: true, Lease: time.Minute,
	}, quietServeEnv(key, master), benchLogger(r.env, r.c.LogLevel))
	if err != nil {
		return nil, err
	}
	srvCtx, stopSrv := context.WithCancel(context.WithoutCancel(ctx))
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(srvCtx) }()
	r.srv = srv
	r.cl = &benchClient{base: srv.URL + "/v1beta", key: key, http: &http.Client{Timeout: 30 * time.Second}}
	return func() { stopSrv(); <-srvDone }, nil
}

// publish starts four publishers that, until pubCtx ends, publish events
// numbered in sequence at c.Rate in all, every fourth one with
// webhook_config; wait waits for them to stop.
func (r *soakRun) publish(ctx, pubCtx context.Context, recvURL string) (wait func()) {
	var pubWG sync.WaitGroup
	interval := time.Duration(float64(time.Second) / r.c.Rate)
	var seq atomic.Int64
	for range 4 {
		pubWG.Go(func() {
			t := time.NewTicker(interval * 4)
			defer t.Stop()
			for {
				select {
				case <-pubCtx.Done():
					return
				case <-t.C:
				}
				n := seq.Add(1)
				ev := map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/soak", "seq": n}}
				if n%4 == 0 {
					ev["webhook_config"] = map[string]any{"uris": []string{recvURL + "/" + soakDynamic}}
				}
				if err := r.cl.post(ctx, "/events", ev, nil); err != nil {
					r.refused.Add(1)
					continue
				}
				r.mu.Lock()
				r.accepted = append(r.accepted, n)
				r.mu.Unlock()
			}
		})
	}
	return pubWG.Wait
}

// report samples the process's resources and prints them as a line of
// the table (and, with --heap-profile, writes a heap profile).
func (r *soakRun) report() resources {
	r.mu.Lock()
	n := len(r.accepted)
	r.mu.Unlock()
	res := sample(r.size)
	if r.c.HeapProfile != "" {
		writeHeapProfile(fmt.Sprintf("%s-%02d.pb.gz", r.c.HeapProfile, int(time.Since(r.start).Minutes()+0.5)))
	}
	fmt.Fprintf(r.env.Stdout, "%8.1f %9d %8.1f %8d %10d %6.1f %9d\n", time.Since(r.start).Minutes(), n, res.rssMB, res.goroutines, res.files, res.dbMB, r.rv.hits.Load())
	return res
}

// drain waits for the deliveries of the events accepted (acc) and
// returns what is still missing, per webhook, when they all arrived or
// the wait ended.
func (r *soakRun) drain(ctx context.Context, tick *time.Ticker) (acc []int64, miss map[string]int) {
	// Drain: every accepted event has to arrive, the failing webhook's
	// deliveries have to be tried; past the horizon and a few retries.
	r.mu.Lock()
	acc = r.accepted
	r.mu.Unlock()
	drain := time.Duration(float64(26*time.Hour)/r.c.TimeScale) + 2*time.Minute
	deadline := time.Now().Add(drain)
	for {
		miss = r.rv.missing(acc)
		total := 0
		for _, n := range miss {
			total += n
		}
		if depth, err := r.srv.store.QueueDepth(ctx, time.Now()); err == nil {
			miss["pending (any webhook)"] = depth.Due + depth.Scheduled
			total += depth.Due + depth.Scheduled
		}
		if total == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return acc, miss
		}
		select {
		case <-tick.C:
			r.samples = append(r.samples, r.report())
		case <-time.After(time.Second):
		}
	}
}

// verdict prints the soak's summary and fails it when an accepted
// delivery was lost.
func (r *soakRun) verdict(acc []int64, miss map[string]int) error {
	out := r.env.Stdout
	last := r.report()
	fmt.Fprintf(out, "accepted %d events (%d refused), %d requests received\n", len(acc), r.refused.Load(), r.rv.hits.Load())
	if len(r.samples) > 2 {
		warm := r.samples[1]
		fmt.Fprintf(out, "after warm-up (second sample → end): rss %.1f → %.1f MB, goroutines %d → %d, open files %d → %d, db %.1f → %.1f MB\n",
			warm.rssMB, last.rssMB, warm.goroutines, last.goroutines, warm.files, last.files, warm.dbMB, last.dbMB)
	}
	lost := 0
	for hook, n := range miss {
		if n > 0 {
			fmt.Fprintf(out, "LOST: %d accepted deliveries never reached %s\n", n, hook)
			lost += n
		}
	}
	if miss[soakFlapping] > 0 {
		r.rv.explain(out, acc)
	}
	if lost > 0 {
		return fmt.Errorf("soak: %d accepted deliveries lost", lost)
	}
	fmt.Fprintln(out, "zero accepted events lost")
	return nil
}

// resources is one sample of the process.
type resources struct {
	rssMB      float64
	goroutines int
	files      int
	dbMB       float64
}

func sample(dbSize func() int64) resources {
	r := resources{goroutines: runtime.NumGoroutine(), dbMB: float64(dbSize()) / (1 << 20)}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		var pages, rss int64
		if _, err := fmt.Sscan(string(b), &pages, &rss); err == nil {
			r.rssMB = float64(rss*int64(os.Getpagesize())) / (1 << 20)
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		r.files = len(fds)
	}
	return r
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func pgSize(ctx context.Context, url string) int64 {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0
	}
	defer c.Close(ctx)
	var n int64
	_ = c.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n)
	return n
}

func pgAutovacuumOff(ctx context.Context, url string) bool {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return false
	}
	defer c.Close(ctx)
	var v string
	return c.QueryRow(ctx, `SHOW autovacuum`).Scan(&v) == nil && v == "off"
}

func pgVacuum(ctx context.Context, url string) {
	if c, err := pgx.Connect(ctx, url); err == nil {
		_, _ = c.Exec(ctx, `VACUUM (ANALYZE)`)
		c.Close(ctx)
	}
}

// explain prints, for the first accepted events the flapping webhook
// never got, when each of its attempts came (all were in outages, or it
// would have been delivered).
func (rv *soakReceiver) explain(w io.Writer, accepted []int64) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	shown := 0
	for _, n := range accepted {
		if n%4 == 0 || rv.got[soakFlapping][n] {
			continue
		}
		fmt.Fprintf(w, "  flapping seq %d: %d attempts, all answered 503, at", n, len(rv.tries[n]))
		for i, at := range rv.tries[n] {
			if i > 0 {
				at -= rv.tries[n][0]
				fmt.Fprintf(w, " +%.2fs", at.Seconds())
			} else {
				fmt.Fprintf(w, " %.1fs", at.Seconds())
			}
		}
		fmt.Fprintln(w)
		if shown++; shown == 10 {
			return
		}
	}
}

// writeHeapProfile writes the live heap (after a GC) to path; a failure
// only costs the profile.
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	runtime.GC()
	_ = pprof.Lookup("heap").WriteTo(f, 0)
}
