package console

import (
	"net/http"
	"time"

	"github.com/longhook/longhook/internal/core"
)

type jobsView struct {
	Kind     string
	Jobs     []*core.Job
	Next     string
	Disabled bool
}

// jobs lists the project's batches, video operations and interactions,
// newest first.
func (c *Console) jobs(w http.ResponseWriter, r *http.Request, s *session) {
	v := &jobsView{Kind: r.URL.Query().Get("kind"), Disabled: c.d.Jobs == nil}
	if c.d.Jobs != nil {
		p := core.ListJobsParams{ProjectID: s.project, BeforeID: r.URL.Query().Get("before"), Limit: 50}
		switch k := core.JobKind(v.Kind); k {
		case core.JobBatch, core.JobVideo, core.JobInteraction:
			p.Kinds = []core.JobKind{k}
		default:
			v.Kind = ""
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

type timelineEntry struct {
	Time  time.Time
	What  string
	Class string
}

type jobView struct {
	Job          *core.Job
	Timeline     []timelineEntry
	Config       string
	UserMetadata string
	Request      string
	Result       string
	EventTypes   []string
}

// job shows one job: its state, the timeline of its transitions (each
// emitted a webhook event), where its events go, and its request.
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
	v := jobView{Job: j, Request: prettyJSON(j.Request), Result: prettyJSON(j.Result)}
	v.Timeline = append(v.Timeline, timelineEntry{j.CreateTime, "accepted (pending)", "muted"})
	if !j.StartTime.IsZero() {
		v.Timeline = append(v.Timeline, timelineEntry{j.StartTime, "started running", "warn"})
	}
	if !j.EndTime.IsZero() {
		cls := "ok"
		if j.State != core.JobSucceeded {
			cls = "bad"
		}
		what := string(j.State)
		if j.ErrorMessage != "" {
			what += ": " + j.ErrorMessage
		}
		v.Timeline = append(v.Timeline, timelineEntry{j.EndTime, what, cls})
	}
	if j.WebhookConfig != nil {
		cfg := *j.WebhookConfig
		if len(cfg.UserMetadata) > 0 {
			v.UserMetadata = prettyJSON(cfg.UserMetadata)
		}
		cfg.UserMetadata = nil
		v.Config = prettyJSON(mustJSON(cfg))
	}
	switch j.Kind {
	case core.JobBatch:
		v.EventTypes = []string{core.EventBatchSucceeded, core.EventBatchFailed, core.EventBatchCancelled, core.EventBatchExpired}
	case core.JobVideo:
		v.EventTypes = []string{core.EventVideoGenerated, core.EventVideoFailed}
	case core.JobInteraction:
		v.EventTypes = []string{core.EventInteractionCompleted, core.EventInteractionRequiresAction, core.EventInteractionFailed, core.EventInteractionCancelled}
	}
	c.render(w, r, s, http.StatusOK, "job", v)
}
