package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/nodetest"

	"github.com/longhook/longhook/internal/core"
)

// sdkDir holds the pinned @google/genai package and the driver script.
const sdkDir = "testdata/sdk"

// npmCI skips under -short and when Node.js is missing, and installs the
// pinned SDK once.
func npmCI(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the Node.js SDK test")
	}
	nodetest.Require(t, sdkDir)
}

// runSDK runs jobs.mjs in mode against f and returns its RESULT object.
func runSDK(t *testing.T, f *fixture, mode, hook string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "jobs.mjs", mode)
	cmd.Dir = sdkDir
	for _, kv := range os.Environ() {
		// The SDK's own settings would override the script's.
		if !strings.HasPrefix(kv, "GOOGLE_") && !strings.HasPrefix(kv, "GEMINI_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LONGHOOK_BASE_URL="+f.srv.URL, "LONGHOOK_API_KEY="+f.key, "LONGHOOK_HOOK_URL="+hook)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node jobs.mjs %s: %v\n%s", mode, err, out.String())
	}
	_, line, ok := strings.Cut(out.String(), "RESULT ")
	if !ok {
		t.Fatalf("no RESULT line:\n%s", out.String())
	}
	res := map[string]string{}
	if err := json.Unmarshal([]byte(strings.TrimSpace(line)), &res); err != nil {
		t.Fatalf("RESULT: %v: %s", err, line)
	}
	return res
}

// eventsByID waits for n deliveries and indexes them by data.id.
func eventsByID(t *testing.T, r *receiver, n int) map[string][]delivery {
	t.Helper()
	out := map[string][]delivery{}
	for _, d := range r.collect(t, n) {
		id, _ := d.data()["id"].(string)
		out[id] = append(out[id], d)
	}
	return out
}

// TestSDKBatches runs ai.batches (create with inline requests and a
// webhookConfig, get, list, cancel, delete, a file-input batch) through
// the official JS SDK; the dynamic URI receives one JWT-signed event per
// batch carrying user_metadata (batch.succeeded verified with npm jose as
// well as the Go verifier), and the output downloads with one line per
// request.
func TestSDKBatches(t *testing.T) {
	t.Parallel()
	npmCI(t)
	f := setup(t, options{})
	hook := newReceiver(t)
	res := runSDK(t, f, "batches", hook.srv.URL)

	v := f.verifier(t, hook.srv.URL)
	byID := eventsByID(t, hook, 3)
	want := map[string]string{
		res["succeeded"]: core.EventBatchSucceeded,
		res["failed"]:    core.EventBatchFailed,
		res["cancelled"]: core.EventBatchCancelled,
	}
	for id, typ := range want {
		ds := byID[id]
		if len(ds) != 1 {
			t.Fatalf("%s: %d deliveries, want 1", id, len(ds))
		}
		d := ds[0]
		claims, err := v.Verify(context.Background(), d.header, d.body)
		if err != nil {
			t.Fatalf("%s: JWT: %v", id, err)
		}
		if claims.Type != typ || d.event["type"] != typ || claims.Subject != id {
			t.Fatalf("%s: type %v (claims %s, sub %s), want %s", id, d.event["type"], claims.Type, claims.Subject, typ)
		}
		data := d.data()
		meta, _ := data["user_metadata"].(map[string]any)
		if meta["job_group"] != "nightly-eval" || meta["priority"] != "high" {
			t.Fatalf("%s: user_metadata %v", id, data["user_metadata"])
		}
		if data["sequence"] != float64(1) {
			t.Fatalf("%s: sequence %v, want 1", id, data["sequence"])
		}
		switch typ {
		case core.EventBatchSucceeded:
			if data["output_file_uri"] != res["output"] {
				t.Fatalf("output_file_uri %v, want %s", data["output_file_uri"], res["output"])
			}
			// An independent verifier: npm jose against the JWKS.
			checkWithJose(t, f, hook.srv.URL, id, d, map[string]any{"job_group": "nightly-eval", "priority": "high"})
		case core.EventBatchFailed:
			if data["error_code"] != "INTERNAL" || !strings.Contains(data["error_message"].(string), "[[fail]]") {
				t.Fatalf("failed data %v", data)
			}
		}
	}
	// The file-input batch has no webhook_config and no static webhook:
	// its event is recorded with no delivery.
	id := strings.TrimPrefix(res["file_batch"], "batches/")
	if j := f.settled(id); j.State != core.JobSucceeded || !j.TerminalEmitted {
		t.Fatalf("file batch %+v", j)
	}
}

// TestSDKFiles uploads (one resumable chunk and several), gets, lists,
// downloads and deletes files through the official JS SDK.
func TestSDKFiles(t *testing.T) {
	t.Parallel()
	npmCI(t)
	f := setup(t, options{})
	res := runSDK(t, f, "files", "http://127.0.0.1:1/unused")
	if res["file"] != "files/big-one" {
		t.Fatalf("result %v", res)
	}
}

// TestSDKInteractions runs a function-calling conversation in the
// background with a webhook_config through the official JS SDK:
// requires_action, the client's function result in a new interaction,
// completed; data.sequence goes 1, 2 across the two; a cancelled
// interaction emits interaction.cancelled.
func TestSDKInteractions(t *testing.T) {
	t.Parallel()
	npmCI(t)
	f := setup(t, options{})
	hook := newReceiver(t)
	res := runSDK(t, f, "interactions", hook.srv.URL)

	v := f.verifier(t, hook.srv.URL)
	byID := eventsByID(t, hook, 3)
	check := func(id, typ string, seq float64) map[string]any {
		t.Helper()
		ds := byID[id]
		if len(ds) != 1 {
			t.Fatalf("%s: %d deliveries, want 1", id, len(ds))
		}
		if _, err := v.Verify(context.Background(), ds[0].header, ds[0].body); err != nil {
			t.Fatalf("%s: JWT: %v", id, err)
		}
		data := ds[0].data()
		if ds[0].event["type"] != typ || data["sequence"] != seq {
			t.Fatalf("%s: %v sequence %v, want %s %v", id, ds[0].event["type"], data["sequence"], typ, seq)
		}
		if meta, _ := data["user_metadata"].(map[string]any); meta["conversation"] != "c-1" {
			t.Fatalf("%s: user_metadata %v", id, data["user_metadata"])
		}
		return data
	}
	data := check(res["first"], core.EventInteractionRequiresAction, 1)
	ra, _ := data["required_action"].(map[string]any)
	calls, _ := ra["function_calls"].([]any)
	if len(calls) != 1 || calls[0].(map[string]any)["name"] != "get_weather" {
		t.Fatalf("required_action %v", data["required_action"])
	}
	check(res["second"], core.EventInteractionCompleted, 2)
	check(res["cancelled"], core.EventInteractionCancelled, 1)
}
