// Package relay is the wire of the listen relay: the server-sent events a
// serve instance streams on GET /{v}/webhooks/{id}:listen (written by
// internal/api) and `longhook listen --from` reads (internal/gateway/listen).
// It is a leaf: both ends import it, neither imports the other.
//
// A stream is text/event-stream: first an EventReady whose id is the
// starting cursor and whose data is a Ready, then one EventWebhook per
// delivery, oldest first, whose id is the delivery id and whose data is an
// Event.
package relay

import (
	"bufio"
	"net/http"
	"time"
)

// Verb is the custom method of a webhook that opens its stream
// (…/webhooks/{id}:listen).
const Verb = "listen"

// SSE event names of a stream.
const (
	// EventReady opens a stream; its data is a Ready.
	EventReady = "ready"
	// EventWebhook carries one delivery; its data is an Event.
	EventWebhook = "webhook"
)

// FromStart is the cursor before every delivery id: after it, a stream
// replays every delivery the server still holds.
const FromStart = "msg_00000000000000000000000000"

// Ready is the data of the "ready" event that opens a stream.
type Ready struct {
	WebhookID string `json:"webhook_id"`
	// After is the starting cursor: the stream sends deliveries after it.
	After string `json:"after"`
	// Time is the server's clock, against which webhook-timestamp values
	// are set.
	Time time.Time `json:"time"`
}

// Event is the data of a "webhook" event: one delivery as the request a
// delivery attempt would make.
type Event struct {
	// ID is the delivery id: the webhook-id header and the resume cursor.
	ID         string    `json:"id"`
	EventID    string    `json:"event_id"`
	EventType  string    `json:"event_type"`
	WebhookID  string    `json:"webhook_id"`
	Status     string    `json:"status"`
	CreateTime time.Time `json:"create_time"`
	// Header holds Content-Type and the webhook-id, webhook-timestamp and
	// webhook-signature headers, to send verbatim.
	Header http.Header `json:"headers"`
	// Body is the exact request body (base64 in JSON): the event payload.
	Body []byte `json:"body"`
	// ResumeAfter is a cursor for a client that has handled this event
	// and the ones before it: resuming after it misses nothing, but may
	// send again the events between it and ID.
	ResumeAfter string `json:"resume_after"`
}

// Open starts a text/event-stream response on w (the api's streams and the
// gateway's share it). It returns a buffered writer for the frames and a
// flush that sends what is buffered, first moving the connection's write
// deadline writeTimeout ahead: a long stream outlives the server's
// WriteTimeout, a reader that stops reading does not hold it for ever.
func Open(w http.ResponseWriter, writeTimeout time.Duration) (bw *bufio.Writer, flush func() error) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw = bufio.NewWriterSize(w, 64<<10)
	return bw, func() error {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
}
