package engine

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/telemetry"
	"github.com/longhook/longhook/webhook"
)

// attempt sends one attempt of t and returns its completion.
func (e *Engine) attempt(ctx context.Context, t *task) core.Completion {
	c := &t.c
	now := e.cfg.Clock.Now()
	comp := core.Completion{DeliveryID: c.ID, Owner: e.cfg.Owner, WebhookID: c.WebhookID, ProjectID: c.ProjectID}

	// Static deliveries go to the webhook's current URI, signed with its
	// unexpired secrets; a webhook deleted or disabled since the event was
	// accepted closes the delivery without an attempt.
	uri := c.URI
	var sig string
	if c.WebhookID != "" {
		e.refreshHook(ctx, t)
		w := t.hook
		comp.Attempt.Time = now // no attempt is recorded; the time dates the change
		switch {
		case w == nil:
			comp.Status = core.DeliveryCancelled
			comp.WebhookID = ""
			return comp
		case w.State != core.WebhookEnabled && c.EventType != core.EventWebhookPing:
			comp.Status = core.DeliverySkipped
			comp.WebhookID = ""
			return comp
		}
		uri = w.URI
		var buf [2]webhook.Secret // one, or two during a rotation: no allocation
		secrets, err := e.secrets.hmacSecrets(buf[:0], w, now)
		if err != nil {
			return e.fail(comp, c, now, uri, &core.Failure{Kind: core.FailInvalid, Err: "signing secret unavailable: " + err.Error()}, 0, t)
		}
		sig = webhook.SignAll(secrets, c.ID, now, c.Payload)
	} else {
		if e.cfg.Dynamic == nil {
			return e.fail(comp, c, now, uri, &core.Failure{Kind: core.FailInvalid, Err: "dynamic webhook signing is not configured"}, 0, t)
		}
		var err error
		sig, err = e.cfg.Dynamic.SignDynamic(ctx, c, uri, now)
		if err != nil {
			t.aborted = errors.Is(ctx.Err(), context.Canceled) // hard stop
			return e.fail(comp, c, now, uri, &core.Failure{Kind: core.FailConnection, Err: "sign: " + err.Error()}, 0, t)
		}
	}

	headers := [][2]string{
		{webhook.HeaderID, c.ID},
		{webhook.HeaderTimestamp, e.stamps.format(now.Unix())},
		{webhook.HeaderSignature, sig},
	}
	if telemetry.Enabled() {
		headers = traceHeaders(ctx, t, headers)
	}
	res := e.cfg.Sender.send(ctx, uri, c.Payload, headers)
	comp.Attempt = core.Attempt{
		DeliveryID: c.ID, Number: c.Attempts + 1, Time: now, URI: uri,
		StatusCode: res.StatusCode, Latency: res.Latency, Error: res.Err, Response: res.Response,
	}
	if s, ok := res.Outcome.(core.Success); ok {
		t.signal = signalOK
		comp.Status = core.DeliverySucceeded
		comp.Success = true
		e.logAttempt(t.logCtx, c, uri, comp.Attempt, "succeeded", time.Time{})
		e.cfg.Metrics.observe(c, comp.Attempt, "succeeded", s.StatusCode)
		return comp
	}
	f := res.Outcome.(*core.Failure)
	t.timedOut = f.Kind == core.FailTimeout
	t.aborted = res.Aborted
	t.signal = failureSignal(f, res.StatusCode)
	comp = e.fail(comp, c, now, uri, f, res.StatusCode, t)
	if comp.Status == core.DeliveryPending && c.WebhookID != "" {
		// A webhook deleted during the attempt left this delivery to its
		// completion (the store cancels only those not under way): it is
		// cancelled now with its attempt counted, not retried until a
		// claim hours later finds the webhook gone. Failures only: the
		// re-read is shared per webhook and skipped while nothing changed.
		e.refreshHook(ctx, t)
		if t.hook == nil {
			comp.Status, comp.NextAttemptTime, comp.WebhookID = core.DeliveryCancelled, time.Time{}, ""
		}
	}
	return comp
}

// fail schedules the retry (or gives up) after a failed attempt.
func (e *Engine) fail(comp core.Completion, c *core.Claimed, now time.Time, uri string, f *core.Failure, status int, t *task) core.Completion {
	if comp.Attempt.Number == 0 {
		comp.Attempt = core.Attempt{DeliveryID: c.ID, Number: c.Attempts + 1, Time: now, URI: uri, StatusCode: status, Error: f.Error()}
	}
	var schedule []time.Duration
	if t.hook != nil {
		schedule = t.hook.RetrySchedule
	}
	next, retry := time.Time{}, false
	if !c.Manual {
		next, retry = e.cfg.Retry.Next(f, c.Attempts-c.ScheduleBase+1, c.ScheduleStart, now, schedule, e.cfg.Rand)
	}
	if t.aborted {
		// longhook ended the attempt itself (hard stop): that says
		// nothing about the destination, so it neither ends the delivery
		// (a manual send, the last attempt at the horizon) nor waits a
		// step of the schedule: it is made again at once, by another
		// instance or after the restart.
		next, retry = now, true
	}
	outcome := "failed"
	if retry {
		comp.Status = core.DeliveryPending
		comp.NextAttemptTime = next
		outcome = "retry"
	} else {
		comp.Status = core.DeliveryFailed
	}
	if f.Kind == core.FailGone && c.WebhookID != "" {
		comp.DisableWebhook = true
	}
	if !retry && !c.Manual && e.cfg.OnGiveUp != nil {
		e.cfg.OnGiveUp(GiveUp{Delivery: c.Delivery, Attempt: comp.Attempt, Permanent: f.Permanent(), DisablesWebhook: comp.DisableWebhook})
	}
	e.logAttempt(t.logCtx, c, uri, comp.Attempt, outcome, next)
	e.cfg.Metrics.observe(c, comp.Attempt, outcome, status)
	return comp
}

// logAttempt writes the one wide record per attempt. It never includes the
// payload, the signature or query strings that could carry tokens.
// ctx (nil when tracing is off) gives the record its trace and span ids.
func (e *Engine) logAttempt(ctx context.Context, c *core.Claimed, uri string, a core.Attempt, outcome string, next time.Time) {
	level := slog.LevelInfo
	if outcome != "succeeded" {
		level = slog.LevelWarn
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if !e.cfg.Logger.Enabled(ctx, level) {
		return // the record is not built (serve logs at error level under load)
	}
	attrs := []slog.Attr{
		slog.String("delivery_id", c.ID),
		slog.String("event_type", c.EventType),
		slog.String("project_id", c.ProjectID),
		slog.String("destination", redactURI(uri)),
		slog.Int("attempt", a.Number),
		slog.String("outcome", outcome),
		slog.Int("status", a.StatusCode),
		slog.Duration("latency", a.Latency),
	}
	if c.WebhookID != "" {
		attrs = append(attrs, slog.String("webhook_id", c.WebhookID))
	}
	if a.Error != "" {
		attrs = append(attrs, slog.String("error", a.Error))
	}
	if !next.IsZero() {
		attrs = append(attrs, slog.Time("next_attempt", next))
	}
	e.cfg.Logger.LogAttrs(ctx, level, "delivery.attempt", attrs...)
}

// redactURI is a destination as the logs show it: without its query, and
// with each path segment that may be a credential (secretLike) as "…" —
// Slack's and Discord's incoming webhooks carry their token in the path
// (/services/T…/B…/<token>, /api/webhooks/<id>/<token>).
func redactURI(u string) string {
	query := ""
	if q := strings.IndexByte(u, '?'); q >= 0 {
		u, query = u[:q], "?…"
	}
	i := strings.Index(u, "://")
	if i < 0 {
		return u + query
	}
	j := strings.IndexByte(u[i+3:], '/')
	if j < 0 {
		return u + query
	}
	head := u[:i+3+j]
	segs := strings.Split(u[i+3+j:], "/")
	for k, seg := range segs {
		if secretLike(seg) {
			segs[k] = "…"
		}
	}
	return head + strings.Join(segs, "/") + query
}

// secretLike reports whether a path segment may be a credential: 16
// characters or more, not only lower-case letters, hyphens and dots (a
// readable name such as "longhook-receiver" is kept).
func secretLike(seg string) bool {
	if len(seg) < 16 {
		return false
	}
	for i := 0; i < len(seg); i++ {
		if c := seg[i]; !(c >= 'a' && c <= 'z' || c == '-' || c == '.') {
			return true
		}
	}
	return false
}

// secretCache keeps opened signing secrets by secret id, so each sealed
// secret is decrypted once.
type secretCache struct {
	cipher core.Cipher
	mu     sync.Mutex
	m      map[string]any
}

// hmacSecrets appends w's unexpired signing secrets to out.
func (s *secretCache) hmacSecrets(out []webhook.Secret, w *core.Webhook, now time.Time) ([]webhook.Secret, error) {
	for _, ss := range w.Secrets {
		if ss.Expired(now) {
			continue
		}
		s.mu.Lock()
		v, ok := s.m[ss.ID]
		s.mu.Unlock()
		if !ok {
			plain, err := s.cipher.Open(ss.Sealed)
			if err != nil {
				return nil, err
			}
			sec, err := webhook.ParseSecret(string(plain))
			if err != nil {
				return nil, err
			}
			v = sec
			s.mu.Lock()
			if len(s.m) > 100000 {
				clear(s.m)
			}
			s.m[ss.ID] = v
			s.mu.Unlock()
		}
		out = append(out, v.(webhook.Secret))
	}
	return out, nil
}

// stampCache keeps the webhook-timestamp header value of the current
// second: attempts in the same second share it instead of formatting it
// each.
type stampCache struct {
	p atomic.Pointer[stamp]
}

type stamp struct {
	unix int64
	s    string
}

func (c *stampCache) format(unix int64) string {
	if p := c.p.Load(); p != nil && p.unix == unix {
		return p.s
	}
	p := &stamp{unix, strconv.FormatInt(unix, 10)}
	c.p.Store(p)
	return p.s
}

// hookMaxAge is how long a webhook read at claim or publish time is trusted
// before an attempt re-reads it (changes made by other instances).
const hookMaxAge = time.Second

// refreshHook re-reads t's webhook when it may be stale: a webhook changed
// through this process since t got it, or t waited longer than hookMaxAge
// (parked behind its destination's cap). An update of the URI, secrets or
// state thus applies to every attempt made after it. Reads are shared: a
// webhook is read at most once per hookMaxAge and generation however many
// of its deliveries wait, so a backlog never turns into one read per
// attempt.
func (e *Engine) refreshHook(ctx context.Context, t *task) {
	gen := e.gen.Load()
	if t.gen == gen && time.Since(t.at) < hookMaxAge {
		return
	}
	id := t.c.WebhookID
	if h, ok := e.hooks.get(id, gen); ok {
		t.hook, t.gen, t.at = h.w, h.gen, h.at
		return
	}
	v, err, _ := e.hooks.sf.Do(id, func() (any, error) {
		if h, ok := e.hooks.get(id, gen); ok {
			return h, nil
		}
		h := hookEntry{gen: e.gen.Load(), at: time.Now()}
		ws, err := e.cfg.Store.WebhooksByID(ctx, []string{id})
		if err != nil {
			return nil, err
		}
		h.w = ws[id] // nil when deleted
		e.hooks.put(id, h)
		return h, nil
	})
	if err != nil {
		return // keep what we have; the attempt's outcome decides the rest
	}
	h := v.(hookEntry)
	t.hook, t.gen, t.at = h.w, h.gen, h.at
}

// hookCache holds the webhooks the engine re-read, shared by all their
// deliveries.
type hookCache struct {
	mu sync.Mutex
	m  map[string]hookEntry
	sf singleflight.Group
}

type hookEntry struct {
	w   *core.Webhook // nil: deleted
	gen uint64        // Engine.gen before the read
	at  time.Time     // when it was read
}

// get returns id's entry if it was read in generation gen less than
// hookMaxAge ago.
func (c *hookCache) get(id string, gen uint64) (hookEntry, bool) {
	c.mu.Lock()
	h, ok := c.m[id]
	c.mu.Unlock()
	if !ok || h.gen != gen || time.Since(h.at) >= hookMaxAge {
		return hookEntry{}, false
	}
	return h, true
}

func (c *hookCache) put(id string, h hookEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= 1<<16 {
		c.m = map[string]hookEntry{} // bounded: start over rather than grow
	}
	c.m[id] = h
}

// WebhooksChanged tells the engine that webhooks changed, so deliveries it
// holds re-read their webhook before the next attempt.
func (e *Engine) WebhooksChanged() { e.gen.Add(1) }
