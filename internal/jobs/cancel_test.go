package jobs_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/longhook/longhook/internal/core"
)

// Cancelling a job that cannot be cancelled names its state as the API
// shows it (an interaction is "completed", a batch BATCH_STATE_SUCCEEDED),
// never by an internal name the API never returns ("succeeded"); and the
// 404 of cancel is the 404 of get.
func TestCancelNamesPublicStates(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})

	fg := f.call("POST", "/v1beta/interactions", map[string]any{"model": "m", "input": "x"}).must(t, 200)
	if fg.str("status") != "completed" {
		t.Fatalf("foreground: %s", fg.raw)
	}
	r := f.call("POST", "/v1beta/interactions/"+fg.str("id")+"/cancel", nil)
	if msg := r.str("error.message"); r.status != 400 || r.str("error.status") != "FAILED_PRECONDITION" ||
		!strings.Contains(msg, " is completed") || strings.Contains(msg, "succeeded") {
		t.Errorf("cancel a completed interaction: %d %s", r.status, r.raw)
	}

	id := f.createBatch([]string{"a"}, nil)
	f.settled(id)
	r = f.call("POST", "/v1beta/batches/"+id+":cancel", nil)
	if msg := r.str("error.message"); r.status != 400 || !strings.Contains(msg, "batches/"+id+" is BATCH_STATE_SUCCEEDED") {
		t.Errorf("cancel a succeeded batch: %d %s", r.status, r.raw)
	}

	for _, p := range []string{"/v1beta/interactions/nope", "/v1beta/batches/nope"} {
		get := f.call("GET", p, nil).must(t, 404)
		verb := "/cancel"
		if strings.Contains(p, "batches") {
			verb = ":cancel"
		}
		c := f.call("POST", p+verb, nil).must(t, 404)
		if c.str("error.message") != get.str("error.message") {
			t.Errorf("%s: cancel answered %q, get %q", p, c.str("error.message"), get.str("error.message"))
		}
	}
}

// jobEventTypes lists the types of the events a job published (its
// subject is the job's resource name), oldest first.
func (f *fixture) jobEventTypes(subject string) []string {
	f.t.Helper()
	evs, err := f.store.ListEvents(context.Background(), core.ListEventsParams{ProjectID: f.project, Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Subject == subject {
			out = append(out, evs[i].Type)
		}
	}
	return out
}

// waitingInteraction creates a background interaction that calls a
// declared function, waits for its interaction.requires_action at hook,
// and returns its id and the pending call's id.
func (f *fixture) waitingInteraction(hook *receiver, wc map[string]any) (id, callID string) {
	f.t.Helper()
	tools := []any{map[string]any{"type": "function", "name": "lookup", "parameters": map[string]any{"type": "object"}}}
	r := f.call("POST", "/v1beta/interactions", map[string]any{"model": "m", "input": "lookup [[requires_action]]",
		"tools": tools, "background": true, "webhook_config": wc}).must(f.t, 200)
	id = r.str("id")
	if d := hook.next(f.t); d.event["type"] != core.EventInteractionRequiresAction || d.data()["id"] != id {
		f.t.Fatalf("requires_action: %s", d.body)
	}
	g := f.call("GET", "/v1beta/interactions/"+id, nil).must(f.t, 200)
	steps, _ := g.path("steps").([]any)
	call, _ := steps[len(steps)-1].(map[string]any)
	callID, _ = call["id"].(string)
	return id, callID
}

// An interaction waiting in requires_action can be cancelled: it then
// emits its one terminal event, interaction.cancelled (data as for any
// cancellation: id, sequence, user_metadata), numbered after its
// requires_action; a function result sent for it afterwards is refused as
// FAILED_PRECONDITION. Before, cancel was refused in requires_action, and
// the job could only be deleted, never emitting a terminal event.
func TestCancelRequiresAction(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	hook := newReceiver(t)
	wc := map[string]any{"uris": []string{hook.srv.URL}, "user_metadata": map[string]any{"u": 1}}
	const path = "/v1beta/interactions"
	id, callID := f.waitingInteraction(hook, wc)

	r := f.call("POST", path+"/"+id+"/cancel", nil).must(t, 200)
	if r.str("status") != "cancelled" || r.str("id") != id {
		t.Fatalf("cancel: %s", r.raw)
	}
	d := hook.next(t)
	data := d.data()
	if d.event["type"] != core.EventInteractionCancelled || data["id"] != id || data["sequence"] != 2.0 || len(data) != 3 ||
		data["user_metadata"].(map[string]any)["u"] != 1.0 {
		t.Fatalf("cancelled: %s", d.body)
	}
	if g := f.call("GET", path+"/"+id, nil).must(t, 200); g.str("status") != "cancelled" {
		t.Fatalf("get: %s", g.raw)
	}
	f.call("POST", path+"/"+id+":cancel", nil).must(t, 200) // again: still cancelled

	before, _ := f.store.ListJobs(context.Background(), core.ListJobsParams{ProjectID: f.project, Limit: 100})
	answer := f.call("POST", path, map[string]any{"model": "m", "previous_interaction_id": id, "background": true,
		"input": []any{map[string]any{"type": "function_result", "call_id": callID, "result": "42"}}})
	if answer.status != 400 || answer.str("error.status") != "FAILED_PRECONDITION" || !strings.Contains(answer.str("error.message"), id+" was cancelled") {
		t.Fatalf("function result for a cancelled interaction: %d %s", answer.status, answer.raw)
	}
	if after, _ := f.store.ListJobs(context.Background(), core.ListJobsParams{ProjectID: f.project, Limit: 100}); len(after) != len(before) {
		t.Fatalf("the refused continuation was stored: %d jobs, were %d", len(after), len(before))
	}
	if got := f.jobEventTypes("interactions/" + id); !slices.Equal(got, []string{core.EventInteractionRequiresAction, core.EventInteractionCancelled}) {
		t.Fatalf("events %v", got)
	}
}

// Deleting a job that is not terminal — an interaction in requires_action
// or in progress, a pending batch — first cancels it: the receiver gets
// its one terminal *.cancelled event, then the job is gone. Before, a
// requires_action interaction was deleted without a terminal event, and
// the others were refused.
func TestDeleteCancelsFirst(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	idle := setup(t, options{noRunner: true}) // its batches stay pending
	hook := newReceiver(t)
	wc := map[string]any{"uris": []string{hook.srv.URL}}
	const path = "/v1beta/interactions"

	waiting, _ := f.waitingInteraction(hook, wc)
	running := f.call("POST", path, map[string]any{"model": "m", "input": "wait [[expire]]", "background": true,
		"webhook_config": wc}).must(t, 200).str("id")
	batch := idle.createBatch([]string{"a"}, wc)

	for _, tc := range []struct {
		f        *fixture
		path     string
		subject  string
		id       string
		want     string
		sequence float64
		events   []string
	}{
		{f, path + "/" + waiting, "interactions/" + waiting, waiting, core.EventInteractionCancelled, 2,
			[]string{core.EventInteractionRequiresAction, core.EventInteractionCancelled}},
		{f, path + "/" + running, "interactions/" + running, running, core.EventInteractionCancelled, 1,
			[]string{core.EventInteractionCancelled}},
		{idle, "/v1beta/batches/" + batch, "batches/" + batch, "batches/" + batch, core.EventBatchCancelled, 1,
			[]string{core.EventBatchCancelled}},
	} {
		if r := tc.f.call("DELETE", tc.path, nil); r.status != 200 || strings.TrimSpace(string(r.raw)) != "{}" {
			t.Fatalf("delete %s: %d %s", tc.subject, r.status, r.raw)
		}
		d := hook.next(t)
		if d.event["type"] != tc.want || d.data()["id"] != tc.id || d.data()["sequence"] != tc.sequence {
			t.Fatalf("delete %s: got %s", tc.subject, d.body)
		}
		tc.f.call("GET", tc.path, nil).must(t, 404)
		if got := tc.f.jobEventTypes(tc.subject); !slices.Equal(got, tc.events) {
			t.Fatalf("%s: events %v, want %v", tc.subject, got, tc.events)
		}
	}
}

// A cancel and a delete racing on an interaction in requires_action end
// it once: one interaction.cancelled, and the job is gone.
func TestCancelDeleteRace(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	hook := newReceiver(t)
	wc := map[string]any{"uris": []string{hook.srv.URL}}
	const path = "/v1beta/interactions"
	for range 5 {
		id, _ := f.waitingInteraction(hook, wc)
		var wg sync.WaitGroup
		var cancelled, deleted *reply
		wg.Add(2)
		go func() { defer wg.Done(); cancelled = f.call("POST", path+"/"+id+"/cancel", nil) }()
		go func() { defer wg.Done(); deleted = f.call("DELETE", path+"/"+id, nil) }()
		wg.Wait()
		if deleted.status != 200 || (cancelled.status != 200 && cancelled.status != 404) {
			t.Fatalf("delete %d %s, cancel %d %s", deleted.status, deleted.raw, cancelled.status, cancelled.raw)
		}
		if d := hook.next(t); d.event["type"] != core.EventInteractionCancelled || d.data()["id"] != id {
			t.Fatalf("got %s", d.body)
		}
		f.call("GET", path+"/"+id, nil).must(t, 404)
		if got := f.jobEventTypes("interactions/" + id); !slices.Equal(got, []string{core.EventInteractionRequiresAction, core.EventInteractionCancelled}) {
			t.Fatalf("events %v", got)
		}
	}
	if n := len(hook.got); n != 0 {
		t.Fatalf("%d more deliveries", n)
	}
}

// An interaction in requires_action that a continuation answered is no
// longer cancellable (the continuation brings its job's terminal event: a
// cancel would be a second one), and deleting it emits nothing. An answer
// and a cancel racing each other: exactly one of them wins.
func TestCancelAnsweredInteraction(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	hook := newReceiver(t)
	wc := map[string]any{"uris": []string{hook.srv.URL}}
	const path = "/v1beta/interactions"
	answer := func(id, callID string) *reply {
		return f.call("POST", path, map[string]any{"model": "m", "previous_interaction_id": id, "background": true,
			"input": []any{map[string]any{"type": "function_result", "call_id": callID, "result": "42"}}})
	}

	id, callID := f.waitingInteraction(hook, wc)
	child := answer(id, callID).must(t, 200).str("id")
	if d := hook.next(t); d.event["type"] != core.EventInteractionCompleted || d.data()["id"] != child {
		t.Fatalf("completed: %s", d.body)
	}
	r := f.call("POST", path+"/"+id+"/cancel", nil)
	if r.status != 400 || r.str("error.status") != "FAILED_PRECONDITION" || !strings.Contains(r.str("error.message"), "answered by interaction "+child) {
		t.Fatalf("cancel of an answered interaction: %d %s", r.status, r.raw)
	}
	if g := f.call("GET", path+"/"+id, nil).must(t, 200); g.str("status") != "requires_action" {
		t.Fatalf("get: %s", g.raw)
	}
	f.call("DELETE", path+"/"+id, nil).must(t, 200)
	f.call("GET", path+"/"+id, nil).must(t, 404)
	if got := f.jobEventTypes("interactions/" + id); !slices.Equal(got, []string{core.EventInteractionRequiresAction}) {
		t.Fatalf("events of the answered interaction %v", got)
	}

	for range 5 {
		id, callID := f.waitingInteraction(hook, wc)
		var wg sync.WaitGroup
		var cancelled, answered *reply
		wg.Add(2)
		go func() { defer wg.Done(); cancelled = f.call("POST", path+"/"+id+"/cancel", nil) }()
		go func() { defer wg.Done(); answered = answer(id, callID) }()
		wg.Wait()
		switch {
		case cancelled.status == 200 && answered.status == 400 && answered.str("error.status") == "FAILED_PRECONDITION":
			if d := hook.next(t); d.event["type"] != core.EventInteractionCancelled || d.data()["id"] != id {
				t.Fatalf("got %s", d.body)
			}
		case answered.status == 200 && cancelled.status == 400 && cancelled.str("error.status") == "FAILED_PRECONDITION":
			if d := hook.next(t); d.event["type"] != core.EventInteractionCompleted || d.data()["id"] != answered.str("id") {
				t.Fatalf("got %s", d.body)
			}
			if got := f.jobEventTypes("interactions/" + id); !slices.Equal(got, []string{core.EventInteractionRequiresAction}) {
				t.Fatalf("events of the answered interaction %v", got)
			}
		default:
			t.Fatalf("cancel %d %s, answer %d %s", cancelled.status, cancelled.raw, answered.status, answered.raw)
		}
	}
	if n := len(hook.got); n != 0 {
		t.Fatalf("%d more deliveries", n)
	}
}
