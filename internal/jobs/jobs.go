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

// DeleteJob removes a settled job whose event went out. A job still
// running must be cancelled first (deleting does not cancel, as with
// Gemini); a job whose event is being published is briefly refused.
func (s *Service) DeleteJob(ctx context.Context, j *core.Job) error {
	if !j.State.Settled() {
		return core.Errorf(core.ErrFailedPrecondition, "%s is still %s; cancel it before deleting it.", ResourceName(j), j.State.Public(j.Kind))
	}
	if j.Outbox != nil {
		return core.Errorf(core.ErrUnavailable, "%s is publishing its last event; retry shortly.", ResourceName(j))
	}
	return core.OrNotFound(s.store.DeleteJob(ctx, j.ProjectID, j.ID), ResourceName(j))
}

// Cancel cancels a pending or running job of kind: the job becomes
// cancelled and emits its cancelled event once. Cancelling a cancelled job
// succeeds again; other settled jobs are FAILED_PRECONDITION.
func (s *Service) Cancel(ctx context.Context, projectID, id string, kind core.JobKind) (*core.Job, error) {
	j, err := s.store.GetJob(ctx, projectID, id)
	if err != nil || j.Kind != kind {
		return nil, core.Errorf(core.ErrNotFound, "%s %s was not found.", kind, id)
	}
	if j.State == core.JobCancelled {
		return j, nil
	}
	name := ResourceName(j)
	j, err = s.settle(ctx, projectID, id, "", outcome{state: core.JobCancelled, code: "CANCELLED", message: "Cancelled by the user."})
	if errors.Is(err, errSettled) {
		cur, gerr := s.store.GetJob(ctx, projectID, id)
		if gerr == nil && cur.State == core.JobCancelled {
			return cur, nil
		}
		state := "settled"
		if gerr == nil {
			state = cur.State.Public(kind)
		}
		return nil, core.Errorf(core.ErrFailedPrecondition, "%s is %s; only %s can be cancelled.", name, state, cancellable[kind])
	}
	if err != nil {
		return nil, err
	}
	s.stop(id, errSettled)
	return j, nil
}

// cancellable names, per kind, the jobs Cancel takes, in the API's words.
var cancellable = map[core.JobKind]string{
	core.JobBatch:       "a batch in BATCH_STATE_PENDING or BATCH_STATE_RUNNING",
	core.JobInteraction: "an interaction in_progress",
	core.JobVideo:       "an operation not done",
}
