package console

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/relay"
	"github.com/longhook/longhook/webhook"
)

type attemptView struct {
	core.Attempt
	OK       bool
	Explain  string
	Response string
	Headers  [][2]string
}

type deliveryView struct {
	D        *core.Delivery
	Event    *core.Event
	Hook     *core.Webhook
	Attempts []attemptView
	Why      string
	Payload  string
}

// delivery shows one delivery: why it is where it is, the payload, and
// every attempt with its response and the signature headers sent (names
// and ids only: secrets and signatures never reach the page).
func (c *Console) delivery(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	d, as, err := c.d.Store.GetDelivery(ctx, s.project, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v := deliveryView{D: d}
	if ev, err := c.d.Store.GetEvent(ctx, s.project, d.EventID); err == nil {
		v.Event = ev
		v.Payload = prettyJSON(ev.Payload)
	}
	if d.WebhookID != "" {
		if h, err := c.d.Store.GetWebhook(ctx, s.project, d.WebhookID); err == nil {
			v.Hook = h
		}
	}
	for i := len(as) - 1; i >= 0; i-- { // newest first
		a := as[i]
		av := attemptView{Attempt: a, OK: a.Error == "" && a.StatusCode >= 200 && a.StatusCode < 300,
			Explain: explainAttempt(a), Response: string(a.Response)}
		scheme := "HMAC-SHA256 (Standard Webhooks), one v1 signature per active secret"
		if d.WebhookID == "" {
			scheme = "a JWT (compact JWS signed with the server's key, kid from /.well-known/jwks.json)"
		}
		av.Headers = [][2]string{
			{webhook.HeaderID, d.ID},
			{webhook.HeaderTimestamp, fmt.Sprint(a.Time.Unix())},
			{webhook.HeaderSignature, scheme + " — value not stored"},
		}
		v.Attempts = append(v.Attempts, av)
	}
	v.Why = whyDelivery(d, as)
	c.render(w, r, s, http.StatusOK, "delivery", v)
}

// whyDelivery is the one-line state of a delivery and what to do.
func whyDelivery(d *core.Delivery, as []core.Attempt) string {
	var last core.Attempt
	if len(as) > 0 {
		last = as[len(as)-1]
	}
	switch d.Status {
	case core.DeliverySucceeded:
		return "Delivered. Nothing to do."
	case core.DeliveryPending:
		if len(as) == 0 {
			return "Waiting for its first attempt."
		}
		if !d.NextAttemptTime.After(time.Now()) {
			// Due, and not taken yet (a backlog, no instance running).
			return "Its next attempt is due now. " + explainAttempt(last)
		}
		return "Retrying " + ago(d.NextAttemptTime) + ". " + explainAttempt(last)
	case core.DeliveryFailed:
		return "Failed for good after " + plural(int64(d.Attempts), "attempt") + ". " + explainAttempt(last) + " When the receiver works again, redeliver it (or recover the time range from the webhook page)."
	case core.DeliverySkipped:
		return "Skipped: the webhook was disabled when it was due. Enable the webhook, then redeliver."
	case core.DeliveryCancelled:
		return "Cancelled: the webhook was deleted."
	}
	return ""
}

func (c *Console) redeliver(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	// A webhook that is off refuses redelivery: say so in the page's
	// words (the API's message speaks of PATCH state: enabled).
	if d, _, err := c.d.Store.GetDelivery(r.Context(), s.project, id); err == nil && d.WebhookID != "" {
		if h, err := c.d.Store.GetWebhook(r.Context(), s.project, d.WebhookID); err == nil && h.State != core.WebhookEnabled {
			c.fail(w, r, s, &apiError{Status: http.StatusBadRequest, Message: "The webhook " + cmp.Or(h.Name, h.ID) +
				" is disabled, so nothing is sent to it. Enable it (on the delivery's page or the webhook's), then redeliver."})
			return
		}
	}
	if err := c.call(r.Context(), s, "POST", "/v1/deliveries/"+url.PathEscape(id)+":redeliver", map[string]any{}, nil); err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, s.doneURL("/console/deliveries/"+url.PathEscape(id), "Redelivery queued: it is sent now (a delivery still retrying keeps its retries)."), http.StatusSeeOther)
}

// streamRow is one delivery as the live table receives it; the page's
// script builds the row with textContent only.
type streamRow struct {
	ID        string `json:"id"`
	EventType string `json:"event_type"`
	Status    string `json:"status"`
	Class     string `json:"class"`
	Attempts  int    `json:"attempts"`
	Code      int    `json:"code,omitempty"`
	Error     string `json:"error,omitempty"`
	Created   string `json:"created"`
}

// streamWrite is how long one flush of the live stream may take.
const streamWrite = 30 * time.Second

// stream sends the webhook's new and changed deliveries as server-sent
// events: it re-reads the newest page every second (one indexed range
// read) and sends the rows that are new or changed. Every
// Deps.StreamRecheck it looks its session, key and webhook up again and
// ends, with an "end" event, when any is gone (streams.go).
func (c *Console) stream(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	ctx := r.Context()
	h, err := c.d.Store.GetWebhook(ctx, s.project, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	leave, ok := c.streams.enter(s.id)
	if !ok {
		http.Error(w, fmt.Sprintf("This session already has %d live streams open, the most one session may hold: close a console tab first.",
			c.d.MaxStreamsPerSession), http.StatusTooManyRequests)
		return
	}
	defer leave()
	bw, flush := relay.Open(w, streamWrite)
	seen := map[string]string{}
	first := true
	after := r.URL.Query().Get("after") // the newest delivery the page showed
	// When the page read its rows: one that changed since (its first
	// attempt made while the page loaded) is sent again, not skipped as
	// already shown. A second of margin covers instances' clocks.
	shown, _ := time.Parse(time.RFC3339Nano, r.URL.Query().Get("shown"))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	recheck := time.NewTicker(c.d.StreamRecheck)
	defer recheck.Stop()
	var rows [][]byte
	// check ends the stream, telling the page why, when its session, key
	// or webhook is gone.
	check := func() bool {
		end := c.streamEnd(ctx, s, h)
		if end != "" {
			// The page's script closes its EventSource on "end" rather
			// than reconnecting.
			fmt.Fprintf(bw, "event: end\ndata: %s\n\n", end)
			_ = flush()
		}
		return end == ""
	}
	for {
		ds, err := c.d.Store.ListDeliveries(ctx, core.ListDeliveriesParams{ProjectID: s.project, WebhookID: h.ID, Limit: deliveriesPage})
		if err != nil {
			return
		}
		rows = appendChanged(rows, ds, seen, first, after, shown)
		first = false
		// Rows are sent only after a look-up that finds the session, key
		// and webhook still there (two indexed reads, when there is
		// something to send): nothing reaches a stream after its key was
		// revoked, even between two rechecks.
		if len(rows) > 0 && !check() {
			return
		}
		if err := sendRows(bw, flush, rows); err != nil {
			return
		}
		rows = rows[:0]
		if !c.awaitTick(ctx, tick, recheck, check) {
			return
		}
	}
}

// appendChanged appends to rows, oldest first, the deliveries of ds (a
// page, newest first) that are new or changed since seen recorded them,
// and records them. On the first page (first), those the console page
// already shows as they are (after: the newest it showed, read at shown)
// are recorded but not appended.
func appendChanged(rows [][]byte, ds []*core.Delivery, seen map[string]string, first bool, after string,
	shown time.Time) [][]byte {
	for i := len(ds) - 1; i >= 0; i-- {
		d := ds[i]
		sig := fmt.Sprint(d.Status, d.Attempts)
		if seen[d.ID] == sig {
			continue
		}
		seen[d.ID] = sig
		if first && d.ID <= after && (shown.IsZero() || d.UpdateTime.Before(shown.Add(-time.Second))) {
			continue // the page already shows it as it is
		}
		b, _ := json.Marshal(streamRow{ID: d.ID, EventType: d.EventType, Status: string(d.Status), Class: statusClass(d.Status),
			Attempts: d.Attempts, Code: d.LastStatusCode, Error: lastError(d.LastError), Created: when(d.CreateTime)})
		rows = append(rows, b)
	}
	return rows
}

// sendRows sends rows as delivery events and a keep-alive, and flushes.
func sendRows(bw *bufio.Writer, flush func() error, rows [][]byte) error {
	for _, b := range rows {
		if _, err := fmt.Fprintf(bw, "event: delivery\ndata: %s\n\n", b); err != nil {
			return err
		}
	}
	if _, err := bw.WriteString(": keep-alive\n\n"); err != nil {
		return err
	}
	// flush also moves the write deadline: the server's write timeout
	// is for ordinary responses, a stream lives while the browser
	// listens.
	return flush()
}

// awaitTick waits for the stream's next tick, running check at every
// recheck; it reports false when the stream is to end (the request or
// the console is done, or check said so).
func (c *Console) awaitTick(ctx context.Context, tick, recheck *time.Ticker, check func() bool) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-c.stop:
			return false
		case <-recheck.C:
			if !check() {
				return false
			}
		case <-tick.C:
			return true
		}
	}
}

// streamEnd says why an open stream must end — its session or key is
// gone, or its webhook was deleted — or "" while all are there. A store
// error other than not-found keeps the stream (the next recheck tries
// again).
func (c *Console) streamEnd(ctx context.Context, s *session, h *core.Webhook) string {
	if err := c.sessionStillValid(ctx, s); errors.Is(err, errSessionEnded) {
		return "session ended"
	}
	if _, err := c.d.Store.GetWebhook(ctx, s.project, h.ID); errors.Is(err, core.ErrNotFound) {
		return "webhook deleted"
	}
	return ""
}
