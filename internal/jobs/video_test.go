package jobs_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// Veo through the Interactions API: a video model, response_modalities
// ["video"], a video response_format or a generation_config.video_config
// renders a video with the configured executor (here an operator
// command, which sees the prompt and the response_format's parameters);
// the interaction completes with one model_output step holding the video
// block, whose URI downloads the file. A failing render fails the
// interaction; a bad duration is refused.
func TestVideoInteraction(t *testing.T) {
	t.Parallel()
	cmd := &executor.Command{Path: "/bin/sh", Args: []string{"-c",
		`printf '%s|%s|%s' "$LONGHOOK_VIDEO_MODEL" "$LONGHOOK_VIDEO_PROMPT" "$LONGHOOK_VIDEO_PARAMETERS" > "$LONGHOOK_OUTPUT"; case "$LONGHOOK_VIDEO_PROMPT" in *broken*) exit 4;; esac`}}
	f := setup(t, options{cfg: func(c *jobs.Config) {
		c.Executor = executor.Combine(executor.NewSimulator(executor.SimulatorConfig{}), cmd)
	}})
	const path = "/v1beta/interactions"
	for _, body := range []map[string]any{
		{"model": "veo-3.1-generate-preview", "input": "a cat surfing"},
		{"model": "models/veo-2.0-generate-001", "input": []any{map[string]any{"type": "text", "text": "a cat surfing"}}},
		{"model": "gemini-omni", "input": "a cat surfing", "response_modalities": []string{"video"}},
		{"model": "gemini-omni", "input": "a cat surfing", "generation_config": map[string]any{"video_config": map[string]any{"task": "text_to_video"}}},
		{"model": "gemini-omni", "input": "a cat surfing",
			"response_format": map[string]any{"type": "video", "aspect_ratio": "9:16", "duration": "8s", "resolution": "1080p"}},
	} {
		body["background"] = true
		id := f.call("POST", path, body).must(t, 200).str("id")
		var r *reply
		waitFor(t, "the video interaction", func() bool {
			r = f.call("GET", path+"/"+id, nil).must(t, 200)
			return r.str("status") != "in_progress"
		})
		steps, _ := r.path("steps").([]any)
		if r.str("status") != "completed" || len(steps) != 1 {
			t.Fatalf("%v: %s", body, r.raw)
		}
		step := steps[0].(map[string]any)
		content, _ := step["content"].([]any)
		block, _ := content[0].(map[string]any)
		uri, _ := block["uri"].(string)
		if step["type"] != "model_output" || len(content) != 1 || block["type"] != "video" || block["mime_type"] != "video/mp4" ||
			!strings.HasSuffix(uri, "/v1beta/files/video"+id+":download?alt=media") {
			t.Fatalf("%v: steps %s", body, r.raw)
		}
		got := f.call("GET", strings.TrimPrefix(uri, f.srv.URL), nil).must(t, 200).raw
		model := strings.TrimPrefix(body["model"].(string), "models/")
		if !strings.HasPrefix(string(got), model+"|a cat surfing|") {
			t.Errorf("%v: the command rendered %q", body, got)
		}
		if body["response_format"] != nil && !strings.HasSuffix(string(got), `|{"aspectRatio":"9:16","durationSeconds":8,"resolution":"1080p"}`) {
			t.Errorf("response_format parameters: %q", got)
		}
	}
	// A synchronous video interaction answers with the video at once.
	r := f.call("POST", path, map[string]any{"model": "veo-3", "input": "a cat surfing"}).must(t, 200)
	if r.str("status") != "completed" || !strings.Contains(string(r.raw), `"type":"video"`) {
		t.Errorf("synchronous video interaction: %s", r.raw)
	}
	// An ordinary model turn stays text.
	r = f.call("POST", path, map[string]any{"model": "gemini-2.5-flash", "input": "a cat surfing"}).must(t, 200)
	if r.str("status") != "completed" || !strings.Contains(string(r.raw), `"type":"text"`) {
		t.Errorf("text turn: %s", r.raw)
	}
	r = f.call("POST", path, map[string]any{"model": "veo-3", "input": "broken video"}).must(t, 200)
	if r.str("status") != "failed" || !strings.Contains(string(r.raw), "video command failed") {
		t.Errorf("failing render: %s", r.raw)
	}
	for _, body := range []map[string]any{
		{"model": "veo-3", "input": "x", "response_format": map[string]any{"type": "video", "duration": "eight"}},
		{"model": "veo-3", "input": []any{map[string]any{"type": "image", "uri": "files/abc", "mime_type": "image/png"}}},
	} {
		if r := f.call("POST", path, body); r.status != 400 {
			t.Errorf("%v: %d %s", body, r.status, r.raw)
		}
	}
}

// A video interaction whose video.generated could not be published at
// once stays running; the runner's outbox drain publishes the event, and
// the turn, resumed when its lease ends, completes without rendering the
// video again.
func TestVideoInteractionResumes(t *testing.T) {
	t.Parallel()
	var renders atomic.Int32
	cmd := &executor.Command{Path: "/bin/sh", Args: []string{"-c", `printf video > "$LONGHOOK_OUTPUT"`}}
	var flaky *flakyPublisher
	f := setup(t, options{cfg: func(c *jobs.Config) {
		flaky = &flakyPublisher{inner: c.Publisher, mode: "fail", times: 1} // the first publish is video.generated
		c.Publisher, c.LeaseTTL, c.PollInterval = flaky, time.Second, 50*time.Millisecond
		c.Executor = executor.Combine(executor.NewSimulator(executor.SimulatorConfig{}), countingVideo{cmd, &renders})
	}})
	hook := newReceiver(t)
	r := f.call("POST", "/v1beta/interactions", map[string]any{"model": "veo-3", "input": "a cat", "background": true,
		"webhook_config": map[string]any{"uris": []string{hook.srv.URL}}}).must(t, 200)
	got := map[string]int{}
	for range 2 {
		got[hook.next(t).event["type"].(string)]++
	}
	if got[core.EventVideoGenerated] != 1 || got[core.EventInteractionCompleted] != 1 {
		t.Fatalf("events: %v, want one video.generated and one interaction.completed", got)
	}
	if done := f.call("GET", "/v1beta/interactions/"+r.str("id"), nil).must(t, 200); done.str("status") != "completed" {
		t.Fatalf("interaction: %s", done.raw)
	}
	if flaky.calls.Load() < 3 || renders.Load() != 1 {
		t.Fatalf("publishes: %d (the first failed); renders: %d, want 1", flaky.calls.Load(), renders.Load())
	}
}

// countingVideo counts the videos an executor renders.
type countingVideo struct {
	executor.Executor
	n *atomic.Int32
}

func (c countingVideo) RenderVideo(ctx context.Context, v *executor.VideoSpec, path string) (string, error) {
	c.n.Add(1)
	return c.Executor.RenderVideo(ctx, v, path)
}
