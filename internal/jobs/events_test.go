package jobs_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/docstest"
	"github.com/longhook/longhook/internal/jobs"
)

// documentedEvents reads the job events table of docs/api.md: event type →
// its data fields.
func documentedEvents(t *testing.T) map[string][]string {
	t.Helper()
	out := docstest.EventFields(t, "../../docs/api.md", "### Job events")
	if len(out) < 10 {
		t.Fatalf("docs/api.md lists %d job events: %v", len(out), out)
	}
	return out
}

// Every job event, as a receiver gets it (JWT-verified through the
// server's JWKS), carries exactly the data fields docs/api.md lists, with
// the values the docs describe.
func TestEventFieldsAsDocumented(t *testing.T) {
	t.Parallel()
	docs := documentedEvents(t)
	f := setup(t, options{cfg: func(c *jobs.Config) { c.BatchWindow = time.Hour }})
	hook := newReceiver(t)
	v := f.verifier(t, hook.srv.URL)
	wc := map[string]any{"uris": []string{hook.srv.URL}, "user_metadata": map[string]any{"run": "docs"}}
	ctx := context.Background()
	got := map[string]map[string]any{}
	// check verifies a delivery's signature and fields, and keeps its
	// data by type.
	check := func(d delivery) map[string]any {
		t.Helper()
		typ, _ := d.event["type"].(string)
		if _, err := v.Verify(ctx, d.header, d.body); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		data := d.data()
		var keys []string
		for k := range data {
			if k != "user_metadata" {
				keys = append(keys, k)
			}
		}
		if slices.Sort(keys); !slices.Equal(keys, slices.Sorted(slices.Values(docs[typ]))) {
			t.Errorf("%s data fields %v, docs/api.md lists %v", typ, keys, docs[typ])
		}
		if meta, _ := data["user_metadata"].(map[string]any); meta["run"] != "docs" {
			t.Errorf("%s user_metadata: %s", typ, d.body)
		}
		got[typ] = data
		return data
	}
	// next receives the next delivery, which must be of type want, and
	// checks it.
	next := func(want string) map[string]any {
		t.Helper()
		d := hook.next(t)
		if typ, _ := d.event["type"].(string); typ != want {
			t.Fatalf("got %s, want %s: %s", typ, want, d.body)
		}
		return check(d)
	}
	interactions := "/v1beta/interactions"
	interaction := func(body map[string]any) *reply {
		body["model"], body["background"], body["webhook_config"] = "m", true, wc
		return f.call("POST", interactions, body).must(t, 200)
	}

	ok := f.createBatch([]string{"fine"}, wc)
	if d := next(core.EventBatchSucceeded); d["id"] != "batches/"+ok || d["output_file_uri"] != "files/batch-"+ok || d["sequence"] != 1.0 {
		t.Errorf("batch.succeeded: %v", d)
	}
	bad := f.createBatch([]string{"boom [[fail]]"}, wc)
	if d := next(core.EventBatchFailed); d["id"] != "batches/"+bad || d["error_code"] != "INTERNAL" ||
		!strings.Contains(d["error_message"].(string), "Simulated failure") {
		t.Errorf("batch.failed: %v", d)
	} else if e, _ := d["error"].(map[string]any); e["code"] != 13.0 || e["message"] != d["error_message"] {
		t.Errorf("batch.failed error: %v", d)
	}
	slow := f.createBatch([]string{"wait [[expire]]"}, wc)
	f.call("POST", "/v1/batches/"+slow+":cancel", nil).must(t, 200)
	if d := next(core.EventBatchCancelled); d["id"] != "batches/"+slow {
		t.Errorf("batch.cancelled: %v", d)
	}
	stuck := f.createBatch([]string{"stuck [[expire]]"}, wc)
	j, err := f.store.GetJob(ctx, f.project, stuck)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ExpireBatches(ctx, j.CreateTime.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d := next(core.EventBatchExpired); d["id"] != "batches/"+stuck {
		t.Errorf("batch.expired: %v", d)
	}

	op := f.call("POST", "/v1beta/models/veo:predictLongRunning", map[string]any{
		"instances": []any{map[string]any{"prompt": "a cat"}}, "webhookConfig": wc}).must(t, 200)
	d := next(core.EventVideoGenerated)
	fileID, _ := d["file_id"].(string)
	if d["id"] != op.str("name") || d["file_name"] != "files/"+fileID || d["video_uri"] != d["output_file_uri"] ||
		!strings.HasSuffix(d["output_file_uri"].(string), "/v1beta/files/"+fileID+":download?alt=media") {
		t.Errorf("video.generated: %v", d)
	}
	f.call("GET", "/v1beta/files/"+fileID, nil).must(t, 200)
	f.call("POST", "/v1beta/models/veo:predictLongRunning", map[string]any{
		"instances": []any{map[string]any{"prompt": "broken [[fail]]"}}, "webhookConfig": wc}).must(t, 200)
	if d := next(jobs.EventVideoFailed); d["error_code"] != "INTERNAL" || d["error"].(map[string]any)["code"] != 13.0 {
		t.Errorf("video.failed: %v", d)
	}

	tools := []any{map[string]any{"type": "function", "name": "lookup", "parameters": map[string]any{"type": "object"}}}
	first := interaction(map[string]any{"input": "please lookup the answer", "tools": tools})
	d = next(core.EventInteractionRequiresAction)
	ra, _ := d["required_action"].(map[string]any)
	calls, _ := ra["function_calls"].([]any)
	if d["id"] != first.str("id") || ra["type"] != "function_calls" || len(calls) != 1 || calls[0].(map[string]any)["name"] != "lookup" {
		t.Fatalf("interaction.requires_action: %v", d)
	}
	second := interaction(map[string]any{"previous_interaction_id": first.str("id"),
		"input": []any{map[string]any{"type": "function_result", "call_id": calls[0].(map[string]any)["id"], "result": "42"}}})
	d = next(core.EventInteractionCompleted)
	content, _ := d["output"].(map[string]any)["content"].([]any)
	if d["id"] != second.str("id") || d["sequence"] != 2.0 || len(content) != 1 ||
		!strings.Contains(content[0].(map[string]any)["text"].(string), `returned {"result":"42"}`) {
		t.Errorf("interaction.completed: %v", d)
	}
	// An output over 16 KiB is a pointer the receiver follows with its key.
	third := interaction(map[string]any{"input": "please lookup more", "tools": tools})
	calls, _ = next(core.EventInteractionRequiresAction)["required_action"].(map[string]any)["function_calls"].([]any)
	big := interaction(map[string]any{"previous_interaction_id": third.str("id"), "input": []any{map[string]any{
		"type": "function_result", "call_id": calls[0].(map[string]any)["id"], "result": strings.Repeat("long ", 4<<10)}}})
	d = next(core.EventInteractionCompleted)
	out, _ := d["output"].(map[string]any)
	uri, _ := out["uri"].(string)
	if d["id"] != big.str("id") || out["content"] != nil || out["size_bytes"].(float64) <= 16<<10 ||
		!strings.HasSuffix(uri, "/v1beta/interactions/"+big.str("id")) {
		t.Errorf("large interaction.completed: %v", d)
	}
	if r := f.call("GET", strings.TrimPrefix(uri, f.srv.URL), nil).must(t, 200); !strings.Contains(r.raw2(), "The function lookup returned {\\\"result\\\":\\\"long long") {
		t.Errorf("the output pointer: %s", r.raw)
	}
	// Veo through the Interactions API: video.generated (data.id the
	// interaction's id), then interaction.completed whose output is the
	// video block.
	vi := f.call("POST", interactions, map[string]any{"model": "veo-3.1-generate-preview", "input": "a cat surfing",
		"background": true, "webhook_config": wc}).must(t, 200)
	// Two deliveries, which may arrive in either order.
	two := map[string]map[string]any{}
	for range 2 {
		dv := hook.next(t)
		typ, _ := dv.event["type"].(string)
		two[typ] = check(dv)
	}
	d = two[core.EventVideoGenerated]
	fileID, _ = d["file_id"].(string)
	if d["id"] != vi.str("id") || fileID != "video"+vi.str("id") || d["file_name"] != "files/"+fileID ||
		d["video_uri"] != d["output_file_uri"] || d["sequence"] != 1.0 ||
		!strings.HasSuffix(d["output_file_uri"].(string), "/v1beta/files/"+fileID+":download?alt=media") {
		t.Errorf("video.generated of an interaction: %v", d)
	}
	uri, _ = d["output_file_uri"].(string)
	d = two[core.EventInteractionCompleted]
	content, _ = d["output"].(map[string]any)["content"].([]any)
	if d["id"] != vi.str("id") || d["sequence"] != 2.0 || len(content) != 1 ||
		content[0].(map[string]any)["type"] != "video" || content[0].(map[string]any)["uri"] != uri ||
		content[0].(map[string]any)["mime_type"] != "video/mp4" {
		t.Errorf("interaction.completed of a video interaction: %v", d)
	}
	interaction(map[string]any{"input": "[[fail]]"})
	if d := next(core.EventInteractionFailed); d["error_code"] != "INTERNAL" || d["error"].(map[string]any)["code"] != "INTERNAL" {
		t.Errorf("interaction.failed: %v", d)
	}
	wait := interaction(map[string]any{"input": "wait [[expire]]"})
	f.call("POST", interactions+"/"+wait.str("id")+"/cancel", nil).must(t, 200)
	if d := next(core.EventInteractionCancelled); d["id"] != wait.str("id") {
		t.Errorf("interaction.cancelled: %v", d)
	}

	for typ := range docs {
		if got[typ] == nil {
			t.Errorf("docs/api.md lists %s, which no case received", typ)
		}
	}
	raw, _ := json.Marshal(got)
	t.Logf("received: %s", raw)
}
