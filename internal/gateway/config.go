package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/longhook/longhook/internal/certs"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/gateway/verify"
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

// envVars maps the placeholder words of a config to their variables.
type envVars struct {
	names  map[string]string // placeholder → variable name
	values map[string]string // placeholder → value
}

// placeholders replaces every ${NAME} outside comments by a placeholder
// word of at most 10 characters (so YAML's messages quote it whole) that
// occurs nowhere in b, and reads the variables; unset or empty ones are
// an error naming them all.
func placeholders(b []byte, getenv func(string) string) ([]byte, envVars, error) {
	vars := envVars{names: map[string]string{}, values: map[string]string{}}
	var prefix string
	for prefix == "" || bytes.Contains(b, []byte(prefix)) {
		prefix = "lh" + randomHex(2) + "v"
	}
	byName := map[string]string{}
	var missing []string
	replace := func(m []byte) []byte {
		name := string(m[2 : len(m)-1])
		if p, ok := byName[name]; ok {
			return []byte(p)
		}
		v := ""
		if getenv != nil {
			v = getenv(name)
		}
		if v == "" {
			missing = append(missing, name)
		}
		p := fmt.Sprintf("%s%d", prefix, len(byName))
		byName[name], vars.names[p], vars.values[p] = p, name, v
		return []byte(p)
	}
	var text []byte
	for line := range bytes.SplitAfterSeq(b, []byte("\n")) {
		cut := commentStart(line)
		text = append(text, envRE.ReplaceAllFunc(line[:cut], replace)...)
		text = append(text, line[cut:]...)
	}
	if len(missing) > 0 {
		return nil, vars, fmt.Errorf("gateway: config: environment variables not set: %s", strings.Join(missing, ", "))
	}
	return text, vars, nil
}

// structureError is err of the strict pass without the type errors of
// placeholders standing for whole values (their values are typed later),
// with every placeholder in the rest named as ${NAME}; nil if nothing is
// left.
func (v envVars) structureError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return errors.New(v.named(err.Error()))
	}
	var kept []string
	for _, m := range te.Errors {
		if strings.Contains(m, "cannot unmarshal") && v.mentioned(m) {
			continue
		}
		kept = append(kept, v.named(m))
	}
	if len(kept) == 0 {
		return nil
	}
	return &yaml.TypeError{Errors: kept}
}

func (v envVars) mentioned(s string) bool {
	for p := range v.names {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func (v envVars) named(s string) string {
	for p, name := range v.names {
		s = strings.ReplaceAll(s, p, "${"+name+"}")
	}
	return s
}

// expand replaces the placeholders in n's scalars (keys too) by their
// values and returns the variables used on each line, for messages.
func (v envVars) expand(n *yaml.Node) map[int][]string {
	lines := map[int][]string{}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && v.mentioned(n.Value) {
			whole, isWhole := v.values[n.Value]
			for p, name := range v.names {
				if strings.Contains(n.Value, p) && !slices.Contains(lines[n.Line], name) {
					lines[n.Line] = append(lines[n.Line], name)
				}
			}
			if isWhole && n.Style == 0 {
				n.Value, n.Tag = whole, "" // typed as if written here
				if isNull(whole) {
					n.Tag = "!!str"
				}
			} else {
				for p, val := range v.values {
					n.Value = strings.ReplaceAll(n.Value, p, val)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return lines
}

// isNull reports whether YAML reads the plain scalar s as null.
func isNull(s string) bool {
	switch s {
	case "~", "null", "Null", "NULL":
		return true
	}
	return false
}

// valueErrorRE is the value a type error quotes.
var valueErrorRE = regexp.MustCompile("^line (\\d+): cannot unmarshal (\\S+) `[^`]*`")

// valueError is a type error of a variable's value, with the value —
// perhaps a secret — replaced by the variables the line uses.
func valueError(err error, lines map[int][]string) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = valueErrorRE.ReplaceAllStringFunc(m, func(s string) string {
			sub := valueErrorRE.FindStringSubmatch(s)
			line, _ := strconv.Atoi(sub[1])
			names := make([]string, len(lines[line]))
			for j, n := range lines[line] {
				names[j] = "${" + n + "}"
			}
			return fmt.Sprintf("line %s: cannot unmarshal %s (the value of %s)", sub[1], sub[2], strings.Join(names, ", "))
		})
	}
	return &yaml.TypeError{Errors: msgs}
}

// commentStart is where a YAML comment begins on line (len(line) if it
// has none): a # at the start or after a space or tab, outside a quoted
// scalar. A quote opens a scalar only where a value starts (after ": ",
// "- ", "[", "{" or ","), so an apostrophe inside a plain value is text.
func commentStart(line []byte) int {
	var quote byte
	prev := byte(' ') // the last character outside a quote that is not a space
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '"' && c == '\\',
			quote == '\'' && c == '\'' && i+1 < len(line) && line[i+1] == '\'':
			i++ // an escaped character, or '' in single quotes
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case (c == '"' || c == '\'') && strings.IndexByte(" :-[{,", prev) >= 0:
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return i
		}
		if quote == 0 && c != ' ' && c != '\t' {
			prev = c
		}
	}
	return len(line)
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

// validate reports the first configuration error, naming the field.
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
