package console

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
)

type eventsView struct {
	Query      string
	Type       string
	Since      string
	Event      *core.Event
	Payload    string
	Dynamic    string
	Deliveries []*core.Delivery
	Events     []*core.Event
	Next       template.URL // the Older link's query (url.Values.Encode), "" on the last page
	Catalog    []string
	Message    string
}

// eventsPage is how many events the list shows at once.
const eventsPage = 50

// events finds an event by id (with its payload and every delivery it
// caused), or lists the project's events of a type and an hour, newest
// first, keyset-paged by id — also those that reached no webhook.
func (c *Console) events(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	q := r.URL.Query()
	v := &eventsView{Query: strings.TrimSpace(q.Get("id")), Type: q.Get("type"), Since: q.Get("since"), Catalog: c.d.Catalog.Types()}
	if v.Query != "" {
		var ev *core.Event
		var err error
		if core.ValidMessageID("msg_" + v.Query) { // an event id's shape: anything else names no event
			ev, err = c.d.Store.GetEvent(ctx, s.project, v.Query)
		} else {
			err = core.ErrNotFound
		}
		switch {
		case errors.Is(err, core.ErrNotFound):
			// Say so, and list the events below as without a search:
			// the page once showed "No events yet" under the message, as
			// if the project had none.
			v.Message = "No event with id " + v.Query + " in this project."
		case err != nil:
			c.fail(w, r, s, err)
			return
		default:
			v.Event = ev
			v.Payload = prettyJSON(ev.Payload)
			if ev.Dynamic != nil {
				v.Dynamic = prettyJSON(mustJSON(ev.Dynamic))
			}
			if v.Deliveries, err = c.eventDeliveries(r, s, ev); err != nil {
				c.fail(w, r, s, err)
				return
			}
			c.render(w, r, s, http.StatusOK, "events", v)
			return
		}
	}
	since, err := parseInputTime(v.Since)
	if err != nil {
		c.fail(w, r, s, &apiError{Status: http.StatusBadRequest, Message: "since: " + err.Error()})
		return
	}
	if err := c.checkType(v.Type); err != nil {
		c.fail(w, r, s, err)
		return
	}
	before := q.Get("before")
	if before != "" && !core.ValidMessageID("msg_"+before) {
		c.fail(w, r, s, &apiError{Status: http.StatusBadRequest, Message: "before must be an event id"})
		return
	}
	p := core.ListEventsParams{ProjectID: s.project, Type: v.Type, BeforeID: before, Limit: eventsPage}
	if !since.IsZero() {
		// Ids sort by creation time: read the hour down from its end.
		if end := core.SortableIDBound(since.Add(time.Hour)); p.BeforeID == "" || end < p.BeforeID {
			p.BeforeID = end
		}
	}
	evs, err := c.d.Store.ListEvents(ctx, p)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	for _, ev := range evs {
		if !since.IsZero() && ev.CreateTime.Before(since) {
			break // past the hour's start
		}
		v.Events = append(v.Events, ev)
	}
	if len(v.Events) == eventsPage {
		next := url.Values{"before": {v.Events[len(v.Events)-1].ID}}
		for k, val := range map[string]string{"type": v.Type, "since": v.Since} {
			if val != "" {
				next.Set(k, val)
			}
		}
		v.Next = template.URL(next.Encode()) // encoded: a template would escape the = and & of a string
	}
	c.render(w, r, s, http.StatusOK, "events", v)
}

// checkType refuses a type filter that names no event type (a typo in a
// hand-edited URL would otherwise show an empty list), as the API does.
func (c *Console) checkType(t string) error {
	if t == "" {
		return nil
	}
	if err := c.d.Catalog.CheckFilter(t); err != nil {
		return &apiError{Status: http.StatusBadRequest, Message: "type: " + err.Error()}
	}
	return nil
}

// eventDeliveries reads the deliveries an event caused. They were made
// when it was accepted, with ids of the event's own millisecond (publish
// stamps the event and its deliveries with one time), so the scan covers
// that millisecond only and pages through it — other events of one batch
// publish share it — until it has found as many as the event created.
func (c *Console) eventDeliveries(r *http.Request, s *session, ev *core.Event) ([]*core.Delivery, error) {
	if ev.DeliveryCount == 0 {
		return nil, nil
	}
	ms := ev.CreateTime.UnixMilli()
	p := core.ListDeliveriesParams{ProjectID: s.project, BeforeID: core.MessageIDFloor(ms + 1),
		AfterID: core.MessageIDFloor(ms), Limit: eventDeliveriesPage}
	var out []*core.Delivery
	for len(out) < ev.DeliveryCount {
		ds, err := c.d.Store.ListDeliveries(r.Context(), p)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if d.EventID == ev.ID {
				out = append(out, d)
			}
		}
		if len(ds) < p.Limit {
			break
		}
		p.BeforeID = ds[len(ds)-1].ID
	}
	return out, nil
}

// eventDeliveriesPage is how many deliveries one read of an event's
// millisecond takes.
const eventDeliveriesPage = 1000
