package cli

import (
	"fmt"
	"net"
	"strings"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs/executor"
	"github.com/longhook/longhook/internal/secretbox"
)

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
	if _, err := secretbox.ParseKeyList(env.Getenv("LONGHOOK_MASTER_KEY_FALLBACK")); err != nil {
		return c, fmt.Errorf("%w: LONGHOOK_MASTER_KEY_FALLBACK: %v", errConfig, err)
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
