package jobs_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/clocktest"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
	"github.com/longhook/longhook/internal/jobs/executor"
	"github.com/longhook/longhook/internal/publish"
)

// blockingExecutor starts every piece of work and never finishes it: it
// reports the start and waits for cancellation.
type blockingExecutor struct{ started chan core.JobKind }

func (b *blockingExecutor) Generate(ctx context.Context, t *executor.Turn) (*executor.Reply, error) {
	b.started <- t.Kind
	<-ctx.Done()
	return nil, ctx.Err()
}

func (b *blockingExecutor) RenderVideo(ctx context.Context, _ *executor.VideoSpec, _ string) (string, error) {
	b.started <- core.JobVideo
	<-ctx.Done()
	return "", ctx.Err()
}

// startJobs creates a batch, a video and a background interaction, all
// notifying hook, and returns their ids.
func startJobs(t *testing.T, f *fixture, hook string) []string {
	t.Helper()
	wc := map[string]any{"uris": []string{hook}}
	batch := f.createBatch([]string{"resume me"}, wc)
	video := f.call("POST", "/v1/models/veo:predictLongRunning", map[string]any{
		"instances": []any{map[string]any{"prompt": "resume me"}}, "webhookConfig": wc}).must(t, 200)
	inter := f.call("POST", "/v1/interactions", map[string]any{
		"model": "gemini-2.5-flash", "input": "resume me", "background": true, "webhook_config": wc}).must(t, 200)
	return []string{batch, video.str("name")[strings.LastIndex(video.str("name"), "/")+1:], inter.str("id")}
}

// Jobs running when their runner stops — gracefully (leases released) or
// by a crash (leases left to expire) — are resumed by the next runner, or
// failed as aborted once they ran MaxRuns times. Either way each reaches
// one terminal state and its terminal event is published exactly once.
func TestRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		crash   bool
		sole    bool // SoleRunner: take over at once instead of waiting for the leases
		maxRuns int
		want    core.JobState
	}{
		{"graceful", false, false, 0, core.JobSucceeded},
		{"crash", true, false, 0, core.JobSucceeded},
		{"crash-sole-runner", true, true, 0, core.JobSucceeded},
		{"crash-aborted", true, false, 1, core.JobFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			hook := newReceiver(t)
			block := &blockingExecutor{started: make(chan core.JobKind, 10)}
			a := setup(t, options{dir: dir, cfg: func(c *jobs.Config) { c.Executor = block }})
			ids := startJobs(t, a, hook.srv.URL)
			for range ids {
				select {
				case <-block.started:
				case <-time.After(10 * time.Second):
					t.Fatal("jobs did not start")
				}
			}
			if tc.crash {
				// The store goes away under the runner: it can neither
				// finish nor release anything, as if the process died.
				_ = a.store.Close()
			}
			a.close()

			// The next process; after a crash its clock is past the old
			// leases, or it knows it is the only runner.
			b := setup(t, options{dir: dir, cfg: func(c *jobs.Config) {
				if tc.crash && !tc.sole {
					c.Clock = clocktest.New(time.Now().Add(time.Minute))
				}
				c.SoleRunner = tc.sole
				c.MaxRuns = tc.maxRuns
			}})
			for _, id := range ids {
				j := b.settled(id)
				if j.State != tc.want || j.Runs != 2 || !j.TerminalEmitted || j.Sequence != 1 {
					t.Fatalf("job %s: state %s runs %d emitted %v sequence %d (%s)", j.Kind, j.State, j.Runs, j.TerminalEmitted, j.Sequence, j.ErrorMessage)
				}
				if tc.want == core.JobFailed && j.ErrorCode != "ABORTED" {
					t.Fatalf("job %s: error %s %s", j.Kind, j.ErrorCode, j.ErrorMessage)
				}
			}
			byID := eventsByID(t, hook, len(ids))
			b.close() // the engine has delivered everything it will
			if n := len(hook.all); n != len(ids) {
				t.Fatalf("%d deliveries, want %d", n, len(ids))
			}
			for _, ds := range byID {
				if len(ds) != 1 || ds[0].data()["sequence"] != float64(1) {
					t.Fatalf("deliveries %v", ds)
				}
			}
		})
	}
}

// flakyPublisher fails publishes: mode "fail" without publishing, "lose"
// after publishing (the answer is lost, as in a crash right after the
// commit). times bounds how many calls misbehave (0: all).
type flakyPublisher struct {
	inner jobs.Publisher
	mode  string
	times int32
	calls atomic.Int32
}

func (p *flakyPublisher) Publish(ctx context.Context, projectID string, in []publish.Input) ([]publish.Result, error) {
	n := p.calls.Add(1)
	if p.times > 0 && n > p.times {
		return p.inner.Publish(ctx, projectID, in)
	}
	if p.mode == "lose" {
		if _, err := p.inner.Publish(ctx, projectID, in); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("publish: connection lost")
}

// An event whose publish answer was lost is published again under the
// same idempotency key: the receiver gets it once.
func TestOutboxRepublishIsIdempotent(t *testing.T) {
	t.Parallel()
	hook := newReceiver(t)
	var flaky *flakyPublisher
	f := setup(t, options{cfg: func(c *jobs.Config) {
		flaky = &flakyPublisher{inner: c.Publisher, mode: "lose", times: 1}
		c.Publisher = flaky
	}})
	id := f.createBatch([]string{"x"}, map[string]any{"uris": []string{hook.srv.URL}})
	if j := f.settled(id); !j.TerminalEmitted {
		t.Fatalf("job %+v", j)
	}
	hook.next(t)
	f.close()
	if n := flaky.calls.Load(); n != 2 {
		t.Fatalf("%d publishes, want 2", n)
	}
	if n := len(hook.all); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
}

// An event that could not be published before the process stopped stays
// in the job's outbox and goes out when the next runner starts.
func TestOutboxDrainedOnStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hook := newReceiver(t)
	a := setup(t, options{dir: dir, cfg: func(c *jobs.Config) { c.Publisher = &flakyPublisher{inner: c.Publisher, mode: "fail"} }})
	id := a.createBatch([]string{"x"}, map[string]any{"uris": []string{hook.srv.URL}})
	waitFor(t, "the batch to finish", func() bool {
		j, err := a.store.GetJob(context.Background(), a.project, id)
		return err == nil && j.State == core.JobSucceeded && j.Outbox != nil
	})
	a.close()
	if n := len(hook.all); n != 0 {
		t.Fatalf("%d deliveries before the restart", n)
	}
	b := setup(t, options{dir: dir})
	if d := hook.next(t); d.event["type"] != core.EventBatchSucceeded || d.data()["id"] != "batches/"+id {
		t.Fatalf("delivery %s", d.body)
	}
	if j := b.settled(id); !j.TerminalEmitted {
		t.Fatalf("job %+v", j)
	}
}
