// Package publish accepts events: it validates them, fans each out to its
// destinations (the project's subscribed static webhooks, or the job's
// webhook_config URIs), and writes the event and its deliveries durably in
// one transaction before the caller answers 2xx.
//
// Concurrent Publish calls are coalesced into shared transactions (group
// commit, internal/groupcommit), so many single-event publishers cost about
// as many commits as one batch publisher, and each call waits only for the
// group holding it.
package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/groupcommit"
	"github.com/longhook/longhook/internal/telemetry"
)

// Input is one event to publish.
type Input struct {
	Type string
	// Data is the event's data object; empty means {}.
	Data json.RawMessage
	// DataValid says Data is already known to be well-formed JSON (it was
	// decoded as a json.RawMessage, which encoding/json validates), so
	// Validate checks only that it is an object instead of scanning it
	// again.
	DataValid bool
	// Timestamp is when the event happened; zero means now.
	Timestamp time.Time
	// Subject is the resource name of the job that emitted the event (the
	// JWT sub claim of dynamic deliveries).
	Subject string
	// WebhookConfig, when it has URIs, sends the event to them alone
	// (JWT-signed) instead of the project's webhooks; its user_metadata,
	// with or without URIs, goes into data.user_metadata.
	WebhookConfig *core.WebhookConfig
	// IdempotencyKey makes a repeat return the first result.
	IdempotencyKey string
	// OnlyWebhook delivers to this webhook alone, whatever it subscribes to
	// (ping).
	OnlyWebhook string
	// Internal allows event types that clients may not publish (webhook.ping).
	Internal bool
}

// Result is what one Input became.
type Result struct {
	Event      *core.Event
	Deliveries int
	Duplicate  bool
}

// Store is what the publisher needs of core.Store.
type Store interface {
	SubscribedWebhooks(ctx context.Context, projectID string, types []string) ([]*core.Webhook, error)
	WebhooksByID(ctx context.Context, ids []string) (map[string]*core.Webhook, error)
	PublishEvents(ctx context.Context, evs []core.NewEvent) ([]core.PublishResult, error)
}

// Config configures a Publisher.
type Config struct {
	Store   Store
	Catalog *core.Catalog
	Clock   core.Clock         // default core.SystemClock
	Policy  core.AddressPolicy // URI rules for webhook_config
	Lanes   int                // concurrent group commits (default 1: SQLite has one writer)
	// Direct, when set, is this process's delivery engine: new deliveries
	// it has room for are inserted already leased to it and handed over in
	// memory after the commit (no claim query, no payload read).
	Direct Direct
	// SubscriptionTTL is how long a project's webhook list is cached
	// (default 1 s; negative disables the cache).
	SubscriptionTTL time.Duration
	OnPublished     func(n int) // optional: called with the number of new events accepted
}

// Direct is the engine's direct path (see engine.Engine.Reserve).
type Direct interface {
	Reserve(dests []string) (core.Reservation, []bool)
	Cancel(r core.Reservation)
	// Dispatch hands over the committed deliveries; hooks were read at
	// hooksAt, when the engine's webhook generation was gen.
	Dispatch(r core.Reservation, cs []core.Claimed, hooks map[string]*core.Webhook, gen uint64, hooksAt time.Time)
	// WebhooksChanged tells the engine that held deliveries must re-read
	// their webhook before the next attempt.
	WebhooksChanged()
	// Generation counts WebhooksChanged calls.
	Generation() uint64
}

// Publisher accepts events.
type Publisher struct {
	cfg   Config
	lanes []*groupcommit.Writer[*request]
	next  atomic.Uint64

	subsMu sync.Mutex
	subs   map[string]subsEntry // project → its webhooks, read recently
}

type subsEntry struct {
	hooks []*core.Webhook
	at    time.Time
	gen   uint64 // the engine's webhook generation before the read
}

// generation is the engine's webhook generation (0 without an engine).
func (p *Publisher) generation() uint64 {
	if p.cfg.Direct == nil {
		return 0
	}
	return p.cfg.Direct.Generation()
}

// Invalidate drops the cached webhook list of a project; the API calls it
// after every change to the project's webhooks.
func (p *Publisher) Invalidate(projectID string) {
	p.subsMu.Lock()
	delete(p.subs, projectID)
	p.subsMu.Unlock()
	if p.cfg.Direct != nil {
		p.cfg.Direct.WebhooksChanged()
	}
}

// InvalidateAll drops every cached webhook list.
func (p *Publisher) InvalidateAll() {
	p.subsMu.Lock()
	clear(p.subs)
	p.subsMu.Unlock()
	if p.cfg.Direct != nil {
		p.cfg.Direct.WebhooksChanged()
	}
}

// projectWebhooks returns the project's webhooks, from a cache that lives
// SubscriptionTTL: a publish then costs no read of the webhook table.
// Changes made through this process's API, and webhooks this process's
// engine disabled (410 Gone), invalidate it at once (the engine's webhook
// generation moved past the entry's); changes made by another instance are
// seen within the TTL.
func (p *Publisher) projectWebhooks(ctx context.Context, projectID string) (subsEntry, error) {
	now := time.Now()
	gen := p.generation()
	if p.cfg.SubscriptionTTL > 0 {
		p.subsMu.Lock()
		e, ok := p.subs[projectID]
		p.subsMu.Unlock()
		if ok && e.gen == gen && now.Sub(e.at) < p.cfg.SubscriptionTTL {
			return e, nil
		}
	}
	hooks, err := p.cfg.Store.SubscribedWebhooks(ctx, projectID, p.cfg.Catalog.Types())
	if err != nil {
		return subsEntry{}, err
	}
	e := subsEntry{hooks: hooks, at: now, gen: gen}
	if p.cfg.SubscriptionTTL > 0 {
		p.subsMu.Lock()
		if len(p.subs) > 10000 {
			clear(p.subs)
		}
		p.subs[projectID] = e
		p.subsMu.Unlock()
	}
	return e, nil
}

// New returns a Publisher.
func New(cfg Config) *Publisher {
	if cfg.Clock == nil {
		cfg.Clock = core.SystemClock{}
	}
	if cfg.Lanes <= 0 {
		cfg.Lanes = 1
	}
	if cfg.SubscriptionTTL == 0 {
		cfg.SubscriptionTTL = time.Second
	}
	p := &Publisher{cfg: cfg, subs: map[string]subsEntry{}}
	for range cfg.Lanes {
		p.lanes = append(p.lanes, p.newLane())
	}
	return p
}

// MaxBatch is the most events one Publish call may carry.
const MaxBatch = 1000

// Validate checks one input; field names are prefixed with prefix (e.g.
// "events[3].").
func (p *Publisher) Validate(prefix string, in *Input) error {
	if in.Type == "" {
		return core.Invalid(prefix+"type", "%stype is required", prefix)
	}
	if !in.Internal && !p.cfg.Catalog.Publishable(in.Type) {
		return core.Invalid(prefix+"type", "%stype: unknown event type %q; valid values: %s", prefix, in.Type, p.cfg.Catalog.TypeList())
	}
	if len(in.Data) > core.MaxEventDataBytes {
		return core.Invalid(prefix+"data", "%sdata is larger than %d bytes", prefix, core.MaxEventDataBytes)
	}
	if d := bytes.TrimSpace(in.Data); len(d) > 0 && (d[0] != '{' || !in.DataValid && !json.Valid(d)) {
		return core.Invalid(prefix+"data", "%sdata must be a JSON object", prefix)
	}
	if len(in.IdempotencyKey) > core.MaxIdempotencyKeyLen {
		return core.Invalid(prefix+"idempotency_key", "%sidempotency_key is longer than %d characters", prefix, core.MaxIdempotencyKeyLen)
	}
	if err := p.cfg.Policy.ValidateWebhookConfig(prefix+"webhook_config", in.WebhookConfig); err != nil {
		return err
	}
	if in.WebhookConfig != nil && !in.Internal {
		// Delivered inside data. Not for the server's own events: a job's
		// config was checked when the job was made, and a job made before
		// the limit must still get its events out.
		return core.CheckDepth(prefix+"webhook_config.user_metadata", in.WebhookConfig.UserMetadata, core.MaxUserMetadataDepth)
	}
	return nil
}

// Publish validates, fans out and durably writes the inputs of one
// project. Results are in input order. Nothing is written if any input is
// invalid.
func (p *Publisher) Publish(ctx context.Context, projectID string, in []Input) ([]Result, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if len(in) > MaxBatch {
		return nil, core.Invalid("events", "at most %d events per call, got %d", MaxBatch, len(in))
	}
	for i := range in {
		if err := p.Validate("", &in[i]); err != nil {
			// The message names the event of a batch: the prefix is
			// formatted only here, not for every valid input.
			if len(in) > 1 {
				if named := p.Validate(fmt.Sprintf("events[%d].", i), &in[i]); named != nil {
					err = named
				}
			}
			return nil, err
		}
	}
	r := &request{ctx: ctx, projectID: projectID, in: in}
	if telemetry.Enabled() {
		var span trace.Span
		ctx, span = startSpan(ctx, projectID, in)
		r.ctx, r.trace = ctx, telemetry.Traceparent(ctx)
		defer func() { endSpan(span, r.results) }()
	}
	l := p.lanes[p.next.Add(1)%uint64(len(p.lanes))]
	// If ctx ends first the batch may still commit; the caller retries
	// with its idempotency key if it needs to know.
	if err := l.Submit(ctx, r); err != nil {
		var b *buildError
		if errors.As(err, &b) {
			return nil, b.err
		}
		return nil, err
	}
	return r.results, nil
}

type request struct {
	ctx       context.Context
	projectID string
	in        []Input
	results   []Result
	trace     string // the publish span's traceparent, kept with the events
}

// size is what a request weighs in the writer's byte caps: its events'
// data, which dominates what it holds in memory.
func (r *request) size() int {
	n := 0
	for i := range r.in {
		n += 256 + len(r.in[i].Data)
	}
	return n
}

// Group commit (see internal/groupcommit): a lane's writer takes up to
// maxGroup requests or maxGroupBytes at a time, and yields maxYields times
// before it takes them, so that publishes about to arrive join the group:
// one commit of many events costs far less than many of one. (A pause of
// 0.1–1 ms on top measured no better: fuller groups, but fewer publishes
// in flight.)
const (
	maxYields     = 4
	maxGroup      = 256
	maxGroupBytes = 8 << 20
)

// newLane returns a lane's writer.
func (p *Publisher) newLane() *groupcommit.Writer[*request] {
	return groupcommit.New(groupcommit.Config[*request]{
		Commit: func(batch []*request) error {
			return p.commitErr(context.WithoutCancel(batch[0].ctx), batch)
		},
		// Only an event that cannot be built fails for a reason of its
		// own; a failed write fails its whole group, as a split would
		// only repeat it.
		Split:    func(err error) bool { var b *buildError; return errors.As(err, &b) },
		Size:     (*request).size,
		MaxItems: maxGroup, MaxBytes: maxGroupBytes,
		QueueItems: 4 * maxGroup, QueueBytes: 4 * maxGroupBytes,
		Yields: maxYields,
	})
}

// buildError is an input that could not be turned into an event.
type buildError struct{ err error }

func (e *buildError) Error() string { return e.err.Error() }
func (e *buildError) Unwrap() error { return e.err }

func (p *Publisher) commitErr(ctx context.Context, batch []*request) error {
	now := p.cfg.Clock.Now()
	hooks, hooksAt, gen, err := p.destinations(ctx, batch)
	if err != nil {
		return err
	}
	n := 0
	for _, r := range batch {
		n += len(r.in)
	}
	evs := make([]core.NewEvent, 0, n)
	for _, r := range batch {
		for i := range r.in {
			ne, err := p.build(now, r.projectID, &r.in[i], hooks[r.projectID])
			if err != nil {
				return &buildError{err}
			}
			ne.Event.TraceParent = r.trace
			evs = append(evs, ne)
		}
	}
	var resv core.Reservation
	if p.cfg.Direct != nil {
		resv = p.reserve(evs)
	}
	res, err := p.cfg.Store.PublishEvents(ctx, evs)
	if err != nil {
		if p.cfg.Direct != nil {
			p.cfg.Direct.Cancel(resv)
		}
		return fmt.Errorf("publish: %w", err)
	}
	if p.cfg.Direct != nil {
		p.dispatch(resv, evs, res, hooks, gen, hooksAt)
	}
	k, accepted := 0, 0
	results := make([]Result, len(res)) // one array for the group's calls
	for _, r := range batch {
		r.results = results[k : k+len(r.in) : k+len(r.in)]
		for i := range r.in {
			pr := res[k]
			r.results[i] = Result{Event: pr.Event, Deliveries: pr.Event.DeliveryCount, Duplicate: pr.Duplicate}
			if !pr.Duplicate {
				accepted++
			}
			k++
		}
	}
	if p.cfg.OnPublished != nil && accepted > 0 {
		p.cfg.OnPublished(accepted)
	}
	return nil
}

// destinations loads, per project, the static webhooks subscribed to the
// batch's event types, plus webhooks addressed directly (ping).
// It also returns when the oldest of them was read and the engine's
// webhook generation at that time.
func (p *Publisher) destinations(ctx context.Context, batch []*request) (map[string][]*core.Webhook, time.Time, uint64, error) {
	oldest, gen := time.Now(), p.generation()
	types := map[string]map[string]bool{}
	var direct []string
	for _, r := range batch {
		for _, in := range r.in {
			if in.OnlyWebhook != "" {
				direct = append(direct, in.OnlyWebhook)
				continue
			}
			if in.WebhookConfig.Routes() {
				continue
			}
			if types[r.projectID] == nil {
				types[r.projectID] = map[string]bool{}
			}
			types[r.projectID][in.Type] = true
		}
	}
	out := map[string][]*core.Webhook{}
	for project := range types {
		e, err := p.projectWebhooks(ctx, project)
		if err != nil {
			return nil, time.Time{}, 0, fmt.Errorf("publish: webhooks: %w", err)
		}
		out[project] = e.hooks
		gen = min(gen, e.gen)
		if e.at.Before(oldest) {
			oldest = e.at
		}
	}
	if len(direct) > 0 {
		byID, err := p.cfg.Store.WebhooksByID(ctx, direct)
		if err != nil {
			return nil, time.Time{}, 0, fmt.Errorf("publish: webhooks: %w", err)
		}
		for _, w := range byID {
			out[w.ProjectID] = append(out[w.ProjectID], w)
		}
	}
	return out, oldest, gen, nil
}

func (p *Publisher) build(now time.Time, projectID string, in *Input, hooks []*core.Webhook) (core.NewEvent, error) {
	ts := in.Timestamp
	if ts.IsZero() {
		ts = now
	}
	data := in.Data
	if in.WebhookConfig != nil && len(in.WebhookConfig.UserMetadata) > 0 {
		var err error
		if data, err = core.WithUserMetadata(data, in.WebhookConfig.UserMetadata); err != nil {
			return core.NewEvent{}, err
		}
	}
	payload, err := core.Envelope(in.Type, ts, data)
	if err != nil {
		return core.NewEvent{}, err
	}
	ev := core.Event{
		ID:             core.NewSortableID(now),
		ProjectID:      projectID,
		Type:           in.Type,
		Subject:        in.Subject,
		Payload:        payload,
		Dynamic:        in.WebhookConfig,
		IdempotencyKey: in.IdempotencyKey,
		CreateTime:     now,
	}
	// The webhooks the event goes to (a project's hooks are all of its
	// webhooks, whatever they subscribe to), chosen once so that the
	// deliveries get a slice of the size they need.
	var few [16]*core.Webhook
	targets := few[:0]
	n := 0
	if in.WebhookConfig.Routes() {
		n = len(in.WebhookConfig.URIs)
	} else {
		for _, w := range hooks {
			if w.ProjectID == projectID && (in.OnlyWebhook == "" && w.Subscribes(in.Type) || in.OnlyWebhook != "" && w.ID == in.OnlyWebhook) {
				targets = append(targets, w)
			}
		}
		n = len(targets)
	}
	var ds []core.Delivery
	if n > 0 {
		ds = make([]core.Delivery, 0, n)
	}
	add := func(d core.Delivery) {
		d.ID = core.NewMessageID(now)
		d.EventID = ev.ID
		d.ProjectID = projectID
		d.EventType = in.Type
		d.NextAttemptTime = now
		d.ScheduleStart = now
		d.CreateTime = now
		d.UpdateTime = now
		ds = append(ds, d)
	}
	switch {
	case in.WebhookConfig.Routes():
		for _, u := range in.WebhookConfig.URIs {
			add(core.Delivery{URI: u, Dest: core.DynamicDest(projectID, u), Status: core.DeliveryPending})
		}
	default:
		for _, w := range targets {
			st := core.DeliveryPending
			// A ping always goes out: it is how a user tests a webhook,
			// disabled or not.
			if w.State != core.WebhookEnabled && in.OnlyWebhook == "" {
				st = core.DeliverySkipped
			}
			add(core.Delivery{WebhookID: w.ID, Dest: w.ID, Status: st})
		}
	}
	ev.DeliveryCount = len(ds)
	return core.NewEvent{Event: ev, Deliveries: ds}, nil
}

// reserve asks the engine for slots and marks the deliveries it takes as
// leased to it.
func (p *Publisher) reserve(evs []core.NewEvent) core.Reservation {
	n := 0
	for _, ne := range evs {
		n += len(ne.Deliveries)
	}
	dests := make([]string, 0, n)
	for _, ne := range evs {
		for _, d := range ne.Deliveries {
			if d.Status == core.DeliveryPending {
				dests = append(dests, d.Dest)
			}
		}
	}
	if len(dests) == 0 {
		return core.Reservation{}
	}
	r, take := p.cfg.Direct.Reserve(dests)
	k := 0
	for i := range evs {
		for j := range evs[i].Deliveries {
			d := &evs[i].Deliveries[j]
			if d.Status != core.DeliveryPending {
				continue
			}
			if take[k] {
				d.LeaseOwner = r.Owner
				d.NextAttemptTime = r.Until
			}
			k++
		}
	}
	return r
}

// dispatch hands the committed, leased deliveries to the engine.
func (p *Publisher) dispatch(r core.Reservation, evs []core.NewEvent, res []core.PublishResult, hooks map[string][]*core.Webhook, gen uint64, hooksAt time.Time) {
	cs := make([]core.Claimed, 0, r.N)
	for i, ne := range evs {
		if res[i].Duplicate {
			continue
		}
		for _, d := range ne.Deliveries {
			if d.LeaseOwner == "" {
				continue
			}
			cs = append(cs, core.Claimed{Delivery: d, Payload: ne.Event.Payload, Subject: ne.Event.Subject, Dynamic: ne.Event.Dynamic,
				TraceParent: ne.Event.TraceParent})
		}
	}
	byID := map[string]*core.Webhook{}
	for _, ws := range hooks {
		for _, w := range ws {
			byID[w.ID] = w
		}
	}
	p.cfg.Direct.Dispatch(r, cs, byID, gen, hooksAt)
}
