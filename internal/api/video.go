package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
)

// Video generation (docs/contract.md §11): POST
// /{v}/models/{model}:predictLongRunning starts a long-running operation,
// polled at /{v}/models/{model}/operations/{id} (or /{v}/operations/{id}).

const videoResponseType = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"

// videoBody is POST /{v}/models/{model}:predictLongRunning, as the Go SDK's
// GenerateVideos sends it.
type videoBody struct {
	Instances      []json.RawMessage  `json:"instances"`
	Parameters     json.RawMessage    `json:"parameters"`
	WebhookConfig  *wireWebhookConfig `json:"webhookConfig"`
	WebhookConfigS *wireWebhookConfig `json:"webhook_config"`
}

func (s *server) createVideo(r *http.Request, key core.APIKey) (any, error) {
	var body videoBody
	if err := DecodeJSON(r, &body); err != nil {
		return nil, err
	}
	if len(body.Instances) != 1 {
		return nil, core.Invalid("instances", "instances must hold exactly one instance, got %d", len(body.Instances))
	}
	in := jobs.VideoInput{Model: strings.TrimPrefix(r.PathValue("id"), "models/"),
		Instance: body.Instances[0], Parameters: body.Parameters, Base: s.apiBase(r)}
	var err error
	if in.WebhookConfig, err = s.webhookConfig("webhook_config", body.WebhookConfig, body.WebhookConfigS); err != nil {
		return nil, err
	}
	j, err := s.d.Jobs.CreateVideo(r.Context(), key.ProjectID, in)
	if err != nil {
		return nil, err
	}
	return renderVideoOp(j), nil
}

// renderVideoOp is the operation the Go SDK's GenerateVideos and
// GetVideosOperation read: done, then
// response.generateVideoResponse.generatedSamples[].video.uri, or error.
func renderVideoOp(j *core.Job) map[string]any {
	op := map[string]any{"name": jobs.ResourceName(j), "done": j.State.Terminal()}
	switch {
	case j.State == core.JobSucceeded:
		op["response"] = map[string]any{
			"@type": videoResponseType,
			"generateVideoResponse": map[string]any{
				"generatedSamples": []any{map[string]any{"video": map[string]any{"uri": jobs.VideoURI(j), "encoding": "video/mp4"}}},
			},
		}
	case j.State.Terminal():
		op["error"] = jobs.ErrorObject(j)
	}
	return op
}

func (s *server) getVideoOperation(r *http.Request, key core.APIKey) (any, error) {
	model, id := r.PathValue("model"), r.PathValue("id")
	j, err := s.d.Jobs.Job(r.Context(), key.ProjectID, id, core.JobVideo)
	if err == nil && j.Model != model {
		err = core.ErrNotFound
	}
	if err != nil {
		return nil, core.OrNotFound(err, "Operation models/"+model+"/operations/"+id)
	}
	return renderVideoOp(j), nil
}

// renderOperation renders a batch or a video job as an operation.
func (s *server) renderOperation(ctx context.Context, j *core.Job, inline bool) map[string]any {
	if j.Kind == core.JobVideo {
		return renderVideoOp(j)
	}
	return s.renderBatch(ctx, j, inline)
}

// getOperation serves GET /{v}/operations/{id} for batch and video jobs.
func (s *server) getOperation(r *http.Request, key core.APIKey) (any, error) {
	id := r.PathValue("id")
	j, err := s.d.Jobs.Job(r.Context(), key.ProjectID, id, core.JobBatch, core.JobVideo)
	if err != nil {
		return nil, core.OrNotFound(err, "Operation operations/"+id)
	}
	return s.renderOperation(r.Context(), j, true), nil
}
