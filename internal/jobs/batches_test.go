package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
	"github.com/longhook/longhook/webhook"
)

// A failing batch emits batch.failed with error_code and error_message; a
// cancelled one batch.cancelled; one still running when its window ends
// batch.expired. Each emits exactly one event, numbered 1.
func TestBatchTerminalEvents(t *testing.T) {
	t.Parallel()
	f := setup(t, options{cfg: func(c *jobs.Config) { c.BatchWindow = time.Hour }})
	hook := newReceiver(t)
	wc := map[string]any{"uris": []string{hook.srv.URL}, "user_metadata": map[string]any{"run": 7}}
	ctx := context.Background()

	failed := f.createBatch([]string{"ok", "boom [[fail]]"}, wc)
	if j := f.settled(failed); j.State != core.JobFailed || j.ErrorCode != "INTERNAL" {
		t.Fatalf("failed batch: %+v", j)
	}
	d := hook.next(t)
	if d.event["type"] != core.EventBatchFailed || d.data()["id"] != "batches/"+failed ||
		d.data()["error_code"] != "INTERNAL" || !strings.Contains(d.data()["error_message"].(string), "Simulated failure") {
		t.Fatalf("batch.failed: %s", d.body)
	}
	r := f.call("GET", "/v1/batches/"+failed, nil).must(t, 200)
	if r.str("metadata.state") != "BATCH_STATE_FAILED" || r.path("done") != true || r.path("error.code") != float64(13) {
		t.Fatalf("failed batch resource: %s", r.raw)
	}

	// Cancel a running batch; a second cancel is still fine.
	slow := f.createBatch([]string{"wait [[expire]]"}, wc)
	waitFor(t, "batch running", func() bool {
		return f.call("GET", "/v1/batches/"+slow, nil).str("metadata.state") == "BATCH_STATE_RUNNING"
	})
	f.call("POST", "/v1/batches/"+slow+":cancel", nil).must(t, 200)
	f.call("POST", "/v1/batches/"+slow+":cancel", nil).must(t, 200)
	if d := hook.next(t); d.event["type"] != core.EventBatchCancelled || d.data()["id"] != "batches/"+slow || d.data()["sequence"] != float64(1) {
		t.Fatalf("batch.cancelled: %s", d.body)
	}
	if j := f.settled(slow); j.State != core.JobCancelled || !j.TerminalEmitted {
		t.Fatalf("cancelled batch %+v", j)
	}
	// A settled batch cannot be cancelled.
	if r := f.call("POST", "/v1/batches/"+failed+":cancel", nil); r.status != 400 || r.str("error.status") != "FAILED_PRECONDITION" {
		t.Fatalf("cancel of a failed batch: %d %s", r.status, r.raw)
	}

	// Expiry: the leader's task at the end of the window.
	stuck := f.createBatch([]string{"stuck [[expire]]"}, wc)
	j, _ := f.store.GetJob(ctx, f.project, stuck)
	for _, task := range f.svc.Tasks() {
		if err := task.Run(ctx, j.CreateTime.Add(30*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if j, _ := f.store.GetJob(ctx, f.project, stuck); j.State.Settled() {
		t.Fatalf("expired before its window: %s", j.State)
	}
	if err := f.svc.ExpireBatches(ctx, j.CreateTime.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d := hook.next(t); d.event["type"] != core.EventBatchExpired || d.data()["id"] != "batches/"+stuck {
		t.Fatalf("batch.expired: %s", d.body)
	}
	if j := f.settled(stuck); j.State != core.JobExpired {
		t.Fatalf("stuck batch %+v", j)
	}
	r = f.call("GET", "/v1beta/batches/"+stuck, nil).must(t, 200)
	if r.str("metadata.state") != "BATCH_STATE_EXPIRED" {
		t.Fatalf("expired batch resource: %s", r.raw)
	}
	// Running the task again emits nothing more.
	if err := f.svc.ExpireBatches(ctx, j.CreateTime.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-hook.got:
		t.Fatalf("unexpected delivery %s", d.body)
	default:
	}
}

// A static webhook subscribed to batch.succeeded gets the event of a
// batch without webhook_config (HMAC-signed), and nothing for a batch
// with one (whose event goes only to its URIs).
func TestStaticWebhookOnlyWithoutWebhookConfig(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	static := newReceiver(t)
	dynamic := newReceiver(t)
	w := f.call("POST", "/v1beta/webhooks", map[string]any{
		"uri": static.srv.URL, "subscribed_events": []string{core.EventBatchSucceeded},
	}).must(t, 200)
	secret := w.str("new_signing_secret")
	ctx := context.Background()

	plain := f.createBatch([]string{"hello"}, nil)
	d := static.next(t)
	v, err := webhook.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(d.header, d.body); err != nil {
		t.Fatalf("HMAC: %v", err)
	}
	if d.event["type"] != core.EventBatchSucceeded || d.data()["id"] != "batches/"+plain || d.data()["output_file_uri"] != "files/batch-"+plain {
		t.Fatalf("static delivery: %s", d.body)
	}
	if _, ok := d.data()["user_metadata"]; ok {
		t.Fatalf("static delivery carries user_metadata: %s", d.body)
	}

	withConfig := f.createBatch([]string{"hello"}, map[string]any{"uris": []string{dynamic.srv.URL}})
	if d := dynamic.next(t); d.data()["id"] != "batches/"+withConfig {
		t.Fatalf("dynamic delivery: %s", d.body)
	}
	// The dynamic batch's event created no delivery for the static webhook.
	ds, err := f.store.ListDeliveries(ctx, core.ListDeliveriesParams{ProjectID: f.project, WebhookID: w.str("id"), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("static webhook has %d deliveries, want 1", len(ds))
	}
}

// Batch requests are checked up front, in either spelling.
func TestBatchValidation(t *testing.T) {
	t.Parallel()
	f := setup(t, options{noRunner: true})
	const path = "/v1beta/models/gemini-2.5-flash:batchGenerateContent"
	for name, body := range map[string]string{
		"unknown field": `{"batch":{"inputConfig":{"requests":{"requests":[]}},"colour":"red"}}`,
		"no batch":      `{}`,
		"no input":      `{"batch":{"displayName":"x"}}`,
		"empty":         `{"batch":{"inputConfig":{"requests":{"requests":[]}}}}`,
		"bad request":   `{"batch":{"inputConfig":{"requests":{"requests":[{"request":{"contents":[]}}]}}}}`,
		"both inputs":   `{"batch":{"inputConfig":{"fileName":"files/x","requests":{"requests":[]}}}}`,
		"missing file":  `{"batch":{"inputConfig":{"fileName":"files/nope"}}}`,
		"bad uri":       `{"batch":{"inputConfig":{"requests":{"requests":[{"request":{"contents":[{"parts":[{"text":"x"}]}]}}]}},"webhookConfig":{"uris":["ftp://x"]}}}`,
		"bad uri host":  `{"batch":{"inputConfig":{"requests":{"requests":[{"request":{"contents":[{"parts":[{"text":"x"}]}]}}]}},"webhookConfig":{"uris":["https://example..com/h"]}}}`,
		"uri space":     `{"batch":{"inputConfig":{"requests":{"requests":[{"request":{"contents":[{"parts":[{"text":"x"}]}]}}]}},"webhookConfig":{"uris":["https://example.com/h "]}}}`,
		"bad metadata":  `{"batch":{"inputConfig":{"requests":{"requests":[{"request":{"contents":[{"parts":[{"text":"x"}]}]}}]}},"webhookConfig":{"uris":["https://example.com/h"],"userMetadata":[1]}}}`,
	} {
		if r := f.call("POST", path, body); r.status != 400 || r.str("error.status") != "INVALID_ARGUMENT" {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	// snake_case is accepted, and the webhook config is kept verbatim.
	r := f.call("POST", path, `{"batch":{"display_name":"snake","input_config":{"requests":{"requests":[
		{"request":{"contents":[{"parts":[{"text":"x"}]}],"system_instruction":{"parts":[{"text":"be brief"}]}}}]}},
		"webhook_config":{"uris":["https://example.com/h"],"user_metadata":{"a":[1,2]}}}}`).must(t, 200)
	if r.str("metadata.displayName") != "snake" || r.str("metadata.state") != "BATCH_STATE_PENDING" || r.path("done") != false {
		t.Fatalf("create: %s", r.raw)
	}
	j, err := f.store.GetJob(context.Background(), f.project, strings.TrimPrefix(r.str("name"), "batches/"))
	if err != nil || string(j.WebhookConfig.UserMetadata) != `{"a":[1,2]}` {
		t.Fatalf("stored config %+v %v", j, err)
	}
	// Listing pages through every batch.
	for range 2 {
		f.call("POST", path, `{"batch":{"inputConfig":{"requests":{"requests":[{"request":{"contents":[{"parts":[{"text":"x"}]}]}}]}}}}`).must(t, 200)
	}
	seen, token := 0, ""
	for page := 0; page < 5; page++ {
		r := f.call("GET", "/v1/batches?pageSize=2&pageToken="+token, nil).must(t, 200)
		ops, _ := r.path("operations").([]any)
		seen += len(ops)
		if token = r.str("nextPageToken"); token == "" {
			break
		}
	}
	if seen != 3 {
		t.Fatalf("listed %d batches, want 3", seen)
	}
	if r := f.call("GET", "/v1/batches?pageToken=garbage!", nil); r.status != 400 {
		t.Fatalf("bad token: %d", r.status)
	}
	if r := f.call("GET", "/v1/batches/nope", nil); r.status != 404 || r.str("error.status") != "NOT_FOUND" {
		t.Fatalf("missing batch: %d %s", r.status, r.raw)
	}
}

// A malformed request of a batch is refused naming the field and the
// API's type it must hold (Content, Part), not a Go type of longhook's
// ("executor.Part objects" reached the client).
func TestBatchRequestErrorsNameAPITypes(t *testing.T) {
	t.Parallel()
	f := setup(t, options{noRunner: true})
	for body, want := range map[string]string{
		`{"contents":5}`:                                    "request.contents must be an array of Content objects",
		`{"contents":[{"parts":"a"}]}`:                      "request.contents[0].parts must be an array of Part objects",
		`{"contents":[{"parts":[{"text":"a"}]}],"tools":5}`: "request.tools must be an array of Tool objects",
	} {
		r := f.call("POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent",
			`{"batch":{"inputConfig":{"requests":{"requests":[{"request":`+body+`}]}}}}`)
		if msg := r.str("error.message"); r.status != 400 || !strings.Contains(msg, want) || strings.Contains(msg, "executor.") {
			t.Errorf("%s: %d %q, want 400 with %q", body, r.status, msg, want)
		}
	}
}
