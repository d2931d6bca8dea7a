package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/relay"
	"github.com/longhook/longhook/webhook"
)

// The listen stream (extension; `longhook listen --from` a serve instance):
//
//	GET /{v}/webhooks/{id}:listen?after=<delivery id>
//	x-goog-api-key: <a key of the webhook's project>
//
// after (or the Last-Event-ID header) is the last delivery the client has
// handled; relay.FromStart replays every delivery still retained, and
// without a cursor the stream starts after the newest delivery, so only
// deliveries created from then on are sent. The response is
// text/event-stream: first an "event: ready" whose id is the starting
// cursor and whose data is a relay.Ready, then one "event: webhook" per
// delivery, whatever its status, oldest first, whose id is the delivery id
// (the resume cursor) and whose data is a relay.Event: the body and the
// webhook-* headers a delivery attempt would send right now, signed with
// every unexpired secret of the webhook. A ": ping" comment is sent every
// listenHeartbeat. The stream is a copy of the deliveries, not a delivery:
// it changes no delivery's status. It ends when its API key is revoked or
// its webhook deleted (looked up every Deps.StreamRecheck, and the key
// again before anything is signed), and one key holds at most
// Deps.MaxStreamsPerKey streams (streams.go).
//
// Delivery ids sort by creation time, but a delivery becomes visible when
// its transaction commits, which may be after a delivery with a greater id
// (concurrent publishes, or two in one millisecond). So each poll looks
// again at the ids created in the last listenSettle, and sends such
// stragglers too, out of id order; and each event carries, besides its id,
// ResumeAfter: a cursor below which everything has been sent. A client
// that resumes after the greatest id it handled may miss a straggler; one
// that resumes after the last ResumeAfter it handled misses nothing (that
// committed within listenSettle) and recognises, by id, the events it sees
// again.
const (
	listenPage      = 500 // deliveries per store query and per poll
	listenPoll      = 200 * time.Millisecond
	listenHeartbeat = 15 * time.Second
	listenWrite     = 30 * time.Second // a client that stalls longer is cut
	listenSettle    = 3 * time.Second
)

// listenOr serves GET /{v}/webhooks/{id}:listen and passes every other
// GET /{v}/webhooks/{id} on to next.
func (s *server) listenOr(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, verb, ok := strings.Cut(r.PathValue("id"), ":")
		if !ok || verb != relay.Verb || id == "" {
			next.ServeHTTP(w, r)
			return
		}
		r.SetPathValue("id", id)
		s.listen(w, r)
	})
}

// maxCursorAhead is how far past this server's clock a listen cursor's
// time may be (instances' clocks apart) before it is refused.
const maxCursorAhead = 5 * time.Minute

func (s *server) listen(w http.ResponseWriter, r *http.Request) {
	key, ok := KeyFromContext(r.Context())
	if !ok {
		// Unreachable: ServeHTTP authenticates every versioned path.
		WriteError(w, r, s.d.Logger, errorf(core.ErrUnauthenticated, "Request is missing a valid API key."))
		return
	}
	after := r.URL.Query().Get("after")
	if after == "" {
		after = r.Header.Get("Last-Event-ID")
	}
	if after != "" && !core.ValidMessageID(after) {
		WriteError(w, r, s.d.Logger, core.Invalid("after",
			"after must be a delivery id (msg_ followed by 26 characters), or %s for every retained delivery", relay.FromStart))
		return
	}
	// Delivery ids begin with the time they were made: a cursor from the
	// future names no delivery of this server (a typo, a state file of
	// another one), and the stream would skip every delivery until then
	// without a word. The margin covers instances' clocks apart.
	if now := s.d.Clock.Now(); after != "" && core.MessageIDMillis(after) > now.Add(maxCursorAhead).UnixMilli() {
		WriteError(w, r, s.d.Logger, core.Invalid("after",
			"after %s was made %s, after this server's time %s: no delivery has that id yet (a cursor from another server?)",
			after, time.UnixMilli(core.MessageIDMillis(after)).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
		return
	}
	hook, err := s.getOwnWebhook(r, key)
	if err != nil {
		WriteError(w, r, s.d.Logger, err)
		return
	}
	if after == "" {
		if after, err = s.newestDelivery(r.Context(), hook); err != nil {
			WriteError(w, r, s.d.Logger, err)
			return
		}
	}
	leave, err := s.streams.enter(key.ID)
	if err != nil {
		WriteError(w, r, s.d.Logger, err)
		return
	}
	defer leave()
	attrs := []slog.Attr{slog.String("project", hook.ProjectID), slog.String("webhook_id", hook.ID)}
	s.d.Logger.LogAttrs(r.Context(), slog.LevelInfo, "api.listen.open", append(attrs, slog.String("after", after))...)
	ls := &listenStream{s: s, key: key, hook: hook, after: after, frontier: after,
		sent: make(map[string]struct{}), secrets: make(map[string]webhook.Secret)}
	err = ls.run(w, r)
	level := slog.LevelInfo
	if err != nil && r.Context().Err() == nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.Any("error", err))
	}
	s.d.Logger.LogAttrs(r.Context(), level, "api.listen.close", append(attrs, slog.Int("sent", ls.count))...)
}

// newestDelivery returns the newest delivery id of hook, or relay.FromStart
// when it has none.
func (s *server) newestDelivery(ctx context.Context, hook *core.Webhook) (string, error) {
	ds, err := s.deliveries.ListDeliveries(ctx, core.ListDeliveriesParams{ProjectID: hook.ProjectID, WebhookID: hook.ID, Limit: 1})
	if err != nil || len(ds) == 0 {
		return relay.FromStart, err
	}
	return ds[0].ID, nil
}

// errListenGone ends a stream whose webhook was deleted.
var errListenGone = errors.New("webhook deleted")

// listenStream is one connection's state.
type listenStream struct {
	s        *server
	key      core.APIKey // the key that opened the stream, looked up again while it runs
	hook     *core.Webhook
	bw       *bufio.Writer
	after    string              // the client's cursor: nothing at or below it is sent
	frontier string              // the greatest id sent (or after)
	sent     map[string]struct{} // ids sent, at or above the last floor
	secrets  map[string]webhook.Secret
	count    int
}

// run writes the stream until the client goes away or a write or the
// store fails.
func (ls *listenStream) run(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var flush func() error
	ls.bw, flush = relay.Open(w, listenWrite)
	ready, _ := json.Marshal(relay.Ready{WebhookID: ls.hook.ID, After: ls.after, Time: ls.s.d.Clock.Now().UTC()})
	fmt.Fprintf(ls.bw, "retry: 1000\nid: %s\nevent: %s\ndata: %s\n\n", ls.after, relay.EventReady, ready)
	if err := flush(); err != nil {
		return err
	}
	poll := time.NewTicker(listenPoll)
	defer poll.Stop()
	heartbeat := time.NewTicker(listenHeartbeat)
	defer heartbeat.Stop()
	recheck := time.NewTicker(ls.s.d.StreamRecheck)
	defer recheck.Stop()
	for {
		n, err := ls.poll(ctx)
		if n > 0 {
			if err := flush(); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
		if n == listenPage && ctx.Err() == nil {
			continue // a backlog: read on without waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
			if !ls.s.d.Ready() {
				return nil // the server is shutting down: let the client reconnect elsewhere
			}
		case <-recheck.C:
			if err := ls.s.keyStillValid(ctx, ls.key); err != nil {
				return err
			}
			if _, err := ls.s.hooks.GetWebhook(ctx, ls.hook.ProjectID, ls.hook.ID); errors.Is(err, core.ErrNotFound) {
				return errListenGone
			}
		case <-heartbeat.C:
			_, _ = ls.bw.WriteString(": ping\n\n")
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// settled is the first id of listenSettle ago: deliveries with lower ids
// are taken to have committed (or never to).
func (ls *listenStream) settled() string {
	return core.MessageIDFloor(ls.s.d.Clock.Now().UnixMilli() - listenSettle.Milliseconds())
}

// floor is the smallest id a poll looks at: the greatest id sent, or
// settled if that is lower (a delivery created since may still commit
// below the greatest id), but never below the cursor. Every delivery below
// it has been sent.
func (ls *listenStream) floor(settled string) string {
	return max(ls.after, min(ls.frontier, settled))
}

func (ls *listenStream) keep(id string) bool {
	if id <= ls.after {
		return false
	}
	_, done := ls.sent[id]
	return !done
}

// poll writes (unflushed) up to listenPage deliveries not sent yet and
// returns how many it considered.
func (ls *listenStream) poll(ctx context.Context) (int, error) {
	settled := ls.settled()
	floor := ls.floor(settled)
	for id := range ls.sent {
		if id < floor {
			delete(ls.sent, id)
		}
	}
	// The ids above the floor are mostly the ones sent: ask for those
	// plus a few, so an idle poll reads a few index entries.
	probe := min(listenPage, len(ls.sent)+8)
	ds, err := ls.s.scanDeliveries(ctx, ls.hook.ProjectID, ls.hook.ID, floor, ls.keep, probe)
	if err != nil || len(ds) == 0 {
		return 0, err
	}
	// Nothing is signed for a revoked key, whenever the recheck comes.
	if err := ls.s.keyStillValid(ctx, ls.key); err != nil {
		return 0, err
	}
	// Reload the webhook for its current secrets (rotation, deletion).
	hook, err := ls.s.hooks.GetWebhook(ctx, ls.hook.ProjectID, ls.hook.ID)
	if errors.Is(err, core.ErrNotFound) {
		return 0, errListenGone
	}
	if err != nil {
		return 0, err
	}
	now := ls.s.d.Clock.Now()
	secrets, err := ls.signers(hook, now)
	if err != nil {
		return 0, err
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	for _, d := range ds {
		ls.sent[d.ID] = struct{}{}
		ls.frontier = max(ls.frontier, d.ID)
		ev, err := ls.s.events.GetEvent(ctx, d.ProjectID, d.EventID)
		if errors.Is(err, core.ErrNotFound) {
			continue // removed by retention meanwhile
		}
		if err != nil {
			return 0, err
		}
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set(webhook.HeaderID, d.ID)
		h.Set(webhook.HeaderTimestamp, ts)
		h.Set(webhook.HeaderSignature, webhook.SignAll(secrets, d.ID, now, ev.Payload))
		data, err := json.Marshal(relay.Event{
			ID: d.ID, EventID: d.EventID, EventType: d.EventType, WebhookID: d.WebhookID,
			Status: string(d.Status), CreateTime: d.CreateTime.UTC(), Header: h, Body: ev.Payload,
			// Every delivery up to d visible now has been sent (oldest
			// first); one at or below settled is visible.
			ResumeAfter: max(floor, min(d.ID, settled)),
		})
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(ls.bw, "id: %s\nevent: %s\ndata: %s\n\n", d.ID, relay.EventWebhook, data)
		ls.count++
	}
	return len(ds), nil
}

// signers opens the webhook's unexpired secrets (each once per stream).
func (ls *listenStream) signers(hook *core.Webhook, now time.Time) ([]webhook.Secret, error) {
	out := make([]webhook.Secret, 0, len(hook.Secrets))
	for _, ss := range hook.Secrets {
		if ss.Expired(now) {
			continue
		}
		sec, ok := ls.secrets[ss.ID]
		if !ok {
			plain, err := ls.s.d.Cipher.Open(ss.Sealed)
			if err != nil {
				return nil, fmt.Errorf("open signing secret: %w", err)
			}
			if sec, err = webhook.ParseSecret(string(plain)); err != nil {
				return nil, fmt.Errorf("parse signing secret: %w", err)
			}
			ls.secrets[ss.ID] = sec
		}
		out = append(out, sec)
	}
	if len(out) == 0 {
		return nil, errors.New("no unexpired signing secret")
	}
	return out, nil
}

// scanDeliveries returns, oldest first, up to listenPage of the webhook's
// deliveries with ids at or above floor that keep accepts: the oldest such
// deliveries visible now.
//
// The store lists newest first below an id (BeforeID, an index range) and
// ids sort by time, so this looks at a window of ids from floor up to the
// first id of millisecond hi, halving it until the newest page below hi
// reaches under floor, keeps what that window holds and, if nothing, moves
// on to the next window. Every query reads at most one page, small rows at
// first; a backlog costs O(log(time span)) queries per page, an idle poll
// one query of a few rows. (Since and Until filter on create_time outside
// the index, so a query bounded below by them reads all older history.) A
// store method listing oldest first after a cursor would make this one
// query.
func (s *server) scanDeliveries(ctx context.Context, projectID, webhookID, floor string, keep func(string) bool, small int) ([]*core.Delivery, error) {
	lo := core.MessageIDMillis(floor)
	var hi, top int64 // exclusive upper bounds (ms); 0 is none
	probe := small
	known := false // [floor, hi) is known to hold more than a page
	for {
		p := core.ListDeliveriesParams{ProjectID: projectID, WebhookID: webhookID, Limit: probe}
		if hi > 0 {
			p.BeforeID = core.MessageIDFloor(hi)
		}
		var ds []*core.Delivery
		var err error
		if !known {
			if ds, err = s.deliveries.ListDeliveries(ctx, p); err != nil {
				return nil, err
			}
			more := len(ds) == probe && ds[len(ds)-1].ID >= floor
			if more && probe < listenPage {
				probe = listenPage
				continue
			}
			if more && hi == 0 {
				hi = core.MessageIDMillis(ds[0].ID) + 1
			}
			known = more
		}
		if known {
			top = hi
			if hi-lo > 1 {
				hi = lo + (hi-lo)/2
				known, probe = false, small
				continue
			}
			// One millisecond holds more than a page: read all of it.
			p.BeforeID, p.Limit = core.MessageIDFloor(hi), listenPage
			if ds, err = s.readDown(ctx, p, floor); err != nil {
				return nil, err
			}
		}
		var out []*core.Delivery
		reached := false
		for _, d := range slices.Backward(ds) {
			if d.ID >= floor {
				reached = true
				if keep(d.ID) {
					out = append(out, d)
				}
			}
		}
		if len(out) > 0 || hi == 0 {
			return out[:min(len(out), listenPage)], nil
		}
		// Nothing kept below hi: search on from there. If the window held
		// nothing at all, what is above it is what did not fit in a page.
		lo, floor = hi, core.MessageIDFloor(hi)
		if top <= lo {
			top = 0
		}
		hi = top
		known, probe = !reached && top > 0, small
	}
}

// readDown pages newest first from p.BeforeID down past floor.
func (s *server) readDown(ctx context.Context, p core.ListDeliveriesParams, floor string) ([]*core.Delivery, error) {
	var all []*core.Delivery
	for {
		ds, err := s.deliveries.ListDeliveries(ctx, p)
		if err != nil {
			return nil, err
		}
		all = append(all, ds...)
		if len(ds) < p.Limit || ds[len(ds)-1].ID < floor {
			return all, nil
		}
		p.BeforeID = ds[len(ds)-1].ID
	}
}
