package listen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/relay"
	"github.com/longhook/longhook/webhook"
)

// A serve instance's stream is GET /{v}/webhooks/{id}:listen (see
// relay.Event): each event is one delivery, with the body and the
// webhook-* headers a delivery attempt would send, signed when the server
// wrote it. The saved cursor is the last ResumeAfter handled, which may
// trail the greatest delivery id handled by a few seconds (deliveries can
// commit out of id order); the ids handled above it are saved too, so
// those the server sends again after a reconnect or a restart are skipped.

// maxSavedRecent bounds the ids saved with the cursor; beyond it a restart
// (not a reconnect) may forward a few seconds of events again.
const maxSavedRecent = 1000

// staleAfter is how old a streamed signature may get (local receiver down,
// events queued behind a slow one) before the stream is reopened at the
// event for a fresh one: receivers reject timestamps older than
// webhook.DefaultTolerance.
const staleAfter = webhook.DefaultTolerance - time.Minute

// errResign ends a session so that the server signs the pending event
// again; it is not fatal.
var errResign = errors.New("signature too old for the local receiver: reconnecting for a fresh one")

// serveStreamURL returns the :listen URL of a serve webhook URL
// (…/{v1,v1beta,v1alpha}/webhooks/{id}, with or without :listen); ok is
// false for any other URL (a gateway stream).
func serveStreamURL(from string) (string, bool) {
	u, err := url.Parse(from)
	if err != nil {
		return "", false
	}
	p := strings.TrimSuffix(u.Path, "/")
	head, id, ok := cutLast(p)
	if !ok {
		return "", false
	}
	head, coll, ok := cutLast(head)
	if !ok || coll != "webhooks" {
		return "", false
	}
	_, version, ok := cutLast(head)
	if !ok || version != "v1" && version != "v1beta" && version != "v1alpha" {
		return "", false
	}
	id = strings.TrimSuffix(id, ":"+relay.Verb)
	if id == "" || strings.Contains(id, ":") {
		return "", false
	}
	u.Path = head + "/" + coll + "/" + id + ":" + relay.Verb
	u.RawPath = ""
	return u.String(), true
}

// cutLast splits p at its last '/'.
func cutLast(p string) (head, last string, ok bool) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", "", false
	}
	return p[:i], p[i+1:], true
}

// peer names the far end in messages.
func (l *listener) peer() string {
	if l.serve {
		return "server"
	}
	return "gateway"
}

// dispatchServe handles one complete SSE event of a serve stream.
func (l *listener) dispatchServe(ctx context.Context, event string, data []byte) error {
	switch event {
	case relay.EventReady:
		var r relay.Ready
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("bad ready event: %w", err)
		}
		if !r.Time.IsZero() {
			l.skew = time.Until(r.Time)
		}
		if l.cursor == "" {
			// Pin "from now on" to a cursor, so a reconnect does not skip
			// what arrives in between.
			l.cursor = r.After
			if err := l.saveState(); err != nil {
				return fmt.Errorf("%w: save state: %v", errFatal, err)
			}
		}
		return nil
	case relay.EventWebhook:
		var e relay.Event
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("bad webhook event: %w", err)
		}
		if !core.ValidMessageID(e.ID) {
			return fmt.Errorf("bad webhook event: id %q", e.ID)
		}
		_, done := l.recent[e.ID]
		done = done || e.ID <= l.cursor // forwarded before a reconnect
		if !done {
			if err := l.forwardServe(ctx, &e); err != nil {
				return err // errResign: the reconnect resumes below e
			}
			l.recent[e.ID] = struct{}{}
		}
		next := e.ID // a server without resume_after
		if core.ValidMessageID(e.ResumeAfter) {
			next = e.ResumeAfter
		}
		if next <= l.cursor && done {
			return nil
		}
		l.cursor = max(l.cursor, next)
		for id := range l.recent {
			if id <= l.cursor {
				delete(l.recent, id)
			}
		}
		if err := l.saveState(); err != nil {
			return fmt.Errorf("%w: save state: %v", errFatal, err)
		}
	}
	return nil
}

// forwardServe POSTs a delivery to the local URL until it answers 2xx or
// rejects it with a 4xx, or until its signature is too old to be accepted (errResign).
func (l *listener) forwardServe(ctx context.Context, e *relay.Event) error {
	attrs := []slog.Attr{slog.String("delivery_id", e.ID), slog.String("webhook_id", e.WebhookID), slog.String("type", e.EventType)}
	stale := func() error { return l.staleSignature(e.Header) }
	return l.deliver(ctx, attrs, func(ctx context.Context) (int, error) { return l.post(ctx, e.Header, e.Body) }, stale)
}

// staleSignature is errResign when the webhook-timestamp a server (or
// gateway) signed h with is older than staleAfter by its clock.
func (l *listener) staleSignature(h http.Header) error {
	ts, err := strconv.ParseInt(h.Get(webhook.HeaderTimestamp), 10, 64)
	if err == nil && time.Now().Add(l.skew).Sub(time.Unix(ts, 0)) > staleAfter {
		return errResign
	}
	return nil
}
