package jobs_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
	"github.com/longhook/longhook/internal/jobs/executor"
)

// A video generated through predictLongRunning (the request the Go SDK's
// GenerateVideos sends) emits video.generated to its webhookConfig URIs,
// the operation reads as the SDK expects, and the file downloads from the
// URI in both.
func TestVideoGenerated(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	hook := newReceiver(t)
	r := f.call("POST", "/v1beta/models/veo-3.0-generate-001:predictLongRunning", map[string]any{
		"instances":     []any{map[string]any{"prompt": "a cat surfing"}},
		"parameters":    map[string]any{"aspectRatio": "16:9", "numberOfVideos": 1},
		"webhookConfig": map[string]any{"uris": []string{hook.srv.URL}, "userMetadata": map[string]any{"shot": "a1"}},
	}).must(t, 200)
	name := r.str("name")
	if !strings.HasPrefix(name, "models/veo-3.0-generate-001/operations/") || r.path("done") != false {
		t.Fatalf("create: %s", r.raw)
	}
	d := hook.next(t)
	if _, err := f.verifier(t, hook.srv.URL).Verify(context.Background(), d.header, d.body); err != nil {
		t.Fatalf("JWT: %v", err)
	}
	data := d.data()
	id := strings.TrimPrefix(name, "models/veo-3.0-generate-001/operations/")
	uri := f.srv.URL + "/v1beta/files/video" + id + ":download?alt=media"
	if d.event["type"] != core.EventVideoGenerated || data["id"] != name || data["output_file_uri"] != uri ||
		data["video_uri"] != uri || data["file_name"] != "files/video"+id || data["sequence"] != float64(1) {
		t.Fatalf("video.generated: %s", d.body)
	}
	if meta, _ := data["user_metadata"].(map[string]any); meta["shot"] != "a1" {
		t.Fatalf("user_metadata: %s", d.body)
	}

	op := f.call("GET", "/v1beta/"+name, nil).must(t, 200)
	samples, _ := op.path("response.generateVideoResponse.generatedSamples").([]any)
	if op.path("done") != true || len(samples) != 1 || samples[0].(map[string]any)["video"].(map[string]any)["uri"] != uri {
		t.Fatalf("operation: %s", op.raw)
	}
	if g := f.call("GET", "/v1beta/operations/"+id, nil).must(t, 200); g.str("name") != name {
		t.Fatalf("operations/%s: %s", id, g.raw)
	}

	req, _ := http.NewRequest("GET", uri, nil)
	req.Header.Set("x-goog-api-key", f.key)
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "video/mp4" || !bytes.Equal(body, executor.MinimalMP4()) || string(body[4:8]) != "ftyp" {
		t.Fatalf("download: %d %s %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}
	// Without a key the download is refused.
	if res, err := f.srv.Client().Get(uri); err != nil || res.StatusCode != 401 {
		t.Fatalf("download without key: %v %v", res.StatusCode, err)
	} else {
		res.Body.Close()
	}
}

// A failing video emits video.failed (an extension) and the operation
// reports the error.
func TestVideoFailed(t *testing.T) {
	t.Parallel()
	f := setup(t, options{})
	hook := newReceiver(t)
	r := f.call("POST", "/v1/models/veo:predictLongRunning", map[string]any{
		"instances":      []any{map[string]any{"prompt": "broken [[fail]]"}},
		"webhook_config": map[string]any{"uris": []string{hook.srv.URL}},
	}).must(t, 200)
	d := hook.next(t)
	if d.event["type"] != jobs.EventVideoFailed || d.data()["id"] != r.str("name") || d.data()["error_code"] != "INTERNAL" {
		t.Fatalf("video.failed: %s", d.body)
	}
	op := f.call("GET", "/v1/"+r.str("name"), nil).must(t, 200)
	if op.path("done") != true || op.path("error.code") != float64(13) {
		t.Fatalf("operation: %s", op.raw)
	}
	for _, body := range []string{`{"instances":[]}`, `{"instances":[{"prompt":""}]}`, `{"instances":[{"prompt":"x"}],"extra":1}`} {
		if r := f.call("POST", "/v1/models/veo:predictLongRunning", body); r.status != 400 {
			t.Errorf("%s: %d %s", body, r.status, r.raw)
		}
	}
}

// The command executor runs the operator's program, which writes the
// file.
func TestCommandExecutor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := &executor.Command{Path: "/bin/sh", Args: []string{"-c", `printf '%s' "$LONGHOOK_VIDEO_PROMPT" > "$LONGHOOK_OUTPUT"`}}
	path := dir + "/out.mp4"
	mime, err := c.RenderVideo(context.Background(), &executor.VideoSpec{Prompt: "hello video"}, path)
	if err != nil || mime != "video/mp4" {
		t.Fatalf("RenderVideo: %q %v", mime, err)
	}
	fail := &executor.Command{Path: "/bin/sh", Args: []string{"-c", "echo nope >&2; exit 3"}}
	if _, err := fail.RenderVideo(context.Background(), &executor.VideoSpec{}, dir+"/x"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("failing command: %v", err)
	}
}
