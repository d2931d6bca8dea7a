package cli

import (
	"fmt"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"time"
)

// serveFlags are the flags of serve that are not ServeConfig's as they
// are: the lists and names parsed into it, and the CPU profile's.
type serveFlags struct {
	cidrs, types, level, format, schedule, acmeDomains string
	cors                                               string
	cpuProfile                                         string
	profileOnSignal                                    bool
}

// parseServeFlags parses serve's arguments (and their LONGHOOK_*
// variables) into a ServeConfig, refusing values out of range.
func parseServeFlags(args []string, env Env) (ServeConfig, serveFlags, error) {
	fs := newFlagSet("serve", env)
	fs.Describe("longhook serve [flags]", `Runs the webhook server: the API, the delivery engine, the jobs and the periodic work, until
SIGINT or SIGTERM. The first start makes the data dir and prints the default project's API key
(also saved to DATA_DIR/api-key). Every flag falls back to LONGHOOK_ + its name in capitals.

Examples:
  longhook serve --dev                                  # local development: http:// and loopback receivers allowed
  longhook serve --addr :8080 --public-url https://hooks.example.com --data-dir /var/lib/longhook
  longhook serve --database-url postgres://user@db/longhook --migrate   # one of several instances`)
	var cfg ServeConfig
	var f serveFlags
	declareServeFlags(fs, &cfg, &f)
	// Flags anywhere, and no arguments: Go's flag package stops at the
	// first argument, so "--dev false --addr :9000" ran in development
	// mode on the default address, the rest unread.
	if _, err := parseArgs(fs, args, 0, 0, "no arguments"); err != nil {
		return cfg, f, err
	}
	if err := f.parseInto(&cfg); err != nil {
		return cfg, f, err
	}
	if err := checkServeFlags(cfg, f); err != nil {
		return cfg, f, err
	}
	if cfg.SoftStop == 0 {
		cfg.SoftStop = time.Nanosecond // 0 in ServeConfig is the default (10 s)
	}
	return cfg, f, nil
}

// declareServeFlags declares the flags of serve on fs, into cfg and f.
func declareServeFlags(fs *flagSet, cfg *ServeConfig, f *serveFlags) {
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&cfg.DataDir, "data-dir", "./longhook-data", "data directory (SQLite database, master key, bootstrap key)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "database: sqlite://PATH (default DATA_DIR/longhook.db) or postgres://…")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "public base URL of this server (JWT issuer); default http://ADDR (localhost for an ADDR on every interface)")
	fs.StringVar(&f.cors, "cors-origins", "*", "comma-separated web origins whose pages may call the API from a browser (https://app.example.com), * for any, none for no CORS; the API authenticates by key, never by cookie")
	fs.BoolVar(&cfg.Migrate, "migrate", false, "apply pending PostgreSQL migrations on start (SQLite always migrates)")
	fs.BoolVar(&cfg.Dev, "dev", false, "development mode: allow http:// and loopback/private webhook URIs")
	fs.StringVar(&f.cidrs, "allow-cidr", "", "comma-separated CIDRs deliveries may reach even though they are private")
	fs.Float64Var(&cfg.TimeScale, "time-scale", 1, "compress every retry delay, horizon and window by this factor (3600 = an hour per second)")
	fs.StringVar(&f.schedule, "retry-schedule", defaultRetryScheduleFlag(), "comma-separated delays after each failed attempt (each in (0, 24h]); a last attempt follows at 24h after the event; divided by --time-scale; a webhook's retry_schedule overrides it")
	fs.IntVar(&cfg.Workers, "workers", 512, "delivery attempts in flight")
	fs.IntVar(&cfg.PerDest, "per-destination", 32, "delivery attempts in flight per destination")
	fs.IntVar(&cfg.PerDestMax, "per-destination-max", 0, "how far a destination's attempts in flight may grow above --per-destination while it has a backlog, answers without overload and delivers faster for it (at or below --per-destination: a fixed cap)")
	fs.DurationVar(&cfg.Retention, "retention", 30*24*time.Hour, "how long deliveries, attempts and payloads are kept (at least 24h: the publish idempotency window)")
	fs.StringVar(&f.types, "event-types", "", "comma-separated custom event types to accept besides the catalog")
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
	addTLSFlags(fs, &cfg.TLS, &f.acmeDomains)
	fs.StringVar(&f.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.format, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (for performance work)")
	fs.BoolVar(&f.profileOnSignal, "cpuprofile-on-signal", false, "with --cpuprofile: profile from SIGUSR1 to SIGUSR2 (then the file is written) instead of the whole run (Unix; bench --cpuprofile uses it to profile only what it measures)")
}

// parseInto parses the lists and names of f into cfg.
func (f serveFlags) parseInto(cfg *ServeConfig) error {
	for _, c := range splitList(f.cidrs) {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("%w: --allow-cidr %q: %v", errUsage, c, err)
		}
		cfg.AllowCIDRs = append(cfg.AllowCIDRs, p)
	}
	cfg.EventTypes = splitList(f.types)
	var err error
	if cfg.CORSOrigins, err = parseCORSOrigins(f.cors); err != nil {
		return err
	}
	if cfg.RetrySchedule, err = parseRetryScheduleFlag(f.schedule); err != nil {
		return err
	}
	cfg.TLS.ACMEDomains = splitList(f.acmeDomains)
	if err := cfg.LogLevel.UnmarshalText([]byte(f.level)); err != nil {
		return fmt.Errorf("%w: --log-level %q: use debug, info, warn or error", errUsage, f.level)
	}
	if f.format != "text" && f.format != "json" {
		return fmt.Errorf("%w: --log-format %q: use text or json", errUsage, f.format)
	}
	cfg.LogJSON = f.format == "json"
	return nil
}

// parseCORSOrigins reads --cors-origins: "*", "none" (or empty) or a list of
// origins, each scheme://host[:port] as a browser sends it in Origin.
func parseCORSOrigins(v string) ([]string, error) {
	list := splitList(v)
	if len(list) == 0 || (len(list) == 1 && list[0] == "none") {
		return nil, nil
	}
	for _, o := range list {
		if o == "*" {
			if len(list) > 1 {
				return nil, fmt.Errorf("%w: --cors-origins: * allows every origin and goes alone", errUsage)
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "/") {
			return nil, fmt.Errorf("%w: --cors-origins %q: an origin is scheme://host[:port], as a browser sends it (https://app.example.com), or * for any, or none", errUsage, o)
		}
	}
	return list, nil
}

// checkServeFlags refuses flag values that serve cannot start with.
func checkServeFlags(cfg ServeConfig, f serveFlags) error {
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
	if f.profileOnSignal && f.cpuProfile == "" {
		return fmt.Errorf("%w: --cpuprofile-on-signal needs --cpuprofile", errUsage)
	}
	if f.profileOnSignal && profileStartSignal == nil {
		return fmt.Errorf("%w: --cpuprofile-on-signal needs SIGUSR1 and SIGUSR2, which %s does not have", errUsage, runtime.GOOS)
	}
	return nil
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

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// maxJWTTTL caps --jwt-ttl.
const maxJWTTTL = time.Hour
