package gateway

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/relay"
	"github.com/longhook/longhook/webhook"
)

// ListenPath is the prefix of the listen streams: GET ListenPath+{source}.
const ListenPath = reservedPrefix + "listen/"

// The listen protocol (Server-Sent Events), shared with `longhook listen`
// and with any other server that wants to feed it:
//
//	GET /_longhook/listen/{source}?after=<seq>
//	Authorization: Bearer <one of the source's listen_tokens>
//
// after (or the Last-Event-ID header) is the last position the client has
// handled; without it the stream starts at the newest event, so only
// events received from then on are sent. A position beyond the newest
// event is 400 INVALID_ARGUMENT (it came from another inbox). The response is
// text/event-stream: first an "event: ready" whose id is the starting
// position, then one "event: webhook" per event, in position order, whose
// id is the position and whose data is a StreamEvent in JSON, and a
// ": ping" comment every streamHeartbeat while idle. Positions grow but
// are not contiguous per source. Events stay available for the source's
// dedupe horizon.
//
// An event a Standard Webhooks source took with an HMAC signature is sent
// signed again, when it is streamed, with the source's hmac_secrets (a new
// webhook-timestamp and webhook-signature; StreamEvent.Resigned): a
// receiver enforces a timestamp tolerance (5 minutes), so the sender's
// signature would refuse every event streamed later than that — after
// listen was away, or behind a local app that was down. Other events (a
// JWT, a provider preset's signature) keep the headers they came with.
const (
	// MaxStreamLine is the longest SSE line `longhook listen` reads: an
	// event's data line holds its body in base64, so a source with
	// listen_tokens takes bodies of up to maxListenBody.
	MaxStreamLine = 64 << 20
	// maxListenBody is the largest max_body_bytes with listen_tokens: its
	// base64 (4/3) and the event's headers fit in MaxStreamLine.
	maxListenBody = 32 << 20

	streamBatch     = 256
	streamHeartbeat = 15 * time.Second
	streamWrite     = 30 * time.Second // a client that stalls longer is cut
)

// StreamEvent is the data of a "webhook" event on a listen stream.
type StreamEvent struct {
	Seq        int64       `json:"seq"`
	Source     string      `json:"source"`
	WebhookID  string      `json:"webhook_id"`
	Type       string      `json:"type,omitempty"`
	ReceivedAt time.Time   `json:"received_at"`
	Header     http.Header `json:"headers"`
	Body       []byte      `json:"body"` // base64 in JSON: the exact bytes received
	// Resigned: webhook-timestamp and webhook-signature in Header were made
	// when the event was streamed, with the source's hmac_secrets, not by
	// the sender; a client holding it until it is stale reconnects at it
	// for a fresh signature.
	Resigned bool `json:"resigned,omitempty"`
}

// StreamReady is the data of the "ready" event that opens a stream.
type StreamReady struct {
	Source string `json:"source"`
	After  int64  `json:"after"`
	// Time is the gateway's clock, against which re-signed events'
	// webhook-timestamp values are set.
	Time time.Time `json:"time"`
}

func (g *Gateway) listen(w http.ResponseWriter, r *http.Request) {
	src := g.byName[r.PathValue("source")]
	if src == nil || len(src.tokens) == 0 {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no listen stream for this source")
		return
	}
	if !src.authorized(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="longhook-listen"`)
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "a valid bearer token for this source is required")
		return
	}
	pos := r.URL.Query().Get("after")
	if pos == "" {
		pos = r.Header.Get("Last-Event-ID")
	}
	var after int64
	var err error
	if pos != "" {
		if after, err = strconv.ParseInt(pos, 10, 64); err != nil || after < 0 {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "after must be a non-negative integer position")
			return
		}
	}
	last, err := g.inbox.LastSeq(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "inbox unavailable")
		return
	}
	if pos == "" {
		after = last
	} else if after > last {
		// This inbox never handed out the position (the newest event is
		// kept through every sweep, so LastSeq never goes down): the
		// client's state comes from another inbox — a gateway set up
		// again, a restore from an older backup — or is a typo. Waiting
		// for the sequence to catch up would skip every event until then
		// without a word, so the stream is refused and the client told.
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf(
			"after %d is beyond this gateway's newest position %d: a position from another inbox (a new or restored gateway?); start again from 0 or without after", after, last))
		return
	}
	name := src.cfg.Name
	g.m.listeners.WithLabelValues(name).Inc()
	defer g.m.listeners.WithLabelValues(name).Dec()
	g.log.Info("gateway.listen.open", slog.String("source", name), slog.Int64("after", after))
	sent, err := g.stream(w, r, src, after)
	g.log.Info("gateway.listen.close", slog.String("source", name), slog.Int("sent", sent), slog.Any("error", err))
}

// stream writes events after the position until the client goes away,
// the gateway drains, or a write fails. It returns how many it sent.
func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, src *source, after int64) (int, error) {
	bw, flush := relay.Open(w, streamWrite)
	ready, _ := json.Marshal(StreamReady{Source: src.cfg.Name, After: after, Time: g.now().UTC()})
	fmt.Fprintf(bw, "retry: 1000\nid: %d\nevent: ready\ndata: %s\n\n", after, ready)
	if err := flush(); err != nil {
		return 0, err
	}
	heartbeat := time.NewTicker(streamHeartbeat)
	defer heartbeat.Stop()
	ctx := r.Context()
	sent := 0
	for {
		changed := g.inbox.Changed()
		evs, next, err := g.inbox.After(ctx, src.cfg.Name, after, streamBatch)
		if err != nil {
			return sent, err
		}
		now := g.now()
		for _, e := range evs {
			h, resigned := src.resign(e.Header, e.Body, now)
			data, err := json.Marshal(StreamEvent{
				Seq: e.Seq, Source: e.Source, WebhookID: e.WebhookID, Type: e.Type,
				ReceivedAt: e.ReceivedAt.UTC(), Header: h, Body: e.Body, Resigned: resigned,
			})
			if err != nil {
				return sent, err
			}
			fmt.Fprintf(bw, "id: %d\nevent: webhook\ndata: %s\n\n", e.Seq, data)
			sent++
		}
		after = max(after, next)
		if len(evs) > 0 {
			if err := flush(); err != nil {
				return sent, err
			}
			if len(evs) == streamBatch {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return sent, nil
		case <-g.drained:
			return sent, nil
		case <-changed:
		case <-heartbeat.C:
			_, _ = bw.WriteString(": ping\n\n")
			if err := flush(); err != nil {
				return sent, err
			}
		}
	}
}

// resign returns the stored header h of an event signed again at now
// with the source's hmac_secrets (every one, as during a rotation), when
// the source is Standard Webhooks and the event came with an HMAC
// signature; otherwise h as it is. The signature covers the stored
// webhook-id, so the receiver's verification and deduplication see the
// event the sender sent. A listen stream signs every event it sends so
// (listen reconnects for a new signature when one it holds grows old);
// the forwarders sign only old ones (resignOld).
func (s *source) resign(h http.Header, body []byte, now time.Time) (http.Header, bool) {
	if len(s.signers) == 0 || !strings.Contains(h.Get(webhook.HeaderSignature), ",") {
		return h, false // a JWT (no comma) or no secrets to sign with
	}
	id := h.Get(webhook.HeaderID)
	out := h.Clone()
	out.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	out.Set(webhook.HeaderSignature, webhook.SignAll(s.signers, id, now, body))
	return out, true
}

// resignAfter is how old a stored signature may be and still be forwarded
// as the sender made it: well inside a receiver's 5-minute tolerance.
const resignAfter = time.Minute

// resignOld is resign for a sink attempt: an event whose webhook-timestamp
// is under resignAfter old goes with the sender's own signature (nearly
// every forward comes within milliseconds of the receipt, and signing it
// again cost ~2.5 µs of the gateway's ~52 µs per event); an older one, or
// one without a readable timestamp, is signed again.
func (s *source) resignOld(h http.Header, body []byte, now time.Time) (http.Header, bool) {
	if ts, err := strconv.ParseInt(h.Get(webhook.HeaderTimestamp), 10, 64); err == nil && now.Sub(time.Unix(ts, 0)) < resignAfter {
		return h, false
	}
	return s.resign(h, body, now)
}

// authorized checks a "Bearer <token>" header against the source's
// tokens in constant time. The scheme is matched in any case (auth
// schemes are case-insensitive, RFC 9110 §11.1).
func (s *source) authorized(header string) bool {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return false
	}
	match := 0
	for _, t := range s.tokens {
		match |= subtle.ConstantTimeCompare([]byte(tok), t)
	}
	return match == 1
}
