package gateway

// Validation of a gateway config: every mistake named by its field before
// anything is created.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/gateway/verify"
)

// negative reports the first negative number or duration of c. Zero (or
// leaving a setting out) means its default; a negative value is a mistake
// to refuse, not a default to apply. It runs before withDefaults, which
// would hide it.
func (c Config) negative() error {
	type setting struct {
		name string
		v    int64
	}
	all := []setting{{"max_body_bytes", c.MaxBodyBytes}, {"shutdown_timeout", int64(c.ShutdownTimeout)}, {"sweep_interval", int64(c.SweepInterval)}}
	for i, s := range c.Sources {
		at := fmt.Sprintf("sources[%d]", i)
		all = append(all, setting{at + ".dedupe_horizon", int64(s.DedupeHorizon)}, setting{at + ".verify.tolerance", int64(s.Verify.Tolerance)})
		for j, k := range s.Sinks {
			kat := fmt.Sprintf("%s.sinks[%d]", at, j)
			all = append(all, setting{kat + ".concurrency", int64(k.Concurrency)},
				setting{kat + ".retry.initial", int64(k.Retry.Initial)}, setting{kat + ".retry.max", int64(k.Retry.Max)},
				setting{kat + ".retry.max_age", int64(k.Retry.MaxAge)})
			switch {
			case k.HTTP != nil:
				all = append(all, setting{kat + ".http.timeout", int64(k.HTTP.Timeout)})
			case k.Redis != nil:
				all = append(all, setting{kat + ".redis.timeout", int64(k.Redis.Timeout)},
					setting{kat + ".redis.maxlen", k.Redis.MaxLen}, setting{kat + ".redis.dedupe_window", int64(k.Redis.DedupeWindow)})
			case k.NATS != nil:
				all = append(all, setting{kat + ".nats.timeout", int64(k.NATS.Timeout)})
			case k.Kafka != nil:
				all = append(all, setting{kat + ".kafka.timeout", int64(k.Kafka.Timeout)})
			case k.AMQP != nil:
				all = append(all, setting{kat + ".amqp.timeout", int64(k.AMQP.Timeout)})
			case k.MQTT != nil:
				all = append(all, setting{kat + ".mqtt.timeout", int64(k.MQTT.Timeout)})
			case k.PubSub != nil:
				all = append(all, setting{kat + ".pubsub.timeout", int64(k.PubSub.Timeout)})
			}
		}
	}
	for _, s := range all {
		if s.v < 0 {
			return fmt.Errorf("gateway: config: %s must not be negative (0 or leaving it out means the default)", s.name)
		}
	}
	return nil
}

// check is validate plus what building the sources refuses (a secret that
// does not decode, a bad preset), without creating anything: the start's
// configuration check, an ErrConfig.
func (c Config) check() error {
	if err := c.validate(); err != nil {
		return configError{err}
	}
	for _, sc := range c.Sources {
		if _, err := newSource(sc, options{now: time.Now}); err != nil {
			return configError{err}
		}
	}
	return nil
}

// validate reports the first configuration error, naming the field.
func (c Config) validate() error {
	if len(c.Sources) == 0 {
		return errors.New("gateway: config: sources: at least one source is required")
	}
	if c.postgres() {
		if _, err := pgxpool.ParseConfig(c.Database); err != nil {
			return fmt.Errorf("gateway: config: database: %w", err)
		}
	} else if !strings.HasPrefix(c.Database, "sqlite://") {
		return fmt.Errorf("gateway: config: database: %q: use sqlite://PATH or a postgres:// URL", redactURL(c.Database))
	}
	names := map[string]bool{}
	paths := map[string]bool{}
	for i, s := range c.Sources {
		at := fmt.Sprintf("sources[%d]", i)
		if !nameRE.MatchString(s.Name) {
			return fmt.Errorf("gateway: config: %s.name: %q must match [a-z0-9_-]{1,64}", at, s.Name)
		}
		if names[s.Name] {
			return fmt.Errorf("gateway: config: %s.name: duplicate source %q", at, s.Name)
		}
		names[s.Name] = true
		// A source's path is one exact route: segments of URL-safe
		// characters, already clean. "/", a trailing "/" (a subtree),
		// "{x}" (a wildcard), a space or "%" would be read by the router as
		// a pattern — or refused by it with a panic at start.
		if !sourcePathRE.MatchString(s.Path) || path.Clean(s.Path) != s.Path || strings.HasPrefix(s.Path, reservedPrefix) ||
			s.Path == "/healthz" || s.Path == "/readyz" || s.Path == "/metrics" || s.Path == OpenAPIPath {
			return fmt.Errorf("gateway: config: %s.path: %q must be a clean absolute path of segments of letters, digits, '.', '_', '~' and '-' (e.g. /hooks/stripe), and not /healthz, /readyz, /metrics, %s or under %s", at, s.Path, OpenAPIPath, reservedPrefix)
		}
		if paths[s.Path] {
			return fmt.Errorf("gateway: config: %s.path: %q is used by another source", at, s.Path)
		}
		paths[s.Path] = true
		if err := s.Verify.validate(at + ".verify"); err != nil {
			return err
		}
		for _, t := range s.ListenTokens {
			if len(t) < 16 {
				return fmt.Errorf("gateway: config: %s.listen_tokens: tokens must have at least 16 characters", at)
			}
		}
		if len(s.ListenTokens) > 0 && c.MaxBodyBytes > maxListenBody {
			// longhook listen could not read an event that large: it would
			// stop at it, and every later event with it.
			return fmt.Errorf("gateway: config: max_body_bytes %d is over %d, the largest body longhook listen relays, and %s has listen_tokens: lower max_body_bytes",
				c.MaxBodyBytes, maxListenBody, at)
		}
		sinkNames := map[string]bool{}
		for j, k := range s.Sinks {
			kat := fmt.Sprintf("%s.sinks[%d]", at, j)
			if !nameRE.MatchString(k.Name) {
				return fmt.Errorf("gateway: config: %s.name: %q must match [a-z0-9_-]{1,64}", kat, k.Name)
			}
			if sinkNames[k.Name] {
				return fmt.Errorf("gateway: config: %s.name: duplicate sink %q", kat, k.Name)
			}
			sinkNames[k.Name] = true
			if err := k.validate(kat); err != nil {
				return err
			}
		}
	}
	return nil
}

func (v VerifyConfig) validate(at string) error {
	switch v.Kind {
	case "":
		if len(v.HMACSecrets) == 0 && v.JWKS == nil {
			return fmt.Errorf("gateway: config: %s: set hmac_secrets, jwks or both (or a kind: %s)", at, strings.Join(verifyKinds(), ", "))
		}
	case KindStandardWebhooks:
		if len(v.HMACSecrets) == 0 || v.JWKS != nil {
			return fmt.Errorf("gateway: config: %s: kind %s takes hmac_secrets and no jwks", at, v.Kind)
		}
	case KindGemini:
		if v.JWKS == nil {
			return fmt.Errorf("gateway: config: %s: kind gemini needs jwks (and takes hmac_secrets for static webhooks)", at)
		}
	default:
		if !slices.Contains(verify.Kinds, v.Kind) {
			return fmt.Errorf("gateway: config: %s.kind: %q is not one of %s", at, v.Kind, strings.Join(verifyKinds(), ", "))
		}
		if len(v.HMACSecrets) == 0 || v.JWKS != nil {
			return fmt.Errorf("gateway: config: %s: kind %s takes hmac_secrets and no jwks", at, v.Kind)
		}
		if _, err := v.preset(nil); err != nil {
			return fmt.Errorf("gateway: config: %s: %w", at, err)
		}
	}
	if v.HMAC != nil && v.Kind != verify.KindHMAC {
		return fmt.Errorf("gateway: config: %s.hmac: only for kind hmac", at)
	}
	if v.JWKS != nil {
		u, err := url.Parse(v.JWKS.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("gateway: config: %s.jwks.url: %q is not an absolute http(s) URL", at, v.JWKS.URL)
		}
		if v.JWKS.Issuer == "" || v.JWKS.Audience == "" {
			return fmt.Errorf("gateway: config: %s.jwks: issuer and audience are required", at)
		}
	}
	return nil
}

// verifyKinds lists every verify.kind, for messages.
func verifyKinds() []string {
	return append([]string{KindStandardWebhooks, KindGemini}, verify.Kinds...)
}

// preset builds the verifier of a provider preset or the generic scheme;
// nil for the Standard Webhooks and Gemini kinds.
func (v VerifyConfig) preset(now func() time.Time) (*verify.Verifier, error) {
	if !slices.Contains(verify.Kinds, v.Kind) {
		return nil, nil
	}
	spec := verify.Spec{Kind: v.Kind, Tolerance: v.Tolerance}
	enc := ""
	if v.Kind == verify.KindHMAC {
		if v.HMAC == nil {
			return nil, errors.New("kind hmac needs the hmac block (header, algorithm, encoding, signed, ...)")
		}
		g := v.HMAC
		spec.Header, spec.Algorithm, spec.Encoding, spec.Prefix, spec.Signed = g.Header, g.Algorithm, g.Encoding, g.Prefix, g.Signed
		spec.TimestampHeader, spec.IDHeader, spec.TypeHeader = g.TimestampHeader, g.IDHeader, g.TypeHeader
		enc = g.SecretEncoding
	}
	for i, s := range v.HMACSecrets {
		switch enc {
		case "", "raw":
			spec.Secrets = append(spec.Secrets, []byte(s))
		case "base64":
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("hmac_secrets[%d] is not base64", i)
			}
			spec.Secrets = append(spec.Secrets, b)
		default:
			return nil, fmt.Errorf("hmac.secret_encoding %q: use raw or base64", enc)
		}
	}
	return verify.New(spec, now)
}

// SinkRateLimit is a sink's rate limit: PerSecond on average, at most
// Burst (default 1) at once.
type SinkRateLimit struct {
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
}

func (l *SinkRateLimit) core() core.RateLimit {
	return core.RateLimit{PerSecond: l.PerSecond, Burst: l.Burst}
}

// kinds lists the transports set on the sink, as the config names them
// (a valid sink has exactly one).
func (k SinkConfig) kinds() []string {
	var out []string
	for _, t := range []struct {
		name string
		set  bool
	}{
		{"http", k.HTTP != nil}, {"redis", k.Redis != nil}, {"nats", k.NATS != nil}, {"kafka", k.Kafka != nil},
		{"amqp", k.AMQP != nil}, {"mqtt", k.MQTT != nil}, {"pubsub", k.PubSub != nil}, {"discard", k.Discard != nil},
	} {
		if t.set {
			out = append(out, t.name)
		}
	}
	return out
}

func (k SinkConfig) validate(at string) error {
	if k.RateLimit != nil {
		if err := k.RateLimit.core().Validate(at + ".rate_limit"); err != nil {
			return fmt.Errorf("gateway: config: %v", err)
		}
	}
	if len(k.kinds()) != 1 {
		return fmt.Errorf("gateway: config: %s: set exactly one of http, redis, nats, kafka, amqp, mqtt, pubsub, discard", at)
	}
	switch {
	case k.HTTP != nil:
		u, err := url.Parse(k.HTTP.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("gateway: config: %s.http.url: %q is not an absolute http(s) URL", at, k.HTTP.URL)
		}
	case k.Redis != nil:
		if k.Redis.URL == "" || k.Redis.Stream == "" {
			return fmt.Errorf("gateway: config: %s.redis: url and stream are required", at)
		}
		if _, err := redis.ParseURL(k.Redis.URL); err != nil { // its error may echo a password
			return fmt.Errorf("gateway: config: %s.redis.url: %q is not a valid redis:// URL", at, redactURL(k.Redis.URL))
		}
	case k.NATS != nil:
		if k.NATS.URL == "" || k.NATS.Subject == "" {
			return fmt.Errorf("gateway: config: %s.nats: url and subject are required", at)
		}
		if strings.ContainsAny(k.NATS.Subject, "*> ") {
			return fmt.Errorf("gateway: config: %s.nats.subject: %q must be a literal subject", at, k.NATS.Subject)
		}
	case k.Kafka != nil:
		if len(k.Kafka.Brokers) == 0 || k.Kafka.Topic == "" {
			return fmt.Errorf("gateway: config: %s.kafka: brokers and topic are required", at)
		}
	case k.AMQP != nil:
		u, err := url.Parse(k.AMQP.URL)
		if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
			return fmt.Errorf("gateway: config: %s.amqp.url: %q is not an amqp:// or amqps:// URL", at, redactURL(k.AMQP.URL))
		}
		if k.AMQP.Exchange == "" && k.AMQP.RoutingKey == "" {
			return fmt.Errorf("gateway: config: %s.amqp: routing_key (the queue, with the default exchange) is required", at)
		}
	case k.MQTT != nil:
		u, err := url.Parse(k.MQTT.URL)
		if err != nil || !slices.Contains([]string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}, u.Scheme) || u.Host == "" {
			return fmt.Errorf("gateway: config: %s.mqtt.url: %q is not a tcp://, ssl:// or ws:// URL", at, redactURL(k.MQTT.URL))
		}
		if k.MQTT.Topic == "" || strings.ContainsAny(k.MQTT.Topic, "+#") {
			return fmt.Errorf("gateway: config: %s.mqtt.topic: %q must be a literal topic", at, k.MQTT.Topic)
		}
	case k.PubSub != nil:
		if k.PubSub.Project == "" || k.PubSub.Topic == "" {
			return fmt.Errorf("gateway: config: %s.pubsub: project and topic are required", at)
		}
		rest := strings.NewReplacer("{source}", "", "{type}", "", "{id}", "").Replace(k.PubSub.OrderingKey)
		if strings.ContainsAny(rest, "{}") {
			return fmt.Errorf("gateway: config: %s.pubsub.ordering_key: %q: only {source}, {type} and {id} may appear in braces", at, k.PubSub.OrderingKey)
		}
	}
	if k.Route != nil {
		if err := k.Route.validate(at); err != nil {
			return err
		}
	}
	if k.Transform != nil {
		if err := k.Transform.validate(at); err != nil {
			return err
		}
	}
	if k.Retry.Initial > k.Retry.Max {
		return fmt.Errorf("gateway: config: %s.retry: initial %s exceeds max %s", at, k.Retry.Initial, k.Retry.Max)
	}
	return nil
}
