package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/publish"
)

var (
	// errSettled: the job can no longer take the transition (it is
	// terminal, or waiting for its client and the transition is not a
	// cancel); a racing transition lost.
	errSettled = errors.New("job already settled")
	// errOutboxBusy: the job's previous event is not yet published (its
	// outbox holds one event at a time).
	errOutboxBusy = errors.New("job has an unpublished event")
	// errAnswered: the interaction waiting in requires_action was answered
	// by a continuation, which brings its job's terminal event.
	errAnswered = errors.New("interaction answered by a continuation")
	// errLeaseLost: this runner no longer holds the job.
	errLeaseLost = errors.New("job lease lost")
)

// EventVideoFailed is emitted when a video generation fails. It is an
// extension outside Gemini's catalog (see the package doc).
const EventVideoFailed = "video.failed"

// outcome is the transition a job takes when it settles.
type outcome struct {
	state      core.JobState
	result     json.RawMessage // nil keeps the current result
	outputFile string
	code       string // error_code of failures (a Google status name)
	message    string
}

// failure is an outcome for a failed job.
func failure(code, msg string) outcome {
	return outcome{state: core.JobFailed, code: code, message: msg}
}

// settle moves a job to o.state and records the event that transition
// emits in the job's outbox, in one transaction; then it publishes the
// event. owner, when set, must still hold the job's lease. It fails with
// errSettled when the job's state cannot move to o.state
// (core.JobState.CanMoveTo: a racing cancel, expiry or completion won),
// errLeaseLost when another runner took the job, errOutboxBusy when its
// previous event is not yet published, and errAnswered when it is an
// interaction in requires_action that a continuation answered.
func (s *Service) settle(ctx context.Context, projectID, id, owner string, o outcome) (*core.Job, error) {
	ctx = context.WithoutCancel(ctx) // a transition, once decided, is written
	now := s.cfg.Clock.Now()
	j, err := s.store.UpdateJob(ctx, projectID, id, func(j *core.Job) error {
		if !j.State.CanMoveTo(o.state) {
			return errSettled
		}
		if answeredBy(j) != "" {
			return errAnswered
		}
		if owner != "" && j.LeaseOwner != owner {
			return errLeaseLost
		}
		if j.Outbox != nil {
			return errOutboxBusy
		}
		j.State = o.state
		if o.result != nil {
			j.Result = o.result
		}
		if o.outputFile != "" {
			j.OutputFile = o.outputFile
		}
		j.ErrorCode, j.ErrorMessage = o.code, o.message
		j.LeaseOwner, j.LeaseExpire = "", time.Time{}
		j.UpdateTime = now
		if o.state.Terminal() {
			j.EndTime = now
		}
		typ, data := s.eventFor(j)
		j.Sequence++
		data["sequence"] = j.Sequence
		raw, err := json.Marshal(data)
		if err != nil {
			return err
		}
		j.Outbox = &core.JobEvent{Type: typ, Seq: j.Sequence, Data: raw, Time: now, Terminal: o.state.Terminal()}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("job.settled", slog.String("job", j.ID), slog.String("kind", string(j.Kind)),
		slog.String("state", string(j.State)), slog.String("event", j.Outbox.Type), slog.Int("sequence", j.Sequence),
		slog.String("error_code", j.ErrorCode))
	s.publishOutbox(ctx, j)
	return j, nil
}

// eventFor returns the type and data (without sequence) of the event a job
// in its new state emits.
func (s *Service) eventFor(j *core.Job) (string, map[string]any) {
	data := map[string]any{"id": eventSubjectID(j)}
	withError := func() {
		data["error_code"], data["error_message"] = j.ErrorCode, j.ErrorMessage
		data["error"] = ErrorObject(j)
	}
	switch j.Kind {
	case core.JobBatch:
		switch j.State {
		case core.JobSucceeded:
			data["output_file_uri"] = "files/" + j.OutputFile
			return core.EventBatchSucceeded, data
		case core.JobExpired:
			return core.EventBatchExpired, data
		case core.JobCancelled:
			return core.EventBatchCancelled, data
		}
		withError()
		return core.EventBatchFailed, data
	case core.JobVideo:
		if j.State == core.JobSucceeded {
			return core.EventVideoGenerated, videoGeneratedData(j, VideoURI(j))
		}
		withError()
		return EventVideoFailed, data
	}
	switch j.State {
	case core.JobSucceeded:
		data["output"] = interactionOutput(j)
		return core.EventInteractionCompleted, data
	case core.JobRequiresAction:
		data["required_action"] = requiredAction(j)
		return core.EventInteractionRequiresAction, data
	case core.JobCancelled:
		return core.EventInteractionCancelled, data
	}
	withError()
	return core.EventInteractionFailed, data
}

// videoGeneratedData is data of video.generated (without sequence) for
// the video job or video interaction j whose output file downloads from
// uri: data.id is the operation's resource name, or the interaction's id.
func videoGeneratedData(j *core.Job, uri string) map[string]any {
	return map[string]any{"id": eventSubjectID(j), "output_file_uri": uri, "video_uri": uri,
		"file_name": "files/" + j.OutputFile, "file_id": j.OutputFile}
}

// ErrorObject is a failed job's error as its resource shows it, and as
// data.error of its failure event: {code, message} where code is the
// google.rpc code number for batches and videos (the operation's error)
// and the Google status name for interactions (an entry of the
// interaction's errors).
func ErrorObject(j *core.Job) map[string]any {
	if j.Kind == core.JobInteraction {
		return map[string]any{"code": j.ErrorCode, "message": j.ErrorMessage}
	}
	return map[string]any{"code": RPCCode(j.ErrorCode), "message": j.ErrorMessage}
}

// maxInlineOutput bounds the output interaction.completed carries inline
// (its JSON); a larger one is a pointer to the interaction.
const maxInlineOutput = 16 << 10

// interactionOutput is data.output of interaction.completed: the turn's
// final outputs as content blocks, {"content": [...]}, when they take at
// most maxInlineOutput bytes of JSON; otherwise {"uri", "size_bytes"}: the
// interaction's URL, which the receiver reads with an API key of the
// project (GET returns the outputs as steps).
func interactionOutput(j *core.Job) map[string]any {
	var req InteractionRequest
	_ = json.Unmarshal(j.Request, &req)
	var res InteractionResult
	_ = json.Unmarshal(j.Result, &res)
	blocks := []any{}
	if res.Output != nil {
		blocks = append(blocks, contentBlocks(res.Output.Parts)...)
	}
	raw, _ := json.Marshal(blocks)
	if len(raw) <= maxInlineOutput {
		return map[string]any{"content": json.RawMessage(raw)}
	}
	return map[string]any{"uri": req.Base + "/interactions/" + j.ID, "size_bytes": len(raw)}
}

// eventSubjectID is data.id: the resource name of batches and video
// operations, the bare id of interactions (as the API returns them).
func eventSubjectID(j *core.Job) string {
	if j.Kind == core.JobInteraction {
		return j.ID
	}
	return ResourceName(j)
}

// ResourceName is the job's API resource name (the JWT sub claim).
func ResourceName(j *core.Job) string {
	switch j.Kind {
	case core.JobBatch:
		return "batches/" + j.ID
	case core.JobVideo:
		return "models/" + j.Model + "/operations/" + j.ID
	}
	return "interactions/" + j.ID
}

// idempotencyKey is the publish key of a job event: one terminal key per
// job, so a terminal event can never be accepted twice.
func idempotencyKey(j *core.Job, ev *core.JobEvent) string {
	if ev.Terminal {
		return "job:" + j.ID + ":terminal"
	}
	return "job:" + j.ID + ":" + strconv.Itoa(ev.Seq)
}

// publishOutbox publishes the job's pending event and clears the outbox.
// A transient failure leaves the outbox for the runner's next drain.
func (s *Service) publishOutbox(ctx context.Context, j *core.Job) {
	ev := j.Outbox
	if ev == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	_, err := s.cfg.Publisher.Publish(ctx, j.ProjectID, []publish.Input{{
		Type: ev.Type, Data: ev.Data, Timestamp: ev.Time, Subject: ResourceName(j),
		WebhookConfig: j.WebhookConfig, IdempotencyKey: idempotencyKey(j, ev), Internal: true,
	}})
	if err != nil {
		if !core.IsInvalid(err) {
			// Left in the outbox: the runner retries at its next poll.
			s.log.Warn("job.publish_failed", slog.String("job", j.ID), slog.String("event", ev.Type), slog.String("error", err.Error()))
			return
		}
		// The event can never be accepted (e.g. the address policy no
		// longer allows its webhook_config): give it up rather than retry
		// forever.
		s.log.Error("job.event_rejected", slog.String("job", j.ID), slog.String("event", ev.Type), slog.String("error", err.Error()))
	}
	_, err = s.store.UpdateJob(ctx, j.ProjectID, j.ID, func(cur *core.Job) error {
		if cur.Outbox == nil || cur.Outbox.Seq != ev.Seq {
			return errSettled // already cleared by a concurrent drain
		}
		cur.Outbox = nil
		if ev.Terminal {
			cur.TerminalEmitted = true
		}
		return nil
	})
	if err != nil && !errors.Is(err, errSettled) && !errors.Is(err, core.ErrNotFound) {
		s.log.Warn("job.outbox_clear_failed", slog.String("job", j.ID), slog.String("error", err.Error()))
	}
}

// drainOutbox publishes every pending event (after a crash or a failed
// publish). It returns how many it handled.
func (s *Service) drainOutbox(ctx context.Context) int {
	js, err := s.store.JobsWithOutbox(ctx, 100)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("job.outbox_scan_failed", slog.String("error", err.Error()))
		}
		return 0
	}
	for _, j := range js {
		s.publishOutbox(ctx, j)
	}
	return len(js)
}

// ExpireBatches expires unfinished batches whose window ended at now (the
// "jobs.expire" task). Each emits batch.expired once.
func (s *Service) ExpireBatches(ctx context.Context, now time.Time) error {
	for range 100 { // bounded per round
		js, err := s.store.ExpiredJobs(ctx, now, 100)
		if err != nil {
			return err
		}
		n := 0
		for _, j := range js {
			msg := fmt.Sprintf("The batch was not processed within its window of %s.", s.window)
			_, err := s.settle(ctx, j.ProjectID, j.ID, "", outcome{state: core.JobExpired, code: "DEADLINE_EXCEEDED", message: msg})
			switch {
			case err == nil:
				n++
				s.stop(j.ID, errSettled)
			case errors.Is(err, errSettled):
			default:
				return err
			}
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}
