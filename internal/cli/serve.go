package cli

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
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
	"github.com/longhook/longhook/internal/telemetry"
)

// ServeConfig is the configuration of `longhook serve`.
type ServeConfig struct {
	Addr        string   // listen address (default 127.0.0.1:8080)
	DataDir     string   // data directory (default ./longhook-data)
	DatabaseURL string   // sqlite://path (default: DataDir/longhook.db) or postgres://…
	PublicURL   string   // the server's public base URL (JWT iss); default http://Addr
	CORSOrigins []string // web origins whose pages may call the API ("*": any; none: no CORS)
	Dev         bool     // allow http:// and loopback/private destinations
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
	cfg, f, err := parseServeFlags(args, env)
	if err != nil {
		return err
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
	if f.cpuProfile != "" {
		// Created once the start can no longer be refused: a refused
		// start leaves the disk as it was.
		start := startCPUProfile
		if f.profileOnSignal {
			start = func(path string) (func(), error) { return cpuProfileOnSignal(path, env.Stdout, logger) }
		}
		stop, err := start(f.cpuProfile)
		if err != nil {
			srv.closeUnstarted()
			return err
		}
		defer stop()
	}
	return srv.Run(ctx)
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

// Server is a composed `longhook serve`: store, API, publisher, engine and
// periodic work. Tests embed it; the CLI runs it.
type Server struct {
	cfg       ServeConfig
	env       Env
	log       *slog.Logger
	store     core.Store
	listener  net.Listener
	tls       *certs.TLS
	dbLock    *dbLock // held while serving a SQLite database (datadirlock.go)
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
	// Before the port is bound: a second serve on the database hears why
	// it is refused, not "address already in use".
	if err := s.lockDatabase(false); err != nil {
		return nil, err
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	masterKey, box, err := s.openData(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.bootstrap(ctx); err != nil {
		return nil, err
	}
	s.setURLs()
	if err := s.compose(ctx, checked, masterKey, box); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// listen opens the listen address and the TLS certificates.
func (s *Server) listen() error {
	var err error
	if s.listener, err = net.Listen("tcp", s.cfg.Addr); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	tlsCfg := s.cfg.TLS
	tlsCfg.CacheDir, tlsCfg.Logger = filepath.Join(s.cfg.DataDir, "acme"), s.log // created on the first certificate
	if s.tls, err = certs.New(tlsCfg); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// openData opens the store and the master key, and makes the data dir.
// A PostgreSQL database is opened before the data dir or a new master key
// is made (it can refuse the start); a SQLite one, which lives in the
// data dir, after.
func (s *Server) openData(ctx context.Context) (masterKey []byte, box *secretbox.Box, err error) {
	cfg, logger := s.cfg, s.log
	if isPostgres(cfg.DatabaseURL) {
		if s.store, err = openStore(ctx, cfg.DatabaseURL, cfg.DataDir, cfg.Migrate, logger); err != nil {
			return nil, nil, err
		}
	}
	keys, err := s.loadKeys()
	newKey := errors.Is(err, secretbox.ErrNoKey)
	if err != nil && !newKey {
		return nil, nil, err
	}
	if newKey {
		if err := s.refuseNewKeyForSealedData(ctx); err != nil {
			return nil, nil, err
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	warnDataDirMode(cfg.DataDir, logger)
	if newKey {
		if _, err = secretbox.CreateKey(cfg.DataDir); err != nil {
			return nil, nil, err
		}
		if keys, err = s.loadKeys(); err != nil {
			return nil, nil, err
		}
	}
	if box, err = keys.Box(); err != nil {
		return nil, nil, err
	}
	s.logKeyRing(keys, box)
	masterKey = keys.Primary
	if s.store == nil {
		if err := s.lockDatabase(true); err != nil {
			return nil, nil, err
		}
		if s.store, err = openStore(ctx, cfg.DatabaseURL, cfg.DataDir, cfg.Migrate, logger); err != nil {
			return nil, nil, err
		}
	}
	return masterKey, box, nil
}

// loadKeys loads the master key ring (secretbox.LoadKeys).
func (s *Server) loadKeys() (secretbox.Keys, error) {
	return secretbox.LoadKeys(s.env.Getenv("LONGHOOK_MASTER_KEY"), s.env.Getenv("LONGHOOK_MASTER_KEY_FALLBACK"), s.cfg.DataDir)
}

// setURLs sets s.URL to the address listened on and, without
// --public-url, the public URL to it.
func (s *Server) setURLs() {
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	s.URL = scheme + "://" + dialAddr(s.listener.Addr().String())
	if s.cfg.PublicURL == "" {
		s.cfg.PublicURL = s.URL
		if s.URL != scheme+"://"+s.listener.Addr().String() {
			s.log.Warn("serve.public_url_default", slog.String("public_url", s.URL),
				slog.String("hint", "listening on every interface: set --public-url to the address receivers and browsers on other hosts use (it is the JWT issuer and the base of the URLs the API hands out)"))
		}
	}
}

// compose builds the server's components on its store: the signing keys,
// the metrics, the engine and the publisher, the jobs and the periodic
// work, and the HTTP server.
func (s *Server) compose(ctx context.Context, checked checkedServe, masterKey []byte, box *secretbox.Box) error {
	cfg := s.cfg
	keys, err := jwks.New(ctx, jwks.Config{Store: s.store, Cipher: box, Logger: s.log, Issuer: strings.TrimSuffix(s.cfg.PublicURL, "/"),
		Algorithm: cfg.JWTAlgorithm, RotateEvery: cfg.JWKSRotateEvery, TokenTTL: cfg.JWTTTL, Margin: cfg.JWKSMargin})
	if err != nil {
		return err
	}
	s.keys = keys
	policy := core.AddressPolicy{Dev: cfg.Dev, Allow: cfg.AllowCIDRs}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	accepted := prometheus.NewCounter(prometheus.CounterOpts{Name: "longhook_events_accepted_total", Help: "Events accepted by the publish API and jobs."})
	reg.MustRegister(accepted)
	pub := s.composeDelivery(checked.catalog, policy, box, reg, accepted)
	if err := s.composePeriodic(pub, policy, checked.exec); err != nil {
		return err
	}
	s.composeHTTP(pub, checked.catalog, policy, box, reg, masterKey)
	return nil
}

// composeDelivery builds the engine and the publisher that feeds it.
func (s *Server) composeDelivery(catalog *core.Catalog, policy core.AddressPolicy, box *secretbox.Box, reg *prometheus.Registry, accepted prometheus.Counter) *publish.Publisher {
	cfg, store, logger := s.cfg, s.store, s.log
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
		Workers:  cfg.Workers, PerDestination: cfg.PerDest, PerDestinationMax: cfg.PerDestMax, SoftStop: cfg.SoftStop, Dynamic: s.keys, Lease: cfg.Lease,
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
	return pub
}

// composePeriodic builds the jobs service and the leader that runs the
// periodic work of every component.
func (s *Server) composePeriodic(pub *publish.Publisher, policy core.AddressPolicy, exec executor.Executor) error {
	cfg, store, logger := s.cfg, s.store, s.log
	tasks := []leader.Task{{Name: "jwks", Run: s.keys.Maintain}}
	var err error
	s.jobs, err = jobs.New(jobs.Config{Store: store, Publisher: pub, Dir: filepath.Join(cfg.DataDir, "jobs"),
		Policy: policy, Executor: exec, Logger: logger, TimeScale: cfg.TimeScale, BatchWindow: cfg.BatchWindow,
		SoleRunner: !store.Capabilities().SharedAcrossProcesses})
	if err != nil {
		return err
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
	return nil
}

// strictTransport adds HSTS to every answer of a server that terminates
// TLS itself: a browser that opened the console over https once does not
// try plain http for this host again (a year; subdomains are not
// included, they may be other services). Behind a proxy that terminates
// TLS, the proxy sets it.
func strictTransport(next http.Handler) http.Handler {
	hsts := []string{"max-age=31536000"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Strict-Transport-Security"] = hsts
		next.ServeHTTP(w, r)
	})
}

// composeHTTP builds the API, the console and the HTTP server.
func (s *Server) composeHTTP(pub *publish.Publisher, catalog *core.Catalog, policy core.AddressPolicy, box *secretbox.Box, reg *prometheus.Registry, masterKey []byte) {
	cfg, store, logger, keys := s.cfg, s.store, s.log, s.keys
	mac := hmac.New(sha256.New, masterKey)
	mac.Write([]byte("longhook page tokens v1"))
	var con *console.Console
	handler := api.NewServer(api.Deps{
		Store: store, Publisher: pub, Catalog: catalog, Cipher: box, Policy: policy,
		Logger: logger, PageTokenKey: mac.Sum(nil), Ready: s.ready.Load, Degraded: s.diskFull,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), JWKS: keys,
		Jobs: s.jobs, PublicURL: strings.TrimSuffix(s.cfg.PublicURL, "/"), TimeScale: cfg.TimeScale, CORSOrigins: cfg.CORSOrigins,
		Console: func(a http.Handler) http.Handler {
			con = console.New(console.Deps{API: a, Store: store, Publisher: pub, Catalog: catalog, Jobs: store,
				RotateJWKS: func(ctx context.Context) error { _, err := keys.Rotate(ctx); return err }, Logger: logger,
				PublicURL: s.cfg.PublicURL})
			return con
		},
	})
	if s.tls != nil {
		handler = strictTransport(handler)
	}
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
	s.dbLock.release(true)
}

// Run serves until ctx is cancelled, then shuts down in order: stop
// accepting HTTP, stop claiming, let attempts finish (soft stop), close the
// store.
func (s *Server) Run(ctx context.Context) error {
	defer func() {
		s.store.Close()
		s.dbLock.release(false)
	}()
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
