package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"google.golang.org/genai"
	gi "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	wh "google.golang.org/genai/interactions/models/webhooks"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs/executor"
)

// goSDK is the official Go SDK's client of f (Gemini API, v1beta).
func goSDK(t *testing.T, f *server) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{APIKey: f.key, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: f.url, APIVersion: "v1beta"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var apiVersion = "v1beta"

// recordGo records a Go SDK call that worked (err nil) and ends the test
// when it did not.
func recordGo(t *testing.T, op, call string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
	record(t, "go", op, call, works, "")
}

// TestGoSDK drives video generation (GenerateVideos with a WebhookConfig,
// GetVideosOperation, Files.Download), batches and files through the
// official Go SDK (google.golang.org/genai) against a real serve; a
// failing batch's batch.failed reaches its dynamic URI JWT-signed, with
// error {code, message}.
func TestGoSDK(t *testing.T) {
	t.Parallel()
	f := startServe(t)
	hook := newReceiver(t)
	ctx := context.Background()
	c := goSDK(t, f)

	op, err := c.Models.GenerateVideosFromSource(ctx, "veo-3.0-generate-001", &genai.GenerateVideosSource{Prompt: "a cat surfing"},
		&genai.GenerateVideosConfig{WebhookConfig: &genai.WebhookConfig{Uris: []string{hook.srv.URL}, UserMetadata: map[string]any{"shot": "g1"}}})
	recordGo(t, "models.generateVideos (webhook_config)", "c.Models.GenerateVideosFromSource", err)
	waitFor(t, "the video operation", func() bool {
		if op, err = c.Operations.GetVideosOperation(ctx, op, nil); err != nil {
			t.Fatal(err)
		}
		return op.Done
	})
	record(t, "go", "operations.getVideosOperation", "c.Operations.GetVideosOperation", works, "")
	if op.Error != nil || op.Response == nil || len(op.Response.GeneratedVideos) != 1 {
		t.Fatalf("operation %+v", op)
	}
	video := op.Response.GeneratedVideos[0]
	data, err := c.Files.Download(ctx, genai.NewDownloadURIFromGeneratedVideo(video), nil)
	if err != nil || !bytes.Equal(data, executor.MinimalMP4()) || video.Video.MIMEType != "video/mp4" {
		t.Fatalf("download: %d bytes, %v (%s)", len(data), err, video.Video.MIMEType)
	}
	record(t, "go", "files.download (generated video)", "c.Files.Download(genai.NewDownloadURIFromGeneratedVideo(v))", works, "")
	d := hook.next(t)
	meta, _ := d.data()["user_metadata"].(map[string]any)
	if d.event["type"] != core.EventVideoGenerated || d.data()["id"] != op.Name || d.data()["video_uri"] != video.Video.URI || meta["shot"] != "g1" {
		t.Fatalf("video.generated: %s", d.body)
	}
	verifyJWT(t, f, nil, d, hook.srv.URL)

	b, err := c.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{
		{Contents: []*genai.Content{genai.NewContentFromText("hi from go", genai.RoleUser)}, Metadata: map[string]string{"key": "g1"}},
	}}, &genai.CreateBatchJobConfig{DisplayName: "go", WebhookConfig: &genai.WebhookConfig{Uris: []string{hook.srv.URL}, UserMetadata: map[string]any{"batch": "ok"}}})
	recordGo(t, "batches.create (inline, webhook_config)", "c.Batches.Create", err)
	waitFor(t, "the batch", func() bool {
		if b, err = c.Batches.Get(ctx, b.Name, nil); err != nil {
			t.Fatal(err)
		}
		return b.State != genai.JobStatePending && b.State != genai.JobStateRunning
	})
	record(t, "go", "batches.get", "c.Batches.Get", works, "")
	if b.State != genai.JobStateSucceeded || b.Dest == nil || len(b.Dest.InlinedResponses) != 1 ||
		b.Dest.InlinedResponses[0].Response.Text() != "Simulated response to: hi from go" || b.Dest.InlinedResponses[0].Metadata["key"] != "g1" {
		t.Fatalf("batch %+v", b)
	}
	if d := hook.next(t); d.event["type"] != core.EventBatchSucceeded || d.data()["id"] != b.Name {
		t.Fatalf("batch.succeeded: %s", d.body)
	}

	// batch.failed with error {code, message}, JWT-signed to the batch's URI.
	bad, err := c.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{
		{Contents: []*genai.Content{genai.NewContentFromText("this breaks [[fail]]", genai.RoleUser)}}}},
		&genai.CreateBatchJobConfig{WebhookConfig: &genai.WebhookConfig{Uris: []string{hook.srv.URL}, UserMetadata: map[string]any{"batch": "bad"}}})
	if err != nil {
		t.Fatal(err)
	}
	d = hook.next(t)
	claims := verifyJWT(t, f, nil, d, hook.srv.URL)
	e, _ := d.data()["error"].(map[string]any)
	meta, _ = d.data()["user_metadata"].(map[string]any)
	if d.event["type"] != core.EventBatchFailed || d.data()["id"] != bad.Name || e["code"] != 13.0 ||
		!strings.Contains(e["message"].(string), "Simulated failure") || meta["batch"] != "bad" || claims["sub"] != bad.Name {
		t.Fatalf("batch.failed: %s (claims %v)", d.body, claims)
	}
	record(t, "go", "batch.failed (error) received", "c.Batches.Create (a failing batch)", works,
		"the dynamic URI gets batch.failed with error {code: 13, message} and error_code/error_message, JWT-verified with golang-jwt")
	if bad, err = c.Batches.Get(ctx, bad.Name, nil); err != nil || bad.State != genai.JobStateFailed || bad.Error != nil {
		t.Fatalf("failed batch: %+v %v", bad, err)
	}
	record(t, "go", "batch.failed (error) received", "c.Batches.Get (the failed batch)", differs,
		"Go SDK 1.77 maps no error from a Gemini API batch (batchJobFromMldev has no error field): BatchJob.Error stays nil although the operation carries error {code, message}; the state is JOB_STATE_FAILED and the event has the error")

	page, err := c.Batches.List(ctx, &genai.ListBatchJobsConfig{PageSize: 1})
	recordGo(t, "batches.list", "c.Batches.List", err)
	if len(page.Items) != 1 || page.NextPageToken == "" {
		t.Fatalf("batches page: %+v", page)
	}
	n := 0
	for _, err := range c.Batches.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("Batches.All: %d batches, want 2", n)
	}
	slow, err := c.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{
		{Contents: []*genai.Content{genai.NewContentFromText("never [[expire]]", genai.RoleUser)}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	recordGo(t, "batches.cancel", "c.Batches.Cancel", c.Batches.Cancel(ctx, slow.Name, nil))
	if slow, err = c.Batches.Get(ctx, slow.Name, nil); err != nil || slow.State != genai.JobStateCancelled {
		t.Fatalf("cancelled batch: %+v %v", slow, err)
	}
	_, err = c.Batches.Delete(ctx, slow.Name, nil)
	recordGo(t, "batches.delete", "c.Batches.Delete", err)
	if _, err := c.Batches.Get(ctx, slow.Name, nil); !isStatus(err, 404) {
		t.Fatalf("deleted batch: %v", err)
	}
	_, err = c.Batches.CreateEmbeddings(ctx, new("gemini-embedding-001"), &genai.EmbeddingsBatchJobSource{InlinedRequests: &genai.EmbedContentBatch{
		Contents: []*genai.Content{genai.NewContentFromText("embed me", genai.RoleUser)}}}, nil)
	if !isStatus(err, 404) {
		t.Fatalf("CreateEmbeddings: %v, want longhook's 404", err)
	}
	record(t, "go", "batches.createEmbeddings", "c.Batches.CreateEmbeddings", unsupported,
		"longhook has no :asyncBatchEmbedContent; the SDK shows the 404 NOT_FOUND with the server's message")

	up, err := c.Files.Upload(ctx, bytes.NewReader([]byte("go bytes")), &genai.UploadFileConfig{MIMEType: "text/plain", DisplayName: "go"})
	if err != nil || up.State != genai.FileStateActive || *up.SizeBytes != 8 {
		t.Fatalf("upload: %+v %v", up, err)
	}
	record(t, "go", "files.upload", "c.Files.Upload", works, "")
	got, err := c.Files.Download(ctx, genai.NewDownloadURIFromFile(up), nil)
	if err != nil || string(got) != "go bytes" {
		t.Fatalf("download: %q %v", got, err)
	}
	record(t, "go", "files.download", "c.Files.Download(genai.NewDownloadURIFromFile(f))", works, "")
	g, err := c.Files.Get(ctx, up.Name, nil)
	if err != nil || g.DisplayName != "go" || g.MIMEType != "text/plain" {
		t.Fatalf("Files.Get: %+v %v", g, err)
	}
	record(t, "go", "files.get", "c.Files.Get", works, "")
	fp, err := c.Files.List(ctx, &genai.ListFilesConfig{PageSize: 100})
	recordGo(t, "files.list", "c.Files.List", err)
	if !containsFile(fp.Items, up.Name) {
		t.Fatalf("Files.List lacks %s", up.Name)
	}

	in := []string{`{"key":"f1","request":{"contents":[{"parts":[{"text":"from a file"}]}]}}`}
	src, err := c.Files.Upload(ctx, strings.NewReader(strings.Join(in, "\n")), &genai.UploadFileConfig{MIMEType: "application/jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	fb, err := c.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{FileName: src.Name}, nil)
	recordGo(t, "batches.create (file input)", "c.Batches.Create(&genai.BatchJobSource{FileName})", err)
	waitFor(t, "the file batch", func() bool {
		if fb, err = c.Batches.Get(ctx, fb.Name, nil); err != nil {
			t.Fatal(err)
		}
		return fb.State == genai.JobStateSucceeded
	})
	out, err := c.Files.Download(ctx, genai.NewDownloadURIFromFile(&genai.File{DownloadURI: fb.Dest.FileName}), nil)
	if err != nil || !strings.Contains(string(out), `"key":"f1"`) {
		t.Fatalf("file batch output: %s %v", out, err)
	}

	_, err = c.Files.Delete(ctx, up.Name, nil)
	recordGo(t, "files.delete", "c.Files.Delete", err)
	if _, err := c.Files.Get(ctx, up.Name, nil); !isStatus(err, 404) {
		t.Fatalf("deleted file: %v", err)
	}
	_, err = c.Files.RegisterFiles(ctx, []string{"gs://bucket/a.txt"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "credentials are required") {
		t.Fatalf("RegisterFiles: %v", err)
	}
	record(t, "go", "files.registerFiles", "c.Files.RegisterFiles", unsupported,
		"registers gs:// objects with Google Cloud credentials (the SDK refuses without them); longhook has no Cloud Storage and no files:register")
}

func containsFile(fs []*genai.File, name string) bool {
	for _, f := range fs {
		if f.Name == name {
			return true
		}
	}
	return false
}

// isStatus reports whether err is a genai.APIError with HTTP code.
func isStatus(err error, code int) bool {
	var ae genai.APIError
	return errors.As(err, &ae) && ae.Code == code
}

// TestGoSDKWebhooks drives every WebhookService call of the Go SDK.
func TestGoSDKWebhooks(t *testing.T) {
	t.Parallel()
	f := startServe(t)
	hook := newReceiver(t)
	ctx := context.Background()
	w := goSDK(t, f).Webhooks
	cr, err := w.Create(ctx, operations.CreateWebhookRequest{APIVersion: &apiVersion, Body: webhookInput(hook.srv.URL)})
	recordGo(t, "webhooks.create", "c.Webhooks.Create", err)
	hk := cr.Webhook
	if hk == nil || hk.ID == nil || hk.NewSigningSecret == nil || !strings.HasPrefix(*hk.NewSigningSecret, "whsec_") {
		t.Fatalf("create: %+v", hk)
	}
	id := *hk.ID
	lr, err := w.List(ctx, operations.ListWebhooksRequest{APIVersion: &apiVersion, PageSize: new(10)})
	recordGo(t, "webhooks.list", "c.Webhooks.List", err)
	if len(lr.WebhookListResponse.Webhooks) != 1 || lr.WebhookListResponse.Webhooks[0].NewSigningSecret != nil {
		t.Fatalf("list: %+v", lr.WebhookListResponse)
	}
	gr, err := w.Get(ctx, operations.GetWebhookRequest{APIVersion: &apiVersion, ID: id})
	recordGo(t, "webhooks.get", "c.Webhooks.Get", err)
	if gr.Webhook.URI != hook.srv.URL {
		t.Fatalf("get: %+v", gr.Webhook)
	}
	state := wh.WebhookUpdateState("disabled")
	ur, err := w.Update(ctx, operations.UpdateWebhookRequest{APIVersion: &apiVersion, ID: id, UpdateMask: new("state"), Body: wh.WebhookUpdate{State: &state}})
	recordGo(t, "webhooks.update", "c.Webhooks.Update", err)
	if ur.Webhook.State == nil || *ur.Webhook.State != "disabled" {
		t.Fatalf("update: %+v", ur.Webhook)
	}
	state = "enabled"
	if _, err := w.Update(ctx, operations.UpdateWebhookRequest{APIVersion: &apiVersion, ID: id, Body: wh.WebhookUpdate{State: &state}}); err != nil {
		t.Fatal(err)
	}
	_, err = w.Ping(ctx, operations.PingWebhookRequest{APIVersion: &apiVersion, ID: id})
	recordGo(t, "webhooks.ping", "c.Webhooks.Ping", err)
	if d := hook.next(t); d.event["type"] != "webhook.ping" {
		t.Fatalf("ping delivery: %s", d.body)
	}
	rr, err := w.RotateSigningSecret(ctx, operations.RotateSigningSecretRequest{APIVersion: &apiVersion, ID: id})
	recordGo(t, "webhooks.rotateSigningSecret", "c.Webhooks.RotateSigningSecret", err)
	if s := rr.WebhookRotateSigningSecretResponse.Secret; s == nil || *s == *hk.NewSigningSecret {
		t.Fatalf("rotate: %+v", rr.WebhookRotateSigningSecretResponse)
	}
	_, err = w.Delete(ctx, operations.DeleteWebhookRequest{APIVersion: &apiVersion, ID: id})
	recordGo(t, "webhooks.delete", "c.Webhooks.Delete", err)
	if _, err := w.Get(ctx, operations.GetWebhookRequest{APIVersion: &apiVersion, ID: id}); err == nil {
		t.Fatal("get after delete succeeded")
	}
}

// TestGoSDKVideoInteraction: Veo through the Interactions API with the Go
// SDK. A background interaction with a video model and a webhook_config
// completes with Interaction.OutputVideo, whose URI Files.Download takes;
// the dynamic URI gets video.generated (JWT-verified with golang-jwt,
// carrying user_metadata) and then interaction.completed.
func TestGoSDKVideoInteraction(t *testing.T) {
	t.Parallel()
	f := startServe(t)
	hook := newReceiver(t)
	ctx := context.Background()
	c := goSDK(t, f)
	meta := map[string]any{"shot": "go-interaction"}
	cr, err := c.Interactions.Create(ctx, operations.CreateInteractionRequest{APIVersion: &apiVersion,
		Body: operations.NewCreateInteractionRequestBody(gi.CreateModelInteraction{Model: gi.Model("veo-3.1-generate-preview"),
			Input: new(gi.NewInteractionsInput("a cat surfing at dawn")), Background: new(true),
			WebhookConfig: &gi.WebhookConfig{Uris: []string{hook.srv.URL}, UserMetadata: meta}})})
	if err != nil {
		t.Fatal(err)
	}
	id := *cr.Interaction.ID
	it := pollInteraction(t, c, id, gi.InteractionStatusCompleted)
	if it.OutputVideo == nil || it.OutputVideo.URI == nil || it.OutputVideo.MimeType == nil || *it.OutputVideo.MimeType != "video/mp4" {
		t.Fatalf("output_video: %+v", it.OutputVideo)
	}
	// video.generated (sequence 1) and interaction.completed (sequence 2)
	// are two deliveries, which may arrive in either order.
	got := map[any]delivery{}
	for range 2 {
		d := hook.next(t)
		got[d.event["type"]] = d
	}
	d := got[core.EventVideoGenerated]
	claims := verifyJWT(t, f, nil, d, hook.srv.URL)
	m, _ := d.data()["user_metadata"].(map[string]any)
	if d.event["type"] != core.EventVideoGenerated || d.data()["id"] != id || d.data()["sequence"] != 1.0 || d.data()["output_file_uri"] != *it.OutputVideo.URI ||
		m["shot"] != "go-interaction" || claims["sub"] != "interactions/"+id {
		t.Fatalf("video.generated: %s (claims %v)", d.body, claims)
	}
	record(t, "go", "interactions.create (video model) → video.generated", `c.Interactions.Create(CreateModelInteraction{Model: "veo-…", Background, WebhookConfig})`, works,
		"completes with Interaction.OutputVideo {uri, mime_type}; the dynamic URI gets video.generated (JWT, user_metadata), then interaction.completed; the real API's wire shape is unconfirmed")
	data, err := c.Files.Download(ctx, genai.NewDownloadURIFromVideo(&genai.Video{URI: *it.OutputVideo.URI}), nil)
	if err != nil || !bytes.Equal(data, executor.MinimalMP4()) {
		t.Fatalf("download: %d bytes, %v", len(data), err)
	}
	record(t, "go", "files.download (interaction output_video)", "c.Files.Download(genai.NewDownloadURIFromVideo(&genai.Video{URI: *it.OutputVideo.URI}))", differs,
		"the interactions package's VideoContent is not a genai.DownloadURI: wrap its URI in a genai.Video")
	d = got[core.EventInteractionCompleted]
	content, _ := d.data()["output"].(map[string]any)["content"].([]any)
	if d.event["type"] != core.EventInteractionCompleted || d.data()["sequence"] != 2.0 || len(content) != 1 || content[0].(map[string]any)["uri"] != *it.OutputVideo.URI {
		t.Fatalf("interaction.completed: %s", d.body)
	}
	verifyJWT(t, f, nil, d, hook.srv.URL)
}

// pollInteraction gets the interaction until its status is no longer
// in_progress, and requires want.
func pollInteraction(t *testing.T, c *genai.Client, id string, want gi.InteractionStatus) *gi.Interaction {
	t.Helper()
	var it *gi.Interaction
	waitFor(t, "interaction "+id, func() bool {
		r, err := c.Interactions.Get(context.Background(), operations.GetInteractionByIDRequest{APIVersion: &apiVersion, ID: id})
		if err != nil {
			t.Fatal(err)
		}
		it = r.Interaction
		return it.Status != gi.InteractionStatusInProgress
	})
	if it.Status != want {
		raw, _ := json.Marshal(it)
		t.Fatalf("interaction %s: status %s, want %s: %s", id, it.Status, want, raw)
	}
	return it
}

// TestGoSDKAgentInteraction: an agent interaction (agent, background)
// reaches requires_action; the client answers the function call with a
// continuation and the turn completes, interaction.completed carrying the
// output. Also the synchronous model turn, cancel, delete and stream.
func TestGoSDKAgentInteraction(t *testing.T) {
	t.Parallel()
	f := startServe(t)
	hook := newReceiver(t)
	ctx := context.Background()
	c := goSDK(t, f)
	wc := &gi.WebhookConfig{Uris: []string{hook.srv.URL}, UserMetadata: map[string]any{"study": "weather"}}
	tools := []gi.Tool{gi.NewTool(gi.Function{Name: new("get_weather"), Parameters: map[string]any{"type": "object"}})}
	agent := gi.AgentOption("deep-research-pro-preview-12-2025")
	cr, err := c.Interactions.Create(ctx, operations.CreateInteractionRequest{APIVersion: &apiVersion,
		Body: operations.NewCreateInteractionRequestBody(gi.CreateAgentInteraction{Agent: agent, Background: new(true), Tools: tools,
			Input: new(gi.NewInteractionsInput("research the weather in Paris [[requires_action]]")), WebhookConfig: wc})})
	if err != nil {
		t.Fatal(err)
	}
	first := *cr.Interaction.ID
	it := pollInteraction(t, c, first, gi.InteractionStatusRequiresAction)
	var call *gi.FunctionCallStep
	for _, s := range it.Steps {
		if s.FunctionCallStep != nil {
			call = s.FunctionCallStep
		}
	}
	if call == nil || call.Name != "get_weather" {
		t.Fatalf("requires_action steps: %+v", it.Steps)
	}
	if d := hook.next(t); d.event["type"] != core.EventInteractionRequiresAction || d.data()["id"] != first {
		t.Fatalf("requires_action: %s", d.body)
	}
	record(t, "go", "interactions.create (agent) → requires_action", "c.Interactions.Create(CreateAgentInteraction{Agent, Background, Tools, WebhookConfig})", works,
		"thought steps while it runs, then a function_call step and interaction.requires_action")
	cr, err = c.Interactions.Create(ctx, operations.CreateInteractionRequest{APIVersion: &apiVersion,
		Body: operations.NewCreateInteractionRequestBody(gi.CreateAgentInteraction{Agent: agent, Background: new(true), PreviousInteractionID: &first,
			WebhookConfig: wc, Input: new(gi.NewInteractionsInput([]gi.Step{gi.NewStep(gi.FunctionResultStep{CallID: call.ID,
				Result: gi.NewFunctionResultStepResultUnion("sunny, 21C")})}))})})
	if err != nil {
		t.Fatal(err)
	}
	second := *cr.Interaction.ID
	it = pollInteraction(t, c, second, gi.InteractionStatusCompleted)
	if it.OutputText == nil || !strings.Contains(*it.OutputText, "sunny, 21C") {
		t.Fatalf("completed: %+v", it)
	}
	d := hook.next(t)
	verifyJWT(t, f, nil, d, hook.srv.URL)
	content, _ := d.data()["output"].(map[string]any)["content"].([]any)
	if d.event["type"] != core.EventInteractionCompleted || d.data()["id"] != second || len(content) != 1 ||
		!strings.Contains(content[0].(map[string]any)["text"].(string), "sunny, 21C") {
		t.Fatalf("interaction.completed: %s", d.body)
	}
	record(t, "go", "interactions.create (function result) → interaction.completed", "c.Interactions.Create(… PreviousInteractionID, Input: []Step{FunctionResultStep})", works,
		"interaction.completed carries output.content, JWT-verified with golang-jwt")
	record(t, "go", "interactions.create (background, webhook_config)", "c.Interactions.Create(… Background, WebhookConfig)", works, "")

	sr, err := c.Interactions.Create(ctx, operations.CreateInteractionRequest{APIVersion: &apiVersion,
		Body: operations.NewCreateInteractionRequestBody(gi.CreateModelInteraction{Model: gi.Model("gemini-2.5-flash"), Input: new(gi.NewInteractionsInput("hello"))})})
	recordGo(t, "interactions.create (model)", "c.Interactions.Create(CreateModelInteraction)", err)
	if sr.Interaction.Status != gi.InteractionStatusCompleted || sr.Interaction.OutputText == nil || *sr.Interaction.OutputText != "Simulated response to: hello" {
		t.Fatalf("synchronous turn: %+v", sr.Interaction)
	}
	_, err = c.Interactions.Get(ctx, operations.GetInteractionByIDRequest{APIVersion: &apiVersion, ID: *sr.Interaction.ID})
	recordGo(t, "interactions.get", "c.Interactions.Get", err)

	slow, err := c.Interactions.Create(ctx, operations.CreateInteractionRequest{APIVersion: &apiVersion,
		Body: operations.NewCreateInteractionRequestBody(gi.CreateModelInteraction{Model: gi.Model("gemini-2.5-flash"), Background: new(true),
			Input: new(gi.NewInteractionsInput("never [[expire]]"))})})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := c.Interactions.Cancel(ctx, operations.CancelInteractionByIDRequest{APIVersion: &apiVersion, ID: *slow.Interaction.ID})
	recordGo(t, "interactions.cancel", "c.Interactions.Cancel", err)
	if cancelled.Interaction.Status != gi.InteractionStatusCancelled {
		t.Fatalf("cancel: %+v", cancelled.Interaction)
	}
	_, err = c.Interactions.Delete(ctx, operations.DeleteInteractionRequest{APIVersion: &apiVersion, ID: *slow.Interaction.ID})
	recordGo(t, "interactions.delete", "c.Interactions.Delete", err)

	_, err = c.Interactions.Create(ctx, operations.CreateInteractionRequest{APIVersion: &apiVersion,
		Body: operations.NewCreateInteractionRequestBody(gi.CreateModelInteraction{Model: gi.Model("gemini-2.5-flash"), Stream: new(true),
			Input: new(gi.NewInteractionsInput("hello"))})})
	if err == nil || !strings.Contains(err.Error(), "stream: true is not supported") {
		t.Fatalf("stream: %v", err)
	}
	record(t, "go", "interactions.create (stream)", "c.Interactions.Create(… Stream: true)", unsupported,
		"longhook does not stream interactions (400 INVALID_ARGUMENT, whose message the SDK shows): use background and poll, or a webhook_config")
}

// The Go SDK shows the server's message for a 400 and a 404 on every
// interaction call (the Interactions API's error shape has a string code).
func TestGoSDKInteractionErrors(t *testing.T) {
	t.Parallel()
	f := startServe(t)
	ctx := context.Background()
	c := goSDK(t, f)
	nope := "nope"
	check := func(call string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want the server's message %q", call, err, want)
		}
	}
	_, err := c.Interactions.Create(ctx, operations.CreateInteractionRequest{APIVersion: &apiVersion,
		Body: operations.NewCreateInteractionRequestBody(gi.CreateModelInteraction{Model: gi.Model("gemini-2.5-flash"),
			Input: new(gi.NewInteractionsInput("hi")), PreviousInteractionID: &nope})})
	check("create (400)", err, "is not an interaction of this project")
	_, err = c.Interactions.Create(ctx, operations.CreateInteractionRequest{APIVersion: &apiVersion,
		Body: operations.NewCreateInteractionRequestBody(gi.CreateModelInteraction{Model: gi.Model("veo-3"),
			Input: new(gi.NewInteractionsInput("hi")), ResponseFormat: new(gi.NewCreateModelInteractionResponseFormat(gi.NewResponseFormat(gi.VideoResponseFormat{Duration: new("eight")})))})})
	check("create video (400)", err, `must be whole seconds`)
	_, err = c.Interactions.Get(ctx, operations.GetInteractionByIDRequest{APIVersion: &apiVersion, ID: nope})
	check("get (404)", err, "Interaction nope was not found.")
	_, err = c.Interactions.Cancel(ctx, operations.CancelInteractionByIDRequest{APIVersion: &apiVersion, ID: nope})
	check("cancel (404)", err, "Interaction nope was not found.")
	_, err = c.Interactions.Delete(ctx, operations.DeleteInteractionRequest{APIVersion: &apiVersion, ID: nope})
	check("delete (404)", err, "Interaction nope was not found.")
	if !t.Failed() {
		record(t, "go", "interactions error 400 (message shown)", "c.Interactions.Create", works, "the error's text holds the server's message")
		record(t, "go", "interactions error 404 (message shown)", "c.Interactions.Get / Cancel / Delete", works, "")
	}
}

// webhookInput subscribes uri to every Gemini event.
func webhookInput(uri string) wh.WebhookInput {
	return wh.WebhookInput{Name: new("go-sdk"), URI: uri, SubscribedEvents: []wh.WebhookSubscribedEvent{
		wh.WebhookSubscribedEventBatchSucceeded, wh.WebhookSubscribedEventBatchFailed, wh.WebhookSubscribedEventVideoGenerated}}
}
