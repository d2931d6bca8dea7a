package storetest

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// running edits a job into running under owner until the lease expiry.
func running(owner string, until time.Time) func(*core.Job) {
	return func(j *core.Job) {
		j.State, j.LeaseOwner, j.LeaseExpire, j.Runs = core.JobRunning, owner, until, 1
		j.StartTime = j.CreateTime
	}
}

func testClaimJobs(t *testing.T, e *jobsEnv) {
	a := e.job("", 4*time.Minute, nil)
	b := e.job("", 3*time.Minute, nil)
	c := e.job("", 2*time.Minute, nil)
	d := e.job(e.q, time.Minute, nil) // claims span projects

	until := T0.Add(30 * time.Second)
	got := e.claim("r1", T0, 2, false)
	wantEqual(t, "first claim (oldest first)", jobIDs(got), []string{a.ID, b.ID})
	for _, j := range got {
		if j.State != core.JobRunning || j.LeaseOwner != "r1" || !j.LeaseExpire.Equal(until) || j.Runs != 1 {
			t.Errorf("claimed job: state %s, owner %q, lease %v, runs %d; want running, r1, %v, 1",
				j.State, j.LeaseOwner, j.LeaseExpire, j.Runs, until)
		}
		wantTime(t, "StartTime of a first run", j.StartTime, T0)
		wantTime(t, "UpdateTime", j.UpdateTime, T0)
		wantEqual(t, "stored claimed job", e.get(j.ID), j)
	}
	if len(got) == 2 {
		want := *a
		want.State, want.LeaseOwner, want.LeaseExpire, want.Runs = core.JobRunning, "r1", until, 1
		want.StartTime, want.UpdateTime = T0, T0
		wantEqual(t, "claimed job (other fields unchanged)", got[0], &want)
	}

	got = e.claim("r2", T0, 10, false)
	wantEqual(t, "second claim", jobIDs(got), []string{c.ID, d.ID})
	if got := e.claim("r3", T0.Add(29*time.Second), 10, false); len(got) != 0 {
		t.Errorf("claimed leased jobs: %v", jobIDs(got))
	}
	if j := e.get(a.ID); j.LeaseOwner != "r1" || j.Runs != 1 {
		t.Errorf("a leased job changed hands: owner %q, runs %d", j.LeaseOwner, j.Runs)
	}
}

func testClaimSkipsSettled(t *testing.T, e *jobsEnv) {
	var settled []*core.Job
	for i, st := range []core.JobState{core.JobSucceeded, core.JobFailed, core.JobCancelled, core.JobExpired, core.JobRequiresAction} {
		settled = append(settled, e.job("", time.Duration(i+1)*time.Minute, func(j *core.Job) {
			// A settled job may keep an expired lease: it is still not runnable.
			j.State, j.LeaseOwner, j.LeaseExpire = st, "dead", T0.Add(-time.Hour)
		}))
	}
	if got := e.claim("r1", T0, 10, true); len(got) != 0 {
		t.Errorf("claimed settled jobs: %v", jobIDs(got))
	}
	for _, j := range settled {
		wantEqual(t, "settled job after claims", e.get(j.ID), j)
	}
}

func testClaimLeaseExpiry(t *testing.T, e *jobsEnv) {
	lease := T0.Add(time.Minute)
	j := e.job("", time.Minute, running("dead", lease))
	if got := e.claim("r2", lease.Add(-time.Microsecond), 10, false); len(got) != 0 {
		t.Errorf("claimed a job before its lease expired: %v", jobIDs(got))
	}
	got := e.claim("r2", lease, 10, false) // the lease ends at its expiry, inclusive
	if len(got) != 1 || got[0].ID != j.ID {
		t.Fatalf("claim at the lease expiry = %v, want [%s]", jobIDs(got), j.ID)
	}
	r := got[0]
	if r.State != core.JobRunning || r.LeaseOwner != "r2" || !r.LeaseExpire.Equal(lease.Add(30*time.Second)) || r.Runs != 2 {
		t.Errorf("resumed job: state %s, owner %q, lease %v, runs %d; want running, r2, %v, 2",
			r.State, r.LeaseOwner, r.LeaseExpire, r.Runs, lease.Add(30*time.Second))
	}
	wantTime(t, "StartTime of a resumed job (first start kept)", r.StartTime, j.StartTime)
	wantEqual(t, "stored resumed job", e.get(j.ID), r)
}

func testClaimTakeOver(t *testing.T, e *jobsEnv) {
	lease := T0.Add(time.Minute)
	theirs := e.job("", 3*time.Minute, running("other", lease))
	mine := e.job("", 2*time.Minute, running("me", lease))
	pending := e.job("", time.Minute, nil)

	wantEqual(t, "claim without TakeOver", jobIDs(e.claim("me", T0, 10, false)), []string{pending.ID})
	got := e.claim("me", T0, 10, true)
	wantEqual(t, "claim with TakeOver", jobIDs(got), []string{theirs.ID})
	if len(got) == 1 && (got[0].LeaseOwner != "me" || got[0].Runs != 2) {
		t.Errorf("taken-over job: owner %q, runs %d; want me, 2", got[0].LeaseOwner, got[0].Runs)
	}
	if j := e.get(mine.ID); j.Runs != 1 || !j.LeaseExpire.Equal(lease) {
		t.Errorf("TakeOver reclaimed the owner's own job: runs %d, lease %v", j.Runs, j.LeaseExpire)
	}
}

// testClaimConcurrent: concurrent runners never claim a job twice.
func testClaimConcurrent(t *testing.T, e *jobsEnv) {
	const jobs, runners = 30, 6
	for i := range jobs {
		e.job("", time.Duration(i)*time.Millisecond, nil)
	}
	var mu sync.Mutex
	owners := map[string][]string{} // job id -> claimers
	var wg sync.WaitGroup
	for r := range runners {
		owner := string(rune('a' + r))
		wg.Go(func() {
			for {
				js, err := e.s.ClaimJobs(e.ctx, core.ClaimJobsParams{Owner: owner, Now: T0, Limit: 4,
					LeaseUntil: T0.Add(time.Minute)})
				if err != nil {
					t.Errorf("ClaimJobs: %v", err)
					return
				}
				if len(js) == 0 {
					return
				}
				mu.Lock()
				for _, j := range js {
					owners[j.ID] = append(owners[j.ID], owner)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(owners) != jobs {
		t.Errorf("%d jobs claimed, want %d", len(owners), jobs)
	}
	for id, os := range owners {
		if len(os) != 1 {
			t.Errorf("job %s claimed by %v", id, os)
			continue
		}
		if j := e.get(id); j.LeaseOwner != os[0] || j.Runs != 1 {
			t.Errorf("job %s: owner %q, runs %d; claimed once by %s", id, j.LeaseOwner, j.Runs, os[0])
		}
	}
}

// testClaimRacesCancel: a claim never revives a job cancelled concurrently
// (transitions check the state inside their transaction).
func testClaimRacesCancel(t *testing.T, e *jobsEnv) {
	const n = 20
	var js []*core.Job
	for i := range n {
		js = append(js, e.job("", time.Duration(i)*time.Millisecond, nil))
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for range n {
			if _, err := e.s.ClaimJobs(e.ctx, core.ClaimJobsParams{Owner: "r1", Now: T0, Limit: 2,
				LeaseUntil: T0.Add(time.Minute)}); err != nil {
				t.Errorf("ClaimJobs: %v", err)
				return
			}
		}
	})
	wg.Go(func() {
		for i := n - 1; i >= 0; i-- {
			if _, err := e.s.UpdateJob(e.ctx, e.p, js[i].ID, settleFn(core.JobCancelled, core.EventBatchCancelled)); err != nil {
				t.Errorf("UpdateJob(cancel): %v", err)
			}
		}
	})
	wg.Wait()
	for _, j := range js {
		if got := e.get(j.ID); got.State != core.JobCancelled || got.LeaseOwner != "" || got.Sequence != 1 {
			t.Errorf("job %s after the race: state %s, owner %q, sequence %d; want cancelled, no owner, 1",
				j.ID, got.State, got.LeaseOwner, got.Sequence)
		}
	}
	if got := e.claim("r2", T0.Add(time.Hour), 100, true); len(got) != 0 {
		t.Errorf("claimed cancelled jobs: %v", jobIDs(got))
	}
}

func testExtendJobLeases(t *testing.T, e *jobsEnv) {
	lease := T0.Add(10 * time.Second)
	mine := e.job("", 6*time.Minute, running("me", lease))
	expired := e.job("", 5*time.Minute, running("me", T0.Add(-time.Second))) // still ours until taken over
	theirs := e.job("", 4*time.Minute, running("other", lease))
	done := e.job("", 3*time.Minute, func(j *core.Job) {
		j.State, j.LeaseOwner, j.LeaseExpire = core.JobSucceeded, "me", lease
	})
	waiting := e.job("", 2*time.Minute, func(j *core.Job) {
		j.State, j.LeaseOwner, j.LeaseExpire = core.JobRequiresAction, "me", lease
	})
	pending := e.job("", time.Minute, nil)

	until := T0.Add(time.Minute)
	lost, err := e.s.ExtendJobLeases(e.ctx, "me",
		[]string{mine.ID, expired.ID, theirs.ID, done.ID, waiting.ID, pending.ID, "missing"}, until)
	if err != nil {
		t.Fatalf("ExtendJobLeases: %v", err)
	}
	wantEqual(t, "lost", sorted(lost), sorted([]string{theirs.ID, done.ID, waiting.ID, pending.ID, "missing"}))
	wantTime(t, "extended lease", e.get(mine.ID).LeaseExpire, until)
	wantTime(t, "extended expired lease", e.get(expired.ID).LeaseExpire, until)
	for _, j := range []*core.Job{theirs, done, waiting, pending} {
		wantEqual(t, "job whose lease was not extended", e.get(j.ID), j)
	}
	if got := e.get(mine.ID); got.LeaseOwner != "me" || got.State != core.JobRunning || got.Runs != 1 {
		t.Errorf("extension changed more than the lease: %+v", got)
	}
	lost, err = e.s.ExtendJobLeases(e.ctx, "me", nil, until)
	if err != nil || len(lost) != 0 {
		t.Errorf("ExtendJobLeases(no ids) = %v, %v", lost, err)
	}
}

// testReleaseJobLease: moving a lease to now (the runner's shutdown)
// makes the job claimable at once.
func testReleaseJobLease(t *testing.T, e *jobsEnv) {
	j := e.job("", time.Minute, nil)
	if got := e.claim("r1", T0, 1, false); len(got) != 1 {
		t.Fatalf("claim = %v", jobIDs(got))
	}
	now := T0.Add(time.Second)
	lost, err := e.s.ExtendJobLeases(e.ctx, "r1", []string{j.ID}, now)
	if err != nil || len(lost) != 0 {
		t.Fatalf("ExtendJobLeases(release) = %v, %v", lost, err)
	}
	got := e.claim("r2", now, 1, false)
	if len(got) != 1 || got[0].LeaseOwner != "r2" || got[0].Runs != 2 {
		t.Errorf("claim after release = %+v, want the job with owner r2 and 2 runs", got)
	}
	lost, err = e.s.ExtendJobLeases(e.ctx, "r1", []string{j.ID}, now.Add(time.Minute))
	if err != nil || len(lost) != 1 || lost[0] != j.ID {
		t.Errorf("ExtendJobLeases by the previous owner = %v, %v; want [%s]", lost, err, j.ID)
	}
}

func testNextJobWake(t *testing.T, e *jobsEnv) {
	wake := func() (time.Time, bool) {
		t.Helper()
		at, ok, err := e.s.NextJobWake(e.ctx)
		if err != nil {
			t.Fatalf("NextJobWake: %v", err)
		}
		return at, ok
	}
	if at, ok := wake(); ok {
		t.Errorf("NextJobWake on an empty store = %v, true", at)
	}
	// Settled jobs with leases left over do not count.
	e.job("", 4*time.Minute, func(j *core.Job) {
		j.State, j.LeaseOwner, j.LeaseExpire = core.JobSucceeded, "dead", T0.Add(-time.Hour)
	})
	e.job("", 3*time.Minute, func(j *core.Job) {
		j.State, j.LeaseOwner, j.LeaseExpire = core.JobRequiresAction, "dead", T0.Add(-2*time.Hour)
	})
	if at, ok := wake(); ok {
		t.Errorf("NextJobWake with settled jobs only = %v, true", at)
	}
	e.job("", 2*time.Minute, running("r1", T0.Add(2*time.Minute)))
	soon := e.job("", time.Minute, running("r1", T0.Add(time.Minute)))
	if at, ok := wake(); !ok || !at.Equal(T0.Add(time.Minute)) {
		t.Errorf("NextJobWake = %v, %v; want %v", at, ok, T0.Add(time.Minute))
	}
	if lost, err := e.s.ExtendJobLeases(e.ctx, "r1", []string{soon.ID}, T0.Add(5*time.Minute)); err != nil || len(lost) != 0 {
		t.Fatalf("ExtendJobLeases = %v, %v", lost, err)
	}
	if at, ok := wake(); !ok || !at.Equal(T0.Add(2*time.Minute)) {
		t.Errorf("NextJobWake after an extension = %v, %v; want %v", at, ok, T0.Add(2*time.Minute))
	}
	// A pending job is runnable already: it may not postpone the wake-up.
	e.job("", 0, nil)
	if at, ok := wake(); !ok || at.After(T0.Add(2*time.Minute)) {
		t.Errorf("NextJobWake with a pending job = %v, %v; want at most %v", at, ok, T0.Add(2*time.Minute))
	}
}

func testOutbox(t *testing.T, e *jobsEnv) {
	event := func(typ string, seq int, terminal bool) func(*core.Job) {
		return func(j *core.Job) {
			j.State = core.JobSucceeded
			j.Sequence = seq
			j.WebhookConfig = &core.WebhookConfig{URIs: []string{"https://example.com/" + j.ID}}
			j.Outbox = &core.JobEvent{Type: typ, Seq: seq, Data: json.RawMessage(`{"id":"batches/` + j.ID + `"}`),
				Time: T0, Terminal: terminal}
		}
	}
	terminal := e.job("", 3*time.Minute, event(core.EventBatchSucceeded, 1, true))
	other := e.job(e.q, 2*time.Minute, func(j *core.Job) { // any project
		event(core.EventInteractionRequiresAction, 4, false)(j)
		j.State, j.Kind = core.JobRequiresAction, core.JobInteraction
	})
	e.job("", time.Minute, nil)
	emitted := e.job("", 0, func(j *core.Job) { event(core.EventBatchFailed, 1, true)(j); j.Outbox, j.TerminalEmitted = nil, true })

	list := func(limit int) []*core.Job {
		t.Helper()
		js, err := e.s.JobsWithOutbox(e.ctx, limit)
		if err != nil {
			t.Fatalf("JobsWithOutbox: %v", err)
		}
		return js
	}
	got := list(10)
	wantEqual(t, "JobsWithOutbox", sortedIDs(got), sorted([]string{terminal.ID, other.ID}))
	for _, j := range got {
		wantEqual(t, "job with outbox", j, e.get(j.ID))
	}
	if got := list(1); len(got) != 1 || (got[0].ID != terminal.ID && got[0].ID != other.ID) {
		t.Errorf("JobsWithOutbox(1) = %v", jobIDs(got))
	}

	if _, err := e.s.UpdateJob(e.ctx, e.p, terminal.ID, clearOutboxFn(1)); err != nil {
		t.Fatalf("UpdateJob(clear): %v", err)
	}
	if j := e.get(terminal.ID); j.Outbox != nil || !j.TerminalEmitted {
		t.Errorf("after clearing: outbox %+v, terminal emitted %v", j.Outbox, j.TerminalEmitted)
	}
	wantEqual(t, "JobsWithOutbox after clearing", jobIDs(list(10)), []string{other.ID})
	if j := e.get(emitted.ID); j.Outbox != nil || !j.TerminalEmitted {
		t.Errorf("emitted job: outbox %+v, terminal emitted %v", j.Outbox, j.TerminalEmitted)
	}
}

func testExpiredJobs(t *testing.T, e *jobsEnv) {
	expiring := func(st core.JobState, at time.Time) func(*core.Job) {
		return func(j *core.Job) {
			j.State, j.ExpireTime = st, at
			if st == core.JobRunning {
				j.LeaseOwner, j.LeaseExpire = "r1", T0.Add(time.Minute)
			}
		}
	}
	want := []string{
		e.job("", 9*time.Minute, expiring(core.JobPending, T0.Add(-time.Hour))).ID,
		e.job("", 8*time.Minute, expiring(core.JobRunning, T0)).ID, // at now: expired
		e.job(e.q, 7*time.Minute, expiring(core.JobPending, T0.Add(-time.Minute))).ID,
	}
	for i, st := range []core.JobState{core.JobRequiresAction, core.JobSucceeded, core.JobFailed, core.JobCancelled, core.JobExpired} {
		e.job("", time.Duration(i+1)*time.Minute, expiring(st, T0.Add(-time.Hour)))
	}
	e.job("", 0, expiring(core.JobPending, time.Time{}))                   // never expires
	e.job("", 0, expiring(core.JobRunning, T0.Add(time.Microsecond)))      // not yet
	e.job("", 0, expiring(core.JobPending, T0.Add(48*time.Hour)))          // not yet
	e.job(e.q, 0, expiring(core.JobRequiresAction, T0.Add(-48*time.Hour))) // settled

	got, err := e.s.ExpiredJobs(e.ctx, T0, 100)
	if err != nil {
		t.Fatalf("ExpiredJobs: %v", err)
	}
	wantEqual(t, "ExpiredJobs", sortedIDs(got), sorted(want))
	for _, j := range got {
		wantEqual(t, "expired job", j, e.get(j.ID))
	}
	got, err = e.s.ExpiredJobs(e.ctx, T0, 2)
	if err != nil {
		t.Fatalf("ExpiredJobs(2): %v", err)
	}
	if len(got) != 2 {
		t.Errorf("ExpiredJobs(limit 2) returned %d jobs", len(got))
	}
	for _, j := range got {
		if !slices.Contains(want, j.ID) {
			t.Errorf("ExpiredJobs(limit 2) returned %s, not expired", j.ID)
		}
	}
}
