package core

import (
	"encoding/json"
	"time"
)

// Project is a tenant. Every other resource belongs to exactly one project,
// and a project never sees another project's resources.
type Project struct {
	ID         string
	Name       string
	CreateTime time.Time
}

// APIKey authenticates requests for one project. Only the SHA-256 digest of
// the key is stored; the key itself is shown once, when it is created.
type APIKey struct {
	ID         string
	ProjectID  string
	Name       string
	Digest     []byte // SHA-256 of the full key
	Hint       string // last 4 characters of the key, for listings
	Admin      bool   // admin keys may create projects and keys
	CreateTime time.Time
	RevokeTime time.Time // zero while the key is valid
}

// WebhookState is the state of a static webhook.
type WebhookState string

// Webhook states, spelled as on the wire.
const (
	WebhookEnabled                       WebhookState = "enabled"
	WebhookDisabled                      WebhookState = "disabled"
	WebhookDisabledDueToFailedDeliveries WebhookState = "disabled_due_to_failed_deliveries"
)

// Valid reports whether s is one of the known states.
func (s WebhookState) Valid() bool {
	switch s {
	case WebhookEnabled, WebhookDisabled, WebhookDisabledDueToFailedDeliveries:
		return true
	}
	return false
}

// SigningSecret is one HMAC secret of a static webhook. Sealed holds the
// secret encrypted with the server's master key (see Cipher); the plaintext
// never reaches the store.
type SigningSecret struct {
	ID         string
	Sealed     []byte
	Hint       string    // last 4 characters of the secret
	CreateTime time.Time // newest secret is the current one
	ExpireTime time.Time // zero on the current secret
}

// Expired reports whether the secret may no longer be used for signing at now.
func (s SigningSecret) Expired(now time.Time) bool {
	return !s.ExpireTime.IsZero() && !now.Before(s.ExpireTime)
}

// Webhook is a project-level (static) webhook: the Gemini WebhookService
// resource.
type Webhook struct {
	ID               string
	ProjectID        string
	Name             string
	URI              string
	SubscribedEvents []string
	State            WebhookState
	Secrets          []SigningSecret // newest first
	// RetrySchedule overrides the server's schedule for this webhook when
	// non-empty.
	RetrySchedule []time.Duration
	// RateLimit, when set, caps deliveries to this webhook (an extension).
	RateLimit *RateLimit
	// TracePropagation sends each attempt's W3C traceparent to the
	// webhook when tracing is on (an extension; off by default).
	TracePropagation bool
	CreateTime       time.Time
	UpdateTime       time.Time
	// FailingSince is the time of the first failed attempt in the current
	// run of failures; zero when the last attempt succeeded. Together with
	// ConsecutiveFailures it drives auto-disable.
	FailingSince        time.Time
	ConsecutiveFailures int
}

// Subscribes reports whether the webhook wants events of type t.
func (w *Webhook) Subscribes(t string) bool {
	for _, e := range w.SubscribedEvents {
		if e == t {
			return true
		}
	}
	return false
}

// ActiveSecrets returns the secrets usable for signing at now, newest first.
func (w *Webhook) ActiveSecrets(now time.Time) []SigningSecret {
	out := make([]SigningSecret, 0, len(w.Secrets))
	for _, s := range w.Secrets {
		if !s.Expired(now) {
			out = append(out, s)
		}
	}
	return out
}

// WebhookConfig is the per-job (dynamic) webhook configuration of
// docs/contract.md §5.
type WebhookConfig struct {
	URIs         []string        `json:"uris,omitempty"`
	UserMetadata json.RawMessage `json:"user_metadata,omitempty"`
	// Audience overrides the JWT aud claim (default: the delivery URI). It
	// must be one of URIs or the origin of one; see DynamicAudience.
	Audience string `json:"audience,omitempty"`
	// RateLimit (a longhook extension) caps deliveries to each of URIs.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	// TracePropagation (a longhook extension) sends each attempt's W3C
	// traceparent to the URIs when tracing is on.
	TracePropagation bool `json:"trace_propagation,omitempty"`
}

// Routes reports whether c sends its job's events to its own URIs (in place
// of the project's registered webhooks). A config without URIs only adds
// its user_metadata to events that go to the registered webhooks: uris is
// optional in the Gemini SDKs' WebhookConfig ("if set, these webhook URIs
// will be used instead of the registered webhooks").
func (c *WebhookConfig) Routes() bool {
	return c != nil && len(c.URIs) > 0
}

// Event is one accepted event. Payload is the exact JSON body every
// destination receives: {"type","version","timestamp","data"}.
type Event struct {
	ID             string
	ProjectID      string
	Type           string
	Subject        string // resource name of the job that emitted it (JWT sub)
	Payload        []byte
	Dynamic        *WebhookConfig // with URIs (Routes): deliver only to them, JWT-signed
	IdempotencyKey string
	DeliveryCount  int // deliveries created when the event was accepted
	CreateTime     time.Time
	// TraceParent is the W3C traceparent of the publish span ("" when
	// tracing was off): delivery attempts, whenever and wherever they
	// run, continue its trace.
	TraceParent string
}

// DeliveryStatus is the state of one delivery (event × destination).
type DeliveryStatus string

// Delivery statuses. Pending covers both "due" and "scheduled for retry".
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliverySucceeded DeliveryStatus = "succeeded"
	DeliveryFailed    DeliveryStatus = "failed"    // retries exhausted or permanent failure
	DeliverySkipped   DeliveryStatus = "skipped"   // destination disabled when the event arrived
	DeliveryCancelled DeliveryStatus = "cancelled" // webhook deleted before delivery
)

// Valid reports whether s is a known status.
func (s DeliveryStatus) Valid() bool {
	switch s {
	case DeliveryPending, DeliverySucceeded, DeliveryFailed, DeliverySkipped, DeliveryCancelled:
		return true
	}
	return false
}

// Delivery is one event to one destination. Its ID is the webhook-id header
// value, identical on every attempt.
type Delivery struct {
	ID        string // "msg_" + sortable random id
	EventID   string
	ProjectID string
	// WebhookID is set for static deliveries; URI is set for dynamic ones
	// (static deliveries always go to the webhook's current URI).
	WebhookID string
	URI       string
	// Dest groups deliveries by destination for the per-destination
	// concurrency cap and rate limit: the webhook id, or DynamicDest for
	// dynamic ones.
	Dest      string
	EventType string
	Status    DeliveryStatus
	Attempts  int
	// NextAttemptTime is when the next attempt is due (pending only).
	NextAttemptTime time.Time
	// Manual marks a finished delivery re-sent by :redeliver; manual sends
	// never re-enter the automatic schedule. (A pending delivery redelivered
	// stays automatic.)
	Manual bool
	// LeaseOwner, when set on a delivery passed to PublishEvents, inserts it
	// already claimed by that engine (NextAttemptTime is then the lease
	// expiry): the publishing process hands it straight to its engine and
	// skips the claim. If that process dies, the lease expires as usual.
	// Reads fill it with the current lease holder ("" when unleased).
	LeaseOwner     string
	LastStatusCode int
	LastError      string
	// ScheduleStart is where the retry horizon counts from: the event's
	// acceptance, or the moment :recover re-queued the delivery.
	ScheduleStart time.Time
	// ScheduleBase is the number of attempts made before ScheduleStart; the
	// retry schedule counts attempts from there (a recovered delivery keeps
	// its history but starts the schedule afresh).
	ScheduleBase int
	CreateTime   time.Time
	UpdateTime   time.Time
}

// Attempt records one HTTP attempt of a delivery.
type Attempt struct {
	DeliveryID string
	Number     int // 1-based
	Time       time.Time
	URI        string
	StatusCode int // 0 when no HTTP response was received
	Latency    time.Duration
	Error      string
	Response   []byte // first 4 KiB of the response body
}

// Claimed is a delivery handed to an engine, with what it needs to send it.
type Claimed struct {
	Delivery
	Payload     []byte
	Subject     string
	Dynamic     *WebhookConfig
	TraceParent string // the event's
}

// SigningKey is one of the server's asymmetric keys used to sign dynamic
// webhook JWTs. The private key is sealed with the master key.
type SigningKey struct {
	ID         string // kid
	Algorithm  string // RS256, ES256 or EdDSA
	Sealed     []byte // sealed PKCS#8 private key
	PublicJWK  []byte // JSON of the public JWK
	CreateTime time.Time
	// RetireTime is when the key stopped signing (zero while current);
	// ExpireTime is when it leaves the JWKS.
	RetireTime time.Time
	ExpireTime time.Time
}

// Reservation is a number of delivery slots an engine reserved for
// deliveries that the publisher inserts already leased to it (see
// Delivery.LeaseOwner).
type Reservation struct {
	N     int
	Owner string
	// Until is the lease expiry to store with the reserved deliveries.
	Until time.Time
}

// DynamicDest is the destination of a dynamic delivery to uri published by
// project: the unit of its concurrency cap and of its webhook_config
// rate_limit's bucket. Any project may name any URI, so the project is part
// of it, as a static webhook's id is its own: keyed by the URI alone, one
// project's limit of one delivery a week held back another project's
// deliveries to the same receiver.
func DynamicDest(projectID, uri string) string {
	return "uri:" + projectID + ":" + uri
}

// ForInsert returns d with the defaults a store applies when it writes
// the delivery as part of ev: the event's ids, type and time, status
// pending, the destination key, and a next attempt time for pending
// deliveries (none, and no lease, for the others).
func (d Delivery) ForInsert(ev *Event) Delivery {
	if d.EventID == "" {
		d.EventID = ev.ID
	}
	if d.ProjectID == "" {
		d.ProjectID = ev.ProjectID
	}
	if d.EventType == "" {
		d.EventType = ev.Type
	}
	if d.Status == "" {
		d.Status = DeliveryPending
	}
	if d.Dest == "" {
		if d.WebhookID != "" {
			d.Dest = d.WebhookID
		} else {
			d.Dest = DynamicDest(d.ProjectID, d.URI)
		}
	}
	if d.CreateTime.IsZero() {
		d.CreateTime = ev.CreateTime
	}
	if d.ScheduleStart.IsZero() {
		d.ScheduleStart = d.CreateTime
	}
	if d.UpdateTime.IsZero() {
		d.UpdateTime = d.CreateTime
	}
	switch {
	case d.Status != DeliveryPending:
		d.NextAttemptTime, d.LeaseOwner = time.Time{}, ""
	case d.NextAttemptTime.IsZero():
		d.NextAttemptTime = d.CreateTime
	}
	return d
}
