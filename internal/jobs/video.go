package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

const videoResponseType = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"

// videoBody is POST /{v}/models/{model}:predictLongRunning, as the Go SDK's
// GenerateVideos sends it.
type videoBody struct {
	Instances      []json.RawMessage  `json:"instances"`
	Parameters     json.RawMessage    `json:"parameters"`
	WebhookConfig  *wireWebhookConfig `json:"webhookConfig"`
	WebhookConfigS *wireWebhookConfig `json:"webhook_config"`
}

// videoJob is a video job's stored request.
type videoJob struct {
	Prompt     string          `json:"prompt"`
	Instance   json.RawMessage `json:"instance"`
	Parameters json.RawMessage `json:"parameters,omitempty"`
	// Base is the API base URL (with version) the job was created through;
	// the video's download URI is built on it.
	Base string `json:"base"`
}

func (s *Service) createVideo(r *http.Request, key core.APIKey) (any, error) {
	model := strings.TrimPrefix(r.PathValue("id"), "models/")
	var body videoBody
	if err := api.DecodeJSON(r, &body); err != nil {
		return nil, err
	}
	if len(body.Instances) != 1 {
		return nil, core.Invalid("instances", "instances must hold exactly one instance, got %d", len(body.Instances))
	}
	inst, err := decodeFields(body.Instances[0], "instances[0]")
	if err != nil {
		return nil, err
	}
	var prompt string
	if p := inst.get("prompt"); p != nil {
		if err := json.Unmarshal(p, &prompt); err != nil {
			return nil, core.Invalid("instances[0].prompt", "instances[0].prompt must be a string")
		}
	}
	if prompt == "" && inst.get("image") == nil && inst.get("video") == nil {
		return nil, core.Invalid("instances[0].prompt", "instances[0] needs a prompt, an image or a video")
	}
	if len(body.Parameters) > 0 && body.Parameters[0] != '{' && string(body.Parameters) != "null" {
		return nil, core.Invalid("parameters", "parameters must be a JSON object")
	}
	wc := body.WebhookConfig
	if wc == nil {
		wc = body.WebhookConfigS
	}
	cfg, err := s.config("webhook_config", wc)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(videoJob{Prompt: prompt, Instance: body.Instances[0], Parameters: body.Parameters,
		Base: s.apiBase(r, versionOf(r.URL.Path))})
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	j := &core.Job{ID: core.NewSortableID(now), ProjectID: key.ProjectID, Kind: core.JobVideo, State: core.JobPending,
		Model: model, Request: raw, WebhookConfig: cfg, CreateTime: now, UpdateTime: now}
	if err := s.store.CreateJob(r.Context(), j); err != nil {
		return nil, err
	}
	s.notify()
	return renderVideoOp(j), nil
}

// videoDownloadURI is where the generated video downloads from (the form
// both SDKs' Files.Download accept).
func videoDownloadURI(j *core.Job) string {
	var req videoJob
	_ = json.Unmarshal(j.Request, &req)
	return req.Base + "/files/" + j.OutputFile + ":download?alt=media"
}

// renderVideoOp is the operation the Go SDK's GenerateVideos and
// GetVideosOperation read: done, then
// response.generateVideoResponse.generatedSamples[].video.uri, or error.
func renderVideoOp(j *core.Job) map[string]any {
	op := map[string]any{"name": resourceName(j), "done": j.State.Terminal()}
	switch {
	case j.State == core.JobSucceeded:
		op["response"] = map[string]any{
			"@type": videoResponseType,
			"generateVideoResponse": map[string]any{
				"generatedSamples": []any{map[string]any{"video": map[string]any{"uri": videoDownloadURI(j), "encoding": "video/mp4"}}},
			},
		}
	case j.State.Terminal():
		op["error"] = map[string]any{"code": rpcCode(j.ErrorCode), "message": j.ErrorMessage}
	}
	return op
}

func (s *Service) getVideoOperation(r *http.Request, key core.APIKey) (any, error) {
	model, id := r.PathValue("model"), r.PathValue("id")
	j, err := s.store.GetJob(r.Context(), key.ProjectID, id)
	if err != nil || j.Kind != core.JobVideo || j.Model != model {
		return nil, notFoundf("Operation models/%s/operations/%s was not found.", model, id)
	}
	return renderVideoOp(j), nil
}

// renderOperation renders a batch or a video job as an operation.
func (s *Service) renderOperation(ctx context.Context, j *core.Job, inline bool) map[string]any {
	if j.Kind == core.JobVideo {
		return renderVideoOp(j)
	}
	return s.renderBatch(ctx, j, inline)
}

// getOperation serves GET /{v}/operations/{id} for batch and video jobs.
func (s *Service) getOperation(r *http.Request, key core.APIKey) (any, error) {
	id := r.PathValue("id")
	j, err := s.store.GetJob(r.Context(), key.ProjectID, id)
	if err != nil || j.Kind == core.JobInteraction {
		return nil, notFoundf("Operation operations/%s was not found.", id)
	}
	return s.renderOperation(r.Context(), j, true), nil
}

func (s *Service) listOperations(r *http.Request, key core.APIKey) (any, error) {
	return s.listOps(r, key, core.JobBatch, core.JobVideo)
}

// runVideo renders the video into the file video{id} (an id of only
// [a-z0-9], which the SDKs extract from download URIs).
func (s *Service) runVideo(ctx context.Context, j *core.Job) (outcome, error) {
	var req videoJob
	if err := json.Unmarshal(j.Request, &req); err != nil {
		return failure("INTERNAL", "the stored video request is unreadable"), nil
	}
	id := "video" + j.ID
	tmp := s.tempPath(id)
	defer os.Remove(tmp)
	mimeType, err := s.cfg.Executor.RenderVideo(ctx, &VideoSpec{Model: j.Model, Prompt: req.Prompt, Instance: req.Instance, Parameters: req.Parameters}, tmp)
	if err != nil {
		return outcome{}, err
	}
	fh, err := os.Open(tmp)
	if err != nil {
		return outcome{}, fmt.Errorf("jobs: video output: %w", err)
	}
	defer fh.Close()
	now := s.cfg.Clock.Now()
	f := &core.File{ID: id, ProjectID: j.ProjectID, DisplayName: "Video of " + resourceName(j), MIMEType: mimeType,
		Source: sourceGenerated, CreateTime: now, UpdateTime: now, ExpireTime: now.Add(s.cfg.FileTTL)}
	if err := s.createFile(ctx, f, fh, true); err != nil {
		return outcome{}, fmt.Errorf("jobs: video output: %w", err)
	}
	return outcome{state: core.JobSucceeded, outputFile: id}, nil
}
