package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Event types of the catalog (docs/contract.md §3).
const (
	EventBatchSucceeded            = "batch.succeeded"
	EventBatchFailed               = "batch.failed"
	EventBatchExpired              = "batch.expired"
	EventBatchCancelled            = "batch.cancelled"
	EventVideoGenerated            = "video.generated"
	EventInteractionRequiresAction = "interaction.requires_action"
	EventInteractionCompleted      = "interaction.completed"
	EventInteractionFailed         = "interaction.failed"
	EventInteractionCancelled      = "interaction.cancelled"
	EventVideoFailed               = "video.failed"
	EventWebhookPing               = "webhook.ping"

	// Operational events (extensions, outside Gemini's list): longhook
	// tells a project's webhooks about its own webhooks and deliveries.
	EventWebhookDisabled   = "webhook.disabled"   // auto-disable, 410 Gone, or a person
	EventWebhookEnabled    = "webhook.enabled"    // re-enabled
	EventDeliveryExhausted = "delivery.exhausted" // retries given up
)

// OperationalEventTypes are the operational extension types.
var OperationalEventTypes = []string{EventWebhookDisabled, EventWebhookEnabled, EventDeliveryExhausted}

// GeminiEventTypes are the seven types Gemini's WebhookService accepts.
var GeminiEventTypes = []string{
	EventBatchSucceeded, EventBatchExpired, EventBatchFailed,
	EventInteractionRequiresAction, EventInteractionCompleted, EventInteractionFailed,
	EventVideoGenerated,
}

// Catalog is the set of event types a server accepts: Gemini's seven, the
// extensions batch.cancelled, interaction.cancelled and video.failed (so
// every job kind has a terminal event for every outcome), the operational
// types (OperationalEventTypes), and operator-declared custom types.
type Catalog struct {
	types []string
}

// NewCatalog returns the built-in catalog plus custom types, which must be
// dot-separated segments of [a-zA-Z0-9_].
func NewCatalog(custom ...string) (*Catalog, error) {
	types := append([]string{}, GeminiEventTypes...)
	types = append(types, EventBatchCancelled, EventInteractionCancelled, EventVideoFailed)
	types = append(types, OperationalEventTypes...)
	for _, c := range custom {
		if !ValidEventTypeSyntax(c) {
			return nil, Invalid("event_types", "custom event type %q must be dot-separated segments of [a-zA-Z0-9_]", c)
		}
		if !slices.Contains(types, c) {
			types = append(types, c)
		}
	}
	return &Catalog{types: types}, nil
}

// Types lists the subscribable types.
func (c *Catalog) Types() []string { return slices.Clone(c.types) }

// TypeList is the subscribable types as error messages list them: "a, b, c".
func (c *Catalog) TypeList() string { return strings.Join(c.types, ", ") }

// Contains reports whether t is subscribable. webhook.ping is delivered but
// not subscribable.
func (c *Catalog) Contains(t string) bool { return slices.Contains(c.types, t) }

// Publishable reports whether t may be published through the events API.
func (c *Catalog) Publishable(t string) bool { return c.Contains(t) }

// CheckFilter checks an event-type filter of a list or stream: a type this
// server can hold events of (the catalog, or webhook.ping), or an error
// naming the valid values — a filter that matches nothing is refused, not
// answered with an empty list.
func (c *Catalog) CheckFilter(t string) error {
	if t == EventWebhookPing || c.Contains(t) {
		return nil
	}
	return fmt.Errorf("unknown event type %q; valid values: %s, %s", t, c.TypeList(), EventWebhookPing)
}

// ValidEventTypeSyntax reports whether t is dot-separated [a-zA-Z0-9_] segments.
func ValidEventTypeSyntax(t string) bool {
	if t == "" || len(t) > 128 {
		return false
	}
	for _, seg := range strings.Split(t, ".") {
		if seg == "" {
			return false
		}
		for _, r := range seg {
			if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

// ValidateSubscribedEvents checks a subscribed_events list.
func (c *Catalog) ValidateSubscribedEvents(events []string) error {
	if len(events) == 0 {
		return Invalid("subscribed_events", "subscribed_events must not be empty; valid values: %s", c.TypeList())
	}
	for _, e := range events {
		if !c.Contains(e) {
			return Invalid("subscribed_events", "subscribed_events: unknown event type %q; valid values: %s", e, c.TypeList())
		}
	}
	return nil
}

// Envelope renders the delivered body {"type","version","timestamp","data"}.
// data must be a JSON object (or empty, meaning {}).
func Envelope(eventType string, at time.Time, data json.RawMessage) ([]byte, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		data = json.RawMessage("{}")
	}
	// One allocation: the type is quoted as json.Marshal quotes it
	// (plain ASCII as it is), the timestamp appended in place.
	quoted := plainJSONString(eventType)
	var tb []byte
	if !quoted {
		var err error
		if tb, err = json.Marshal(eventType); err != nil {
			return nil, err
		}
	}
	const head, mid = `{"type":`, `,"version":"v1","timestamp":"`
	buf := make([]byte, 0, len(head)+len(eventType)+len(tb)+2+len(mid)+len(time.RFC3339Nano)+len(`","data":`)+len(data)+1)
	buf = append(buf, head...)
	if quoted {
		buf = append(buf, '"')
		buf = append(buf, eventType...)
		buf = append(buf, '"')
	} else {
		buf = append(buf, tb...)
	}
	buf = append(buf, mid...)
	buf = at.UTC().AppendFormat(buf, time.RFC3339)
	buf = append(buf, `","data":`...)
	buf = append(buf, data...)
	buf = append(buf, '}')
	return buf, nil
}

// plainJSONString reports whether json.Marshal writes s as it is, in
// quotes: printable ASCII without the characters it escapes.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// WithUserMetadata returns data with "user_metadata" set to meta (a JSON
// object), replacing any existing key. data must be a JSON object.
func WithUserMetadata(data, meta json.RawMessage) (json.RawMessage, error) {
	if len(meta) == 0 {
		return data, nil
	}
	m := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, Invalid("data", "data must be a JSON object")
		}
	}
	m["user_metadata"] = meta
	return json.Marshal(m)
}
