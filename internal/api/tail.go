package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/relay"
)

// The deliveries stream (extension; `longhook deliveries tail`):
//
//	GET /{v}/deliveries:stream?webhook_id=&event_type=
//
// is text/event-stream: an "event: ready" (data: {"time": …}), then one
// "event: delivery" per change seen, whose data is a TailEvent: a delivery
// created after the stream opened ("created"), an attempt recorded on a
// delivery ("attempt"), or another status change such as a redelivery,
// a recovery or a cancellation ("updated"). A ": ping" comment is sent every
// listenHeartbeat. Like a listen stream, it ends when its API key is
// revoked (or the webhook it follows deleted), and counts towards the
// key's Deps.MaxStreamsPerKey (streams.go).
//
// It is a view for people, not a cursor for programs (that is :listen): it
// polls the store every tailPoll and compares what it sees with what it saw.
// Each poll reads the newest tailWindow deliveries and every pending one (up
// to tailWindow), and re-reads those that were pending before and are in
// neither list; so it sees every change to a delivery that is new or
// pending at some poll. A delivery re-queued and attempted between two
// polls, outside the newest tailWindow, is shown once when it is next seen.
const (
	tailPoll   = 250 * time.Millisecond
	tailWindow = 200
	tailReread = 100 // at most this many single reads per poll
)

// Kinds of TailEvent.
const (
	TailCreated = "created"
	TailAttempt = "attempt"
	TailUpdated = "updated"
)

// TailEvent is the data of a "delivery" event on a deliveries stream.
type TailEvent struct {
	// Kind is created, attempt or updated.
	Kind     string        `json:"kind"`
	Delivery *deliveryJSON `json:"delivery"`
}

// tailSeen is what the stream last saw of a delivery.
type tailSeen struct {
	attempts int
	status   core.DeliveryStatus
}

type tailStream struct {
	s       *server
	key     core.APIKey // the key that opened the stream, looked up again while it runs
	p       core.ListDeliveriesParams
	opened  time.Time
	seen    map[string]tailSeen
	pending []string // ids pending at the last poll
	primed  bool     // a poll has recorded the present
}

func (s *server) deliveriesStream(w http.ResponseWriter, r *http.Request) {
	key, ok := KeyFromContext(r.Context())
	if !ok {
		WriteError(w, r, s.d.Logger, errorf(core.ErrUnauthenticated, "Request is missing a valid API key."))
		return
	}
	q := r.URL.Query()
	ts := &tailStream{s: s, p: core.ListDeliveriesParams{ProjectID: key.ProjectID, WebhookID: q.Get("webhook_id")},
		opened: s.d.Clock.Now(), seen: map[string]tailSeen{}}
	if et := q.Get("event_type"); et != "" {
		if err := s.checkEventTypeFilter("event_type", et); err != nil {
			WriteError(w, r, s.d.Logger, err)
			return
		}
		ts.p.EventType = et
	}
	if ts.p.WebhookID != "" {
		if _, err := s.hooks.GetWebhook(r.Context(), key.ProjectID, ts.p.WebhookID); err != nil {
			WriteError(w, r, s.d.Logger, notFoundAs(err, "webhook", ts.p.WebhookID))
			return
		}
	}
	leave, err := s.streams.enter(key.ID)
	if err != nil {
		WriteError(w, r, s.d.Logger, err)
		return
	}
	defer leave()
	ts.key = key
	// The first poll records the present without sending it.
	if _, err := ts.poll(r.Context()); err != nil {
		WriteError(w, r, s.d.Logger, err)
		return
	}
	if err := ts.run(w, r); err != nil && r.Context().Err() == nil {
		s.d.Logger.LogAttrs(r.Context(), slog.LevelWarn, "api.stream.close", slog.String("project", key.ProjectID), slog.Any("error", err))
	}
}

func (ts *tailStream) run(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	bw, flush := relay.Open(w, listenWrite)
	ready, _ := json.Marshal(map[string]string{"time": ts.opened.UTC().Format(time.RFC3339Nano)})
	fmt.Fprintf(bw, "retry: 1000\nevent: ready\ndata: %s\n\n", ready)
	if err := flush(); err != nil {
		return err
	}
	poll := time.NewTicker(tailPoll)
	defer poll.Stop()
	heartbeat := time.NewTicker(listenHeartbeat)
	defer heartbeat.Stop()
	recheck := time.NewTicker(ts.s.d.StreamRecheck)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-recheck.C:
			if err := ts.s.keyStillValid(ctx, ts.key); err != nil {
				return err
			}
			if ts.p.WebhookID != "" {
				if _, err := ts.s.hooks.GetWebhook(ctx, ts.p.ProjectID, ts.p.WebhookID); errors.Is(err, core.ErrNotFound) {
					return errListenGone
				}
			}
		case <-heartbeat.C:
			_, _ = bw.WriteString(": ping\n\n")
			if err := flush(); err != nil {
				return err
			}
		case <-poll.C:
			if !ts.s.d.Ready() {
				return nil
			}
			evs, err := ts.poll(ctx)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				data, _ := json.Marshal(ev)
				fmt.Fprintf(bw, "event: delivery\ndata: %s\n\n", data)
			}
			if len(evs) > 0 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
}

// poll reads the deliveries in view and returns the changes since the last
// poll, oldest delivery first.
func (ts *tailStream) poll(ctx context.Context) ([]TailEvent, error) {
	st := ts.s.deliveries
	p := ts.p
	p.Limit = tailWindow
	newest, err := st.ListDeliveries(ctx, p)
	if err != nil {
		return nil, err
	}
	p.Status = core.DeliveryPending
	pending, err := st.ListDeliveries(ctx, p)
	if err != nil {
		return nil, err
	}
	view := map[string]*core.Delivery{}
	for _, d := range append(newest, pending...) {
		view[d.ID] = d
	}
	reread := 0
	for _, id := range ts.pending {
		if _, ok := view[id]; ok || reread == tailReread {
			continue
		}
		reread++
		d, _, err := st.GetDelivery(ctx, ts.p.ProjectID, id)
		if errors.Is(err, core.ErrNotFound) {
			continue // removed by retention
		}
		if err != nil {
			return nil, err
		}
		view[id] = d
	}
	first := !ts.primed
	ts.primed = true
	var out []TailEvent
	seen := make(map[string]tailSeen, len(view))
	ts.pending = ts.pending[:0]
	for _, id := range sortedKeys(view) {
		d := view[id]
		now := tailSeen{attempts: d.Attempts, status: d.Status}
		seen[id] = now
		if d.Status == core.DeliveryPending {
			ts.pending = append(ts.pending, id)
		}
		before, known := ts.seen[id]
		switch {
		case first || (known && before == now):
		case !known && !d.CreateTime.Before(ts.opened):
			out = append(out, TailEvent{Kind: TailCreated, Delivery: deliveryOut(d)})
			if d.Attempts > 0 {
				out = append(out, TailEvent{Kind: TailAttempt, Delivery: deliveryOut(d)})
			}
		case now.attempts > before.attempts:
			out = append(out, TailEvent{Kind: TailAttempt, Delivery: deliveryOut(d)})
		default:
			out = append(out, TailEvent{Kind: TailUpdated, Delivery: deliveryOut(d)})
		}
	}
	ts.seen = seen
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
