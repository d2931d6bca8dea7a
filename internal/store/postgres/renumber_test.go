package postgres

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestRedeliverInFlightConcurrent is storetest's RedeliverInFlight with
// two instances on one database completing at the same moment: a's
// attempts were in flight when every delivery was redelivered and
// claimed by b, and a (its leases lost) and b (holding them) complete
// them concurrently, in opposite orders. Each delivery must end with two
// attempts numbered 1 and 2 and an attempt_count of 2, whichever
// transaction waited for the other's rows. Successes of one owner take
// the lean statement, failures the general one.
func TestRedeliverInFlightConcurrent(t *testing.T) {
	t.Parallel()
	for _, fail := range []bool{false, true} {
		name := "successes"
		if fail {
			name = "failures"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			redeliverInFlightConcurrent(t, fail)
		})
	}
}

func redeliverInFlightConcurrent(t *testing.T, fail bool) {
	ctx := context.Background()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	a, b := open(t, url, schema), open(t, url, schema)
	p := storetest.NewProject()
	if err := a.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	w := storetest.NewWebhook(p.ID)
	if err := a.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	const n = 64
	var evs []core.NewEvent
	for range n {
		evs = append(evs, storetest.NewEvent(p.ID, core.EventBatchSucceeded, storetest.T0, w))
	}
	if _, err := a.PublishEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	claim := func(s *Store, owner string, now time.Time) []core.Claimed {
		t.Helper()
		cs, err := s.ClaimDeliveries(ctx, core.ClaimParams{Owner: owner, Now: now, Limit: 2 * n, Lease: time.Minute})
		if err != nil || len(cs) != n {
			t.Fatalf("claim by %s: %d, %v; want %d", owner, len(cs), err, n)
		}
		return cs
	}
	ca := claim(a, "a", storetest.T0.Add(time.Second))
	for _, c := range ca {
		if _, err := b.Redeliver(ctx, p.ID, c.ID, storetest.T0.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	cb := claim(b, "b", storetest.T0.Add(3*time.Second))
	done := func(cs []core.Claimed, owner string, at time.Time, reverse bool) []core.Completion {
		var out []core.Completion
		for _, c := range cs {
			comp := core.Completion{
				DeliveryID: c.ID, Owner: owner, ProjectID: c.ProjectID, Status: core.DeliverySucceeded,
				WebhookID: c.WebhookID, Success: true,
				Attempt: core.Attempt{DeliveryID: c.ID, Number: c.Attempts + 1, Time: at, URI: w.URI,
					StatusCode: 200, Latency: time.Millisecond},
			}
			if fail {
				comp.Status, comp.Success, comp.NextAttemptTime = core.DeliveryPending, false, at.Add(time.Minute)
				comp.Attempt.StatusCode, comp.Attempt.Error = 500, "http_status: HTTP 500"
			}
			out = append(out, comp)
		}
		if reverse {
			slices.Reverse(out)
		}
		return out
	}
	compA := done(ca, "a", storetest.T0.Add(4*time.Second), true)
	compB := done(cb, "b", storetest.T0.Add(5*time.Second), false)
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, job := range []struct {
		s  *Store
		cs []core.Completion
	}{{a, compA}, {b, compB}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = job.s.CompleteDeliveries(ctx, job.cs)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("CompleteDeliveries %d: %v", i, err)
		}
	}
	for _, c := range cb {
		d, as, err := a.GetDelivery(ctx, p.ID, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		var nums []int
		for _, at := range as {
			nums = append(nums, at.Number)
		}
		slices.Sort(nums)
		want := core.DeliverySucceeded
		if fail {
			want = core.DeliveryPending
		}
		if d.Status != want || d.Attempts != 2 || !slices.Equal(nums, []int{1, 2}) {
			t.Errorf("%s: %s, attempt_count %d, numbers %v; want %s, 2, [1 2]", c.ID, d.Status, d.Attempts, nums, want)
		}
	}
}
