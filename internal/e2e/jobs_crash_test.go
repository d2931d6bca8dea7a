package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// crashJob is one job of TestJobsCrash.
type crashJob struct {
	kind    string // batch, video, interaction
	id      string // the event's data.id (batches/…, models/…/operations/…, bare interaction id)
	path    string // GET path of the resource
	want    string // the terminal state GET must show
	event   string // the terminal event type the receiver must get
	midRun  bool   // observed running when serve was killed (every succeeding batch: held)
	failing bool
}

// terminal reads the job and returns its state as the API spells it and
// whether it is terminal.
func (j *crashJob) terminal(t *testing.T, c *apiClient) (state string, done bool) {
	t.Helper()
	var r struct {
		Done     bool   `json:"done"`
		Status   string `json:"status"` // interactions
		Metadata struct {
			State string `json:"state"`
		} `json:"metadata"` // batches
		Response json.RawMessage `json:"response"` // video operations
		Error    *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	c.call(t, "GET", j.path, nil, &r)
	switch j.kind {
	case "batch":
		return r.Metadata.State, r.Done
	case "video":
		switch {
		case !r.Done:
			return "running", false
		case r.Error != nil:
			return "error: " + r.Error.Message, true
		case len(r.Response) > 0:
			return "done", true
		}
		return "done without response or error", true
	}
	return r.Status, r.Status != "in_progress"
}

// TestJobsCrash (issue 5, docs/contract.md §6): serve is killed with SIGKILL
// while batches, videos and background interactions run (the succeeding
// batches held mid-run by the simulator's [[hold]] until the test releases
// them), restarted on the same data dir, and killed again as the resumed
// jobs finish and emit.
// Every job reaches exactly one terminal state, and a static webhook
// receives exactly one terminal event per job (at-least-once redelivery of
// the same webhook-id aside).
func TestJobsCrash(t *testing.T) {
	t.Parallel()
	// The succeeding batches wait for the release file: mid-run at the
	// first kill however slow the machine. A short delivery lease, so a
	// delivery the killed process held is retried within the test.
	release := filepath.Join(t.TempDir(), "release")
	s := startServe(t, withFlags("--sim-duration", "batch=1s,video=4s,interaction=3s", "--sim-hold-file", release, "--lease", "20s"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve logs:\n%s", s.Logs())
		}
	})
	c := s.client(t)
	rcv := newReceiver(t, nil)
	hook := c.createWebhook(t, rcv.URL("/jobs"), "batch.succeeded", "batch.failed", "batch.cancelled", "batch.expired",
		"video.generated", "interaction.completed", "interaction.failed")

	var jobs []*crashJob
	for i := range 3 {
		var op struct {
			Name string `json:"name"`
		}
		c.call(t, "POST", "/v1beta/models/veo-3.0-generate-001:predictLongRunning", map[string]any{
			"instances": []any{map[string]any{"prompt": fmt.Sprintf("crash video %d", i)}},
		}, &op)
		if !strings.Contains(op.Name, "/operations/") {
			t.Fatalf("video create: name %q", op.Name)
		}
		jobs = append(jobs, &crashJob{kind: "video", id: op.Name, path: "/v1beta/" + op.Name, want: "done", event: "video.generated"})
	}
	for i := range 3 {
		var in struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		c.call(t, "POST", "/v1beta/interactions", map[string]any{
			"model": "gemini-2.5-flash", "input": fmt.Sprintf("crash interaction %d", i), "background": true,
		}, &in)
		if in.ID == "" || in.Status != "in_progress" {
			t.Fatalf("interaction create: %+v", in)
		}
		jobs = append(jobs, &crashJob{kind: "interaction", id: in.ID, path: "/v1beta/interactions/" + in.ID, want: "completed", event: "interaction.completed"})
	}

	for i := range 10 {
		failing := i%3 == 2
		var reqs []any
		for r := range 2 {
			text := fmt.Sprintf("crash batch %d request %d", i, r)
			if failing && r == 1 {
				text += " [[fail]]"
			} else if !failing {
				text += " [[hold]]"
			}
			reqs = append(reqs, map[string]any{
				"request":  map[string]any{"contents": []any{map[string]any{"role": "user", "parts": []any{map[string]any{"text": text}}}}},
				"metadata": map[string]any{"key": "k" + strconv.Itoa(r)},
			})
		}
		var op struct {
			Name string `json:"name"`
		}
		c.call(t, "POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", map[string]any{"batch": map[string]any{
			"displayName": "crash-" + strconv.Itoa(i), "inputConfig": map[string]any{"requests": map[string]any{"requests": reqs}},
		}}, &op)
		if !strings.HasPrefix(op.Name, "batches/") {
			t.Fatalf("batch create: name %q", op.Name)
		}
		j := &crashJob{kind: "batch", id: op.Name, path: "/v1beta/" + op.Name, want: "BATCH_STATE_SUCCEEDED", event: "batch.succeeded", failing: failing}
		if failing {
			j.want, j.event = "BATCH_STATE_FAILED", "batch.failed"
		}
		jobs = append(jobs, j)
	}
	// Kill while the jobs run: the failing batches have failed at once,
	// the others are running, held until the release.
	pollUntil(t, 30*time.Second, 5*time.Millisecond, "the batches running (failing ones failed)", func() (bool, string) {
		for _, j := range jobs {
			if j.kind != "batch" {
				continue
			}
			state, _ := j.terminal(t, c)
			switch {
			case j.failing && state != "BATCH_STATE_FAILED":
				return false, j.id + " is " + state
			case !j.failing && state != "BATCH_STATE_RUNNING":
				return false, j.id + " is " + state
			}
			j.midRun = !j.failing
		}
		return true, ""
	})
	s.kill9()
	t.Logf("kill -9 #1 with the jobs mid-run (%d deliveries received)", len(rcv.requests()))
	s.restart()
	// The restarted server resumes the held batches: they are still
	// running, none has emitted a terminal event.
	for _, j := range jobs {
		if state, _ := j.terminal(t, c); j.midRun && state != "BATCH_STATE_RUNNING" {
			t.Fatalf("%s is %s after the restart, before its release", j.id, state)
		}
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	// Kill again as the resumed jobs start to finish: the first success
	// event has arrived, others are being emitted or still running.
	rcv.waitFor(t, 15*time.Second, "a first success event after the restart", func(rs []received) bool {
		for _, r := range rs {
			if r.envelope(t).Type != "batch.failed" {
				return true
			}
		}
		return false
	})
	s.kill9()
	t.Logf("kill -9 #2 as the jobs finish (%d deliveries received)", len(rcv.requests()))
	s.restart()

	// Every job reaches its terminal state.
	pollUntil(t, 30*time.Second, 50*time.Millisecond, "every job terminal", func() (bool, string) {
		for _, j := range jobs {
			if state, done := j.terminal(t, c); !done {
				return false, j.id + " is " + state
			}
		}
		return true, ""
	})
	for _, j := range jobs {
		if state, _ := j.terminal(t, c); state != j.want {
			t.Errorf("%s %s: terminal state %q, want %q", j.kind, j.id, state, j.want)
		}
	}

	// The server holds one delivery per job for the webhook, each
	// succeeded: nothing is left to (re)send, so what the receiver has is
	// final.
	pollUntil(t, 30*time.Second, 50*time.Millisecond, "one succeeded delivery per job", func() (bool, string) {
		ds := listDeliveries(t, c, hook.ID)
		events := map[string]bool{}
		for _, d := range ds {
			if d.Status != "succeeded" {
				return false, fmt.Sprintf("delivery %s is %s (%d attempts, %s)", d.ID, d.Status, d.AttemptCount, d.LastError)
			}
			events[d.EventID] = true
		}
		return len(ds) == len(jobs) && len(events) == len(jobs), fmt.Sprintf("%d deliveries of %d events, want %d", len(ds), len(events), len(jobs))
	})

	// Exactly one terminal event per job: dedupe at-least-once redeliveries
	// by webhook-id, then count by data.id.
	type got struct{ typ, webhookID string }
	byJob := map[string][]got{}
	seen := map[string]bool{}
	reqs := rcv.requests()
	for _, r := range reqs {
		wid := r.Header.Get("webhook-id")
		if wid == "" {
			t.Fatalf("delivery without webhook-id: %s", r.Body)
		}
		if seen[wid] {
			continue
		}
		seen[wid] = true
		e := r.envelope(t)
		var data struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatalf("event data: %v: %s", err, e.Data)
		}
		byJob[data.ID] = append(byJob[data.ID], got{e.Type, wid})
	}
	t.Logf("%d requests received, %d distinct webhook-ids", len(reqs), len(seen))
	for _, j := range jobs {
		evs := byJob[j.id]
		delete(byJob, j.id)
		switch {
		case len(evs) != 1:
			t.Errorf("%s %s (mid-run at the kill: %v): %d terminal events, want 1: %+v", j.kind, j.id, j.midRun, len(evs), evs)
		case evs[0].typ != j.event:
			t.Errorf("%s %s: event %s, want %s", j.kind, j.id, evs[0].typ, j.event)
		}
	}
	for id, evs := range byJob {
		t.Errorf("events for an unknown job %q: %+v", id, evs)
	}
}
