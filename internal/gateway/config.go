package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/longhook/longhook/internal/certs"
)

// Config is the gateway configuration, usually read from YAML with
// LoadConfig. Zero fields take the defaults documented on each field.
type Config struct {
	// Addr is the listen address of RunGateway (default "127.0.0.1:8080",
	// loopback like serve: exposing the gateway is an explicit choice).
	Addr string `yaml:"addr"`
	// DataDir holds the SQLite inbox, gateway.db (default "longhook-data").
	DataDir string `yaml:"data_dir"`
	// Database selects the inbox store: "sqlite://PATH" (default
	// sqlite://<data_dir>/gateway.db) or a PostgreSQL URL,
	// "postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=require" (also
	// postgresql://), whose tables are prefixed gateway_ and created on
	// start; add &search_path=SCHEMA to keep them in a schema of their
	// own. One gateway process per inbox: a second one fails to start.
	// Overridden by --database / LONGHOOK_DATABASE.
	Database string `yaml:"database"`
	// Synchronous is the SQLite synchronous pragma: NORMAL (default)
	// survives kill -9 of the process; FULL also survives power loss.
	Synchronous string `yaml:"sqlite_synchronous"`
	// MaxBodyBytes bounds an incoming webhook body (default 1 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ShutdownTimeout bounds the graceful drain of HTTP requests and of
	// in-flight forwards (default 10 s).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// SweepInterval is how often expired events are deleted (default 1 m).
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// ConsoleToken, when set, serves the gateway console at
	// /_longhook/console/ to whoever signs in with it (sources, recent
	// events and why they were refused, each sink's lag and errors).
	ConsoleToken string `yaml:"console_token"`
	// Sources are the receiving endpoints; at least one.
	Sources []SourceConfig `yaml:"sources"`
	// TLS serves HTTPS from certificate files (cert, key) or ACME
	// (acme_domains, ...); see certs.Config. Flags override it.
	TLS certs.Config `yaml:"tls"`
}

// SourceConfig is one receiving endpoint.
type SourceConfig struct {
	// Name identifies the source in the dedupe key, metrics, logs, the
	// longhook-source header and the listen URL: [a-z0-9_-], required.
	Name string `yaml:"name"`
	// Path is the HTTP path senders POST to (default "/hooks/<name>").
	Path string `yaml:"path"`
	// Verify selects HMAC secrets, a JWKS, or both.
	Verify VerifyConfig `yaml:"verify"`
	// DedupeHorizon is how long a webhook-id is remembered (default 72 h,
	// the sender's retry horizon). Events are kept as long, for listen.
	DedupeHorizon time.Duration `yaml:"dedupe_horizon"`
	// ListenTokens are the bearer tokens accepted by the listen stream
	// of this source; none disables listen for it.
	ListenTokens []string `yaml:"listen_tokens"`
	// Sinks receive every accepted event, each at least once.
	Sinks []SinkConfig `yaml:"sinks"`
}

// VerifyConfig says how a source authenticates its senders. Kind picks
// the scheme:
//
//   - "" (the default): Standard Webhooks HMAC with hmac_secrets, Gemini's
//     dynamic JWTs with jwks, or both (the shape of webhook-signature picks);
//   - "standard-webhooks": HMAC only (OpenAI, Replicate, Svix senders with
//     webhook-* headers, Gemini's static webhooks); hmac_secrets required;
//   - "gemini": jwks required, hmac_secrets optional (static webhooks);
//   - "stripe", "github", "slack", "shopify": the provider's scheme, with
//     hmac_secrets holding the provider's signing secret(s) as written;
//   - "hmac": a generic HMAC described by the hmac block.
type VerifyConfig struct {
	Kind string `yaml:"kind"`
	// HMACSecrets are the signing secrets: "whsec_..." for Standard
	// Webhooks, the provider's secret for a preset; several allow a
	// rotation overlap.
	HMACSecrets []string `yaml:"hmac_secrets"`
	// JWKS verifies dynamic-webhook JWTs.
	JWKS *JWKSConfig `yaml:"jwks"`
	// Tolerance is the HMAC timestamp tolerance and the JWT leeway
	// (default 5 m for HMAC and the timestamped presets, 1 m for JWT).
	Tolerance time.Duration `yaml:"tolerance"`
	// HMAC describes the generic scheme (kind "hmac" only).
	HMAC *GenericHMACConfig `yaml:"hmac"`
}

// Verification kinds besides the presets of package verify.
const (
	KindStandardWebhooks = "standard-webhooks"
	KindGemini           = "gemini"
)

// GenericHMACConfig is a provider's HMAC scheme described by its parts.
type GenericHMACConfig struct {
	Header    string `yaml:"header"`    // the signature header, required
	Algorithm string `yaml:"algorithm"` // sha1, sha256 (default), sha512
	Encoding  string `yaml:"encoding"`  // hex (default) or base64
	Prefix    string `yaml:"prefix"`    // stripped from the header value, e.g. "sha256="
	// Signed is what the MAC covers, from {body}, {timestamp} and {id}
	// (default "{body}"), e.g. "{timestamp}.{body}".
	Signed          string `yaml:"signed"`
	TimestampHeader string `yaml:"timestamp_header"` // Unix seconds; required with {timestamp}
	IDHeader        string `yaml:"id_header"`        // delivery id = dedupe key (default: body hash)
	TypeHeader      string `yaml:"type_header"`      // event type (default: the body's "type")
	// SecretEncoding says how hmac_secrets are written: raw (default) or
	// base64.
	SecretEncoding string `yaml:"secret_encoding"`
}

// JWKSConfig names the sender's key set and the claims a token must carry.
type JWKSConfig struct {
	URL       string   `yaml:"url"`        // absolute http(s) URL of the JWKS
	Issuer    string   `yaml:"issuer"`     // exact "iss"
	Audience  string   `yaml:"audience"`   // a value "aud" must contain
	Algorithm []string `yaml:"algorithms"` // default RS256
	// Project is the exact "project" claim required (webhook.WithProject).
	// A longhook server signs all its projects' tokens with one key set, so
	// a source fed by a shared server must name its project; empty accepts
	// any project (right for a single-tenant sender, and for Gemini, whose
	// tokens carry no project).
	Project string `yaml:"project"`
}

// SinkConfig is one destination of a source; exactly one of HTTP, Redis,
// NATS, Kafka, AMQP, MQTT, PubSub and Discard is set.
type SinkConfig struct {
	// Name is unique within the source ([a-z0-9_-]). Pending forwards are
	// keyed by source and name: renaming a sink abandons its backlog.
	Name    string             `yaml:"name"`
	HTTP    *HTTPSinkConfig    `yaml:"http"`
	Redis   *RedisSinkConfig   `yaml:"redis"`
	NATS    *NATSSinkConfig    `yaml:"nats"`
	Kafka   *KafkaSinkConfig   `yaml:"kafka"`
	AMQP    *AMQPSinkConfig    `yaml:"amqp"`
	MQTT    *MQTTSinkConfig    `yaml:"mqtt"`
	PubSub  *PubSubSinkConfig  `yaml:"pubsub"`
	Discard *DiscardSinkConfig `yaml:"discard"`
	// Route, when set, limits the sink to some events (by type or by JSON
	// member values); Transform rewrites the payload it receives.
	Route     *RouteConfig     `yaml:"route"`
	Transform *TransformConfig `yaml:"transform"`
	// Concurrency is the number of forwards in flight (default 16).
	Concurrency int `yaml:"concurrency"`
	// RateLimit, when set, caps forwards to this sink (first attempts and
	// retries together); events over it wait in the inbox.
	RateLimit *SinkRateLimit `yaml:"rate_limit"`
	// Retry shapes the backoff between attempts.
	Retry RetryConfig `yaml:"retry"`
}

// RetryConfig is an exponential backoff with ±20 % jitter: Initial,
// doubled per attempt up to Max, until MaxAge after the event was
// received, after which the forward is parked as dead.
type RetryConfig struct {
	Initial time.Duration `yaml:"initial"` // default 1 s
	Max     time.Duration `yaml:"max"`     // default 5 m
	MaxAge  time.Duration `yaml:"max_age"` // default 72 h
}

// HTTPSinkConfig forwards to an internal HTTP service. The target is
// chosen by the operator, so no SSRF guard applies.
type HTTPSinkConfig struct {
	URL     string            `yaml:"url"`
	Timeout time.Duration     `yaml:"timeout"` // per attempt, default 15 s
	Headers map[string]string `yaml:"headers"` // added to every request
}

// RedisSinkConfig appends to a Redis stream with XADD.
type RedisSinkConfig struct {
	URL    string `yaml:"url"`    // redis://[:password@]host:port/db
	Stream string `yaml:"stream"` // stream key
	// MaxLen trims the stream approximately (MAXLEN ~); 0 keeps all.
	MaxLen int64 `yaml:"maxlen"`
	// DedupeWindow is how long the sink remembers a webhook-id it has
	// added, so a forward retried after a crash is not added twice
	// (default 24 h). NoDedupe turns this off (one key less per event).
	DedupeWindow time.Duration `yaml:"dedupe_window"`
	NoDedupe     bool          `yaml:"no_dedupe"`
	Timeout      time.Duration `yaml:"timeout"` // default 5 s
}

// NATSSinkConfig publishes to NATS JetStream and waits for the ack. The
// stream dedupes on Nats-Msg-Id (= webhook-id) within its duplicate window.
type NATSSinkConfig struct {
	URL     string `yaml:"url"`     // nats://host:4222
	Subject string `yaml:"subject"` // must be bound to a stream
	// CreateStream, when set, creates or updates a stream of that name
	// capturing Subject at start-up.
	CreateStream string        `yaml:"create_stream"`
	Timeout      time.Duration `yaml:"timeout"` // default 5 s
}

// KafkaSinkConfig produces to a Kafka topic (acks=all, idempotent
// producer). The record key is the event's dedupe key, so one event's
// retries land in one partition and consumers can drop repeats by key.
type KafkaSinkConfig struct {
	Brokers []string      `yaml:"brokers"` // seed brokers, host:port
	Topic   string        `yaml:"topic"`   // must exist (or the cluster auto-creates it)
	Timeout time.Duration `yaml:"timeout"` // per produce, default 5 s
}

// AMQPSinkConfig publishes to RabbitMQ (AMQP 0-9-1) with publisher
// confirms, as persistent messages, mandatory: an unroutable message is a
// failed forward, not a lost one.
type AMQPSinkConfig struct {
	URL        string `yaml:"url"`         // amqp://user:password@host:5672/vhost
	Exchange   string `yaml:"exchange"`    // "" is the default exchange
	RoutingKey string `yaml:"routing_key"` // the queue name with the default exchange
	// DeclareQueue, when set, declares a durable queue of that name at
	// the first send, bound to Exchange with RoutingKey (unless Exchange
	// is the default one).
	DeclareQueue string        `yaml:"declare_queue"`
	Timeout      time.Duration `yaml:"timeout"` // per publish and confirm, default 5 s
}

// MQTTSinkConfig publishes to an MQTT broker with QoS 1 (the broker's
// PUBACK ends the forward). MQTT 3.1.1 messages have no headers: the
// payload is the raw body, unless Envelope wraps it with its headers.
type MQTTSinkConfig struct {
	URL   string `yaml:"url"`   // tcp://host:1883 (or ssl://, ws://)
	Topic string `yaml:"topic"` // literal topic, no wildcards
	// ClientID is the MQTT client id (default "longhook-<source>-<sink>-"
	// and 8 random hex digits, new at each start: the session is clean).
	ClientID string `yaml:"client_id"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Envelope publishes {"headers":{...},"body":<base64>} instead of the
	// raw body, so a consumer can verify the signature.
	Envelope bool          `yaml:"envelope"`
	Timeout  time.Duration `yaml:"timeout"` // per publish, default 5 s
}

// PubSubSinkConfig publishes to Google Cloud Pub/Sub and waits for the
// server's message id. Attributes carry the forwarded headers.
type PubSubSinkConfig struct {
	Project string `yaml:"project"`
	Topic   string `yaml:"topic"` // the topic id (must exist)
	// OrderingKey, when set, orders messages with equal keys; it may use
	// {source}, {type} and {id}, e.g. "{source}".
	OrderingKey string `yaml:"ordering_key"`
	// Emulator is host:port of a Pub/Sub emulator (no TLS, no
	// credentials); otherwise Application Default Credentials are used.
	Emulator string        `yaml:"emulator"`
	Timeout  time.Duration `yaml:"timeout"` // per publish, default 5 s
}

// DiscardSinkConfig is a sink that accepts everything and does nothing:
// for benchmarks and for sources consumed only through listen.
type DiscardSinkConfig struct{}

const (
	defaultAddr          = "127.0.0.1:8080"
	defaultDataDir       = "longhook-data"
	defaultMaxBody       = 1 << 20
	defaultShutdown      = 10 * time.Second
	defaultSweep         = time.Minute
	defaultHorizon       = 72 * time.Hour
	defaultConcurrency   = 16
	defaultRetryInitial  = time.Second
	defaultRetryMax      = 5 * time.Minute
	defaultHTTPTimeout   = 15 * time.Second
	defaultBrokerTimeout = 5 * time.Second
	defaultRedisDedupe   = 24 * time.Hour

	// reservedPrefix is where the gateway's own endpoints live.
	reservedPrefix = "/_longhook/"
)

// OpenAPIPath serves the gateway's OpenAPI document, at the same path as
// serve's.
const OpenAPIPath = "/openapi.json"

var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// LoadConfig reads a YAML config file. ${NAME} in a value is replaced by
// getenv(NAME), so secrets can stay out of the file; ${NAME} in a comment
// is left alone (comments may well explain the syntax). Unknown keys are
// an error.
func LoadConfig(path string, getenv func(string) string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("gateway: config: %w", err)
	}
	return ParseConfig(b, getenv)
}

// ParseConfig is LoadConfig for YAML already in memory.
//
// A variable's value is data, never YAML: each ${NAME} becomes a
// placeholder word before the file is parsed, and the placeholders are
// replaced in the parsed values, so a secret holding YAML syntax (a
// quote, ": ", a leading "*" or "&", a comma inside [${SECRET}]) is taken
// as it is instead of reshaping the config or failing to parse. A value
// that is a variable alone is typed as YAML would type it written there
// (max_body_bytes: ${MAX} is a number), except that one reading as null
// stays a string.
func ParseConfig(b []byte, getenv func(string) string) (Config, error) {
	text, vars, err := placeholders(b, getenv)
	if err != nil {
		return Config{}, err
	}
	// Keys and structure, checked strictly on the text as written (line
	// numbers as in the file); a placeholder standing for a whole value
	// may be refused by the field's type here: its value is checked below.
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	var shape Config
	if err := dec.Decode(&shape); err != nil && !errors.Is(err, io.EOF) {
		if err = vars.structureError(err); err != nil {
			return Config{}, fmt.Errorf("gateway: config: %w", err)
		}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(text, &root); err != nil {
		return Config{}, fmt.Errorf("gateway: config: %w", err)
	}
	var c Config
	if root.Kind == 0 { // empty or comments only
		return c, nil
	}
	lines := vars.expand(&root)
	if err := root.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("gateway: config: %w", valueError(err, lines))
	}
	return c, nil
}

// sourcePathRE is the form of a source's path (see validate).
var sourcePathRE = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)

var envRE = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\}`)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = defaultAddr
	}
	if c.DataDir == "" {
		c.DataDir = defaultDataDir
	}
	if c.Database == "" {
		c.Database = "sqlite://" + filepath.Join(c.DataDir, "gateway.db")
	}
	if c.Synchronous == "" {
		c.Synchronous = "NORMAL"
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = defaultMaxBody
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = defaultShutdown
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = defaultSweep
	}
	src := make([]SourceConfig, len(c.Sources))
	for i, s := range c.Sources {
		src[i] = s.withDefaults()
	}
	c.Sources = src
	return c
}

// withDefaults returns s with its defaults and its sinks' filled in.
func (s SourceConfig) withDefaults() SourceConfig {
	if s.Path == "" {
		s.Path = "/hooks/" + s.Name
	}
	if s.DedupeHorizon <= 0 {
		s.DedupeHorizon = defaultHorizon
	}
	sinks := make([]SinkConfig, len(s.Sinks))
	for j, k := range s.Sinks {
		sinks[j] = k.withDefaults(s)
	}
	s.Sinks = sinks
	return s
}

// withDefaults returns k, a sink of s (defaults filled in), with its
// defaults filled in: a broker's settings are copied, not changed in place.
func (k SinkConfig) withDefaults(s SourceConfig) SinkConfig {
	if k.Concurrency <= 0 {
		k.Concurrency = defaultConcurrency
	}
	if k.Retry.Initial <= 0 {
		k.Retry.Initial = defaultRetryInitial
	}
	if k.Retry.Max <= 0 {
		k.Retry.Max = defaultRetryMax
	}
	if k.Retry.MaxAge <= 0 {
		k.Retry.MaxAge = s.DedupeHorizon
	}
	k.HTTP = withTimeout(k.HTTP, func(c *HTTPSinkConfig) *time.Duration { return &c.Timeout }, defaultHTTPTimeout)
	k.Redis = withTimeout(k.Redis, func(c *RedisSinkConfig) *time.Duration { return &c.Timeout }, defaultBrokerTimeout)
	if k.Redis != nil && k.Redis.DedupeWindow <= 0 {
		k.Redis.DedupeWindow = defaultRedisDedupe
	}
	k.NATS = withTimeout(k.NATS, func(c *NATSSinkConfig) *time.Duration { return &c.Timeout }, defaultBrokerTimeout)
	k.Kafka = withTimeout(k.Kafka, func(c *KafkaSinkConfig) *time.Duration { return &c.Timeout }, defaultBrokerTimeout)
	k.AMQP = withTimeout(k.AMQP, func(c *AMQPSinkConfig) *time.Duration { return &c.Timeout }, defaultBrokerTimeout)
	k.PubSub = withTimeout(k.PubSub, func(c *PubSubSinkConfig) *time.Duration { return &c.Timeout }, defaultBrokerTimeout)
	k.MQTT = withTimeout(k.MQTT, func(c *MQTTSinkConfig) *time.Duration { return &c.Timeout }, defaultBrokerTimeout)
	if k.MQTT != nil && k.MQTT.ClientID == "" {
		// A broker closes a client's connection when another connects
		// with its id: two gateways with the same source and sink names
		// on one broker (two deployments, a blue/green switch) took it
		// from each other every few seconds. The session is clean, so a
		// fresh id per start loses nothing.
		k.MQTT.ClientID = "longhook-" + s.Name + "-" + k.Name + "-" + randomHex(4)
	}
	return k
}

// withTimeout returns a copy of a sink's broker settings c (nil stays nil)
// with the timeout, the field timeout points to, set to def where unset.
// A copy, so the caller's Config is not changed.
func withTimeout[T any](c *T, timeout func(*T) *time.Duration, def time.Duration) *T {
	if c == nil {
		return nil
	}
	cp := *c
	if t := timeout(&cp); *t <= 0 {
		*t = def
	}
	return &cp
}

// postgres reports whether Database names a PostgreSQL inbox.
func (c Config) postgres() bool {
	return strings.HasPrefix(c.Database, "postgres://") || strings.HasPrefix(c.Database, "postgresql://")
}

// redactURL hides the password of a URL-shaped string, for messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

// sinkID is the key of a sink's pending forwards in the inbox.
func sinkID(source, sink string) string { return source + "/" + sink }

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}
