package cli

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/certs"
	"github.com/longhook/longhook/internal/console"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/engine"
	"github.com/longhook/longhook/internal/jobs"
	"github.com/longhook/longhook/internal/jobs/executor"
	"github.com/longhook/longhook/internal/jwks"
	"github.com/longhook/longhook/internal/leader"
	"github.com/longhook/longhook/internal/publish"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/sqlite"
	"github.com/longhook/longhook/internal/telemetry"
)

// ServeConfig is the configuration of `longhook serve`.
type ServeConfig struct {
	Addr        string // listen address (default 127.0.0.1:8080)
	DataDir     string // data directory (default ./longhook-data)
	DatabaseURL string // sqlite://path (default: DataDir/longhook.db) or postgres://…
	PublicURL   string // the server's public base URL (JWT iss); default http://Addr
	Dev         bool   // allow http:// and loopback/private destinations
	AllowCIDRs  []netip.Prefix
	TimeScale   float64       // divide every delay, horizon and window (default 1)
	Workers     int           // attempts in flight (default 512)
	PerDest     int           // attempts in flight per destination (default 32)
	PerDestMax  int           // how far a destination's cap may grow above PerDest (default 0: a fixed cap)
	Retention   time.Duration // default 30 days
	EventTypes  []string      // custom event types
	SoftStop    time.Duration // how long shutdown waits for attempts in flight
	Lease       time.Duration // claim lease: a dead instance's deliveries are retried after it
	Migrate     bool          // apply pending PostgreSQL migrations on start
	// RetrySchedule is the delay after each failed attempt (default
	// core.DefaultRetrySchedule); a webhook's own schedule overrides it.
	RetrySchedule []time.Duration
	// JWTAlgorithm is the algorithm of new JWT signing keys: RS256, ES256
	// or EdDSA; "" (the default) keeps the current key's, RS256 for the
	// first (jwks.Config.Algorithm).
	JWTAlgorithm string
	// JWKSRotateEvery is the scheduled key rotation (default 30 days).
	JWKSRotateEvery time.Duration
	// JWTTTL is the lifetime of each dynamic-webhook token (default 5 min);
	// JWKSMargin keeps a retired key published beyond it (default 10 min).
	JWTTTL     time.Duration
	JWKSMargin time.Duration
	// Jobs: the model backend and its settings.
	Executor     string        // simulator (default) or openai
	OpenAIURL    string        // OpenAI-compatible server for the openai executor
	OpenAIModel  string        // model name sent to it (default: the request's)
	VideoCommand string        // program that renders videos (default: a simulated MP4)
	SimDuration  string        // simulated model time per job kind
	SimHoldFile  string        // the simulator's [[hold]] requests wait for this file
	BatchWindow  time.Duration // unfinished batches expire after this (default 48 h)
	LogLevel     slog.Level
	LogJSON      bool
	// NoFastPath serves publishes through net/http like every other
	// request (api.FastListener; plain HTTP only, TLS never uses it).
	NoFastPath bool
	// TLS serves HTTPS from certificate files or ACME (off when empty).
	TLS certs.Config
}

func runServe(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("serve", env)
	var cfg ServeConfig
	var cidrs, types, level, format, schedule string
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&cfg.DataDir, "data-dir", "./longhook-data", "data directory (SQLite database, master key, bootstrap key)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "database: sqlite://PATH (default DATA_DIR/longhook.db) or postgres://…")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "public base URL of this server (JWT issuer); default http://ADDR (localhost for an ADDR on every interface)")
	fs.BoolVar(&cfg.Migrate, "migrate", false, "apply pending PostgreSQL migrations on start (SQLite always migrates)")
	fs.BoolVar(&cfg.Dev, "dev", false, "development mode: allow http:// and loopback/private webhook URIs")
	fs.StringVar(&cidrs, "allow-cidr", "", "comma-separated CIDRs deliveries may reach even though they are private")
	fs.Float64Var(&cfg.TimeScale, "time-scale", 1, "compress every retry delay, horizon and window by this factor (3600 = an hour per second)")
	fs.StringVar(&schedule, "retry-schedule", defaultRetryScheduleFlag(), "comma-separated delays after each failed attempt (each in (0, 24h]); a last attempt follows at 24h after the event; divided by --time-scale; a webhook's retry_schedule overrides it")
	fs.IntVar(&cfg.Workers, "workers", 512, "delivery attempts in flight")
	fs.IntVar(&cfg.PerDest, "per-destination", 32, "delivery attempts in flight per destination")
	fs.IntVar(&cfg.PerDestMax, "per-destination-max", 0, "how far a destination's attempts in flight may grow above --per-destination while it has a backlog, answers without overload and delivers faster for it (at or below --per-destination: a fixed cap)")
	fs.DurationVar(&cfg.Retention, "retention", 30*24*time.Hour, "how long deliveries, attempts and payloads are kept (at least 24h: the publish idempotency window)")
	fs.StringVar(&types, "event-types", "", "comma-separated custom event types to accept besides the catalog")
	fs.DurationVar(&cfg.SoftStop, "soft-stop", 10*time.Second, "on shutdown, how long attempts in flight may finish")
	fs.DurationVar(&cfg.Lease, "lease", 60*time.Second, "claim lease (real time); deliveries held by a crashed instance are retried once it expires; must exceed the 15 s attempt timeout")
	fs.StringVar(&cfg.JWTAlgorithm, "jwt-algorithm", "", "algorithm of new dynamic-webhook signing keys: RS256, ES256 or EdDSA (default: the current key's, RS256 for the first)")
	fs.DurationVar(&cfg.JWKSRotateEvery, "jwks-rotate-every", 30*24*time.Hour, "scheduled rotation of the JWT signing key")
	fs.DurationVar(&cfg.JWTTTL, "jwt-ttl", 5*time.Minute, "lifetime of each dynamic-webhook JWT")
	fs.DurationVar(&cfg.JWKSMargin, "jwks-retire-margin", 10*time.Minute, "how long a retired key stays published after its last token expired")
	fs.StringVar(&cfg.Executor, "executor", "simulator", "model backend of jobs: simulator or openai")
	fs.StringVar(&cfg.OpenAIURL, "openai-url", "", "OpenAI-compatible server for --executor openai (e.g. http://localhost:11434/v1)")
	fs.StringVar(&cfg.OpenAIModel, "openai-model", "", "model sent to the OpenAI server (default: the request's)")
	fs.BoolVar(&cfg.NoFastPath, "no-http-fast-path", false, "serve publishes through net/http like every other request (the publish fast path serves plain HTTP only; docs/design.md)")
	fs.StringVar(&cfg.VideoCommand, "video-command", "", "program that writes videos to $LONGHOOK_OUTPUT (default: a simulated MP4)")
	fs.StringVar(&cfg.SimDuration, "sim-duration", "batch=2s,video=10s,interaction=1s", "simulated model time per job kind (divided by --time-scale)")
	fs.StringVar(&cfg.SimHoldFile, "sim-hold-file", "", "simulator: requests whose text has [[hold]] wait until this file exists (tests hold jobs mid-run with it)")
	fs.DurationVar(&cfg.BatchWindow, "batch-window", 48*time.Hour, "unfinished batches expire after this (divided by --time-scale)")
	var acmeDomains string
	addTLSFlags(fs, &cfg.TLS, &acmeDomains)
	fs.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&format, "log-format", "text", "log format: text or json")
	var cpuProfile string
	var profileOnSignal bool
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (for performance work)")
	fs.BoolVar(&profileOnSignal, "cpuprofile-on-signal", false, "with --cpuprofile: profile from SIGUSR1 to SIGUSR2 (then the file is written) instead of the whole run (Unix; bench --cpuprofile uses it to profile only what it measures)")
	if err := fs.parse(args); err != nil {
		return err
	}
	for _, c := range splitList(cidrs) {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("%w: --allow-cidr %q: %v", errUsage, c, err)
		}
		cfg.AllowCIDRs = append(cfg.AllowCIDRs, p)
	}
	cfg.EventTypes = splitList(types)
	var err error
	if cfg.RetrySchedule, err = parseRetryScheduleFlag(schedule); err != nil {
		return err
	}
	cfg.TLS.ACMEDomains = splitList(acmeDomains)
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("%w: --log-level: %v", errUsage, err)
	}
	if format != "text" && format != "json" {
		return fmt.Errorf("%w: --log-format %q: use text or json", errUsage, format)
	}
	cfg.LogJSON = format == "json"
	if cfg.TimeScale <= 0 {
		return fmt.Errorf("%w: --time-scale must be positive", errUsage)
	}
	if cfg.JWTTTL <= 0 || cfg.JWTTTL > maxJWTTTL {
		return fmt.Errorf("%w: --jwt-ttl must be between 1s and %v (a token is re-signed per attempt; a long one is a long replay window)", errUsage, maxJWTTTL)
	}
	if cfg.PublicURL != "" {
		// The JWT issuer receivers check and the base of the URLs the API
		// and the console hand out.
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(cfg.PublicURL, "?") || strings.HasSuffix(cfg.PublicURL, "#") {
			return fmt.Errorf("%w: --public-url %q must be an absolute http(s) URL without credentials, query or fragment, such as https://hooks.example.com", errUsage, cfg.PublicURL)
		}
	}
	if cfg.Lease < 20*time.Second {
		return fmt.Errorf("%w: --lease must be at least 20s (the attempt timeout is 15s)", errUsage)
	}
	if err := checkServeRanges(cfg); err != nil {
		return err
	}
	if cfg.SoftStop == 0 {
		cfg.SoftStop = time.Nanosecond // 0 in ServeConfig is the default (10 s)
	}
	if profileOnSignal && cpuProfile == "" {
		return fmt.Errorf("%w: --cpuprofile-on-signal needs --cpuprofile", errUsage)
	}
	if profileOnSignal && profileStartSignal == nil {
		return fmt.Errorf("%w: --cpuprofile-on-signal needs SIGUSR1 and SIGUSR2, which %s does not have", errUsage, runtime.GOOS)
	}
	defer startGCFloor(env.Getenv, gcFloorBytes)()
	logger := newLogger(env, cfg.LogLevel, cfg.LogJSON)
	stopTracing, err := telemetry.Setup(ctx, telemetry.Config{Service: "longhook", Version: Version, Getenv: env.Getenv, Log: logger})
	if err != nil {
		return fmt.Errorf("%w: %v", errConfig, err)
	}
	defer flushTracing(ctx, stopTracing, logger)
	srv, err := NewServer(ctx, cfg, env, logger)
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		// Created once the start can no longer be refused: a refused
		// start leaves the disk as it was.
		start := startCPUProfile
		if profileOnSignal {
			start = func(path string) (func(), error) { return cpuProfileOnSignal(path, env.Stdout, logger) }
		}
		stop, err := start(cpuProfile)
		if err != nil {
			srv.closeUnstarted()
			return err
		}
		defer stop()
	}
	return srv.Run(ctx)
}

// minRetention is the shortest --retention: the publish idempotency
// window of docs/contract.md §6, which the retention sweep would shorten.
const minRetention = 24 * time.Hour

// checkServeRanges refuses counts and durations that have no meaning
// (exit 2, naming the flag) rather than let the engine's defaults replace
// them silently, or a negative --retention sweep away all history.
func checkServeRanges(cfg ServeConfig) error {
	switch {
	case cfg.Workers < 1:
		return fmt.Errorf("%w: --workers must be at least 1, got %d", errUsage, cfg.Workers)
	case cfg.PerDest < 1:
		return fmt.Errorf("%w: --per-destination must be at least 1, got %d", errUsage, cfg.PerDest)
	case cfg.PerDestMax < 0:
		return fmt.Errorf("%w: --per-destination-max must not be negative (0: a fixed cap), got %d", errUsage, cfg.PerDestMax)
	case cfg.SoftStop < 0:
		return fmt.Errorf("%w: --soft-stop must not be negative (0: cut attempts in flight at once), got %v", errUsage, cfg.SoftStop)
	case cfg.Retention < minRetention:
		// Publish idempotency keys live in the event rows the retention
		// sweep removes: a shorter retention would let a retried publish
		// go out twice within the 24 h the contract promises (§6).
		return fmt.Errorf("%w: --retention must be at least %v (publish idempotency keys are kept that long; docs/contract.md §6), got %v",
			errUsage, minRetention, cfg.Retention)
	case cfg.BatchWindow <= 0:
		return fmt.Errorf("%w: --batch-window must be positive, got %v", errUsage, cfg.BatchWindow)
	case cfg.JWKSRotateEvery <= 0:
		return fmt.Errorf("%w: --jwks-rotate-every must be positive, got %v", errUsage, cfg.JWKSRotateEvery)
	case cfg.JWKSMargin < 0:
		return fmt.Errorf("%w: --jwks-retire-margin must not be negative, got %v", errUsage, cfg.JWKSMargin)
	}
	return nil
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// cpuProfileOnSignal creates path now and profiles the process into it
// from the first profileStartSignal to the next profileStopSignal, or to
// stop. It says "cpu profile started" and then "cpu profile written to
// PATH" on out once each has happened, so a bench that sent the signal
// knows when its measured phase may begin and when the file is whole.
// Signals out of turn (a second start, a stop first) are logged and
// ignored: one file holds one profile.
func cpuProfileOnSignal(path string, out io.Writer, logger *slog.Logger) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, profileStartSignal, profileStopSignal)
	var mu sync.Mutex
	running, written := false, false
	finish := func() error {
		pprof.StopCPUProfile()
		running, written = false, true
		return f.Close()
	}
	done := make(chan struct{})
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		for {
			var sig os.Signal
			select {
			case sig = <-sigs:
			case <-done:
				return
			}
			mu.Lock()
			switch {
			case sig == profileStartSignal && !running && !written:
				if err := pprof.StartCPUProfile(f); err != nil {
					logger.Error("cpuprofile.start", slog.String("error", err.Error()))
					break
				}
				running = true
				fmt.Fprintln(out, "cpu profile started")
			case sig == profileStopSignal && running:
				if err := finish(); err != nil {
					logger.Error("cpuprofile.write", slog.String("error", err.Error()))
					break
				}
				fmt.Fprintf(out, "cpu profile written to %s\n", path)
			default:
				logger.Warn("cpuprofile.signal_ignored", slog.String("signal", sig.String()), slog.Bool("running", running), slog.Bool("written", written))
			}
			mu.Unlock()
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
		<-handled
		mu.Lock()
		defer mu.Unlock()
		if running {
			_ = finish()
		} else if !written {
			f.Close()
		}
	}, nil
}

// flushTracing exports the spans still buffered when serve stops.
func flushTracing(ctx context.Context, stop func(context.Context) error, logger *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := stop(sctx); err != nil {
		logger.Warn("tracing.shutdown", slog.String("error", err.Error()))
	}
}

func newLogger(env Env, level slog.Level, json bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if json {
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(env.Stderr, opts)))
	}
	return slog.New(telemetry.LogHandler(slog.NewTextHandler(env.Stderr, opts)))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Server is a composed `longhook serve`: store, API, publisher, engine and
// periodic work. Tests embed it; the CLI runs it.
type Server struct {
	cfg       ServeConfig
	env       Env
	log       *slog.Logger
	store     core.Store
	listener  net.Listener
	tls       *certs.TLS
	http      *http.Server
	fast      *api.FastListener // the publish fast path, on plain HTTP
	engine    *engine.Engine
	maint     *leader.Leader
	keys      *jwks.Manager
	jobs      *jobs.Service
	ready     atomic.Bool
	URL       string // http://host:port actually listened on
	APIKey    string // the bootstrap key, when this start created it
	ProjectID string // the default project
}

// NewServer opens the store, bootstraps the default project on first start,
// and listens; Run serves.
func NewServer(ctx context.Context, cfg ServeConfig, env Env, logger *slog.Logger) (*Server, error) {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if cfg.TimeScale <= 0 {
		cfg.TimeScale = 1
	}
	// A refused start leaves the disk as it was: everything that can
	// refuse it (the configuration, the address, the TLS files, a
	// PostgreSQL database) is checked before the data dir, its master key
	// or a SQLite database is created.
	checked, err := checkServe(cfg, env)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, env: env, log: logger}
	ok := false
	defer func() {
		if !ok {
			s.closeUnstarted()
		}
	}()
	if s.listener, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	tlsCfg := cfg.TLS
	tlsCfg.CacheDir, tlsCfg.Logger = filepath.Join(cfg.DataDir, "acme"), logger // created on the first certificate
	if s.tls, err = certs.New(tlsCfg); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if isPostgres(cfg.DatabaseURL) {
		if s.store, err = openStore(ctx, cfg.DatabaseURL, cfg.DataDir, cfg.Migrate, logger); err != nil {
			return nil, err
		}
	}
	masterKey, err := secretbox.LoadKey(env.Getenv("LONGHOOK_MASTER_KEY"), cfg.DataDir)
	newKey := errors.Is(err, secretbox.ErrNoKey)
	if err != nil && !newKey {
		return nil, err
	}
	if newKey {
		if err := s.refuseNewKeyForSealedData(ctx); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	warnDataDirMode(cfg.DataDir, logger)
	if newKey {
		if masterKey, err = secretbox.CreateKey(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	box, err := secretbox.New(masterKey)
	if err != nil {
		return nil, err
	}
	if s.store == nil {
		if s.store, err = openStore(ctx, cfg.DatabaseURL, cfg.DataDir, cfg.Migrate, logger); err != nil {
			return nil, err
		}
	}
	store := s.store
	if err := s.bootstrap(ctx); err != nil {
		return nil, err
	}
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	s.URL = scheme + "://" + dialAddr(s.listener.Addr().String())
	if s.cfg.PublicURL == "" {
		s.cfg.PublicURL = s.URL
		if s.URL != scheme+"://"+s.listener.Addr().String() {
			logger.Warn("serve.public_url_default", slog.String("public_url", s.URL),
				slog.String("hint", "listening on every interface: set --public-url to the address receivers and browsers on other hosts use (it is the JWT issuer and the base of the URLs the API hands out)"))
		}
	}
	keys, err := jwks.New(ctx, jwks.Config{Store: store, Cipher: box, Logger: logger, Issuer: strings.TrimSuffix(s.cfg.PublicURL, "/"),
		Algorithm: cfg.JWTAlgorithm, RotateEvery: cfg.JWKSRotateEvery, TokenTTL: cfg.JWTTTL, Margin: cfg.JWKSMargin})
	if err != nil {
		return nil, err
	}
	s.keys = keys
	catalog := checked.catalog
	policy := core.AddressPolicy{Dev: cfg.Dev, Allow: cfg.AllowCIDRs}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	accepted := prometheus.NewCounter(prometheus.CounterOpts{Name: "longhook_events_accepted_total", Help: "Events accepted by the publish API and jobs."})
	reg.MustRegister(accepted)

	// One publish lane on every store: group commit grows a lane's groups
	// with the load, and on PostgreSQL four lanes made groups four times
	// smaller — more transactions, round trips and commits per event
	// (issue 20: one lane cut PostgreSQL's CPU per delivery by ~40 %, the
	// server's by ~20 %, and raised throughput by half).
	const lanes = 1
	retry := core.RetryPolicy{Scale: cfg.TimeScale, Schedule: cfg.RetrySchedule}
	var ops *publish.Publisher // the publisher below, for operational events
	s.engine = engine.New(engine.Config{
		Store: store, Cipher: box, Logger: logger, Retry: retry,
		OnGiveUp: func(g engine.GiveUp) { announceGiveUp(store, ops, logger, g) },
		Sender:   engine.NewSender(engine.SenderConfig{Policy: policy, UserAgent: "longhook/" + Version, MaxConnsPerHost: max(cfg.Workers, 64)}),
		Workers:  cfg.Workers, PerDestination: cfg.PerDest, PerDestinationMax: cfg.PerDestMax, SoftStop: cfg.SoftStop, Dynamic: keys, Lease: cfg.Lease,
		Metrics: engine.NewMetrics(reg, func(ctx context.Context) (core.QueueDepth, error) {
			return store.QueueDepth(ctx, time.Now().UTC())
		}),
	})
	pub := publish.New(publish.Config{
		Store: store, Catalog: catalog, Policy: policy, Lanes: lanes,
		OnPublished: func(n int) { accepted.Add(float64(n)) }, Direct: s.engine,
	})
	ops = pub
	if n, ok := store.(core.WebhookChangeNotifier); ok {
		// Webhooks changed through another instance: drop the cached
		// subscription lists (and, through the engine's generation, the
		// webhooks its deliveries hold) now, not when they expire.
		n.OnWebhooksChanged(func(projectID string) {
			if projectID == "" {
				pub.InvalidateAll()
			} else {
				pub.Invalidate(projectID)
			}
		})
	}
	tasks := []leader.Task{{Name: "jwks", Run: keys.Maintain}}
	s.jobs, err = jobs.New(jobs.Config{Store: store, Publisher: pub, Dir: filepath.Join(cfg.DataDir, "jobs"),
		Policy: policy, Executor: checked.exec, Logger: logger, TimeScale: cfg.TimeScale, BatchWindow: cfg.BatchWindow,
		SoleRunner: !store.Capabilities().SharedAcrossProcesses})
	if err != nil {
		return nil, err
	}
	tasks = append(tasks, s.jobs.Tasks()...)
	upkeep := engine.NewMaintenance(engine.MaintenanceConfig{
		Store: store, Logger: logger, Retention: cfg.Retention, Scale: cfg.TimeScale,
		OnDisabled: func(ids []string) {
			pub.InvalidateAll()
			announceDisabled(store, pub, logger, ids)
		},
	})
	s.maint = leader.New(leader.Config{
		Store: store, Logger: logger, Owner: s.engine.Owner(), Scale: cfg.TimeScale,
		Tasks: append(upkeep.Tasks(), tasks...),
	})

	mac := hmac.New(sha256.New, masterKey)
	mac.Write([]byte("longhook page tokens v1"))
	var con *console.Console
	handler := api.NewServer(api.Deps{
		Store: store, Publisher: pub, Catalog: catalog, Cipher: box, Policy: policy,
		Logger: logger, PageTokenKey: mac.Sum(nil), Ready: s.ready.Load, Degraded: s.diskFull,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), JWKS: keys,
		Jobs: s.jobs, PublicURL: strings.TrimSuffix(s.cfg.PublicURL, "/"), TimeScale: cfg.TimeScale,
		Console: func(a http.Handler) http.Handler {
			con = console.New(console.Deps{API: a, Store: store, Publisher: pub, Catalog: catalog, Jobs: store,
				RotateJWKS: func(ctx context.Context) error { _, err := keys.Rotate(ctx); return err }, Logger: logger,
				PublicURL: s.cfg.PublicURL})
			return con
		},
	})
	s.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	s.http.RegisterOnShutdown(con.Close)
	if s.tls == nil && !cfg.NoFastPath {
		// Plain HTTP: publishes take the fast path (api.FastListener),
		// everything else net/http.
		s.fast = api.NewFastListener(s.listener, s.http)
	}
	ok = true
	return s, nil
}

// checkedServe is what checkServe built while checking.
type checkedServe struct {
	catalog *core.Catalog
	exec    executor.Executor
}

// checkServe checks everything about cfg and the environment that can
// refuse a start without touching the disk or the network, so that
// NewServer refuses before it creates anything.
func checkServe(cfg ServeConfig, env Env) (checkedServe, error) {
	var c checkedServe
	if key := env.Getenv("LONGHOOK_BOOTSTRAP_API_KEY"); key != "" && len(key) < minBootstrapKey {
		return c, fmt.Errorf("%w: LONGHOOK_BOOTSTRAP_API_KEY is %d characters long; it must be at least %d (openssl rand -hex 32 makes one)",
			errConfig, len(key), minBootstrapKey)
	}
	if key := strings.TrimSpace(env.Getenv("LONGHOOK_MASTER_KEY")); key != "" {
		// With a key set, LoadOrCreateKey only decodes it.
		if _, _, err := secretbox.LoadOrCreateKey(key, ""); err != nil {
			return c, fmt.Errorf("%w: %v (openssl rand -base64 32 makes one)", errConfig, err)
		}
	}
	if u := cfg.DatabaseURL; u != "" && !strings.HasPrefix(u, "sqlite://") && !isPostgres(u) {
		return c, fmt.Errorf("%w: --database-url must start with sqlite:// or postgres://", errUsage)
	}
	if _, port, err := net.SplitHostPort(cfg.Addr); err != nil || port == "" {
		// A malformed address is a usage error (exit 2); one that is
		// taken (in use, not ours) stays a failure of the start.
		return c, fmt.Errorf("%w: --addr %q must be HOST:PORT, e.g. 127.0.0.1:8080 or :8080", errUsage, cfg.Addr)
	}
	if err := checkRetrySchedule(cfg.RetrySchedule); err != nil {
		return c, err
	}
	switch cfg.JWTAlgorithm {
	case "", "RS256", "ES256", "EdDSA":
	default:
		return c, fmt.Errorf("%w: --jwt-algorithm %q: use RS256, ES256 or EdDSA", errUsage, cfg.JWTAlgorithm)
	}
	var err error
	if c.catalog, err = core.NewCatalog(cfg.EventTypes...); err != nil {
		return c, fmt.Errorf("%w: --event-types: %v", errUsage, err)
	}
	c.exec, err = executor.New(executor.Config{Kind: cfg.Executor, SimDurations: cfg.SimDuration, SimHoldFile: cfg.SimHoldFile, Scale: cfg.TimeScale,
		VideoCommand: cfg.VideoCommand, OpenAI: executor.OpenAIConfig{URL: cfg.OpenAIURL, Model: cfg.OpenAIModel,
			APIKey: env.Getenv("LONGHOOK_OPENAI_API_KEY")}})
	if err != nil {
		return c, fmt.Errorf("%w: %v", errUsage, err)
	}
	return c, nil
}

// closeUnstarted releases what a NewServer that failed had opened.
func (s *Server) closeUnstarted() {
	if s.listener != nil {
		s.listener.Close()
	}
	s.tls.Close()
	if s.store != nil {
		s.store.Close()
	}
}

// Run serves until ctx is cancelled, then shuts down in order: stop
// accepting HTTP, stop claiming, let attempts finish (soft stop), close the
// store.
func (s *Server) Run(ctx context.Context) error {
	defer s.store.Close()
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	g, gctx := errgroup.WithContext(engineCtx)
	g.Go(func() error { return s.engine.Run(gctx) })
	g.Go(func() error { return s.maint.Run(gctx) })
	g.Go(func() error { return s.keys.RunReloader(gctx, 2*time.Second) })
	g.Go(func() error { return s.jobs.Run(gctx) })

	httpErr := make(chan error, 1)
	if s.tls != nil {
		s.http.TLSConfig = s.tls.Config()
		g.Go(func() error { return s.tls.Run(gctx) })
		go func() { httpErr <- s.http.ServeTLS(s.listener, "", "") }()
	} else if s.fast != nil {
		go func() { httpErr <- s.http.Serve(s.fast) }()
	} else {
		go func() { httpErr <- s.http.Serve(s.listener) }()
	}
	s.ready.Store(true)
	s.log.Info("server.ready", slog.String("url", s.URL), slog.String("public_url", s.cfg.PublicURL),
		slog.Bool("dev", s.cfg.Dev), slog.Float64("time_scale", s.cfg.TimeScale), slog.String("store", s.store.Capabilities().Driver))
	fmt.Fprintf(s.env.Stdout, "longhook %s listening on %s\n", Version, s.URL)
	fmt.Fprintf(s.env.Stdout, "Console: %s/console/ (sign in with an API key)\n", strings.TrimSuffix(s.cfg.PublicURL, "/"))

	var err error
	select {
	case <-ctx.Done():
	case err = <-httpErr:
		err = fmt.Errorf("http: %w", err)
	case <-gctx.Done():
	}
	s.ready.Store(false)
	s.log.Info("server.stopping")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	if e := s.http.Shutdown(shutCtx); e != nil && !errors.Is(e, http.ErrServerClosed) {
		s.log.Warn("server.http_shutdown", slog.String("error", e.Error()))
	}
	if s.fast != nil {
		// Shutdown closed it; its connections finish their request.
		if e := s.fast.Wait(shutCtx); e != nil {
			s.log.Warn("server.http_shutdown", slog.String("error", e.Error()))
		}
	}
	cancel()
	stopEngine()
	if e := g.Wait(); e != nil && err == nil {
		err = e
	}
	s.log.Info("server.stopped")
	return err
}

// bootstrap creates the default project and its API key on first start,
// and repairs a default project left without any key. Instances starting
// together on one PostgreSQL database take a lease for either, so exactly
// one of them creates anything: another that sees the project before its
// key exists waits for the lease instead of creating a second key.
func (s *Server) bootstrap(ctx context.Context) error {
	owner := core.NewID()
	deadline := time.Now().Add(30 * time.Second)
	waiting := false
	for {
		done, err := s.bootstrapped(ctx)
		if err != nil || done {
			if done {
				s.checkBootstrapKey(ctx)
			}
			return err
		}
		ok, err := s.store.AcquireLease(ctx, "bootstrap", owner, time.Now().UTC(), 30*time.Second)
		if err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		if ok {
			defer s.store.ReleaseLease(context.WithoutCancel(ctx), "bootstrap", owner)
			if done, err := s.bootstrapped(ctx); err != nil || done {
				return err // another instance finished first
			}
			if s.ProjectID == "" {
				return s.createDefaultProject(ctx)
			}
			return s.repairBootstrap(ctx)
		}
		if !waiting {
			waiting = true
			s.log.Info("bootstrap.wait: another instance is bootstrapping; waiting for it")
		}
		if time.Now().After(deadline) {
			return errors.New("bootstrap: another instance holds the bootstrap lease")
		}
		if !core.Sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// checkBootstrapKey warns when LONGHOOK_BOOTSTRAP_API_KEY is set on a
// start that had nothing to bootstrap and the key is not a live key of the
// store: it is read only on first start, so an operator who set it later
// (or revoked it) would otherwise get 401s with nothing in the log saying
// why. The key itself is never logged.
func (s *Server) checkBootstrapKey(ctx context.Context) {
	key := s.env.Getenv("LONGHOOK_BOOTSTRAP_API_KEY")
	if key == "" {
		return
	}
	_, err := s.store.LookupAPIKey(ctx, api.KeyDigest(key))
	switch {
	case err == nil:
	case errors.Is(err, core.ErrNotFound):
		s.log.Warn("bootstrap.key_ignored: LONGHOOK_BOOTSTRAP_API_KEY is set but is not an API key of this store " +
			"(it is read only on the first start, and this store already has keys, or the key was revoked); " +
			"create one with `longhook keys create` instead")
	default:
		s.log.Warn("bootstrap.key_check", "error", err)
	}
}

// bootstrapped reports whether nothing is left to bootstrap: no project
// at all (false), or some project and some API key (true). It sets
// s.ProjectID to the default project when there is one.
func (s *Server) bootstrapped(ctx context.Context) (bool, error) {
	projects, err := s.store.ListProjects(ctx)
	if err != nil || len(projects) == 0 {
		return false, err
	}
	for _, p := range projects {
		if p.Name == "default" {
			s.ProjectID = p.ID
		}
	}
	if s.ProjectID == "" {
		return true, nil // projects, but none is the default: nothing to repair
	}
	keys, err := s.store.ListAPIKeys(ctx, "")
	return len(keys) > 0, err
}

// maxJWTTTL caps --jwt-ttl.
const maxJWTTTL = time.Hour

// minBootstrapKey is the shortest LONGHOOK_BOOTSTRAP_API_KEY accepted.
const minBootstrapKey = 32

// repairBootstrap gives the default project its admin key when no project
// has any key at all (not even a revoked one): a start that created the
// project but failed before its key (an older version validated the key
// too late) would otherwise leave every call answering 401. It runs under
// the bootstrap lease.
func (s *Server) repairBootstrap(ctx context.Context) error {
	p, err := s.store.GetProject(ctx, s.ProjectID)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	s.log.Warn("bootstrap.repair: the default project has no API key; creating it")
	return s.createBootstrapKey(ctx, p)
}

func (s *Server) createDefaultProject(ctx context.Context) error {
	p := core.Project{ID: core.NewID(), Name: "default", CreateTime: time.Now().UTC()}
	if err := s.store.CreateProject(ctx, p); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return s.createBootstrapKey(ctx, p)
}

// createBootstrapKey creates p's admin key (LONGHOOK_BOOTSTRAP_API_KEY, or
// a random one), saves it to DATA_DIR/api-key and prints it once.
func (s *Server) createBootstrapKey(ctx context.Context, p core.Project) error {
	now := time.Now().UTC()
	key := s.env.Getenv("LONGHOOK_BOOTSTRAP_API_KEY")
	var digest []byte
	var hint string
	if key == "" {
		key, digest, hint = api.NewAPIKey()
	} else {
		digest, hint = api.KeyDigest(key), key[len(key)-4:]
	}
	k := core.APIKey{ID: core.NewID(), ProjectID: p.ID, Name: "bootstrap", Digest: digest, Hint: hint, Admin: true, CreateTime: now}
	if err := s.store.CreateAPIKey(ctx, k); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	path := filepath.Join(s.cfg.DataDir, "api-key")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	s.ProjectID, s.APIKey = p.ID, key
	fmt.Fprintf(s.env.Stdout, "Project %q (%s).\nAPI key (shown once, also saved to %s):\n\n    %s\n\n", p.Name, p.ID, path, key)
	return nil
}

// minFreeBytes is the free space under which the SQLite data dir counts
// as full: publishes then fail with 503 UNAVAILABLE (SQLite's "disk
// full"), and /readyz says so until space returns.
const minFreeBytes = 1 << 20

// diskFull is /readyz's reason while the SQLite database's filesystem is
// (nearly) full; "" otherwise, and always with PostgreSQL.
func (s *Server) diskFull() string {
	if s.store.Capabilities().Driver != "sqlite" {
		return ""
	}
	dir := s.cfg.DataDir
	if p, ok := strings.CutPrefix(s.cfg.DatabaseURL, "sqlite://"); ok && p != "" {
		dir = filepath.Dir(p)
	}
	if free, ok := diskFree(dir); ok && free < minFreeBytes {
		return fmt.Sprintf("disk full: %d KiB free for the database in %s", free>>10, dir)
	}
	return ""
}

// refuseNewKeyForSealedData refuses a start that would make a new master
// key (none in the environment or the data dir) for a database that
// already holds values sealed with one — a restore that brought the
// database back but not its master.key, or a second instance without the
// first one's key. A new key could not open them; the start would fail
// later anyway, after writing a master.key that misleads whoever looks
// at the data dir next. The database is read, never written.
func (s *Server) refuseNewKeyForSealedData(ctx context.Context) error {
	var where string
	if s.store != nil { // PostgreSQL, opened before the data dir
		keys, err := s.store.SigningKeys(ctx)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return nil
		}
		where = "the PostgreSQL database"
	} else {
		path := sqlitePath(s.cfg.DatabaseURL, s.cfg.DataDir)
		has, err := sqlite.HasSigningKeys(ctx, path)
		if err != nil || !has {
			return err
		}
		where = path
	}
	return errNoKeyForSealedData(s.cfg.DataDir, where)
}

// errNoKeyForSealedData is the refusal to make a new master key in
// dataDir for the database where, which holds values sealed with one.
func errNoKeyForSealedData(dataDir, where string) error {
	return fmt.Errorf("%w: %s does not exist and LONGHOOK_MASTER_KEY is not set, but %s holds secrets sealed with a master key; "+
		"put back the master.key that belongs to this database (from the backup made with it) or set LONGHOOK_MASTER_KEY to it — "+
		"a new key could not open them, so none was made",
		errConfig, filepath.Join(dataDir, secretbox.KeyFileName), where)
}

// warnDataDirMode warns when the data dir (database, master key, bootstrap
// key) can be read or entered by other users: the files in it are 0600,
// but a directory made by hand is often 0755.
func warnDataDirMode(dir string, logger *slog.Logger) {
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	logger.Warn("serve.data_dir_permissions",
		slog.String("data_dir", dir), slog.String("mode", fi.Mode().Perm().String()),
		slog.String("problem", "other users can read the data dir (keys, secrets, events)"),
		slog.String("fix", "chmod 700 "+dir))
}

// dialAddr is a listen address as a URL host: an unspecified host
// (":8080", "0.0.0.0:8080", "[::]:8080") becomes localhost, so the URLs
// serve prints and hands out by default can be opened; "http://[::]:8080"
// was the JWT issuer and the console's address.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return net.JoinHostPort("localhost", port)
	}
	return addr
}
