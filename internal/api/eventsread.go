package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/longhook/longhook/internal/core"
)

// eventStore is what the events handlers (and listen) need of the store.
type eventStore interface {
	GetEvent(ctx context.Context, projectID, id string) (*core.Event, error)
	ListEvents(ctx context.Context, p core.ListEventsParams) ([]*core.Event, error)
}

// eventDetailJSON is one stored event (GET /{v}/events/{id} and lists):
// the publish answer plus what was published.
type eventDetailJSON struct {
	*eventJSON
	Subject        string              `json:"subject,omitempty"`
	IdempotencyKey string              `json:"idempotency_key,omitempty"`
	WebhookConfig  *core.WebhookConfig `json:"webhook_config,omitempty"`
	// Data is the event's data as every destination receives it.
	Data json.RawMessage `json:"data,omitempty"`
}

func eventDetailOut(ev *core.Event) *eventDetailJSON {
	out := &eventDetailJSON{
		eventJSON:      eventOut(ev),
		Subject:        ev.Subject,
		IdempotencyKey: ev.IdempotencyKey,
		WebhookConfig:  ev.Dynamic,
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(ev.Payload, &env) == nil {
		out.Data = env.Data
	}
	return out
}

func (s *server) getEvent(r *http.Request, key core.APIKey) (any, error) {
	id := r.PathValue("id")
	ev, err := s.events.GetEvent(r.Context(), key.ProjectID, id)
	if err != nil {
		return nil, notFoundAs(err, "event", id)
	}
	return eventDetailOut(ev), nil
}

type listEventsResponse struct {
	Events        []*eventDetailJSON `json:"events,omitempty"`
	NextPageToken string             `json:"next_page_token,omitempty"`
}

// listEvents serves GET /{v}/events?type=&page_size=&page_token=, newest
// first.
func (s *server) listEvents(r *http.Request, key core.APIKey) (any, error) {
	q := r.URL.Query()
	p := core.ListEventsParams{ProjectID: key.ProjectID}
	if et := q.Get("type"); et != "" {
		if err := s.checkEventTypeFilter("type", et); err != nil {
			return nil, err
		}
		p.Type = et
	}
	size, err := pageSize(q)
	if err != nil {
		return nil, err
	}
	const collection = "events"
	if p.BeforeID, err = s.tokens.decode(collection, key.ProjectID, pageToken(q)); err != nil {
		return nil, err
	}
	p.Limit = size + 1
	evs, err := s.events.ListEvents(r.Context(), p)
	if err != nil {
		return nil, err
	}
	evs, more := trimPage(evs, size)
	var resp listEventsResponse
	if more {
		resp.NextPageToken = s.tokens.encode(collection, key.ProjectID, evs[len(evs)-1].ID)
	}
	for _, ev := range evs {
		resp.Events = append(resp.Events, eventDetailOut(ev))
	}
	return &resp, nil
}

// checkEventTypeFilter checks a list or stream filter on the event type
// (param names the query parameter): 400 naming the parameter and the
// valid values (core.Catalog.CheckFilter), as an unknown status is.
func (s *server) checkEventTypeFilter(param, t string) error {
	if err := s.d.Catalog.CheckFilter(t); err != nil {
		return core.Invalid(param, "%s: %v", param, err)
	}
	return nil
}
