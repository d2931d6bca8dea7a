// Package gateway is longhook's receiving edge (`longhook gateway`): one
// HTTP endpoint per source that verifies Standard Webhooks HMAC signatures
// or JWTs from a JWKS (through the public webhook package) or a provider's
// own scheme (Stripe, GitHub, Slack, Shopify or a generic HMAC: package
// gateway/verify), deduplicates on (source, webhook-id or the provider's
// delivery id), stores the event durably and only then answers
// 2xx, and forwards every event at least once to the source's sinks: HTTP
// services, Redis Streams, NATS JetStream, Kafka, RabbitMQ (AMQP 0-9-1),
// MQTT and Google Cloud Pub/Sub. It also serves listen
// streams that `longhook listen` (package gateway/listen) relays to a
// local URL, and `longhook bench --gateway` (RunBench). `longhook check`
// lives in package gateway/check.
//
// # Request path
//
// body limit (413) → verify (401 for a missing or bad signature, 400 for a
// stale or future timestamp or an expired token, 503 if the JWKS cannot be
// fetched) → Inbox.Accept, which inserts unless (source, webhook-id) is
// known and returns after the commit → 200 {"webhook_id":..,"duplicate":..}.
// A duplicate is answered 200 and not forwarded again. Errors use the
// Google envelope {"error":{"code":..,"message":..,"status":..}}. Every
// request logs one "gateway.receive" line (never the body or signature).
//
// # Storage and group commit
//
// The Inbox interface (package inbox) is the store; its drivers are
// inbox/sqlite (WAL, one writer connection, checkpoints on a connection
// of their own), the default, and inbox/postgres (database:
// postgres://...), which keeps the same log in gateway_* tables; both pass
// inboxtest.Run, the shared contract test. On PostgreSQL the writer's
// connection holds a session advisory lock, which keeps a second gateway
// out and makes Seq grow in commit order (see postgres.Inbox). Writes go
// through one group-commit writer (internal/groupcommit) whose goroutine
// commits whatever queued up during the previous commit in a single
// transaction (group commit): concurrent requests share commits (page
// writes, and fsyncs with FULL) while each still waits for its own.
// Events form an append-only log keyed by a sequence number that is never
// reused (the sweep always keeps the newest event); the UNIQUE (source,
// webhook_id) index is the dedupe index; events are swept after their
// source's dedupe horizon once every sink is past them. A bounded
// in-memory tail of the newest events serves forwarders and listen
// streams that keep up, without reading the file.
//
// # Forwarding
//
// Each sink has a forwarder goroutine with its own concurrency, so a slow
// or dead sink delays only itself. It reads the log after its position,
// sends, and persists a cursor that trails the oldest attempt still in
// flight (at most every 50 ms). A failed first attempt is written to the
// retry table before the cursor may pass it, and retried with exponential
// backoff (±20 % jitter) until retry.max_age, after which it is parked as
// dead. After a crash, forwarding resumes at the cursor, which trails the
// oldest attempt then in flight, so the events forwarded since that
// attempt started are sent twice (a few with a prompt destination, more
// behind one slow attempt): the Redis sink drops repeats with a per-webhook-id
// marker (dedupe_window) and JetStream with Nats-Msg-Id = webhook-id. HTTP
// targets get the original body and webhook-* headers plus
// longhook-source and longhook-received-at. A Standard Webhooks source's
// event is signed again at each attempt made a minute or more after the
// sender signed it, with the source's hmac_secrets (webhook-timestamp =
// the attempt), so a target that verifies it takes a retry made long
// after the sender signed (a sooner forward goes as the sender signed); other events (JWT, provider
// presets) keep the sender's signature, which a target can verify only
// within its tolerance.
//
// # Configuration
//
// YAML, see testdata/gateway.example.yaml; ${NAME} is replaced from the
// environment, in the parsed values (a value is data, never YAML). Top level: addr ("127.0.0.1:8080"), data_dir ("longhook-data"),
// database ("sqlite://<data_dir>/gateway.db", or postgres://...),
// sqlite_synchronous (NORMAL; FULL to survive power loss), max_body_bytes
// (1 MiB), shutdown_timeout (10s), sweep_interval (1m), sources. A source
// has name ([a-z0-9_-]), path ("/hooks/<name>"), verify {hmac_secrets:
// [...], jwks: {url, issuer, audience, algorithms, project}, tolerance, kind
// (stripe, github, slack, shopify, hmac with an hmac {...} block, or
// standard-webhooks / gemini; see docs/operations.md)},
// dedupe_horizon (72h), listen_tokens and sinks. A sink has name, exactly
// one of http {url, timeout 15s, headers}, redis {url, stream, maxlen,
// dedupe_window 24h, no_dedupe, timeout 5s}, nats {url, subject,
// create_stream, timeout 5s}, kafka {brokers, topic, timeout 5s}, amqp
// {url, exchange, routing_key, declare_queue, timeout 5s}, mqtt {url,
// topic, client_id, username, password, envelope, timeout 5s}, pubsub
// {project, topic, ordering_key, emulator, timeout 5s} or discard {},
// optionally route {types, match} and transform {select, add} (route.go), plus concurrency (16) and
// retry {initial 1s, max 5m, max_age = dedupe_horizon}. A sink added later
// starts with the events received after it was added.
//
// # Endpoints
//
//	POST <source path>                 webhook intake
//	GET  /_longhook/listen/{source}    listen stream (SSE, bearer token; see ListenPath)
//	GET  /healthz                      process is up
//	GET  /readyz                       inbox answers and not shutting down
//	GET  /metrics                      Prometheus
//	GET  /openapi.json                 this API's OpenAPI document (docs/gateway.openapi.json)
//
// # Shutdown
//
// RunGateway on cancellation: /readyz turns 503 and listen streams end
// (Drain), the HTTP server stops accepting and finishes its requests,
// forwarders stop reading and finish their attempts within
// shutdown_timeout (then are cancelled), cursors are written, the inbox
// commits what is queued and closes.
package gateway
