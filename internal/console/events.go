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
	// HookNames names the webhooks of Deliveries (id → name; a deleted
	// or unnamed webhook is shown by its id).
	HookNames map[string]string
	Events    []*core.Event
	Next      template.URL // the Older link's query (url.Values.Encode), "" on the last page
	// First is the newest page's query, with the same filters; "" on it.
	First   template.URL
	Catalog []string
	Message string
}

// eventsPage is how many events the list shows at once.
const eventsPage = 50

// events finds an event by id (with its payload and every delivery it
// caused), or lists the project's events of a type and an hour, newest
// first, keyset-paged by id — also those that reached no webhook.
func (c *Console) events(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	v := &eventsView{Query: strings.TrimSpace(q.Get("id")), Type: q.Get("type"), Since: q.Get("since"), Catalog: c.d.Catalog.Types()}
	if v.Query != "" {
		found, err := c.findEvent(r, s, v)
		if err != nil {
			c.fail(w, r, s, err)
			return
		}
		if found {
			c.render(w, r, s, http.StatusOK, "events", v)
			return
		}
	}
	if err := c.listEvents(r, s, v, q.Get("before")); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, s, http.StatusOK, "events", v)
}

// findEvent looks up the event v.Query names and fills v with it, its
// payload and its deliveries. An event the project does not have is no
// error: v.Message says so, and found is false.
func (c *Console) findEvent(r *http.Request, s *session, v *eventsView) (found bool, err error) {
	var ev *core.Event
	if core.ValidMessageID("msg_" + v.Query) { // an event id's shape: anything else names no event
		ev, err = c.d.Store.GetEvent(r.Context(), s.project, v.Query)
	} else {
		err = core.ErrNotFound
	}
	switch {
	case errors.Is(err, core.ErrNotFound):
		// Say so, and list the events below as without a search:
		// the page once showed "No events yet" under the message, as
		// if the project had none.
		v.Message = "No event with id " + v.Query + " in this project."
		return false, nil
	case err != nil:
		return false, err
	}
	v.Event = ev
	v.Payload = prettyJSON(ev.Payload)
	if ev.Dynamic != nil {
		v.Dynamic = prettyJSON(mustJSON(ev.Dynamic))
	}
	if v.Deliveries, err = c.eventDeliveries(r, s, ev); err != nil {
		return false, err
	}
	if v.HookNames, err = c.hookNames(r, s, v.Deliveries); err != nil {
		return false, err
	}
	return true, nil
}

// hookNames names the webhooks of deliveries: id → name, "" for a
// deleted or unnamed webhook (shown by its id). A page lists a few
// deliveries, of fewer webhooks: one look-up each.
func (c *Console) hookNames(r *http.Request, s *session, deliveries []*core.Delivery) (map[string]string, error) {
	names := map[string]string{}
	for _, d := range deliveries {
		if _, seen := names[d.WebhookID]; seen || d.WebhookID == "" {
			continue
		}
		h, err := c.d.Store.GetWebhook(r.Context(), s.project, d.WebhookID)
		switch {
		case errors.Is(err, core.ErrNotFound):
			names[d.WebhookID] = ""
		case err != nil:
			return nil, err
		default:
			names[d.WebhookID] = h.Name
		}
	}
	return names, nil
}

// listEvents fills v with a page of the project's events of v.Type in the
// hour from v.Since, older than the event before names (the Older link's
// page), and the next page's link when there may be more.
func (c *Console) listEvents(r *http.Request, s *session, v *eventsView, before string) error {
	since, err := parseInputTime(v.Since)
	if err != nil {
		return &apiError{Status: http.StatusBadRequest, Message: "since: " + err.Error()}
	}
	if err := c.checkType(v.Type); err != nil {
		return err
	}
	if before != "" && !core.ValidMessageID("msg_"+before) {
		return &apiError{Status: http.StatusBadRequest, Message: "before must be an event id"}
	}
	p := core.ListEventsParams{ProjectID: s.project, Type: v.Type, BeforeID: before, Limit: eventsPage}
	if !since.IsZero() {
		// Ids sort by creation time: read the hour down from its end.
		if end := core.SortableIDBound(since.Add(time.Hour)); p.BeforeID == "" || end < p.BeforeID {
			p.BeforeID = end
		}
	}
	evs, err := c.d.Store.ListEvents(r.Context(), p)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		if !since.IsZero() && ev.CreateTime.Before(since) {
			break // past the hour's start
		}
		v.Events = append(v.Events, ev)
	}
	if len(v.Events) == eventsPage {
		v.Next = eventsNext(v)
	}
	if before != "" {
		first := url.Values{}
		for k, val := range map[string]string{"type": v.Type, "since": v.Since} {
			if val != "" {
				first.Set(k, val)
			}
		}
		v.First = template.URL("?" + first.Encode())
	}
	return nil
}

// eventsNext is the Older link's query: the page after the last event
// listed, of the same type and hour.
func eventsNext(v *eventsView) template.URL {
	next := url.Values{"before": {v.Events[len(v.Events)-1].ID}}
	for k, val := range map[string]string{"type": v.Type, "since": v.Since} {
		if val != "" {
			next.Set(k, val)
		}
	}
	return template.URL(next.Encode()) // encoded: a template would escape the = and & of a string
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
