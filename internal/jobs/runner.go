package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs/executor"
	"github.com/longhook/longhook/internal/telemetry"
)

// errShutdown cancels executions when the runner stops; their jobs are
// resumed by the next runner.
var errShutdown = errors.New("runner shutting down")

// Run executes jobs until ctx ends: it first publishes events left in job
// outboxes (a crash between a transition and its publish), then claims
// runnable jobs — new ones, and ones whose runner died — up to
// Config.Workers, renews their leases, and wakes on new work, on the next
// lease expiry, or every PollInterval. On shutdown it cancels the
// executions in flight, waits for them, and releases their leases so the
// next start resumes them at once. It returns nil when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	// Executions get their own context: cancelling ctx must not end them
	// before shutdown has recorded which jobs to release.
	execCtx, stopAll := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopAll(nil)
	s.drainOutbox(ctx)
	nextBeat := s.cfg.Clock.Now().Add(s.cfg.LeaseTTL / 3)
	takeOver := s.cfg.SoleRunner
	for ctx.Err() == nil {
		free, err := s.claim(ctx, execCtx, takeOver)
		takeOver = takeOver && err != nil
		if err != nil && ctx.Err() == nil {
			s.log.Warn("jobs.claim_failed", slog.String("error", err.Error()))
		}
		s.drainOutbox(ctx)
		now := s.cfg.Clock.Now()
		if !now.Before(nextBeat) {
			s.heartbeat(ctx)
			nextBeat = now.Add(s.cfg.LeaseTTL / 3)
		}
		wait := min(s.cfg.PollInterval, nextBeat.Sub(now))
		if free > 0 && err == nil {
			// A job whose runner died becomes claimable when its lease ends.
			if t, ok, werr := s.store.NextJobWake(ctx); werr == nil && ok && t.After(now) {
				wait = min(wait, t.Sub(now))
			}
		}
		t := s.cfg.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-t.C():
		}
		t.Stop()
	}
	s.shutdown(ctx, stopAll)
	return nil
}

// shutdown stops the executions of this runner and releases their leases.
func (s *Service) shutdown(ctx context.Context, stopAll context.CancelCauseFunc) {
	ids := s.claimedIDs()
	stopAll(errShutdown)
	s.wg.Wait()
	if len(ids) == 0 {
		return
	}
	// A lease that ends now makes the job claimable at once; jobs that
	// settled meanwhile are not touched.
	if _, err := s.store.ExtendJobLeases(context.WithoutCancel(ctx), s.cfg.Owner, ids, s.cfg.Clock.Now()); err != nil {
		s.log.Warn("jobs.release_failed", slog.String("error", err.Error()))
	}
}

// claim leases runnable jobs up to the free worker slots and starts them
// under execCtx; takeOver ignores the leases of running jobs (SoleRunner's
// first claim). It returns the slots still free.
func (s *Service) claim(ctx, execCtx context.Context, takeOver bool) (int, error) {
	free := s.cfg.Workers - len(s.claimedIDs())
	if free <= 0 {
		return 0, nil
	}
	now := s.cfg.Clock.Now()
	js, err := s.store.ClaimJobs(ctx, core.ClaimJobsParams{Owner: s.cfg.Owner, Now: now, Limit: free,
		LeaseUntil: now.Add(s.cfg.LeaseTTL), TakeOver: takeOver})
	if err != nil {
		return free, err
	}
	for _, j := range js {
		s.start(execCtx, j)
	}
	return free - len(js), nil
}

// start executes a claimed job in its own goroutine.
func (s *Service) start(ctx context.Context, j *core.Job) {
	jctx, cancel := context.WithCancelCause(ctx)
	s.track(j.ID, cancel)
	s.mu.Lock()
	s.claimed[j.ID] = true
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.notify() // a slot is free
		defer s.untrack(j.ID)
		defer cancel(nil)
		s.execute(jctx, j)
	}()
}

// heartbeat renews the leases of the jobs executing here and stops those
// this runner no longer holds (cancelled, expired or taken over).
func (s *Service) heartbeat(ctx context.Context) {
	ids := s.runningIDs()
	if len(ids) == 0 {
		return
	}
	lost, err := s.store.ExtendJobLeases(ctx, s.cfg.Owner, ids, s.cfg.Clock.Now().Add(s.cfg.LeaseTTL))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("jobs.heartbeat_failed", slog.String("error", err.Error()))
		}
		return
	}
	for _, id := range lost {
		s.stop(id, errLeaseLost)
	}
}

// execute runs one claimed job to its outcome and settles it. When the
// execution is cancelled (by the user, an expiry, a lost lease or
// shutdown) it returns without settling: whoever cancelled it settled the
// job, or the next runner resumes it.
func (s *Service) execute(ctx context.Context, j *core.Job) {
	if telemetry.Enabled() {
		var span trace.Span
		ctx, span = startRunSpan(ctx, j)
		defer span.End()
	}
	start := time.Now()
	var o outcome
	if j.Runs > s.cfg.MaxRuns {
		o = failure("ABORTED", fmt.Sprintf("The job was interrupted %d times and is not retried.", j.Runs-1))
	} else {
		var err error
		o, err = s.run(ctx, j)
		if err != nil {
			if ctx.Err() != nil {
				s.log.Info("job.interrupted", slog.String("job", j.ID), slog.Any("cause", context.Cause(ctx)))
				return
			}
			if errors.Is(err, errResumeLater) {
				s.log.Info("job.resume_later", slog.String("job", j.ID), slog.String("reason", err.Error()))
				return
			}
			o = outcomeFromError(err)
		}
	}
	_, err := s.settle(ctx, j.ProjectID, j.ID, s.cfg.Owner, o)
	switch {
	case err == nil:
		s.log.Debug("job.executed", slog.String("job", j.ID), slog.Duration("duration", time.Since(start)))
	case errors.Is(err, errSettled), errors.Is(err, errLeaseLost), errors.Is(err, core.ErrNotFound):
		// Cancelled, expired, taken over or deleted meanwhile.
		s.log.Info("job.result_discarded", slog.String("job", j.ID), slog.String("reason", err.Error()))
	default:
		// The job stays running; its lease runs out and it is resumed.
		s.log.Warn("job.settle_failed", slog.String("job", j.ID), slog.String("error", err.Error()))
	}
}

// run dispatches on the job's kind.
func (s *Service) run(ctx context.Context, j *core.Job) (outcome, error) {
	switch j.Kind {
	case core.JobBatch:
		return s.runBatch(ctx, j)
	case core.JobVideo:
		return s.runVideo(ctx, j)
	case core.JobInteraction:
		return s.runInteraction(ctx, j)
	}
	return failure("INTERNAL", fmt.Sprintf("unknown job kind %q", j.Kind)), nil
}

// errResumeLater ends an execution without an outcome: the job stays
// running, and is resumed once its lease ends. Settling a failure instead
// counted on the settle being refused while the job's previous event
// waited in its outbox — but the outbox drain may publish it in between,
// and the job failed (a video interaction whose video.generated was
// late ended in interaction.failed).
var errResumeLater = errors.New("resumed once its lease ends")

// outcomeFromError turns an execution error into a failure outcome.
func outcomeFromError(err error) outcome {
	var ee *executor.Error
	if errors.As(err, &ee) {
		return failure(ee.Code, ee.Message)
	}
	return failure("INTERNAL", err.Error())
}
