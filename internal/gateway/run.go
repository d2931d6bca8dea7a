package gateway

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/certs"
	"github.com/longhook/longhook/internal/envflag"
	"github.com/longhook/longhook/internal/telemetry"
)

// ErrUsage marks a command-line mistake of RunGateway (a missing
// --config, an unknown flag, a stray argument): the CLI exits 2 for it.
var ErrUsage = envflag.ErrUsage

// ErrConfig marks a start refused for its configuration — the config
// file, a flag's value, the TLS files, an OTEL_* variable: the CLI exits 2
// for it, as for serve's configuration errors. Such a start has created
// nothing (no data dir, no inbox).
var ErrConfig = envflag.ErrConfig

// configError is a configuration mistake with its own message; it is
// ErrConfig for errors.Is.
type configError struct{ error }

func (e configError) Unwrap() []error { return []error{e.error, ErrConfig} }

// RunGateway is `longhook gateway`: it loads the config, serves the
// gateway until ctx is cancelled, then shuts down in order: /readyz turns
// 503 and listen streams end, the HTTP server stops accepting and
// finishes its requests, forwarders stop claiming and finish their
// attempts (both bounded by shutdown_timeout), and the inbox closes.
//
// Flags, each falling back to its variable (envflag.Name: --addr →
// LONGHOOK_ADDR): --config (required), --addr overriding addr, --data-dir
// overriding data_dir, --database (sqlite://PATH or postgres://...)
// overriding database, --log-level (debug, info, warn, error) and
// --log-format (text or json), and the TLS flags --tls-cert/--tls-key and
// --acme-* overriding the config's tls block. LONGHOOK_GATEWAY_CONFIG,
// LONGHOOK_GATEWAY_ADDR and LONGHOOK_GATEWAY_DATABASE, the names before
// the rule, still work and log a warning. Logs go to stderr; the
// listening address is printed on stdout.
func RunGateway(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := envflag.New("gateway", getenv, stderr)
	fs.Describe("longhook gateway --config gateway.yaml [flags]", `Runs the receiving edge: verifies each source's webhooks, refuses replays, deduplicates on the
sender's delivery id, answers 2xx once the event is stored, then forwards it to the source's
sinks (HTTP, Redis, NATS, Kafka, RabbitMQ, MQTT, Pub/Sub). docs/operations.md, "longhook
gateway", documents the config file. Every flag falls back to LONGHOOK_ + its name in capitals.`)
	configPath := fs.String("config", "", "gateway config file (YAML)")
	addr := fs.String("addr", "", "listen address, overrides addr in the config")
	dataDir := fs.String("data-dir", "", "data directory, overrides data_dir in the config")
	database := fs.String("database", "", "inbox store, sqlite://PATH or postgres://..., overrides database in the config")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	var tlsFlags certs.Config
	fs.StringVar(&tlsFlags.CertFile, "tls-cert", "", "PEM certificate chain for HTTPS, re-read when it changes; overrides tls.cert")
	fs.StringVar(&tlsFlags.KeyFile, "tls-key", "", "PEM private key of --tls-cert; overrides tls.key")
	acmeDomains := fs.String("acme-domain", "", "comma-separated host names to obtain certificates for over ACME")
	fs.StringVar(&tlsFlags.ACMEDirectory, "acme-directory", "", "ACME directory URL (default Let's Encrypt)")
	fs.StringVar(&tlsFlags.ACMEDirectoryCA, "acme-directory-ca", "", "PEM CA bundle trusted for the ACME directory")
	fs.StringVar(&tlsFlags.ACMEEmail, "acme-email", "", "ACME account contact")
	fs.StringVar(&tlsFlags.ACMEHTTPAddr, "acme-http-addr", "", "serve ACME HTTP-01 challenges here, e.g. :80")
	fs.Alias("config", "LONGHOOK_GATEWAY_CONFIG")
	fs.Alias("addr", "LONGHOOK_GATEWAY_ADDR")
	fs.Alias("database", "LONGHOOK_GATEWAY_DATABASE")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) || errors.Is(err, envflag.ErrConfig) {
			return err
		}
		return fmt.Errorf("gateway: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("gateway: %w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	if *configPath == "" {
		return fmt.Errorf("gateway: %w: --config is required (or LONGHOOK_CONFIG)", ErrUsage)
	}
	log, err := NewLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	for _, d := range fs.Deprecated() {
		log.Warn("config.deprecated_variable", slog.String("variable", d.Old), slog.String("use", d.New))
	}
	cfg, err := LoadConfig(*configPath, getenv)
	if err != nil {
		return configError{err}
	}
	if *addr != "" {
		cfg.Addr = *addr
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
		if strings.HasPrefix(cfg.Database, "sqlite://") {
			cfg.Database = "sqlite://" + filepath.Join(*dataDir, "gateway.db")
		}
	}
	if *database != "" {
		cfg.Database = *database
	}
	tlsFlags.ACMEDomains = splitComma(*acmeDomains)
	if tlsFlags.Configured() {
		cfg.TLS = tlsFlags
	}
	stopTracing, err := telemetry.Setup(ctx, telemetry.Config{Service: "longhook-gateway", Getenv: getenv, Log: log})
	if err != nil {
		return configError{fmt.Errorf("gateway: %w", err)}
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			log.Warn("tracing.shutdown", slog.String("error", err.Error()))
		}
	}()
	return Serve(ctx, cfg, log, func(a net.Addr) { fmt.Fprintf(stdout, "longhook gateway listening on %s\n", a) })
}

// Serve runs a gateway for cfg on cfg.Addr until ctx is cancelled, with
// the shutdown sequence described on RunGateway. listening, if not nil,
// is called with the bound address once the gateway accepts requests.
// Everything that can refuse the start — the configuration, the TLS files,
// the address — is checked before the inbox (and its data dir) is
// created, so a refused start leaves the disk as it was.
func Serve(ctx context.Context, cfg Config, log *slog.Logger, listening func(net.Addr)) error {
	if err := cfg.negative(); err != nil {
		return configError{err}
	}
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return err
	}
	tlsCfg := cfg.TLS
	tlsCfg.CacheDir, tlsCfg.Logger = filepath.Join(cfg.DataDir, "acme"), log // created on the first certificate
	edge, err := certs.New(tlsCfg)
	if err != nil {
		return configError{fmt.Errorf("gateway: %w", err)}
	}
	defer edge.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: listen: %w", err)
	}
	g, err := NewGateway(ctx, cfg, WithLogger(log))
	if err != nil {
		ln.Close()
		return err
	}
	defer g.Close()
	cfg = g.cfg
	srv := &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second, // listen streams extend their own deadline
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	runDone := make(chan error, 1)
	go func() { runDone <- g.Run(runCtx) }()
	serveDone := make(chan error, 1)
	tlsDone := make(chan error, 1)
	if edge != nil {
		srv.TLSConfig = edge.Config()
		go func() { tlsDone <- edge.Run(runCtx) }()
		go func() { serveDone <- srv.ServeTLS(ln, "", "") }()
	} else {
		tlsDone <- nil
		go func() { serveDone <- srv.Serve(ln) }()
	}
	log.Info("gateway.start", slog.String("addr", ln.Addr().String()), slog.Int("sources", len(cfg.Sources)), slog.Bool("tls", edge != nil))
	if listening != nil {
		listening(ln.Addr())
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-serveDone:
	}
	log.Info("gateway.shutdown")
	g.Drain()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("gateway.shutdown: http", slog.Any("error", err))
		_ = srv.Close()
	}
	stopRun()
	runErr := errors.Join(<-runDone, <-tlsDone)
	closeErr := g.Close()
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	log.Info("gateway.stopped")
	return errors.Join(serveErr, runErr, closeErr)
}

// NewLogger returns a slog logger writing to w at level ("debug", "info",
// "warn", "error") in format ("text" or "json").
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: use debug, info, warn or error", ErrUsage, level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts))), nil
	case "json":
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: use text or json", ErrUsage, format)
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
