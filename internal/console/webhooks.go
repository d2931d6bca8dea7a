package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/publish"
)

const webhooksPage = 50

type webhookRow struct {
	*core.Webhook
	Rate string
	Last *core.Delivery
}

type webhooksView struct {
	Rows []webhookRow
	Next string
	// Paged is true past the first page (the pager links back to it).
	Paged     bool
	Catalog   []string
	FormError string
	// Form is what a refused create form held, shown again to correct.
	Form webhookForm
}

// webhookForm is the new-webhook form's values.
type webhookForm struct {
	Name, URI string
	Events    []string
}

// Has reports whether the form had event type t checked.
func (f webhookForm) Has(t string) bool { return slices.Contains(f.Events, t) }

// webhooks lists the project's webhooks with their success rate over the
// last 24 hours (one rollup query for the page) and latest delivery (one
// indexed look-up each).
func (c *Console) webhooks(w http.ResponseWriter, r *http.Request, s *session) {
	v, err := c.webhooksData(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, s, http.StatusOK, "webhooks", v)
}

func (c *Console) webhooksData(r *http.Request, s *session) (*webhooksView, error) {
	ctx := r.Context()
	hooks, err := c.d.Store.ListWebhooks(ctx, core.ListWebhooksParams{ProjectID: s.project, AfterID: r.URL.Query().Get("after"), Limit: webhooksPage})
	if err != nil {
		return nil, err
	}
	now := c.d.Clock.Now().UTC()
	end := now.Truncate(core.StatsBucket).Add(core.StatsBucket)
	rows, err := c.d.Store.Stats(ctx, core.StatsParams{ProjectID: s.project, Since: end.Add(-24 * time.Hour), Until: end, Step: 24 * time.Hour,
		ByWebhook: true, NoLatency: true})
	if err != nil {
		return nil, err
	}
	rate := map[string]core.StatsCounts{}
	for _, row := range rows {
		cur := rate[row.WebhookID]
		cur.Add(row.StatsCounts)
		rate[row.WebhookID] = cur
	}
	v := &webhooksView{Catalog: c.d.Catalog.Types(), Paged: r.URL.Query().Get("after") != ""}
	for _, h := range hooks {
		last, err := c.d.Store.ListDeliveries(ctx, core.ListDeliveriesParams{ProjectID: s.project, WebhookID: h.ID, Limit: 1})
		if err != nil {
			return nil, err
		}
		row := webhookRow{Webhook: h, Rate: pct(rate[h.ID].SuccessRate())}
		if len(last) > 0 {
			row.Last = last[0]
		}
		v.Rows = append(v.Rows, row)
	}
	if len(hooks) == webhooksPage {
		v.Next = hooks[len(hooks)-1].ID
	}
	return v, nil
}

// webhookJSON is the part of the API's webhook resource the console reads.
type webhookJSON struct {
	ID               string `json:"id"`
	NewSigningSecret string `json:"new_signing_secret"`
	Secret           string `json:"secret"`
}

type createdView struct {
	Title   string
	Webhook *core.Webhook
	Secret  string
	Note    string
}

// createWebhook creates a webhook through the API and shows its secret,
// once: it is in this response only.
func (c *Console) createWebhook(w http.ResponseWriter, r *http.Request, s *session) {
	body := map[string]any{
		"name":              strings.TrimSpace(r.PostForm.Get("name")),
		"uri":               strings.TrimSpace(r.PostForm.Get("uri")),
		"subscribed_events": nonNil(r.PostForm["events"]),
	}
	var out webhookJSON
	err := errNoEvents(r.PostForm["events"])
	if err == nil {
		err = c.call(r.Context(), s, "POST", "/v1/webhooks", body, &out)
	}
	if err != nil {
		v, derr := c.webhooksData(r, s)
		if derr != nil {
			c.fail(w, r, s, derr)
			return
		}
		v.FormError = err.Error()
		v.Form = webhookForm{Name: r.PostForm.Get("name"), URI: r.PostForm.Get("uri"), Events: r.PostForm["events"]}
		c.render(w, r, s, http.StatusBadRequest, "webhooks", v)
		return
	}
	h, err := c.d.Store.GetWebhook(r.Context(), s.project, out.ID)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.showOnce(w, r, s, createdView{Title: "Webhook created", Webhook: h, Secret: out.NewSigningSecret,
		Note: "Copy the signing secret now: it is shown only once. Your receiver verifies each delivery's signature with it."})
}

// errNoEvents refuses a webhook form with no event type checked, in the
// form's words (the API's "subscribed_events must not be empty; valid
// values: …" names a JSON field the form does not show).
func errNoEvents(events []string) error {
	if len(events) == 0 {
		return &apiError{Status: http.StatusBadRequest, Message: "Choose at least one event type: a webhook receives only the types it subscribes to."}
	}
	return nil
}

// showOnce redirects to the page that shows v's secret once (created):
// a page a form answered directly would be sent again by a reload,
// creating a second webhook or rotating the secret once more.
func (c *Console) showOnce(w http.ResponseWriter, r *http.Request, s *session, v createdView) {
	tok := c.sessions.stash(s.id, v, c.d.Clock.Now())
	http.Redirect(w, r, "/console/webhooks/"+url.PathEscape(v.Webhook.ID)+"/created?r="+url.QueryEscape(tok), http.StatusSeeOther)
}

// created shows a stashed secret, once; again, it says it was shown.
func (c *Console) created(w http.ResponseWriter, r *http.Request, s *session) {
	got, _ := c.sessions.take(r, s.id, r.URL.Query().Get("r"), c.d.Clock.Now())
	v, ok := got.(createdView)
	if !ok || v.Webhook.ID != r.PathValue("id") {
		c.render(w, r, s, http.StatusGone, "error", errorView{Title: "Shown once already",
			Message: "A signing secret is shown once, on the page after the form that made it. If it was not copied, rotate the secret on the webhook's page.",
			Back:    "/console/webhooks/" + url.PathEscape(r.PathValue("id")), BackLabel: "← Back to the webhook"})
		return
	}
	c.render(w, r, s, http.StatusOK, "created", v)
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

type webhookView struct {
	Hook       *core.Webhook
	Secrets    []core.SigningSecret
	Stats      core.StatsCounts
	Rate       string
	Deliveries []*core.Delivery
	Filter     deliveryFilter
	Next       string
	Catalog    []string
	Statuses   []core.DeliveryStatus
	Recover    *recoverView
	// Edit is what a refused edit form held, shown again to correct
	// with EditError (nil: the form shows the webhook as it is).
	Edit *webhookForm
	// RecoverSince fills the recovery form's start (?recover_since=,
	// set when an auto-disabled webhook is enabled).
	RecoverSince string
	EditError    string
	Now          time.Time
	// Shown is when the deliveries were read (RFC 3339): the live stream
	// sends again the rows that changed after it.
	Shown string
}

type recoverView struct {
	Since, Until string
	Count        int
	More         bool
	Done         bool
}

// deliveryFilter is the deliveries table's filter, from the query string.
type deliveryFilter struct {
	Status, EventType, Since, Until, Before string
}

func (f deliveryFilter) Query() string { return f.values().Encode() }

func (f deliveryFilter) values() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "type": f.EventType, "since": f.Since, "until": f.Until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// Newest is the query of the first page with the same filters, typed as
// a URL as Older is.
func (f deliveryFilter) Newest() template.URL { return template.URL(f.values().Encode()) }

// Older is the query of the page of deliveries older than id, with the
// same filters — typed as a URL, already encoded, as a template would
// escape a string's = and & into one meaningless value.
func (f deliveryFilter) Older(id string) template.URL {
	q := f.values()
	q.Set("before", id)
	return template.URL(q.Encode())
}

// timeInput is the format of <input type="datetime-local"> (read as UTC).
const timeInput = "2006-01-02T15:04"

func parseInputTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{timeInput, "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time like 2026-05-05T12:00 (UTC)", s)
}

const deliveriesPage = 50

// webhook shows one webhook, its actions and its deliveries (filtered,
// newest first, keyset-paged by delivery id).
func (c *Console) webhook(w http.ResponseWriter, r *http.Request, s *session) {
	v, err := c.webhookData(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, s, http.StatusOK, "webhook", v)
}

func (c *Console) webhookData(r *http.Request, s *session) (*webhookView, error) {
	ctx := r.Context()
	h, err := c.d.Store.GetWebhook(ctx, s.project, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	recoverSince := ""
	f := deliveryFilter{Status: q.Get("status"), EventType: q.Get("type"), Since: q.Get("since"), Until: q.Get("until"), Before: q.Get("before")}
	p := core.ListDeliveriesParams{ProjectID: s.project, WebhookID: h.ID, Status: core.DeliveryStatus(f.Status),
		EventType: f.EventType, BeforeID: f.Before, Limit: deliveriesPage}
	if f.Status != "" && !p.Status.Valid() {
		return nil, &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf("status: unknown value %q; valid values: pending, succeeded, failed, skipped, cancelled", f.Status)}
	}
	if err := c.checkType(f.EventType); err != nil {
		return nil, err
	}
	if p.Since, err = parseInputTime(f.Since); err != nil {
		return nil, &apiError{Status: http.StatusBadRequest, Message: "since: " + err.Error()}
	}
	if p.Until, err = parseInputTime(f.Until); err != nil {
		return nil, &apiError{Status: http.StatusBadRequest, Message: "until: " + err.Error()}
	}
	if f.Before != "" && !core.ValidMessageID(f.Before) {
		return nil, &apiError{Status: http.StatusBadRequest, Message: "before must be a delivery id"}
	}
	// Ids sort by creation time: bound the index scan to the range.
	if !p.Until.IsZero() && p.BeforeID == "" {
		p.BeforeID = core.MessageIDFloor(p.Until.UnixMilli())
	}
	if !p.Since.IsZero() {
		p.AfterID = core.MessageIDFloor(p.Since.UnixMilli() - 1)
	}
	shown := c.d.Clock.Now().UTC()
	ds, err := c.d.Store.ListDeliveries(ctx, p)
	if err != nil {
		return nil, err
	}
	now := c.d.Clock.Now().UTC()
	end := now.Truncate(core.StatsBucket).Add(core.StatsBucket)
	rows, err := c.d.Store.Stats(ctx, core.StatsParams{ProjectID: s.project, WebhookID: h.ID, Since: end.Add(-24 * time.Hour), Until: end, Step: 24 * time.Hour})
	if err != nil {
		return nil, err
	}
	if rs := q.Get("recover_since"); rs != "" {
		if t, err := parseInputTime(rs); err == nil {
			recoverSince = t.Format(timeInput)
		}
	}
	v := &webhookView{Hook: h, Deliveries: ds, Filter: f, RecoverSince: recoverSince, Catalog: c.d.Catalog.Types(), Now: now, Shown: shown.Format(time.RFC3339Nano),
		Statuses: []core.DeliveryStatus{core.DeliveryPending, core.DeliverySucceeded, core.DeliveryFailed, core.DeliverySkipped, core.DeliveryCancelled}}
	for _, row := range rows {
		v.Stats.Add(row.StatsCounts)
	}
	v.Rate = pct(v.Stats.SuccessRate())
	for _, sec := range h.Secrets {
		if !sec.Expired(now) {
			v.Secrets = append(v.Secrets, sec)
		}
	}
	if len(ds) == deliveriesPage {
		v.Next = ds[len(ds)-1].ID
	}
	return v, nil
}

// webhookAction applies one of the webhook page's forms through the API.
func (c *Console) webhookAction(w http.ResponseWriter, r *http.Request, s *session) {
	id, action := r.PathValue("id"), r.PathValue("action")
	base := "/v1/webhooks/" + url.PathEscape(id)
	back := "/console/webhooks/" + url.PathEscape(id)
	ctx := r.Context()
	var err error
	done := ""
	switch action {
	case "edit":
		form := webhookForm{Name: r.PostForm.Get("name"), URI: r.PostForm.Get("uri"), Events: r.PostForm["events"]}
		if err = errNoEvents(form.Events); err == nil {
			err = c.call(ctx, s, "PATCH", base+"?update_mask=name,uri,subscribed_events", map[string]any{"name": strings.TrimSpace(form.Name),
				"uri": strings.TrimSpace(form.URI), "subscribed_events": nonNil(form.Events)}, nil)
		}
		if ae := (*apiError)(nil); errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
			// Show the form again with what was typed and why: the
			// error page lost both.
			v, verr := c.webhookData(r, s)
			if verr != nil {
				c.fail(w, r, s, verr)
				return
			}
			v.Edit, v.EditError = &form, strings.TrimSuffix(ae.Message, ".")
			c.render(w, r, s, http.StatusBadRequest, "webhook", v)
			return
		}
		done = "Saved."
	case "enable", "disable":
		// Enabling starts a fresh failure run: the time an auto-disabled
		// webhook began failing is gone from it afterwards, so read it
		// first and hand it to the recovery form.
		var failingSince time.Time
		if h, gerr := c.d.Store.GetWebhook(ctx, s.project, id); gerr == nil && action == "enable" && h.State == core.WebhookDisabledDueToFailedDeliveries {
			failingSince = h.FailingSince
		}
		state := map[string]string{"enable": "enabled", "disable": "disabled"}[action]
		err = c.call(ctx, s, "PATCH", base+"?update_mask=state", map[string]any{"state": state}, nil)
		done = map[string]string{"enabled": "Webhook enabled. Deliveries are sent again.",
			"disabled": "Webhook disabled. Deliveries that fall due are skipped until you enable it."}[state]
		if ret := r.PostForm.Get("return"); action == "enable" && strings.HasPrefix(ret, "/console/deliveries/") && safeNext(ret) == ret {
			// Enabled from a delivery's page: back to it, to redeliver.
			back, done = ret, "Webhook enabled. You can redeliver this delivery now."
		} else if !failingSince.IsZero() {
			back += "?recover_since=" + url.QueryEscape(failingSince.UTC().Format(timeInput))
			done = "Webhook enabled. To send what it missed, count the deliveries since it began failing (" + when(failingSince) +
				" UTC): Recover a time range, below, is filled in."
		}
	case "ping":
		err = c.call(ctx, s, "POST", base+":ping", map[string]any{}, nil)
		done = "Ping sent: it appears below in a moment."
	case "test":
		err = c.sendTest(r, s, id)
		done = "Test event sent: it appears below in a moment."
	case "delete":
		if r.PostForm.Get("confirm") != id {
			err = &apiError{Status: http.StatusBadRequest, Message: "To delete, type the webhook's id in the confirmation box."}
			break
		}
		if err = c.call(ctx, s, "DELETE", base, nil, nil); err == nil {
			http.Redirect(w, r, s.doneURL("/console/webhooks", "Webhook deleted; its delivery history stays readable."), http.StatusSeeOther)
			return
		}
	case "rotate":
		behavior := r.PostForm.Get("revocation")
		if behavior != "revoke_previous_secrets_immediately" {
			behavior = "revoke_previous_secrets_after_h24"
		}
		var out webhookJSON
		if err = c.call(ctx, s, "POST", base+":rotateSigningSecret", map[string]any{"revocation_behavior": behavior}, &out); err == nil {
			h, gerr := c.d.Store.GetWebhook(ctx, s.project, id)
			if gerr != nil {
				c.fail(w, r, s, gerr)
				return
			}
			// The server's own expiry of the previous secret: 24 h, or
			// less under serve --time-scale.
			var until time.Time
			for _, sec := range h.Secrets {
				if sec.ExpireTime.After(until) {
					until = sec.ExpireTime
				}
			}
			note := "The previous secret stays valid until " + when(until) + " UTC, so receivers can switch without dropping deliveries."
			if behavior == "revoke_previous_secrets_immediately" {
				note = "The previous secret was revoked at once: receivers still using it reject deliveries from now on."
			}
			c.showOnce(w, r, s, createdView{Title: "Signing secret rotated", Webhook: h, Secret: out.Secret,
				Note: "Copy the new secret now: it is shown only once. " + note})
			return
		}
	case "recover":
		c.recoverAction(w, r, s, id)
		return
	default:
		err = &apiError{Status: http.StatusNotFound, Message: "Unknown action."}
	}
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, s.doneURL(back, done), http.StatusSeeOther)
}

// sendTest publishes a sample event of the chosen catalog type to this
// webhook only, whatever it subscribes to.
func (c *Console) sendTest(r *http.Request, s *session, id string) error {
	typ := r.PostForm.Get("type")
	if !slices.Contains(c.d.Catalog.Types(), typ) {
		return &apiError{Status: http.StatusBadRequest, Message: "Choose an event type from the catalog."}
	}
	if _, err := c.d.Store.GetWebhook(r.Context(), s.project, id); err != nil {
		return err
	}
	data, _ := json.Marshal(map[string]any{"test": true, "sent_from": "longhook console", "webhook_id": id})
	_, err := c.d.Publisher.Publish(r.Context(), s.project, []publish.Input{{Type: typ, Data: data, OnlyWebhook: id, Internal: true}})
	return err
}

// A recovery from the console counts (dry run) and re-queues up to
// recoverMost deliveries — the API's largest :recover limit — the latter
// recoverStep per call.
const (
	recoverMost = 10000
	recoverStep = 1000
)

// recoverAction re-queues deliveries of a time range: the first submit is a
// dry run that shows the count; the confirmation submits it for real.
func (c *Console) recoverAction(w http.ResponseWriter, r *http.Request, s *session, id string) {
	since, err := parseInputTime(r.PostForm.Get("since"))
	if err == nil && since.IsZero() {
		err = fmt.Errorf("choose the start of the range")
	}
	if err != nil {
		c.fail(w, r, s, &apiError{Status: http.StatusBadRequest, Message: "since: " + err.Error()})
		return
	}
	until, err := parseInputTime(r.PostForm.Get("until"))
	if err != nil {
		c.fail(w, r, s, &apiError{Status: http.StatusBadRequest, Message: "until: " + err.Error()})
		return
	}
	real := r.PostForm.Get("confirm") == "yes"
	body := map[string]any{"since": since.Format(time.RFC3339), "dry_run": !real, "limit": recoverMost}
	if !until.IsZero() {
		body["until"] = until.Format(time.RFC3339)
	}
	var out struct {
		Count   int  `json:"count"`
		HasMore bool `json:"has_more"`
	}
	path := "/v1/webhooks/" + url.PathEscape(id) + ":recover"
	if real {
		// The whole range the dry run counted, in steps as the CLI does,
		// each going on after the last (page_token): one call of the API's
		// default limit re-queued the first 1,000 and said nothing of the
		// rest, and steps without the token re-took the first deliveries
		// again once they had finished.
		body["limit"] = recoverStep
		total, more := 0, true
		for range recoverMost / recoverStep {
			var step struct {
				Count         int    `json:"count"`
				NextPageToken string `json:"next_page_token"`
			}
			if err := c.call(r.Context(), s, "POST", path, body, &step); err != nil {
				c.fail(w, r, s, err)
				return
			}
			total += step.Count
			if more = step.NextPageToken != ""; !more {
				break
			}
			body["page_token"] = step.NextPageToken
		}
		done := fmt.Sprintf("Recovery started: %d deliveries re-queued.", total)
		if more {
			done += fmt.Sprintf(" More than %d matched: recover the range again for the rest.", recoverMost)
		}
		http.Redirect(w, r, s.doneURL("/console/webhooks/"+url.PathEscape(id), done), http.StatusSeeOther)
		return
	}
	if err := c.call(r.Context(), s, "POST", path, body, &out); err != nil {
		c.fail(w, r, s, err)
		return
	}
	v, err := c.webhookData(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v.Recover = &recoverView{Since: r.PostForm.Get("since"), Until: r.PostForm.Get("until"), Count: out.Count, More: out.HasMore}
	c.render(w, r, s, http.StatusOK, "webhook", v)
}
