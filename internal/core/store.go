package core

import (
	"context"
	"time"
)

// Store is the persistence contract. Two drivers implement it
// (internal/store/sqlite and internal/store/postgres) and one conformance
// suite (internal/store/storetest) holds both to it. Each method is one
// transaction; methods are shaped by what the API and the engine need, not
// by tables.
type Store interface {
	ProjectStore
	WebhookStore
	EventStore
	DeliveryStore
	KeyStore
	LeaseStore
	JobStore
	StatsStore
	RateStore

	// Wake returns a channel that receives (without blocking the sender) when
	// new deliveries may be due: after PublishEvents (when it wrote unleased
	// pending deliveries: leased ones are handed over in memory), Redeliver,
	// RecoverDeliveries and ReleaseDeliveries commit in this process, and — for drivers with
	// cross-process notification (PostgreSQL LISTEN/NOTIFY) — in any process
	// sharing the database. Wake-ups are coalesced.
	Wake() <-chan struct{}
	// Capabilities describes what the driver can do.
	Capabilities() Capabilities
	// Close releases the store. Safe to call twice.
	Close() error
}

// WebhookChangeNotifier is implemented by drivers shared by several
// processes (PostgreSQL): OnWebhooksChanged registers fn, called when
// another process committed a change to a project's webhooks (created,
// updated, rotated, deleted, disabled); projectID "" means any project.
// Caches of webhooks (the publisher's subscription lists, the engine's
// held webhooks) drop what fn names, so a change made through one
// instance applies on the others within a NOTIFY's latency instead of
// their caches' lifetime. fn runs on the driver's listener and must not
// block; set it before the store is used.
type WebhookChangeNotifier interface {
	OnWebhooksChanged(fn func(projectID string))
}

// Capabilities lets callers adapt to a driver without type switches.
type Capabilities struct {
	// Driver is "sqlite" or "postgres".
	Driver string
	// SharedAcrossProcesses is true when several longhook processes may
	// use the same database at once (PostgreSQL).
	SharedAcrossProcesses bool
}

// ProjectStore holds projects and API keys.
type ProjectStore interface {
	CreateProject(ctx context.Context, p Project) error
	GetProject(ctx context.Context, id string) (Project, error)
	ListProjects(ctx context.Context) ([]Project, error)

	CreateAPIKey(ctx context.Context, k APIKey) error
	// ListAPIKeys lists the keys of a project, or of every project when
	// projectID is empty.
	ListAPIKeys(ctx context.Context, projectID string) ([]APIKey, error)
	// RevokeAPIKey marks a key revoked. ErrNotFound if there is none.
	RevokeAPIKey(ctx context.Context, id string, at time.Time) error
	// LookupAPIKey finds an unrevoked key by the SHA-256 digest of its
	// value. ErrNotFound if there is none.
	LookupAPIKey(ctx context.Context, digest []byte) (APIKey, error)
}

// ListWebhooksParams selects a page of a project's webhooks, ordered by id.
type ListWebhooksParams struct {
	ProjectID string
	AfterID   string // exclusive cursor; empty for the first page
	Limit     int
}

// WebhookStore holds static webhooks and their signing secrets.
type WebhookStore interface {
	// CreateWebhook inserts w with its secrets.
	CreateWebhook(ctx context.Context, w *Webhook) error
	// GetWebhook returns a webhook of the project, ErrNotFound otherwise.
	GetWebhook(ctx context.Context, projectID, id string) (*Webhook, error)
	ListWebhooks(ctx context.Context, p ListWebhooksParams) ([]*Webhook, error)
	// UpdateWebhook loads the webhook, calls fn to change it, and writes
	// every field (secrets included) back in the same transaction. If fn
	// returns an error nothing changes and that error is returned.
	UpdateWebhook(ctx context.Context, projectID, id string, fn func(*Webhook) error) (*Webhook, error)
	// DeleteWebhook deletes the webhook and cancels its pending deliveries;
	// its delivery history stays readable.
	DeleteWebhook(ctx context.Context, projectID, id string, now time.Time) error
	// SubscribedWebhooks returns the project's webhooks subscribed to any
	// of the event types, whatever their state.
	SubscribedWebhooks(ctx context.Context, projectID string, types []string) ([]*Webhook, error)
	// WebhooksByID returns the webhooks with the given ids (any project);
	// missing ids are absent from the map. The engine uses it to resolve
	// destinations and secrets right before an attempt.
	WebhooksByID(ctx context.Context, ids []string) (map[string]*Webhook, error)
	// DisableFailingWebhooks sets disabled_due_to_failed_deliveries on
	// enabled webhooks failing since at or before failingSince with at least
	// minFailures consecutive failures. It returns their ids.
	DisableFailingWebhooks(ctx context.Context, failingSince time.Time, minFailures int, now time.Time) ([]string, error)
}

// NewEvent is an event to accept together with its deliveries.
type NewEvent struct {
	Event      Event
	Deliveries []Delivery
}

// PublishResult is the outcome for one NewEvent.
type PublishResult struct {
	Event *Event
	// Duplicate is true when the idempotency key was seen before; Event is
	// then the original event and nothing was written.
	Duplicate bool
}

// EventStore accepts events.
type EventStore interface {
	// PublishEvents writes the events and their deliveries in one
	// transaction. An event whose (project, idempotency key) already exists
	// is not written again; its result carries the original event. Results
	// are in input order. A delivery's EventID, when set, names an event
	// of the same call.
	PublishEvents(ctx context.Context, evs []NewEvent) ([]PublishResult, error)
	// GetEvent returns an event of the project.
	GetEvent(ctx context.Context, projectID, id string) (*Event, error)
	// ListEvents returns a project's events, newest first.
	ListEvents(ctx context.Context, p ListEventsParams) ([]*Event, error)
	// EventsByKeys returns the project's events whose idempotency key is
	// one of keys (at most 1000), oldest first; keys nothing was published
	// under are absent. It reads the idempotency index: the console finds
	// the events a job emitted by their keys.
	EventsByKeys(ctx context.Context, projectID string, keys []string) ([]*Event, error)
}

// ListEventsParams selects a page of a project's events, newest first.
type ListEventsParams struct {
	ProjectID string
	Type      string // empty: every type
	BeforeID  string // exclusive cursor (ids sort by creation time)
	Limit     int    // default 100, at most 1000
}

// ClaimParams asks for due deliveries.
type ClaimParams struct {
	Owner string // identifies the claiming engine instance
	Now   time.Time
	Limit int
	// Lease is how long the claim holds; a delivery whose lease expired is
	// due again (its claimant is presumed dead).
	Lease time.Duration
	// ExcludeDests skips destinations that are at their concurrency cap.
	ExcludeDests []string
}

// Completion is the result of one attempt, written by CompleteDeliveries.
// A completion with Attempt.Number == 0 records no attempt: the engine
// closed the delivery without sending (webhook deleted or disabled meanwhile;
// Status is then Cancelled or Skipped).
type Completion struct {
	DeliveryID string
	Owner      string
	// ProjectID, when set, counts the attempt in the project's activity
	// rollup (StatsStore).
	ProjectID string
	Attempt   Attempt
	// Status is the delivery's new status: Pending (retry at
	// NextAttemptTime), Succeeded, Failed, Skipped or Cancelled.
	Status          DeliveryStatus
	NextAttemptTime time.Time
	// WebhookID, when set, updates the webhook's failure run: a success
	// resets it, a failure extends it.
	WebhookID string
	Success   bool
	// DisableWebhook sets the webhook to disabled_due_to_failed_deliveries
	// at once (410 Gone).
	DisableWebhook bool
}

// ListDeliveriesParams filters a webhook's (or the project's) deliveries;
// newest first.
type ListDeliveriesParams struct {
	ProjectID string
	WebhookID string // empty: every delivery of the project
	Status    DeliveryStatus
	EventType string
	Since     time.Time
	Until     time.Time
	BeforeID  string // exclusive cursor (ids sort by creation time)
	// AfterID is an exclusive lower bound on ids: with BeforeID it bounds
	// the scan to a time range (see MessageIDFloor).
	AfterID string
	Limit   int
}

// RecoverParams re-queues a webhook's deliveries created in [Since, Until).
type RecoverParams struct {
	ProjectID  string
	WebhookID  string
	Since      time.Time
	Until      time.Time
	OnlyFailed bool // failed and skipped only; otherwise every non-pending one
	// AfterID is an exclusive cursor (ids sort by creation time): the next
	// value RecoverDeliveries returned. A caller that repeats the call to
	// take a range beyond Limit passes it, so that a delivery it re-queued
	// and that finished again meanwhile is not taken a second time.
	AfterID string
	Limit   int
	DryRun  bool
	Now     time.Time
}

// QueueDepth counts pending deliveries.
type QueueDepth struct {
	Due       int // due now (or leased)
	Scheduled int // waiting for a later retry
}

// DeliveryStore is the delivery queue and its history.
type DeliveryStore interface {
	// ClaimDeliveries leases up to Limit due deliveries to Owner: first
	// attempts before retries, so a backlog of retries never starves new
	// events.
	ClaimDeliveries(ctx context.Context, p ClaimParams) ([]Claimed, error)
	// CompleteDeliveries records attempts and their outcomes in one
	// transaction. Completions whose lease is no longer held by Owner are
	// still recorded as attempts but do not change the delivery.
	CompleteDeliveries(ctx context.Context, cs []Completion) error
	// ReleaseDeliveries drops Owner's leases on deliveries that were
	// claimed but not attempted (shutdown).
	ReleaseDeliveries(ctx context.Context, owner string, ids []string) error
	// NextDueTime returns the earliest next attempt time of a pending,
	// unleased delivery, or of a lease expiry; ok is false if none.
	NextDueTime(ctx context.Context) (t time.Time, ok bool, err error)
	QueueDepth(ctx context.Context, now time.Time) (QueueDepth, error)

	GetDelivery(ctx context.Context, projectID, id string) (*Delivery, []Attempt, error)
	ListDeliveries(ctx context.Context, p ListDeliveriesParams) ([]*Delivery, error)
	// Redeliver makes a delivery due now. A finished one becomes a manual
	// send (one attempt, no automatic retries); one still pending keeps its
	// automatic schedule, so a failure of the attempt made now is retried
	// as before (never a way to end its retries).
	Redeliver(ctx context.Context, projectID, id string, now time.Time) (*Delivery, error)
	// RecoverDeliveries re-queues matching deliveries (oldest first, up to
	// Limit) on the automatic schedule (restarted at Now) and returns how
	// many matched (DryRun: how many would) and, when more match beyond
	// them, next: the last id taken, to pass as AfterID (empty when none
	// do).
	RecoverDeliveries(ctx context.Context, p RecoverParams) (n int, next string, err error)
	// DeleteExpired removes up to limit finished deliveries (with their
	// attempts) created before cutoff, and up to limit events older than
	// cutoff that no longer have pending deliveries. It returns how many
	// deliveries and events it removed (attempts are not counted); 0 means
	// nothing is left to remove.
	DeleteExpired(ctx context.Context, cutoff time.Time, limit int) (int, error)
}

// KeyStore holds the server's JWT signing keys.
type KeyStore interface {
	// SigningKeys returns every stored key, newest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// AddSigningKey stores k as the current key and retires the previous
	// current key at k.CreateTime, published until retiredExpire.
	AddSigningKey(ctx context.Context, k SigningKey, retiredExpire time.Time) error
	// DeleteExpiredSigningKeys removes retired keys whose ExpireTime passed.
	DeleteExpiredSigningKeys(ctx context.Context, now time.Time) (int, error)
}

// LeaseStore elects leaders for periodic work.
type LeaseStore interface {
	// AcquireLease takes or renews the named lease for owner until now+ttl.
	// It returns true if owner holds the lease afterwards.
	AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if owner holds it.
	ReleaseLease(ctx context.Context, name, owner string) error
}
