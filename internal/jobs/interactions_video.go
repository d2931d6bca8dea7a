package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs/executor"
)

// Veo through the Interactions API (docs/api.md, "Video through
// interactions"). The JS SDK 3.x refuses models.generateVideos on the
// Gemini API, so video goes through interactions there: an interaction
// whose model is a video model, or whose request asks for video output,
// renders a video with the same executor as predictLongRunning (the
// simulator or --video-command). Its outcome is a model_output step with
// one video content block, {"type": "video", "uri", "mime_type"} — the
// block both SDKs lift into Interaction.output_video — and it emits
// video.generated (once the file exists) and then interaction.completed.

// videoRequest is how a video interaction renders: the predictLongRunning
// instance and parameters it amounts to.
type videoRequest struct {
	Instance   json.RawMessage `json:"instance"`
	Parameters json.RawMessage `json:"parameters,omitempty"`
}

// isVideoModel reports whether model names a video model (Veo).
func isVideoModel(model string) bool {
	return strings.HasPrefix(strings.TrimPrefix(model, "models/"), "veo-")
}

// interactionVideo returns how the interaction renders a video, or nil
// when it is an ordinary turn. It does when the model is a video model,
// response_modalities holds "video", response_format is (or holds) a
// {"type": "video"} format, or generation_config has a video_config. The
// prompt is the text of the turn's input; a video response_format's
// aspect_ratio, resolution and duration ("8s") become the parameters
// aspectRatio, resolution and durationSeconds.
func interactionVideo(in InteractionInput, contents []executor.Content) (*videoRequest, error) {
	var format fields
	asks := isVideoModel(in.Model)
	var modalities []string
	_ = json.Unmarshal(in.Echo["response_modalities"], &modalities)
	for _, m := range modalities {
		asks = asks || strings.EqualFold(m, "video")
	}
	var formats []fields
	if raw := in.Echo["response_format"]; len(raw) > 0 {
		if json.Unmarshal(raw, &formats) != nil {
			var one fields
			_ = json.Unmarshal(raw, &one)
			formats = []fields{one}
		}
	}
	for _, f := range formats {
		var typ string
		_ = json.Unmarshal(f.get("type"), &typ)
		if typ == "video" {
			asks, format = true, f
		}
	}
	if len(in.GenerationConfig) > 0 {
		var gc fields
		_ = json.Unmarshal(in.GenerationConfig, &gc)
		asks = asks || gc.get("video_config") != nil
	}
	if !asks {
		return nil, nil
	}
	var prompt []string
	if n := len(contents); n > 0 {
		if t := strings.TrimSpace(contents[n-1].Text()); t != "" {
			prompt = append(prompt, t)
		}
	}
	if len(prompt) == 0 {
		return nil, core.Invalid("input", "a video interaction needs a text prompt in its input")
	}
	inst, err := json.Marshal(map[string]string{"prompt": strings.Join(prompt, "\n")})
	if err != nil {
		return nil, err
	}
	v := &videoRequest{Instance: inst}
	params := map[string]any{}
	for from, to := range map[string]string{"aspect_ratio": "aspectRatio", "resolution": "resolution"} {
		var s string
		if json.Unmarshal(format.get(from), &s) == nil && s != "" {
			params[to] = s
		}
	}
	var dur string
	if json.Unmarshal(format.get("duration"), &dur) == nil && dur != "" {
		d, err := time.ParseDuration(dur)
		if err != nil || d <= 0 || d%time.Second != 0 {
			return nil, core.Invalid("response_format.duration", "response_format.duration %q must be whole seconds, e.g. \"8s\"", dur)
		}
		params["durationSeconds"] = int(d / time.Second)
	}
	if len(params) > 0 {
		if v.Parameters, err = json.Marshal(params); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// runInteractionVideo renders the video of a video interaction, records
// its model_output step and emits video.generated; the caller's settle
// then emits interaction.completed. A turn resumed after video.generated
// was recorded (a crash, or a publish that failed transiently) does not
// render again.
func (s *Service) runInteractionVideo(ctx context.Context, j *core.Job, req *InteractionRequest) (outcome, error) {
	if j.OutputFile == "" {
		var prompt string
		var inst map[string]string
		if json.Unmarshal(req.Video.Instance, &inst) == nil {
			prompt = inst["prompt"]
		}
		id, mimeType, err := s.renderVideo(ctx, j, &executor.VideoSpec{Model: strings.TrimPrefix(j.Model, "models/"), Prompt: prompt,
			Instance: req.Video.Instance, Parameters: req.Video.Parameters})
		if err != nil {
			return outcome{}, err
		}
		block, err := json.Marshal(map[string]string{"type": "video", "uri": videoURI(req.Base, id), "mime_type": mimeType})
		if err != nil {
			return outcome{}, err
		}
		res := InteractionResult{Output: &executor.Content{Role: "model", Parts: []executor.Part{{Other: block}}}}
		res.Steps = replySteps(&executor.Reply{Parts: res.Output.Parts})
		if j, err = s.recordVideo(ctx, j, id, res); err != nil {
			return outcome{}, err
		}
		s.publishOutbox(ctx, j)
	}
	cur, err := s.store.GetJob(context.WithoutCancel(ctx), j.ProjectID, j.ID)
	if err != nil {
		return outcome{}, err
	}
	if cur.Outbox != nil {
		// video.generated is not out yet: the turn stays running and is
		// resumed (without rendering again) once its lease ends; the
		// runner's outbox drain publishes the event meanwhile.
		return outcome{}, fmt.Errorf("jobs: %s: video.generated not yet published: %w", j.ID, errResumeLater)
	}
	return outcome{state: core.JobSucceeded, result: cur.Result, outputFile: cur.OutputFile}, nil
}

// recordVideo stores a rendered video on a running video interaction this
// runner holds — its output file and result — and records video.generated
// in its outbox, in one transaction.
func (s *Service) recordVideo(ctx context.Context, j *core.Job, fileID string, res InteractionResult) (*core.Job, error) {
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	j, err = s.store.UpdateJob(context.WithoutCancel(ctx), j.ProjectID, j.ID, func(cur *core.Job) error {
		if cur.State != core.JobRunning || cur.LeaseOwner != s.cfg.Owner {
			return errLeaseLost
		}
		if cur.Outbox != nil {
			return fmt.Errorf("jobs: job %s still has an unpublished event", cur.ID)
		}
		cur.Result, cur.OutputFile, cur.UpdateTime = raw, fileID, now
		data := videoGeneratedData(cur, videoURI(jobBase(cur), fileID))
		cur.Sequence++
		data["sequence"] = cur.Sequence
		ev, err := json.Marshal(data)
		if err != nil {
			return err
		}
		cur.Outbox = &core.JobEvent{Type: core.EventVideoGenerated, Seq: cur.Sequence, Data: ev, Time: now}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("job.video_generated", slog.String("job", j.ID), slog.String("file", fileID),
		slog.String("sequence", strconv.Itoa(j.Sequence)))
	return j, nil
}

// jobBase is the API base URL a job was created through.
func jobBase(j *core.Job) string {
	var b struct {
		Base string `json:"base"`
	}
	_ = json.Unmarshal(j.Request, &b)
	return b.Base
}
