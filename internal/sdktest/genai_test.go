package sdktest

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"google.golang.org/genai"
	gi "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs/executor"
)

// TestGoSDK drives video generation (GenerateVideos with a WebhookConfig,
// GetVideosOperation, Files.Download), a batch and an upload through the
// official Go SDK (google.golang.org/genai) against a real serve.
func TestGoSDK(t *testing.T) {
	t.Parallel()
	f := startServe(t)
	hook := newReceiver(t)
	ctx := context.Background()
	c, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: f.key, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: f.url, APIVersion: "v1beta"}})
	if err != nil {
		t.Fatal(err)
	}

	op, err := c.Models.GenerateVideosFromSource(ctx, "veo-3.0-generate-001", &genai.GenerateVideosSource{Prompt: "a cat surfing"},
		&genai.GenerateVideosConfig{WebhookConfig: &genai.WebhookConfig{Uris: []string{hook.srv.URL}, UserMetadata: map[string]any{"shot": "g1"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the video operation", func() bool {
		if op, err = c.Operations.GetVideosOperation(ctx, op, nil); err != nil {
			t.Fatal(err)
		}
		return op.Done
	})
	if op.Error != nil || op.Response == nil || len(op.Response.GeneratedVideos) != 1 {
		t.Fatalf("operation %+v", op)
	}
	video := op.Response.GeneratedVideos[0]
	data, err := c.Files.Download(ctx, genai.NewDownloadURIFromGeneratedVideo(video), nil)
	if err != nil || !bytes.Equal(data, executor.MinimalMP4()) || video.Video.MIMEType != "video/mp4" {
		t.Fatalf("download: %d bytes, %v (%s)", len(data), err, video.Video.MIMEType)
	}
	d := hook.next(t)
	meta, _ := d.data()["user_metadata"].(map[string]any)
	if d.event["type"] != core.EventVideoGenerated || d.data()["id"] != op.Name || d.data()["video_uri"] != video.Video.URI || meta["shot"] != "g1" {
		t.Fatalf("video.generated: %s", d.body)
	}

	b, err := c.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{
		{Contents: []*genai.Content{genai.NewContentFromText("hi from go", genai.RoleUser)}, Metadata: map[string]string{"key": "g1"}},
	}}, &genai.CreateBatchJobConfig{DisplayName: "go"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the batch", func() bool {
		if b, err = c.Batches.Get(ctx, b.Name, nil); err != nil {
			t.Fatal(err)
		}
		return b.State != genai.JobStatePending && b.State != genai.JobStateRunning
	})
	if b.State != genai.JobStateSucceeded || b.Dest == nil || len(b.Dest.InlinedResponses) != 1 ||
		b.Dest.InlinedResponses[0].Response.Text() != "Simulated response to: hi from go" || b.Dest.InlinedResponses[0].Metadata["key"] != "g1" {
		t.Fatalf("batch %+v", b)
	}

	up, err := c.Files.Upload(ctx, bytes.NewReader([]byte("go bytes")), &genai.UploadFileConfig{MIMEType: "text/plain", DisplayName: "go"})
	if err != nil || up.State != genai.FileStateActive || *up.SizeBytes != 8 {
		t.Fatalf("upload: %+v %v", up, err)
	}
	got, err := c.Files.Download(ctx, genai.NewDownloadURIFromFile(up), nil)
	if err != nil || string(got) != "go bytes" {
		t.Fatalf("download: %q %v", got, err)
	}
}

// The Go SDK shows the server's message for a 400 and a 404 on every
// interaction call (the Interactions API's error shape has a string code).
func TestGoSDKInteractionErrors(t *testing.T) {
	t.Parallel()
	f := startServe(t)
	ctx := context.Background()
	c, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: f.key, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: f.url, APIVersion: "v1beta"}})
	if err != nil {
		t.Fatal(err)
	}
	version, nope := "v1beta", "nope"
	check := func(call string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want the server's message %q", call, err, want)
		}
	}
	_, err = c.Interactions.Create(ctx, operations.CreateInteractionRequest{APIVersion: &version,
		Body: operations.NewCreateInteractionRequestBody(gi.CreateModelInteraction{Model: gi.Model("gemini-2.5-flash"),
			Input: new(gi.NewInteractionsInput("hi")), PreviousInteractionID: &nope})})
	check("create (400)", err, "is not an interaction of this project")
	_, err = c.Interactions.Get(ctx, operations.GetInteractionByIDRequest{APIVersion: &version, ID: nope})
	check("get (404)", err, "Interaction nope was not found.")
	_, err = c.Interactions.Cancel(ctx, operations.CancelInteractionByIDRequest{APIVersion: &version, ID: nope})
	check("cancel (404)", err, "interaction nope was not found.")
	_, err = c.Interactions.Delete(ctx, operations.DeleteInteractionRequest{APIVersion: &version, ID: nope})
	check("delete (404)", err, "Interaction nope was not found.")
}
