package core_test

import (
	"testing"

	"github.com/longhook/longhook/internal/core"
)

// The job state machine: a terminal job moves nowhere, an interaction
// waiting in requires_action only to cancelled, a pending or running job
// to any settled state.
func TestJobStateCanMoveTo(t *testing.T) {
	t.Parallel()
	P, R, A := core.JobPending, core.JobRunning, core.JobRequiresAction
	S, F, C, E := core.JobSucceeded, core.JobFailed, core.JobCancelled, core.JobExpired
	allowed := map[[2]core.JobState]bool{
		{P, A}: true, {P, S}: true, {P, F}: true, {P, C}: true, {P, E}: true,
		{R, A}: true, {R, S}: true, {R, F}: true, {R, C}: true, {R, E}: true,
		{A, C}: true,
	}
	for _, from := range []core.JobState{P, R, A, S, F, C, E} {
		for _, to := range []core.JobState{P, R, A, S, F, C, E} {
			if got, want := from.CanMoveTo(to), allowed[[2]core.JobState{from, to}]; got != want {
				t.Errorf("%s → %s: %v, want %v", from, to, got, want)
			}
		}
	}
}
