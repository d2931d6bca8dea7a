package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs/executor"
)

// VideoInput is a new video generation: the model, the request's raw
// instances[0] and parameters, its webhook_config, and Base, the API base
// URL (with version) the video will download from.
type VideoInput struct {
	Model         string
	Instance      json.RawMessage
	Parameters    json.RawMessage
	WebhookConfig *core.WebhookConfig
	Base          string
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

// CreateVideo validates and creates a video job of the project, pending
// for the runner.
func (s *Service) CreateVideo(ctx context.Context, projectID string, v VideoInput) (*core.Job, error) {
	if err := core.ValidateModel("model", v.Model); err != nil {
		return nil, err
	}
	inst, err := decodeFields(v.Instance, "instances[0]")
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
	if len(v.Parameters) > 0 && v.Parameters[0] != '{' && string(v.Parameters) != "null" {
		return nil, core.Invalid("parameters", "parameters must be a JSON object")
	}
	raw, err := json.Marshal(videoJob{Prompt: prompt, Instance: v.Instance, Parameters: v.Parameters, Base: v.Base})
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	j := &core.Job{ID: core.NewSortableID(now), ProjectID: projectID, Kind: core.JobVideo, State: core.JobPending,
		Model: v.Model, Request: raw, WebhookConfig: v.WebhookConfig, CreateTime: now, UpdateTime: now}
	if err := s.createJob(ctx, j); err != nil {
		return nil, err
	}
	s.notify()
	return j, nil
}

// VideoURI is where the generated video of a succeeded video job
// downloads from (the form both SDKs' Files.Download accept).
func VideoURI(j *core.Job) string {
	var req videoJob
	_ = json.Unmarshal(j.Request, &req)
	return videoURI(req.Base, j.OutputFile)
}

// videoURI is the download URI of the file id under the API base URL.
func videoURI(base, fileID string) string {
	return base + "/files/" + fileID + ":download?alt=media"
}

// runVideo renders the video of a video job.
func (s *Service) runVideo(ctx context.Context, j *core.Job) (outcome, error) {
	var req videoJob
	if err := json.Unmarshal(j.Request, &req); err != nil {
		return failure("INTERNAL", "the stored video request is unreadable"), nil
	}
	id, _, err := s.renderVideo(ctx, j, &executor.VideoSpec{Model: j.Model, Prompt: req.Prompt, Instance: req.Instance, Parameters: req.Parameters})
	if err != nil {
		return outcome{}, err
	}
	return outcome{state: core.JobSucceeded, outputFile: id}, nil
}

// renderVideo has the executor (the simulator or --video-command) render
// the video of job j into the file video{id} (an id of only [a-z0-9],
// which the SDKs extract from download URIs); it returns the file's id and
// MIME type. Video jobs and video interactions both render through it.
func (s *Service) renderVideo(ctx context.Context, j *core.Job, spec *executor.VideoSpec) (id, mimeType string, err error) {
	id = "video" + j.ID
	tmp := s.tempPath(id)
	defer os.Remove(tmp)
	if mimeType, err = s.cfg.Executor.RenderVideo(ctx, spec, tmp); err != nil {
		return "", "", err
	}
	fh, err := os.Open(tmp)
	if err != nil {
		return "", "", fmt.Errorf("jobs: video output: %w", err)
	}
	defer fh.Close()
	now := s.cfg.Clock.Now()
	f := &core.File{ID: id, ProjectID: j.ProjectID, DisplayName: "Video of " + ResourceName(j), MIMEType: mimeType,
		Source: sourceGenerated, CreateTime: now, UpdateTime: now, ExpireTime: now.Add(s.cfg.FileTTL)}
	if err := s.createFile(ctx, f, fh, true); err != nil {
		return "", "", fmt.Errorf("jobs: video output: %w", err)
	}
	return id, mimeType, nil
}
