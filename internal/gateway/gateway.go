package gateway

import (
	"context"
	"errors"
	"fmt"
	"github.com/longhook/longhook/internal/gateway/inbox/postgres"
	"github.com/longhook/longhook/internal/gateway/inbox/sqlite"
	"io"
	"log/slog"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/longhook/longhook/docs"
	"github.com/longhook/longhook/internal/gateway/verify"
	"github.com/longhook/longhook/webhook"
)

// Gateway is the receiving edge: it verifies, deduplicates and durably
// stores webhooks (Handler), forwards them to sinks and sweeps expired
// events (Run). Create it with NewGateway; Close it after Run returns.
type Gateway struct {
	cfg        Config
	log        *slog.Logger
	now        func() time.Time
	inbox      Inbox
	ownInbox   bool
	reg        *prometheus.Registry
	m          *metrics
	sources    []*source
	byName     map[string]*source
	forwarders []*forwarder
	sinks      []Sink
	handler    http.Handler
	recent     recentLog // the console's recent intake outcomes

	draining  atomic.Bool
	drainOnce sync.Once
	drained   chan struct{} // closed by Drain: ends listen streams
	closeOnce sync.Once
	closeErr  error
}

// source is a configured endpoint, ready to verify.
type source struct {
	cfg    SourceConfig
	recv   *webhook.Receiver
	preset *verify.Verifier // a provider preset or generic HMAC; recv is unused then
	tokens [][]byte
	// signers are the hmac_secrets of a Standard Webhooks source: forwards
	// and listen streams sign its events again with them (see resign).
	signers []webhook.Secret
}

// commitStater is implemented by inboxes that group commits.
type commitStater interface {
	CommitStats() (commits, ops int64)
}

// An Option changes how NewGateway builds a Gateway.
type Option func(*options)

type options struct {
	log   *slog.Logger
	inbox Inbox
	now   func() time.Time
	reg   *prometheus.Registry
	jwks  *http.Client
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithInbox makes the gateway use inbox instead of opening Config.Database;
// the caller keeps ownership and closes it after the gateway.
func WithInbox(inbox Inbox) Option { return func(o *options) { o.inbox = inbox } }

// WithClock replaces time.Now, for verification and retry schedules.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithRegistry registers the gateway's metrics on reg (default: a new
// registry with Go and process collectors) and serves reg at /metrics.
func WithRegistry(reg *prometheus.Registry) Option { return func(o *options) { o.reg = reg } }

// WithJWKSClient sets the HTTP client used to fetch JWKS documents.
func WithJWKSClient(c *http.Client) Option { return func(o *options) { o.jwks = c } }

// NewGateway validates cfg (after applying defaults), connects the sinks
// and opens the inbox. ctx bounds start-up only.
func NewGateway(ctx context.Context, cfg Config, opts ...Option) (*Gateway, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.reg == nil {
		o.reg = newRegistry()
	}
	if err := cfg.negative(); err != nil {
		return nil, configError{err}
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, configError{err}
	}
	g := &Gateway{cfg: cfg, log: o.log, now: o.now, reg: o.reg, byName: map[string]*source{}, drained: make(chan struct{})}
	g.m = newMetrics(o.reg)
	for _, sc := range cfg.Sources {
		src, err := newSource(sc, o)
		if err != nil {
			return nil, configError{err}
		}
		g.sources = append(g.sources, src)
		g.byName[sc.Name] = src
	}
	// The sinks first: one that cannot be set up (a broker's URL,
	// missing cloud credentials) refuses the start before the inbox, and
	// the data dir it makes, exist.
	type sinkOf struct {
		src  *source
		kc   SinkConfig
		sink Sink
	}
	var built []sinkOf
	for _, src := range g.sources {
		for _, kc := range src.cfg.Sinks {
			sink, err := newSink(ctx, src.cfg.Name, kc)
			if err != nil {
				_ = g.Close()
				return nil, err
			}
			g.sinks = append(g.sinks, sink)
			built = append(built, sinkOf{src, kc, sink})
		}
	}
	g.inbox = o.inbox
	if g.inbox == nil {
		inbox, err := openInbox(ctx, cfg, o.log)
		if err != nil {
			_ = g.Close()
			return nil, err
		}
		g.inbox, g.ownInbox = inbox, true
	}
	if cs, ok := g.inbox.(commitStater); ok {
		g.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "longhook_gateway_inbox_commits_total",
				Help: "Transactions committed by the inbox writer.",
			}, func() float64 { c, _ := cs.CommitStats(); return float64(c) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "longhook_gateway_inbox_commit_ops_total",
				Help: "Operations committed by the inbox writer; divided by commits, the mean group-commit size.",
			}, func() float64 { _, o := cs.CommitStats(); return float64(o) }),
		)
	}
	for _, b := range built {
		sigHeader := ""
		if b.src.preset != nil {
			sigHeader = b.src.preset.Header()
		}
		f := newForwarder(b.src.cfg.Name, b.kc.Name, b.kc, withRouting(b.sink, b.kc, sigHeader), g.inbox, g.log, g.m, g.now)
		f.resign = b.src.resignOld
		if err := f.start(ctx); err != nil {
			_ = g.Close()
			return nil, err
		}
		g.forwarders = append(g.forwarders, f)
	}
	g.handler = g.routes()
	return g, nil
}

// openInbox opens the store cfg.Database names.
func openInbox(ctx context.Context, cfg Config, log *slog.Logger) (Inbox, error) {
	if cfg.postgres() {
		in, err := postgres.Open(ctx, cfg.Database, postgres.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		return in, nil
	}
	in, err := sqlite.Open(ctx, strings.TrimPrefix(cfg.Database, "sqlite://"), cfg.Synchronous)
	if err != nil {
		return nil, err
	}
	return in, nil
}

func newSource(sc SourceConfig, o options) (*source, error) {
	src := &source{cfg: sc, recv: &webhook.Receiver{}}
	for _, t := range sc.ListenTokens {
		src.tokens = append(src.tokens, []byte(t))
	}
	preset, err := sc.Verify.preset(o.now)
	if err != nil {
		return nil, fmt.Errorf("gateway: source %s: verify: %w", sc.Name, err)
	}
	if preset != nil {
		src.preset = preset
		return src, nil
	}
	vopts := []webhook.Option{webhook.WithClock(o.now)}
	if sc.Verify.Tolerance > 0 {
		vopts = append(vopts, webhook.WithTolerance(sc.Verify.Tolerance))
	}
	if len(sc.Verify.HMACSecrets) > 0 {
		v, err := webhook.NewVerifier(sc.Verify.HMACSecrets, vopts...)
		if err != nil {
			return nil, fmt.Errorf("gateway: source %s: hmac_secrets: %w", sc.Name, err)
		}
		src.recv.HMAC = v
		for _, text := range sc.Verify.HMACSecrets {
			sec, err := webhook.ParseSecret(text)
			if err != nil { // NewVerifier parsed it already
				return nil, fmt.Errorf("gateway: source %s: hmac_secrets: %w", sc.Name, err)
			}
			src.signers = append(src.signers, sec)
		}
	}
	if j := sc.Verify.JWKS; j != nil {
		jopts := vopts
		if len(j.Algorithm) > 0 {
			jopts = append(jopts, webhook.WithAlgorithms(j.Algorithm...))
		}
		if o.jwks != nil {
			jopts = append(jopts, webhook.WithHTTPClient(o.jwks))
		}
		if j.Project != "" {
			jopts = append(jopts, webhook.WithProject(j.Project))
		}
		v, err := webhook.NewJWKSVerifier(j.URL, j.Issuer, j.Audience, jopts...)
		if err != nil {
			return nil, fmt.Errorf("gateway: source %s: jwks: %w", sc.Name, err)
		}
		src.recv.JWKS = v
	}
	return src, nil
}

// Handler serves the sources' endpoints, the listen streams, /healthz,
// /readyz, /metrics and /openapi.json. It works from NewGateway until
// Close.
func (g *Gateway) Handler() http.Handler { return g.handler }

// routes lists every endpoint of the gateway.
func (g *Gateway) routes() http.Handler {
	mux := http.NewServeMux()
	for _, src := range g.sources {
		mux.Handle(src.cfg.Path, g.intake(src))
	}
	mux.HandleFunc("GET "+ListenPath+"{source}", g.listen)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", g.ready)
	if g.cfg.ConsoleToken != "" {
		mux.Handle(ConsolePath, g.console())
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{}))
	// The gateway's own OpenAPI document (docs/gateway.openapi.json), as
	// serve serves its own: a client generator or a validator finds the
	// description of what it talks to on the server itself (issue 17).
	mux.HandleFunc("GET "+OpenAPIPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(docs.GatewayOpenAPI)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(mux, r); len(allow) > 0 {
			methodNotAllowed(w, r, allow)
			return
		}
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no source at %s", r.URL.Path))
	})
	return mux
}

// allowed returns the methods another route serves r's path with (GET
// and POST are all the gateway's routes use).
func allowed(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if m == r.Method {
			continue
		}
		probe := *r
		probe.Method = m
		if _, pattern := mux.Handler(&probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	return allow
}

// methodNotAllowed answers 405 with the Allow header, as the API server
// does: RFC 9110 (section 15.5.6) defines 405 for a method the target
// does not support and requires Allow; UNIMPLEMENTED is the google.rpc.Code
// for an operation not supported (grpc-gateway's choice for a method
// mismatch). It is not INVALID_ARGUMENT: nothing in the request's content
// is wrong.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow []string) int {
	list := strings.Join(allow, ", ")
	w.Header().Set("Allow", list)
	return writeError(w, http.StatusMethodNotAllowed, "UNIMPLEMENTED", fmt.Sprintf("method %s is not allowed on %s; it takes %s", r.Method, r.URL.Path, list))
}

func (g *Gateway) ready(w http.ResponseWriter, r *http.Request) {
	if g.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "shutting down")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := g.inbox.Ping(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "inbox unavailable")
		return
	}
	if why := g.diskFull(); why != "" {
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", why)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// minFreeBytes is the free space under which the SQLite inbox's
// filesystem counts as full: intake then answers 503 for what it cannot
// store, and /readyz says so until space returns.
const minFreeBytes = 1 << 20

// diskFull is /readyz's reason while the SQLite inbox's filesystem is
// (nearly) full; "" otherwise, and always with PostgreSQL.
func (g *Gateway) diskFull() string {
	if g.cfg.postgres() || !g.ownInbox {
		return ""
	}
	dir := filepath.Dir(strings.TrimPrefix(g.cfg.Database, "sqlite://"))
	if free, ok := diskFree(dir); ok && free < minFreeBytes {
		return fmt.Sprintf("disk full: %d KiB free for the inbox in %s", free>>10, dir)
	}
	return ""
}

// Drain marks the gateway as shutting down: /readyz answers 503 so a load
// balancer stops sending, while requests already routed are still served.
// It also ends the listen streams, whose clients reconnect elsewhere or
// later; call it before http.Server.Shutdown, which waits for them.
func (g *Gateway) Drain() {
	g.drainOnce.Do(func() {
		g.draining.Store(true)
		close(g.drained)
	})
}

// Run forwards events to the sinks, samples the pending-retry gauge and
// sweeps expired events until ctx is done. It then stops claiming work and
// lets in-flight forwards finish for up to Config.ShutdownTimeout before
// cancelling them, and returns. Call Close afterwards.
func (g *Gateway) Run(ctx context.Context) error {
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	var wg sync.WaitGroup
	for _, f := range g.forwarders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.run(ctx, hard)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.maintain(ctx)
	}()
	<-ctx.Done()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(g.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		g.log.Warn("gateway.shutdown: cancelling in-flight forwards", slog.Duration("timeout", g.cfg.ShutdownTimeout))
		cancelHard()
		<-done
	}
	return nil
}

// maintain sweeps expired events and samples the pending gauge.
func (g *Gateway) maintain(ctx context.Context) {
	sweep := time.NewTicker(g.cfg.SweepInterval)
	defer sweep.Stop()
	sample := time.NewTicker(10 * time.Second)
	defer sample.Stop()
	g.samplePending(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-sample.C:
			g.samplePending(ctx)
		case <-sweep.C:
			g.sweep(ctx)
		}
	}
}

// sweep deletes expired events that every sink of their source is done
// with, in batches so intake never waits long behind it.
func (g *Gateway) sweep(ctx context.Context) {
	for _, src := range g.sources {
		upto := int64(math.MaxInt64)
		for _, f := range g.forwarders {
			if f.source == src.cfg.Name {
				upto = min(upto, f.persisted.Load())
			}
		}
		for {
			n, err := g.inbox.Sweep(ctx, SweepParams{Now: g.now(), Source: src.cfg.Name, Upto: upto, Limit: 1000})
			if err != nil {
				if ctx.Err() == nil {
					g.log.Error("gateway.sweep", slog.String("source", src.cfg.Name), slog.Any("error", err))
				}
				return
			}
			if n > 0 {
				g.log.Debug("gateway.sweep", slog.String("source", src.cfg.Name), slog.Int("deleted", n))
			}
			if n < 1000 {
				break
			}
		}
	}
}

func (g *Gateway) samplePending(ctx context.Context) {
	p, err := g.inbox.PendingRetries(ctx)
	if err != nil {
		return
	}
	for _, f := range g.forwarders {
		g.m.pending.WithLabelValues(f.id).Set(float64(p[f.id]))
	}
}

// Close closes the sinks and, unless it was given with WithInbox, the
// inbox. It is safe to call twice.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.Drain()
		var errs []error
		for _, s := range g.sinks {
			errs = append(errs, s.Close())
		}
		if g.ownInbox && g.inbox != nil {
			errs = append(errs, g.inbox.Close())
		}
		g.closeErr = errors.Join(errs...)
	})
	return g.closeErr
}

// Inbox returns the gateway's store (for tests and tooling).
func (g *Gateway) Inbox() Inbox { return g.inbox }

var _ io.Closer = (*Gateway)(nil)
