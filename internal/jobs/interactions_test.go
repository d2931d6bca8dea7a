package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/clocktest"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
	"github.com/longhook/longhook/internal/jobs/executor"
)

// The interactions API: validation, foreground and background turns, the
// function-calling checks on continuations, cancel, delete and failure.
func TestInteractionsREST(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	hook := newReceiver(t)
	wc := map[string]any{"uris": []string{hook.srv.URL}, "user_metadata": map[string]any{"u": 1}}
	const path = "/v1beta/interactions"

	for name, tc := range map[string]struct {
		body any
		frag string
	}{
		"webhook without background": {map[string]any{"model": "m", "input": "x", "webhook_config": wc}, "background: true"},
		"stream":                     {map[string]any{"model": "m", "input": "x", "stream": true}, "stream"},
		"no model":                   {map[string]any{"input": "x"}, "model"},
		"no input":                   {map[string]any{"model": "m"}, "input"},
		"unknown field":              {map[string]any{"model": "m", "input": "x", "colour": 1}, "colour"},
		"bad step":                   {map[string]any{"model": "m", "input": []any{map[string]any{"type": "dance"}}}, "dance"},
		"unknown previous":           {map[string]any{"model": "m", "input": "x", "previous_interaction_id": "nope"}, "previous_interaction_id"},
		"webhook uri with a space": {map[string]any{"model": "m", "input": "x", "background": true,
			"webhook_config": map[string]any{"uris": []string{"https://example.com/h "}}}, "webhook_config.uris[0] must not contain spaces"},
	} {
		r := f.call("POST", path, tc.body)
		if r.status != 400 || !strings.Contains(r.str("error.message"), tc.frag) {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}

	// Foreground: answered in the request.
	fg := f.call("POST", path, map[string]any{"model": "m", "input": []any{map[string]any{"type": "text", "text": "hi there"}}}).must(t, 200)
	steps, _ := fg.path("steps").([]any)
	if fg.str("status") != "completed" || len(steps) != 1 || !strings.Contains(fg.raw2(), "Simulated response to: hi there") {
		t.Fatalf("foreground: %s", fg.raw)
	}
	if g := f.call("GET", path+"/"+fg.str("id")+"?include_input=true", nil).must(t, 200); g.path("input") == nil {
		t.Fatalf("include_input: %s", g.raw)
	}

	// Background with a declared function: requires_action.
	tools := []any{map[string]any{"type": "function", "name": "lookup", "parameters": map[string]any{"type": "object"}}}
	first := f.call("POST", path, map[string]any{"model": "m", "input": "please lookup the answer", "tools": tools,
		"background": true, "webhook_config": wc, "system_instruction": "be terse"}).must(t, 200)
	if first.str("status") != "in_progress" || first.str("system_instruction") != "be terse" || first.path("webhook_config.user_metadata.u") != float64(1) {
		t.Fatalf("create: %s", first.raw)
	}
	d := hook.next(t)
	if d.event["type"] != core.EventInteractionRequiresAction || d.data()["id"] != first.str("id") {
		t.Fatalf("requires_action: %s", d.body)
	}
	got := f.call("GET", path+"/"+first.str("id"), nil).must(t, 200)
	steps, _ = got.path("steps").([]any)
	call, _ := steps[0].(map[string]any)
	if got.str("status") != "requires_action" || call["type"] != "function_call" || call["name"] != "lookup" {
		t.Fatalf("requires_action resource: %s", got.raw)
	}
	cont := func(input any) *reply {
		return f.call("POST", path, map[string]any{"model": "m", "previous_interaction_id": first.str("id"),
			"input": input, "background": true, "webhook_config": wc})
	}
	if r := cont("just text"); r.status != 400 || !strings.Contains(r.str("error.message"), call["id"].(string)) {
		t.Fatalf("continuation without the result: %d %s", r.status, r.raw)
	}
	if r := cont([]any{map[string]any{"type": "function_result", "call_id": "other", "result": "x"}}); r.status != 400 {
		t.Fatalf("continuation with a wrong call_id: %d %s", r.status, r.raw)
	}
	second := cont([]any{map[string]any{"type": "function_result", "call_id": call["id"], "result": "42"}}).must(t, 200)
	d = hook.next(t)
	if d.event["type"] != core.EventInteractionCompleted || d.data()["id"] != second.str("id") || d.data()["sequence"] != float64(2) {
		t.Fatalf("completed: %s", d.body)
	}
	done := f.call("GET", path+"/"+second.str("id"), nil).must(t, 200)
	if !strings.Contains(done.raw2(), `The function lookup returned {\"result\":\"42\"}`) || done.path("usage.total_tokens") == nil {
		t.Fatalf("completed resource: %s", done.raw)
	}

	// A turn still in progress blocks its continuation and can be
	// cancelled (by both spellings).
	slow := f.call("POST", path, map[string]any{"model": "m", "input": "wait [[expire]]", "background": true, "webhook_config": wc}).must(t, 200)
	if r := f.call("POST", path, map[string]any{"model": "m", "input": "x", "previous_interaction_id": slow.str("id")}); r.status != 400 || r.str("error.status") != "FAILED_PRECONDITION" {
		t.Fatalf("continuation of a running turn: %d %s", r.status, r.raw)
	}
	if r := f.call("POST", path+"/"+slow.str("id")+"/cancel", nil).must(t, 200); r.str("status") != "cancelled" {
		t.Fatalf("cancel: %s", r.raw)
	}
	f.call("POST", path+"/"+slow.str("id")+":cancel", nil).must(t, 200)
	if d := hook.next(t); d.event["type"] != core.EventInteractionCancelled {
		t.Fatalf("cancelled: %s", d.body)
	}
	if r := f.call("POST", path+"/"+second.str("id")+"/cancel", nil); r.status != 400 {
		t.Fatalf("cancel of a completed turn: %d %s", r.status, r.raw)
	}

	// A failing turn.
	bad := f.call("POST", path, map[string]any{"model": "m", "input": "[[fail]]", "background": true, "webhook_config": wc}).must(t, 200)
	if d := hook.next(t); d.event["type"] != core.EventInteractionFailed || d.data()["error_code"] != "INTERNAL" {
		t.Fatalf("failed: %s", d.body)
	}
	if j := f.settled(bad.str("id")); j.State != core.JobFailed {
		t.Fatalf("failed job %+v", j)
	}
	if r := f.call("GET", path+"/"+bad.str("id"), nil).must(t, 200); r.str("status") != "failed" || r.path("errors") == nil {
		t.Fatalf("failed resource: %s", r.raw)
	}
	f.call("DELETE", path+"/"+fg.str("id"), nil).must(t, 200)
	f.call("GET", path+"/"+fg.str("id"), nil).must(t, 404)
	if _, err := f.store.GetJob(context.Background(), f.project, fg.str("id")); err == nil {
		t.Fatal("deleted interaction still stored")
	}
}

// raw2 is the raw body as a string.
func (r *reply) raw2() string { return string(r.raw) }

// An agent interaction (agent instead of model, in the background) works
// in steps that GET shows while it runs, may require action, and completes
// with interaction.completed carrying its output. The simulator's clock
// is driven by the test.
func TestAgentInteraction(t *testing.T) {
	t.Parallel()
	clock := clocktest.New(time.Now())
	f := setup(t, options{cfg: func(c *jobs.Config) {
		c.Executor = executor.NewSimulator(executor.SimulatorConfig{Clock: clock,
			Durations: map[core.JobKind]time.Duration{core.JobInteraction: 3 * time.Hour}})
	}})
	hook := newReceiver(t)
	wc := map[string]any{"uris": []string{hook.srv.URL}, "user_metadata": map[string]any{"study": "weather"}}
	tools := []any{map[string]any{"type": "function", "name": "get_weather", "parameters": map[string]any{"type": "object"}}}
	const path = "/v1beta/interactions"
	const agent = "deep-research-pro-preview-12-2025"

	// run advances the simulator's clock a minute at a time, and sees each
	// of the agent's three steps while the turn is in progress.
	run := func(id, want string) *reply {
		t.Helper()
		var r *reply
		for n := 1; n <= 3; n++ {
			waitFor(t, "agent step", func() bool {
				clock.Advance(time.Minute)
				r = f.call("GET", path+"/"+id, nil).must(t, 200)
				return thoughts(r) >= n
			})
			if n < 3 && r.str("status") != "in_progress" {
				t.Fatalf("after step %d: %s", n, r.raw)
			}
		}
		waitFor(t, want, func() bool {
			r = f.call("GET", path+"/"+id, nil).must(t, 200)
			return r.str("status") == want
		})
		return r
	}

	first := f.call("POST", path, map[string]any{"agent": agent, "input": "research the weather in Paris [[requires_action]]",
		"tools": tools, "background": true, "webhook_config": wc}).must(t, 200)
	if first.str("status") != "in_progress" || first.str("agent") != agent {
		t.Fatalf("create: %s", first.raw)
	}
	waiting := run(first.str("id"), "requires_action")
	d := hook.next(t)
	if d.event["type"] != core.EventInteractionRequiresAction || d.data()["id"] != first.str("id") {
		t.Fatalf("requires_action: %s", d.body)
	}
	steps, _ := waiting.path("steps").([]any)
	call, _ := steps[len(steps)-1].(map[string]any)
	if call["type"] != "function_call" || call["name"] != "get_weather" {
		t.Fatalf("requires_action steps: %s", waiting.raw)
	}
	second := f.call("POST", path, map[string]any{"agent": agent, "previous_interaction_id": first.str("id"), "background": true,
		"webhook_config": wc, "input": []any{map[string]any{"type": "function_result", "call_id": call["id"], "result": "sunny, 21C"}}}).must(t, 200)
	run(second.str("id"), "completed")
	d = hook.next(t)
	content, _ := d.data()["output"].(map[string]any)["content"].([]any)
	if d.event["type"] != core.EventInteractionCompleted || d.data()["id"] != second.str("id") || d.data()["sequence"] != 2.0 ||
		len(content) != 1 || !strings.Contains(content[0].(map[string]any)["text"].(string), "sunny, 21C") {
		t.Fatalf("completed: %s", d.body)
	}
}

// thoughts counts the thought steps of an interaction.
func thoughts(r *reply) int {
	steps, _ := r.path("steps").([]any)
	n := 0
	for _, s := range steps {
		if m, _ := s.(map[string]any); m["type"] == "thought" {
			n++
		}
	}
	return n
}

// A function result sent without a webhook_config (in the background or
// not) continues its predecessor's job: its events go where the
// predecessor's went, with the same user_metadata, numbered after them.
// Before, the receiver that got interaction.requires_action never heard of
// the conversation again (the continuation's completed went to the
// project's static webhooks).
func TestContinuationKeepsWebhookConfig(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	const path = "/v1beta/interactions"
	tools := []any{map[string]any{"type": "function", "name": "lookup", "parameters": map[string]any{"type": "object"}}}
	for _, background := range []bool{true, false} {
		hook := newReceiver(t)
		wc := map[string]any{"uris": []string{hook.srv.URL}, "user_metadata": map[string]any{"run": 7}}
		first := f.call("POST", path, map[string]any{"model": "m", "input": "lookup [[requires_action]]", "tools": tools,
			"background": true, "webhook_config": wc}).must(t, 200)
		if d := hook.next(t); d.event["type"] != core.EventInteractionRequiresAction || d.data()["sequence"] != float64(1) {
			t.Fatalf("background=%v: requires_action: %s", background, d.body)
		}
		steps, _ := f.call("GET", path+"/"+first.str("id"), nil).must(t, 200).path("steps").([]any)
		call, _ := steps[0].(map[string]any)
		body := map[string]any{"model": "m", "previous_interaction_id": first.str("id"),
			"input": []any{map[string]any{"type": "function_result", "call_id": call["id"], "name": "lookup", "result": "42"}}}
		if background {
			body["background"] = true
		}
		second := f.call("POST", path, body).must(t, 200)
		if second.path("webhook_config.user_metadata.run") != float64(7) {
			t.Errorf("background=%v: the continuation does not show the webhook_config its events use: %s", background, second.raw)
		}
		d := hook.next(t)
		if d.event["type"] != core.EventInteractionCompleted || d.data()["id"] != second.str("id") ||
			d.data()["sequence"] != float64(2) || !strings.Contains(string(d.body), `"user_metadata":{"run":7}`) {
			t.Fatalf("background=%v: completed: %s", background, d.body)
		}
		if _, err := f.verifier(t, hook.srv.URL).Verify(context.Background(), d.header, d.body); err != nil {
			t.Fatalf("background=%v: %v", background, err)
		}
	}
}

// An interaction names its model or its agent, one of them, by a name: an
// agent that is empty, null, not a string or not a name is refused like a
// missing or bad model (it ran as a model turn with no model), and so is a
// body naming both (which one runs would be a guess). Nothing is stored.
func TestInteractionAgentValidated(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	for name, body := range map[string]map[string]any{
		"empty agent":         {"agent": "", "input": "x"},
		"null agent":          {"agent": nil, "input": "x"},
		"numeric agent":       {"agent": 5, "input": "x"},
		"object agent":        {"agent": map[string]any{"name": "deep-research"}, "input": "x"},
		"agent with a path":   {"agent": "a/../b", "input": "x"},
		"agent with a space":  {"agent": "deep research", "input": "x"},
		"overlong agent":      {"agent": strings.Repeat("a", core.MaxModelName+1), "input": "x"},
		"model and agent":     {"model": "gemini-2.5-flash", "agent": "deep-research-pro-preview-12-2025", "input": "x"},
		"bad model and agent": {"model": "a b", "agent": "deep-research-pro-preview-12-2025", "input": "x"},
	} {
		r := f.call("POST", "/v1beta/interactions", body)
		if r.status != 400 || r.str("error.status") != "INVALID_ARGUMENT" || !strings.Contains(r.str("error.message"), "agent") {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	if js, err := f.store.ListJobs(context.Background(), core.ListJobsParams{ProjectID: f.project, Limit: 10}); err != nil || len(js) != 0 {
		t.Fatalf("refused interactions stored: %d jobs, %v", len(js), err)
	}
	r := f.call("POST", "/v1beta/interactions", map[string]any{"agent": "deep-research-pro-preview-12-2025", "model": nil, "input": "x", "background": true}).must(t, 200)
	if r.str("agent") != "deep-research-pro-preview-12-2025" {
		t.Fatalf("agent turn: %s", r.raw)
	}
}
