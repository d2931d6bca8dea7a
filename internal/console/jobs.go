package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
)

type jobsView struct {
	Kind     string
	Jobs     []*core.Job
	Next     string
	Paged    bool // past the newest page
	Disabled bool
}

// jobs lists the project's batches, video operations and interactions,
// newest first.
func (c *Console) jobs(w http.ResponseWriter, r *http.Request, s *session) {
	v := &jobsView{Kind: r.URL.Query().Get("kind"), Disabled: c.d.Jobs == nil, Paged: r.URL.Query().Get("before") != ""}
	if c.d.Jobs != nil {
		p := core.ListJobsParams{ProjectID: s.project, BeforeID: r.URL.Query().Get("before"), Limit: 50}
		switch k := core.JobKind(v.Kind); k {
		case core.JobBatch, core.JobVideo, core.JobInteraction:
			p.Kinds = []core.JobKind{k}
		case "":
		default:
			// As the other pages' filters: a typo in a hand-edited URL is
			// named, not shown as every job under the tab it asked for.
			c.fail(w, r, s, &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf("kind: unknown value %q; valid values: batch, video, interaction", v.Kind)})
			return
		}
		js, err := c.d.Jobs.ListJobs(r.Context(), p)
		if err != nil {
			c.fail(w, r, s, err)
			return
		}
		v.Jobs = js
		if len(js) == p.Limit {
			v.Next = js[len(js)-1].ID
		}
	}
	c.render(w, r, s, http.StatusOK, "jobs", v)
}

// timelineEntry is one line of a job's timeline: a transition, or an
// event the job emitted (Event set) with the deliveries it caused.
type timelineEntry struct {
	Time       time.Time
	What       string
	Class      string
	Event      *core.Event
	Sequence   int // data.sequence of an emitted event
	Deliveries []*core.Delivery
	Waiting    bool // the event is in the job's outbox, not yet published
}

type jobView struct {
	Job          *core.Job
	Timeline     []timelineEntry
	Emitted      int
	Config       string
	UserMetadata string
	// Resource is the job as the API shows it (GET of its resource
	// name; an interaction with its input), so the page names states,
	// fields and results as every client sees them, not the server's
	// stored records.
	Resource     string
	ResourcePath string
	// HookNames names the webhooks of the timeline's deliveries.
	HookNames map[string]string
}

// job shows one job: its state, the timeline of its transitions and of
// the webhook events it emitted (each with its deliveries), where its
// events go, and its request.
func (c *Console) job(w http.ResponseWriter, r *http.Request, s *session) {
	if c.d.Jobs == nil {
		c.fail(w, r, s, core.ErrNotFound)
		return
	}
	j, err := c.d.Jobs.GetJob(r.Context(), s.project, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v := jobView{Job: j}
	path := "/v1beta/" + jobs.ResourceName(j)
	if j.Kind == core.JobInteraction {
		path += "?include_input=true"
	}
	var res json.RawMessage
	if err := c.call(r.Context(), s, "GET", path, nil, &res); err != nil {
		c.fail(w, r, s, err)
		return
	}
	v.Resource, v.ResourcePath = prettyJSON(res), path
	v.Timeline = append(v.Timeline, timelineEntry{Time: j.CreateTime, What: "accepted (" + core.JobPending.Public(j.Kind) + ")", Class: "muted"})
	if !j.StartTime.IsZero() {
		v.Timeline = append(v.Timeline, timelineEntry{Time: j.StartTime, What: "started running", Class: "warn"})
	}
	if !j.EndTime.IsZero() {
		cls := "ok"
		if j.State != core.JobSucceeded {
			cls = "bad"
		}
		what := jobState(j)
		if j.ErrorMessage != "" {
			what += ": " + j.ErrorMessage
		}
		v.Timeline = append(v.Timeline, timelineEntry{Time: j.EndTime, What: what, Class: cls})
	}
	evs, err := c.jobEvents(r, s, j)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	v.Emitted = len(evs)
	var ds []*core.Delivery
	for _, e := range evs {
		ds = append(ds, e.Deliveries...)
	}
	if v.HookNames, err = c.hookNames(r, s, ds); err != nil {
		c.fail(w, r, s, err)
		return
	}
	v.Timeline = append(v.Timeline, evs...)
	if ob := j.Outbox; ob != nil {
		v.Timeline = append(v.Timeline, timelineEntry{Time: ob.Time, What: ob.Type, Class: "warn", Sequence: ob.Seq, Waiting: true})
	}
	// Oldest first; a transition before the event it caused.
	slices.SortStableFunc(v.Timeline, func(a, b timelineEntry) int { return a.Time.Compare(b.Time) })
	if j.WebhookConfig != nil {
		cfg := *j.WebhookConfig
		if len(cfg.UserMetadata) > 0 {
			v.UserMetadata = prettyJSON(cfg.UserMetadata)
		}
		cfg.UserMetadata = nil
		v.Config = prettyJSON(mustJSON(cfg))
	}
	c.render(w, r, s, http.StatusOK, "job", v)
}

// jobEvents reads the events a job emitted, oldest first, each with its
// deliveries. A job publishes its events under fixed idempotency keys
// (internal/jobs: job:ID:N, and job:ID:terminal for the last), so they are
// found through the idempotency index, whatever the store's size.
func (c *Console) jobEvents(r *http.Request, s *session, j *core.Job) ([]timelineEntry, error) {
	if j.Sequence == 0 {
		return nil, nil
	}
	keys := []string{"job:" + j.ID + ":terminal"}
	for n := 1; n <= min(j.Sequence, 999); n++ {
		keys = append(keys, "job:"+j.ID+":"+strconv.Itoa(n))
	}
	evs, err := c.d.Store.EventsByKeys(r.Context(), s.project, keys)
	if err != nil {
		return nil, err
	}
	out := make([]timelineEntry, 0, len(evs))
	for _, ev := range evs {
		if !strings.HasSuffix(ev.Subject, "/"+j.ID) {
			continue // published under a job's key, but not by the job
		}
		var p struct {
			Data struct {
				Sequence int `json:"sequence"`
			} `json:"data"`
		}
		_ = json.Unmarshal(ev.Payload, &p)
		ds, err := c.eventDeliveries(r, s, ev)
		if err != nil {
			return nil, err
		}
		out = append(out, timelineEntry{Time: ev.CreateTime, What: ev.Type, Class: eventClass(ev.Type), Event: ev,
			Sequence: p.Data.Sequence, Deliveries: ds})
	}
	return out, nil
}

// eventClass colours a job event by what it says happened.
func eventClass(typ string) string {
	switch {
	case strings.HasSuffix(typ, ".failed"), strings.HasSuffix(typ, ".expired"):
		return "bad"
	case strings.HasSuffix(typ, ".requires_action"), strings.HasSuffix(typ, ".cancelled"):
		return "warn"
	}
	return "ok"
}
