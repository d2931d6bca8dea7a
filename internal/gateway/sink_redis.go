package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// xaddOnce adds an entry to a stream unless the webhook-id was added
// within the dedupe window, atomically (a script runs alone). KEYS[1] is
// the stream, KEYS[2] the marker key; ARGV[1] the window in ms, ARGV[2]
// MAXLEN (0 = none), then field/value pairs. It returns the entry id, the
// earlier one for a repeat. The marker is written after XADD, so a failed
// XADD leaves nothing behind.
var xaddOnce = redis.NewScript(`
local prev = redis.call('GET', KEYS[2])
if prev then return prev end
local id
local maxlen = tonumber(ARGV[2])
if maxlen > 0 then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(ARGV, 3))
else
  id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
end
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return id
`)

// redisSink appends events to a Redis stream. Entry fields: webhook_id,
// type, source, received_at, headers (a JSON object of lowercase header
// names to values) and body (the raw bytes).
type redisSink struct {
	c      RedisSinkConfig
	client *redis.Client
}

func newRedisSink(c RedisSinkConfig) (*redisSink, error) {
	opts, err := redis.ParseURL(c.URL)
	if err != nil {
		// The parse error may echo the URL, which can hold a password.
		return nil, fmt.Errorf("gateway: redis sink: url is not a valid redis:// URL")
	}
	opts.DialTimeout = c.Timeout
	opts.ReadTimeout = c.Timeout
	opts.WriteTimeout = c.Timeout
	opts.MaxRetries = 0    // the forwarder retries, with backoff
	opts.DialerRetries = 1 // likewise
	quietRedis.Do(func() { redis.SetLogger(discardLogger{}) })
	return &redisSink{c: c, client: redis.NewClient(opts)}, nil
}

// Send implements Sink.
func (s *redisSink) Send(ctx context.Context, e *Event) error {
	hdr, err := json.Marshal(flatHeader(forwardHeader(e)))
	if err != nil {
		return fmt.Errorf("redis sink: %w", err)
	}
	fields := []any{
		"webhook_id", e.WebhookID,
		"type", e.Type,
		"source", e.Source,
		"received_at", e.ReceivedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		"headers", hdr,
		"body", e.Body,
	}
	if s.c.NoDedupe {
		args := &redis.XAddArgs{Stream: s.c.Stream, Values: fields}
		if s.c.MaxLen > 0 {
			args.MaxLen, args.Approx = s.c.MaxLen, true
		}
		if err := s.client.XAdd(ctx, args).Err(); err != nil {
			return fmt.Errorf("redis sink: xadd: %w", err)
		}
		return nil
	}
	// The marker shares the stream's hash slot ({stream} is its hash tag),
	// so the script also runs on Redis Cluster.
	marker := "{" + s.c.Stream + "}:longhook-seen:" + e.Source + ":" + e.WebhookID
	args := append([]any{s.c.DedupeWindow.Milliseconds(), s.c.MaxLen}, fields...)
	if err := xaddOnce.Run(ctx, s.client, []string{s.c.Stream, marker}, args...).Err(); err != nil {
		return fmt.Errorf("redis sink: xadd: %w", err)
	}
	return nil
}

// Close implements Sink.
func (s *redisSink) Close() error { return s.client.Close() }

// quietRedis silences go-redis's package-level logger, which would print
// every failed dial to stderr outside slog; the forwarder logs failures.
var quietRedis sync.Once

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// flatHeader maps lowercase header names to their values, joined with
// ", " in the rare case of repeats.
func flatHeader(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for k, v := range h {
		m[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	return m
}
