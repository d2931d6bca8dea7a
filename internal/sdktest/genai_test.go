package sdktest

import (
	"bytes"
	"context"
	"testing"

	"google.golang.org/genai"

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
