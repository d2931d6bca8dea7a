package jobs

import (
	"context"
	"errors"

	"github.com/longhook/longhook/internal/core"
)

// Job returns a job of the project whose kind is one of kinds (any kind
// when none is given); ErrNotFound when there is no such job.
func (s *Service) Job(ctx context.Context, projectID, id string, kinds ...core.JobKind) (*core.Job, error) {
	j, err := s.store.GetJob(ctx, projectID, id)
	if err != nil {
		return nil, err
	}
	if len(kinds) == 0 {
		return j, nil
	}
	for _, k := range kinds {
		if j.Kind == k {
			return j, nil
		}
	}
	return nil, core.ErrNotFound
}

// Jobs lists a page of a project's jobs, newest first.
func (s *Service) Jobs(ctx context.Context, p core.ListJobsParams) ([]*core.Job, error) {
	return s.store.ListJobs(ctx, p)
}

// DeleteJob removes a job. A job not yet terminal — pending, running, or
// an interaction waiting in requires_action — is first cancelled, as
// Cancel does, so that it still emits its one terminal event (a cancel or
// completion racing the delete emits it instead; never both). An
// interaction in requires_action that a continuation answered is deleted
// without an event: the continuation brings its job's terminal event. A job whose
// last event is still unpublished has it published first; when that
// publish fails the delete is refused as UNAVAILABLE, for a retry.
func (s *Service) DeleteJob(ctx context.Context, j *core.Job) error {
	name := ResourceName(j)
	if !j.State.Terminal() {
		// errSettled: terminal meanwhile; errAnswered: its continuation
		// brings its terminal event. Either way there is none to emit here.
		_, err := s.cancel(ctx, j.ProjectID, j.ID)
		if err != nil && !errors.Is(err, errSettled) && !errors.Is(err, errAnswered) {
			return core.OrNotFound(err, name)
		}
		if j, err = s.store.GetJob(ctx, j.ProjectID, j.ID); err != nil {
			return core.OrNotFound(err, name)
		}
	}
	if j.Outbox != nil {
		s.publishOutbox(ctx, j)
		cur, err := s.store.GetJob(ctx, j.ProjectID, j.ID)
		if err != nil {
			return core.OrNotFound(err, name)
		}
		if cur.Outbox != nil {
			return core.Errorf(core.ErrUnavailable, "%s is publishing its last event; retry shortly.", name)
		}
	}
	return core.OrNotFound(s.store.DeleteJob(ctx, j.ProjectID, j.ID), name)
}

// Cancel cancels a job of kind that is not terminal (pending, running, or
// an interaction in requires_action): the job becomes cancelled and emits
// its cancelled event once. Cancelling a cancelled job succeeds again;
// other terminal jobs, and an interaction in requires_action that a
// continuation answered, are FAILED_PRECONDITION.
func (s *Service) Cancel(ctx context.Context, projectID, id string, kind core.JobKind) (*core.Job, error) {
	j, err := s.store.GetJob(ctx, projectID, id)
	if err != nil || j.Kind != kind {
		return nil, core.Errorf(core.ErrNotFound, "%s %s was not found.", kind, id)
	}
	if j.State == core.JobCancelled {
		return j, nil
	}
	name := ResourceName(j)
	j, err = s.cancel(ctx, projectID, id)
	if errors.Is(err, errSettled) {
		// Settled meanwhile: by another cancel (the answer is the same),
		// by its run, or by a delete, which cancels first — gone by now,
		// it is 404 as for any deleted job.
		cur, gerr := s.store.GetJob(ctx, projectID, id)
		if gerr != nil {
			return nil, core.OrNotFound(gerr, name)
		}
		if cur.State == core.JobCancelled {
			return cur, nil
		}
		return nil, core.Errorf(core.ErrFailedPrecondition, "%s is %s; only %s can be cancelled.", name, cur.State.Public(kind), cancellable[kind])
	}
	if errors.Is(err, errAnswered) {
		cur, gerr := s.store.GetJob(ctx, projectID, id)
		if gerr != nil {
			return nil, core.OrNotFound(gerr, name)
		}
		return nil, core.Errorf(core.ErrFailedPrecondition, "%s was answered by interaction %s, which ends its job; cancel that one instead.", name, answeredBy(cur))
	}
	if err != nil {
		return nil, core.OrNotFound(err, name)
	}
	return j, nil
}

// cancelOutcome is the transition of a cancel.
var cancelOutcome = outcome{state: core.JobCancelled, code: "CANCELLED", message: "Cancelled by the user."}

// cancel moves a job that is not terminal to cancelled and publishes its
// interaction.cancelled (batch.cancelled...) event, then stops its
// execution here. A job's earlier event still in its outbox (the
// interaction.requires_action just recorded, a video interaction's
// video.generated) is published first. It fails with errSettled when the
// job is terminal (a racing cancel, expiry or completion won: that one
// emitted the terminal event), errAnswered when it is an interaction a
// continuation answered, and UNAVAILABLE when the earlier event cannot be
// published now.
func (s *Service) cancel(ctx context.Context, projectID, id string) (*core.Job, error) {
	name := id
	for range 3 {
		j, err := s.settle(ctx, projectID, id, "", cancelOutcome)
		if err == nil {
			s.stop(id, errSettled)
			return j, nil
		}
		if !errors.Is(err, errOutboxBusy) {
			return nil, err
		}
		cur, err := s.store.GetJob(ctx, projectID, id)
		if err != nil {
			return nil, err
		}
		name = ResourceName(cur)
		s.publishOutbox(ctx, cur)
	}
	return nil, core.Errorf(core.ErrUnavailable, "%s is publishing an event; retry shortly.", name)
}

// cancellable names, per kind, the jobs Cancel takes, in the API's words.
var cancellable = map[core.JobKind]string{
	core.JobBatch:       "a batch in BATCH_STATE_PENDING or BATCH_STATE_RUNNING",
	core.JobInteraction: "an interaction in_progress or requires_action",
	core.JobVideo:       "an operation not done",
}
