package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// RunJobs runs the conformance suite of core.JobStore: every behaviour
// promised by the doc comments of core.JobStore and its parameter types has
// a subtest here. newStore must return a fresh, empty store for each call
// and release it when t ends. Subtests run in parallel.
func RunJobs(t *testing.T, newStore func(t *testing.T) core.JobStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *jobsEnv)
	}{
		{"JobRoundTrip", testJobRoundTrip},
		{"JobEmptyFields", testJobEmptyFields},
		{"CreateJobDuplicate", testCreateJobDuplicate},
		{"JobProjectIsolation", testJobIsolation},
		{"ListJobs", testListJobs},
		{"UpdateJob", testUpdateJob},
		{"UpdateJobError", testUpdateJobError},
		{"UpdateJobConcurrent", testUpdateJobConcurrent},
		{"SettleRace", testSettleRace},
		{"DeleteJob", testDeleteJob},
		{"ClaimJobs", testClaimJobs},
		{"ClaimSkipsSettled", testClaimSkipsSettled},
		{"ClaimLeaseExpiry", testClaimLeaseExpiry},
		{"ClaimTakeOver", testClaimTakeOver},
		{"ClaimConcurrent", testClaimConcurrent},
		{"ClaimRacesCancel", testClaimRacesCancel},
		{"ExtendJobLeases", testExtendJobLeases},
		{"ReleaseJobLease", testReleaseJobLease},
		{"NextJobWake", testNextJobWake},
		{"Outbox", testOutbox},
		{"ExpiredJobs", testExpiredJobs},
		{"FileRoundTrip", testFileRoundTrip},
		{"CreateFileDuplicate", testCreateFileDuplicate},
		{"FileProjectIsolation", testFileIsolation},
		{"ListFiles", testListFiles},
		{"FileNamesPerProject", testFileNamesPerProject},
		{"DeleteFile", testDeleteFile},
		{"ExpiredFiles", testExpiredFiles},
		{"UploadRoundTrip", testUploadRoundTrip},
		{"AdvanceUpload", testAdvanceUpload},
		{"AdvanceUploadConcurrent", testAdvanceUploadConcurrent},
		{"DeleteUpload", testDeleteUpload},
		{"StaleUploads", testStaleUploads},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, &jobsEnv{t: t, ctx: context.Background(), s: newStore(t), p: core.NewID(), q: core.NewID()})
		})
	}
}

// NewJob returns a pending job of the project created at at, whose id
// sorts by at (millisecond resolution), with a request and a model.
func NewJob(projectID string, kind core.JobKind, at time.Time) *core.Job {
	id := core.NewSortableID(at)
	return &core.Job{
		ID:          id,
		ProjectID:   projectID,
		Kind:        kind,
		State:       core.JobPending,
		Model:       "gemini-2.5-flash",
		DisplayName: "job " + id[len(id)-6:],
		Request:     json.RawMessage(`{"requests":[{"contents":"hi"}]}`),
		CreateTime:  at,
		UpdateTime:  at,
	}
}

// NewFile returns an uploaded file of the project created at at, whose id
// sorts by at, expiring 48 hours later.
func NewFile(projectID string, at time.Time) *core.File {
	id := core.NewSortableID(at)
	sum := make([]byte, 32)
	copy(sum, id)
	return &core.File{
		ID:          id,
		ProjectID:   projectID,
		DisplayName: "file " + id[len(id)-6:],
		MIMEType:    "application/jsonl",
		SizeBytes:   1234,
		SHA256:      sum,
		Source:      "UPLOADED",
		CreateTime:  at,
		UpdateTime:  at,
		ExpireTime:  at.Add(48 * time.Hour),
	}
}

// jobsEnv is one subtest's fixture: a fresh store and two project ids.
type jobsEnv struct {
	t    *testing.T
	ctx  context.Context
	s    core.JobStore
	p, q string
}

// job creates a job of kind batch in project projectID ("" = p), created
// ago before T0, after applying edit.
func (e *jobsEnv) job(projectID string, ago time.Duration, edit func(*core.Job)) *core.Job {
	e.t.Helper()
	if projectID == "" {
		projectID = e.p
	}
	j := NewJob(projectID, core.JobBatch, T0.Add(-ago))
	if edit != nil {
		edit(j)
	}
	if err := e.s.CreateJob(e.ctx, j); err != nil {
		e.t.Fatalf("CreateJob: %v", err)
	}
	return j
}

func (e *jobsEnv) get(id string) *core.Job {
	e.t.Helper()
	j, err := e.s.GetJob(e.ctx, "", id)
	if err != nil {
		e.t.Fatalf("GetJob(%s): %v", id, err)
	}
	return j
}

func (e *jobsEnv) claim(owner string, now time.Time, limit int, takeOver bool) []*core.Job {
	e.t.Helper()
	js, err := e.s.ClaimJobs(e.ctx, core.ClaimJobsParams{Owner: owner, Now: now, Limit: limit,
		LeaseUntil: now.Add(30 * time.Second), TakeOver: takeOver})
	if err != nil {
		e.t.Fatalf("ClaimJobs: %v", err)
	}
	return js
}

func jobIDs(js []*core.Job) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	return out
}

// sortedIDs returns the ids of js sorted, for set comparisons.
func sortedIDs(js []*core.Job) []string {
	return sorted(jobIDs(js))
}

func sorted(ids []string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	if ids == nil {
		ids = []string{}
	}
	return ids
}

// fullJob returns a job with every field set.
func fullJob(projectID string) *core.Job {
	j := NewJob(projectID, core.JobInteraction, T0)
	j.State = core.JobRunning
	j.Model = "models/gemini-2.5-pro"
	j.ParentID = "parent-" + j.ID
	j.Result = json.RawMessage(`{"outputs":[{"type":"text","text":"héllo"}]}`)
	j.ErrorCode, j.ErrorMessage = "INTERNAL", "it broke"
	j.WebhookConfig = &core.WebhookConfig{URIs: []string{"https://example.com/a", "https://example.com/b"},
		UserMetadata: json.RawMessage(`{"job":"j1","n":[1,2]}`), Audience: "aud"}
	j.OutputFile = "batch-" + j.ID
	j.Sequence = 3
	j.Outbox = &core.JobEvent{Type: core.EventInteractionRequiresAction, Seq: 3,
		Data: json.RawMessage(`{"id":"x","sequence":3}`), Time: T0.Add(time.Second), Terminal: true}
	j.TerminalEmitted = true
	j.Runs = 2
	j.LeaseOwner, j.LeaseExpire = "runner-1", T0.Add(30*time.Second)
	j.UpdateTime = T0.Add(time.Second)
	j.StartTime, j.EndTime = T0.Add(500*time.Millisecond), T0.Add(2*time.Second)
	j.ExpireTime = T0.Add(48 * time.Hour)
	j.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	return j
}

func testJobRoundTrip(t *testing.T, e *jobsEnv) {
	j := fullJob(e.p)
	if err := e.s.CreateJob(e.ctx, j); err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	got, err := e.s.GetJob(e.ctx, e.p, j.ID)
	if err != nil {
		t.Fatalf("GetJob: %v", err)
	}
	wantEqual(t, "GetJob", got, j)
	wantEqual(t, "GetJob any project", e.get(j.ID), j)
}

func testJobEmptyFields(t *testing.T, e *jobsEnv) {
	j := &core.Job{ID: core.NewID(), ProjectID: e.p, Kind: core.JobVideo, State: core.JobPending}
	if err := e.s.CreateJob(e.ctx, j); err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	got := e.get(j.ID)
	wantEqual(t, "GetJob", got, j)
	if got.Request != nil || got.Result != nil || got.WebhookConfig != nil || got.Outbox != nil {
		t.Errorf("empty fields came back as %q, %q, %v, %v", got.Request, got.Result, got.WebhookConfig, got.Outbox)
	}
	for name, tm := range map[string]time.Time{"LeaseExpire": got.LeaseExpire, "CreateTime": got.CreateTime,
		"StartTime": got.StartTime, "EndTime": got.EndTime, "ExpireTime": got.ExpireTime} {
		if !tm.IsZero() {
			t.Errorf("%s = %v, want the zero time", name, tm)
		}
	}
}

func testCreateJobDuplicate(t *testing.T, e *jobsEnv) {
	j := e.job("", 0, nil)
	dup := NewJob(e.q, core.JobVideo, T0)
	dup.ID = j.ID // ids are global: taken in another project too
	for _, d := range []*core.Job{j, dup} {
		if err := e.s.CreateJob(e.ctx, d); !errors.Is(err, core.ErrAlreadyExists) {
			t.Errorf("CreateJob(duplicate in %s) = %v, want ErrAlreadyExists", d.ProjectID, err)
		}
	}
	wantEqual(t, "original after duplicates", e.get(j.ID), j)
}

func testJobIsolation(t *testing.T, e *jobsEnv) {
	j := e.job("", 0, nil)
	_, err := e.s.GetJob(e.ctx, e.q, j.ID)
	wantNotFound(t, "GetJob(other project)", err)
	_, err = e.s.GetJob(e.ctx, e.p, "nope")
	wantNotFound(t, "GetJob(missing)", err)
	called := false
	_, err = e.s.UpdateJob(e.ctx, e.q, j.ID, func(j *core.Job) error { called = true; j.State = core.JobCancelled; return nil })
	wantNotFound(t, "UpdateJob(other project)", err)
	_, err = e.s.UpdateJob(e.ctx, e.p, "nope", func(*core.Job) error { called = true; return nil })
	wantNotFound(t, "UpdateJob(missing)", err)
	if called {
		t.Errorf("UpdateJob called fn for a job it did not find")
	}
	wantNotFound(t, "DeleteJob(other project)", e.s.DeleteJob(e.ctx, e.q, j.ID))
	js, err := e.s.ListJobs(e.ctx, core.ListJobsParams{ProjectID: e.q, Limit: 10})
	if err != nil || len(js) != 0 {
		t.Errorf("ListJobs(other project) = %v, %v; want nothing", jobIDs(js), err)
	}
	wantEqual(t, "job after other project's calls", e.get(j.ID), j)
	// An empty project id reaches the job from anywhere (the runner's view).
	got, err := e.s.UpdateJob(e.ctx, "", j.ID, func(j *core.Job) error { j.DisplayName = "renamed"; return nil })
	if err != nil || got.DisplayName != "renamed" {
		t.Errorf("UpdateJob(any project) = %+v, %v", got, err)
	}
}

func testListJobs(t *testing.T, e *jobsEnv) {
	kinds := []core.JobKind{core.JobBatch, core.JobVideo, core.JobInteraction}
	var all []*core.Job // newest first
	for i := range 7 {
		j := e.job("", time.Duration(i)*time.Minute, func(j *core.Job) { j.Kind = kinds[i%3] })
		all = append(all, j)
	}
	e.job(e.q, 0, nil)
	list := func(p core.ListJobsParams) []*core.Job {
		t.Helper()
		p.ProjectID = e.p
		js, err := e.s.ListJobs(e.ctx, p)
		if err != nil {
			t.Fatalf("ListJobs(%+v): %v", p, err)
		}
		return js
	}
	got := list(core.ListJobsParams{Limit: 100})
	wantEqual(t, "ListJobs ids", jobIDs(got), jobIDs(all))
	if len(got) > 0 {
		wantEqual(t, "ListJobs first job", got[0], all[0])
	}

	// Paging with an exclusive cursor visits every job once, in order.
	var paged []string
	cursor := ""
	for range 10 {
		page := list(core.ListJobsParams{BeforeID: cursor, Limit: 3})
		if len(page) > 3 {
			t.Fatalf("page of %d jobs, limit 3", len(page))
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, jobIDs(page)...)
		cursor = page[len(page)-1].ID
	}
	wantEqual(t, "paged ids", paged, jobIDs(all))

	var batches, notBatches []string
	for _, j := range all {
		if j.Kind == core.JobBatch {
			batches = append(batches, j.ID)
		} else {
			notBatches = append(notBatches, j.ID)
		}
	}
	wantEqual(t, "kind batch", jobIDs(list(core.ListJobsParams{Kinds: []core.JobKind{core.JobBatch}, Limit: 100})), batches)
	wantEqual(t, "kinds video+interaction", jobIDs(list(core.ListJobsParams{
		Kinds: []core.JobKind{core.JobVideo, core.JobInteraction}, Limit: 100})), notBatches)
	wantEqual(t, "kind batch after cursor", jobIDs(list(core.ListJobsParams{
		Kinds: []core.JobKind{core.JobBatch}, BeforeID: batches[0], Limit: 1})), batches[1:2])
}

func testUpdateJob(t *testing.T, e *jobsEnv) {
	j := e.job("", 0, nil)
	want := fullJob(e.p)
	want.ID, want.CreateTime = j.ID, j.CreateTime
	got, err := e.s.UpdateJob(e.ctx, e.p, j.ID, func(cur *core.Job) error {
		wantEqual(t, "fn's job", cur, j)
		*cur = *want
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateJob: %v", err)
	}
	wantEqual(t, "UpdateJob result", got, want)
	wantEqual(t, "stored after UpdateJob", e.get(j.ID), want)

	// Clearing fields writes them back too.
	got, err = e.s.UpdateJob(e.ctx, e.p, j.ID, func(cur *core.Job) error {
		cur.Outbox, cur.WebhookConfig, cur.Result = nil, nil, nil
		cur.LeaseOwner, cur.LeaseExpire, cur.TerminalEmitted = "", time.Time{}, false
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateJob(clear): %v", err)
	}
	stored := e.get(j.ID)
	wantEqual(t, "stored after clearing", stored, got)
	if stored.Outbox != nil || stored.WebhookConfig != nil || stored.Result != nil || stored.LeaseOwner != "" ||
		!stored.LeaseExpire.IsZero() || stored.TerminalEmitted {
		t.Errorf("cleared fields came back: %+v", stored)
	}
}

var errJobTest = errors.New("storetest: fn refused")

func testUpdateJobError(t *testing.T, e *jobsEnv) {
	j := e.job("", 0, nil)
	got, err := e.s.UpdateJob(e.ctx, e.p, j.ID, func(cur *core.Job) error {
		cur.State, cur.Sequence = core.JobFailed, 9
		cur.Outbox = &core.JobEvent{Type: core.EventBatchFailed, Seq: 9, Data: json.RawMessage(`{}`), Time: T0}
		return fmt.Errorf("wrapped: %w", errJobTest)
	})
	if !errors.Is(err, errJobTest) {
		t.Errorf("UpdateJob = %v, want fn's error", err)
	}
	if got != nil {
		t.Errorf("UpdateJob returned a job with an error: %+v", got)
	}
	wantEqual(t, "job after failed fn", e.get(j.ID), j)
}

// testUpdateJobConcurrent: UpdateJob is one transaction, so concurrent
// read-modify-writes lose no update.
func testUpdateJobConcurrent(t *testing.T, e *jobsEnv) {
	j := e.job("", 0, nil)
	const workers, each = 8, 5
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := e.s.UpdateJob(e.ctx, e.p, j.ID, func(cur *core.Job) error {
					cur.Sequence++
					return nil
				}); err != nil {
					t.Errorf("UpdateJob: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if got := e.get(j.ID).Sequence; got != workers*each {
		t.Errorf("Sequence = %d after %d concurrent increments", got, workers*each)
	}
}

var errSettledTest = errors.New("storetest: already settled")

// settleFn is the jobs service's transition: it refuses a settled job,
// otherwise moves it to state and stores the terminal event in its outbox.
func settleFn(state core.JobState, typ string) func(*core.Job) error {
	return func(j *core.Job) error {
		if j.State.Settled() {
			return errSettledTest
		}
		j.State, j.LeaseOwner, j.LeaseExpire, j.EndTime = state, "", time.Time{}, T0
		j.Sequence++
		j.Outbox = &core.JobEvent{Type: typ, Seq: j.Sequence, Data: json.RawMessage(`{"id":"` + j.ID + `"}`),
			Time: T0, Terminal: state.Terminal()}
		return nil
	}
}

// clearOutboxFn is the jobs service's outbox clearing after a publish.
func clearOutboxFn(seq int) func(*core.Job) error {
	return func(j *core.Job) error {
		if j.Outbox == nil || j.Outbox.Seq != seq {
			return errSettledTest
		}
		terminal := j.Outbox.Terminal
		j.Outbox = nil
		j.TerminalEmitted = j.TerminalEmitted || terminal
		return nil
	}
}

// testSettleRace: racing transitions (completion, cancel, expiry) produce
// one terminal state and one outbox event; racing drains clear it once.
func testSettleRace(t *testing.T, e *jobsEnv) {
	j := e.job("", 0, func(j *core.Job) {
		j.State, j.LeaseOwner, j.LeaseExpire, j.Sequence, j.Runs = core.JobRunning, "r1", T0.Add(time.Minute), 2, 1
	})
	states := []core.JobState{core.JobSucceeded, core.JobCancelled, core.JobExpired, core.JobFailed}
	const racers = 8
	var wins sync.Map
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			typ := fmt.Sprintf("racer.%d", i)
			_, err := e.s.UpdateJob(e.ctx, e.p, j.ID, settleFn(states[i%len(states)], typ))
			switch {
			case err == nil:
				wins.Store(typ, states[i%len(states)])
			case !errors.Is(err, errSettledTest):
				t.Errorf("UpdateJob: %v", err)
			}
		})
	}
	wg.Wait()
	var winner string
	var state core.JobState
	n := 0
	wins.Range(func(k, v any) bool { winner, state, n = k.(string), v.(core.JobState), n+1; return true })
	if n != 1 {
		t.Fatalf("%d transitions won, want exactly 1", n)
	}
	got := e.get(j.ID)
	if got.State != state || got.Sequence != 3 || got.Outbox == nil || got.Outbox.Type != winner ||
		!got.Outbox.Terminal || got.Outbox.Seq != 3 {
		t.Fatalf("after the race: state %s, sequence %d, outbox %+v; want %s, 3, %s", got.State, got.Sequence, got.Outbox, state, winner)
	}
	pending, err := e.s.JobsWithOutbox(e.ctx, 10)
	if err != nil {
		t.Fatalf("JobsWithOutbox: %v", err)
	}
	wantEqual(t, "JobsWithOutbox", jobIDs(pending), []string{j.ID})

	var cleared sync.Map
	for i := range 4 {
		wg.Go(func() {
			_, err := e.s.UpdateJob(e.ctx, "", j.ID, clearOutboxFn(3))
			switch {
			case err == nil:
				cleared.Store(i, true)
			case !errors.Is(err, errSettledTest):
				t.Errorf("UpdateJob(clear): %v", err)
			}
		})
	}
	wg.Wait()
	n = 0
	cleared.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d drains cleared the outbox, want 1", n)
	}
	got = e.get(j.ID)
	if got.Outbox != nil || !got.TerminalEmitted || got.State != state {
		t.Errorf("after clearing: outbox %+v, terminal emitted %v, state %s", got.Outbox, got.TerminalEmitted, got.State)
	}
}

func testDeleteJob(t *testing.T, e *jobsEnv) {
	j := e.job("", 0, nil)
	other := e.job("", time.Minute, nil)
	if err := e.s.DeleteJob(e.ctx, e.p, j.ID); err != nil {
		t.Fatalf("DeleteJob: %v", err)
	}
	_, err := e.s.GetJob(e.ctx, "", j.ID)
	wantNotFound(t, "GetJob after delete", err)
	wantNotFound(t, "DeleteJob again", e.s.DeleteJob(e.ctx, e.p, j.ID))
	wantEqual(t, "other job", e.get(other.ID), other)
	js, err := e.s.ListJobs(e.ctx, core.ListJobsParams{ProjectID: e.p, Limit: 10})
	if err != nil {
		t.Fatalf("ListJobs: %v", err)
	}
	wantEqual(t, "ListJobs after delete", jobIDs(js), []string{other.ID})
	// The id is free again.
	if err := e.s.CreateJob(e.ctx, j); err != nil {
		t.Errorf("CreateJob with a deleted job's id: %v", err)
	}
}
