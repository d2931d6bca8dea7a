package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/publish"
)

// publishRequest is one event of POST /{v}/events (docs/contract.md §7).
type publishRequest struct {
	Type           string              `json:"type"`
	Data           json.RawMessage     `json:"data"`
	WebhookConfig  *core.WebhookConfig `json:"webhook_config"`
	IdempotencyKey string              `json:"idempotency_key"`
	Timestamp      string              `json:"timestamp"`
	Subject        string              `json:"subject"`
}

// eventJSON is the publish response: the accepted event.
type eventJSON struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	Timestamp     string `json:"timestamp,omitempty"`
	CreateTime    string `json:"create_time"`
	DeliveryCount int    `json:"delivery_count"`
}

// input converts a request to a publish.Input. at is its index in a
// batch, whose messages name fields "events[2].timestamp", or -1.
func (req *publishRequest) input(at int) (publish.Input, error) {
	in := publish.Input{
		Type:           req.Type,
		Data:           req.Data,
		DataValid:      true, // checked by the decoder (publishjson.go)
		WebhookConfig:  req.WebhookConfig,
		IdempotencyKey: req.IdempotencyKey,
		Subject:        req.Subject,
	}
	if d := bytes.TrimSpace(req.Data); bytes.Equal(d, []byte("null")) {
		in.Data = nil
	}
	// user_metadata is a google.protobuf.Struct, and proto3 JSON reads a
	// null message field as unset — as the job routes do (webhookConfig):
	// the same webhook_config must not be a 400 here and taken there.
	if wc := req.WebhookConfig; wc != nil && bytes.Equal(bytes.TrimSpace(wc.UserMetadata), []byte("null")) {
		wc.UserMetadata = nil
	}
	if req.Timestamp != "" {
		ts, err := time.Parse(time.RFC3339Nano, req.Timestamp)
		if err != nil {
			prefix := batchPrefix(at)
			return in, core.Invalid(prefix+"timestamp", "%stimestamp must be an RFC 3339 time such as 2026-05-05T12:00:00Z, got %q", prefix, req.Timestamp)
		}
		if err := checkEventTime(ts, batchPrefix(at)+"timestamp"); err != nil {
			return in, err
		}
		in.Timestamp = ts.UTC()
	}
	if len(req.Subject) > core.MaxURILength {
		prefix := batchPrefix(at)
		return in, core.Invalid(prefix+"subject", "%ssubject is longer than %d characters", prefix, core.MaxURILength)
	}
	return in, nil
}

// maxEventTime is the latest timestamp an event may carry: the end of
// year 9999, google.protobuf.Timestamp's bound and the last time RFC 3339
// can write (a later one would reach receivers as "10000-01-01T…").
var maxEventTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)

// checkEventTime refuses a publish timestamp outside google.protobuf.
// Timestamp's range (0001-01-01 to 9999-12-31, in UTC), and its very
// first instant: 0001-01-01T00:00:00Z is the zero value of Go's time.Time
// and .NET's DateTime, which a client sends for a time it never set.
// Reading it as "now" (as the publisher reads an omitted timestamp) would
// rewrite a value the client wrote; keeping it would date the event 2,000
// years back. Either way the client's bug would go unnoticed.
func checkEventTime(ts time.Time, field string) error {
	switch {
	case ts.IsZero():
		return core.Invalid(field, "%s 0001-01-01T00:00:00Z is the zero time (Go's time.Time{}, .NET's DateTime.MinValue), not a time an event happened: omit %s for now", field, field)
	case ts.Before(time.Time{}) || ts.After(maxEventTime):
		return core.Invalid(field, "%s must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z in UTC, got %s", field, ts.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// batchPrefix qualifies the field names of a batch's event at in
// messages; it is formatted only for a message (a batch has up to 1,000).
func batchPrefix(at int) string {
	if at < 0 {
		return ""
	}
	return fmt.Sprintf("events[%d].", at)
}

func (s *server) publishEvent(r *http.Request, key core.APIKey) (any, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var req publishRequest
	if err := decodePublish(body, &req); err != nil {
		return nil, err
	}
	if h := r.Header.Get("Idempotency-Key"); h != "" {
		switch req.IdempotencyKey {
		case "":
			req.IdempotencyKey = h
		case h:
		default:
			return nil, core.Invalid("idempotency_key", "idempotency_key in the body differs from the Idempotency-Key header; send one, or the same value in both")
		}
	}
	in, err := req.input(-1)
	if err != nil {
		return nil, err
	}
	res, err := s.d.Publisher.Publish(r.Context(), key.ProjectID, []publish.Input{in})
	if err != nil {
		return nil, err
	}
	if res[0].Duplicate {
		return (*replayedEvent)(eventOut(res[0].Event)), nil
	}
	return (*publishedEvent)(eventOut(res[0].Event)), nil
}

type batchPublishRequest struct {
	Events []publishRequest `json:"events"`
}

type batchPublishResponse struct {
	Events []*batchEventJSON `json:"events"`
	// allReplayed: every event repeats an earlier publish, so the call
	// wrote nothing (api marks the answer Idempotent-Replayed).
	allReplayed bool
}

// batchEventJSON is one event of the events:batchPublish response. A
// header cannot say which events of a batch repeat an earlier publish, so
// each says it itself: replayed is true when the event's idempotency key
// was seen before (the answer is the original event; nothing new was
// sent), and absent otherwise, so a fresh event reads as before.
type batchEventJSON struct {
	eventJSON
	Replayed bool `json:"replayed,omitempty"`
}

// inputs converts a batch's events to publish.Inputs.
func (req *batchPublishRequest) inputs() ([]publish.Input, error) {
	ins := make([]publish.Input, len(req.Events))
	for i := range req.Events {
		var err error
		if ins[i], err = req.Events[i].input(i); err != nil {
			return nil, err
		}
	}
	return ins, nil
}

func (s *server) batchPublish(r *http.Request, key core.APIKey) (any, error) {
	if r.Header.Get("Idempotency-Key") != "" {
		return nil, core.Invalid("Idempotency-Key", "the Idempotency-Key header is not supported on events:batchPublish; set idempotency_key on each event")
	}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var req batchPublishRequest
	if err := decodeBatchPublish(body, &req); err != nil {
		return nil, err
	}
	if len(req.Events) == 0 {
		return nil, core.Invalid("events", "events must hold 1 to %d events", publish.MaxBatch)
	}
	if len(req.Events) > publish.MaxBatch {
		return nil, core.Invalid("events", "events must hold 1 to %d events, got %d", publish.MaxBatch, len(req.Events))
	}
	ins, err := req.inputs()
	if err != nil {
		return nil, err
	}
	if len(ins) == 1 {
		// Publish names fields without the events[i] prefix for a single
		// input; validate here so messages stay uniform.
		if err := s.d.Publisher.Validate("events[0].", &ins[0]); err != nil {
			return nil, err
		}
	}
	res, err := s.d.Publisher.Publish(r.Context(), key.ProjectID, ins)
	if err != nil {
		return nil, err
	}
	out := &batchPublishResponse{Events: make([]*batchEventJSON, len(res)), allReplayed: true}
	evs := make([]batchEventJSON, len(res)) // one allocation for the batch's events
	for i, rr := range res {
		evs[i] = batchEventJSON{eventJSON: eventValue(rr.Event), Replayed: rr.Duplicate}
		out.Events[i] = &evs[i]
		out.allReplayed = out.allReplayed && rr.Duplicate
	}
	return out, nil
}

// replayedHeader marks the answer to a publish that wrote nothing: its
// idempotency key was seen before, and the body is the original event.
// The name is Stripe's (and others'); the IETF draft on Idempotency-Key
// (draft-ietf-httpapi-idempotency-key-header) names no response header.
const replayedHeader = "Idempotent-Replayed"

// replayedTrue is replayedHeader's value, shared (see jsonContentType).
var replayedTrue = []string{"true"}

// replayer is a response that may repeat an earlier one; api sets
// replayedHeader on it when replayed says so.
type replayer interface {
	replayed() bool
}

func (r *batchPublishResponse) replayed() bool { return r.allReplayed }

// publishedEvent is eventJSON as the publish response, which writes itself
// (jsonAppender). A type of its own: types that embed *eventJSON (the
// events read API's) must not take the method over.
type publishedEvent eventJSON

func (e *publishedEvent) appendJSON(b []byte) []byte { return appendEventJSON(b, (*eventJSON)(e)) }

// replayedEvent is the publish response for a repeated idempotency key:
// the original event, the same JSON as publishedEvent's; a type of its own
// so that api marks it (replayer) and a fresh publish does no more work.
type replayedEvent eventJSON

func (e *replayedEvent) appendJSON(b []byte) []byte { return appendEventJSON(b, (*eventJSON)(e)) }

func (e *replayedEvent) replayed() bool { return true }

// appendEventJSON writes e as json.Marshal does.
func appendEventJSON(b []byte, e *eventJSON) []byte {
	if e == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"id":`...)
	b = appendJSONString(b, e.ID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	if e.Timestamp != "" {
		b = append(b, `,"timestamp":`...)
		b = appendJSONString(b, e.Timestamp)
	}
	b = append(b, `,"create_time":`...)
	b = appendJSONString(b, e.CreateTime)
	b = append(b, `,"delivery_count":`...)
	b = strconv.AppendInt(b, int64(e.DeliveryCount), 10)
	return append(b, '}')
}

// appendJSON writes r as json.Marshal does (jsonAppender).
func (r *batchPublishResponse) appendJSON(b []byte) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	if r.Events == nil {
		return append(b, `{"events":null}`...)
	}
	b = append(b, `{"events":[`...)
	for i, e := range r.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendBatchEventJSON(b, e)
	}
	return append(b, "]}"...)
}

// appendBatchEventJSON writes e as json.Marshal does.
func appendBatchEventJSON(b []byte, e *batchEventJSON) []byte {
	if e == nil {
		return append(b, "null"...)
	}
	b = appendEventJSON(b, &e.eventJSON)
	if e.Replayed {
		b = append(b[:len(b)-1], `,"replayed":true}`...) // before appendEventJSON's '}'
	}
	return b
}

// eventOut renders a stored or fresh event; a repeat of an idempotent
// publish renders the original event, so it answers the same JSON.
func eventOut(ev *core.Event) *eventJSON {
	e := eventValue(ev)
	return &e
}

// eventValue is eventOut's value, for responses that hold events in an
// array of their own (events:batchPublish).
func eventValue(ev *core.Event) eventJSON {
	return eventJSON{
		ID:            ev.ID,
		Type:          ev.Type,
		Timestamp:     envelopeTimestamp(ev.Payload),
		CreateTime:    resourceTime(ev.CreateTime),
		DeliveryCount: ev.DeliveryCount,
	}
}

// envelopeTimestamp reads "timestamp" from an event envelope without
// decoding data (core.Envelope writes it before data).
func envelopeTimestamp(payload []byte) string {
	if ts, ok := envelopeTimestampFast(payload); ok {
		return ts
	}
	return decodedTimestamp(payload)
}

// decodedTimestamp is envelopeTimestamp's token decoder, for what the fast
// scan does not take.
func decodedTimestamp(payload []byte) string {
	dec := json.NewDecoder(bytes.NewReader(payload))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return ""
		}
		if name, _ := k.(string); strings.EqualFold(name, "timestamp") {
			var ts string
			if dec.Decode(&ts) != nil {
				return ""
			}
			return ts
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	return ""
}

// envelopeTimestampFast reads the timestamp of an envelope exactly as
// core.Envelope writes it — {"type":"…","version":"v1","timestamp":"…",
// with nothing between — by scanning, not decoding: every publish answers
// with it, and a token decoder cost as much as the rest of the response.
// Any other shape reports false.
func envelopeTimestampFast(p []byte) (string, bool) {
	const open, mid = `{"type":"`, `,"version":"v1","timestamp":"`
	if !bytes.HasPrefix(p, []byte(open)) {
		return "", false
	}
	i := len(open)
	for ; i < len(p) && p[i] != '"'; i++ { // the type, a JSON string
		if p[i] == '\\' {
			i++
		}
	}
	if i >= len(p) || !bytes.HasPrefix(p[i+1:], []byte(mid)) {
		return "", false
	}
	rest := p[i+1+len(mid):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return "", false
	}
	return string(rest[:j]), true
}
