package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// RunConcurrentReplay races completions against replays of the same
// deliveries: in each round store a claims every delivery and completes
// it successfully while store b (another instance on the same database,
// or a itself) redelivers or recovers them all at the same time. Whatever
// the interleaving — the completion before the replay (whose attempt a
// driver keeping it in the delivery row must move to attempts) or after
// (its lease lost, its attempt recorded anyway) — every round's attempt
// must be recorded exactly once, and every delivery must end pending.
func RunConcurrentReplay(t *testing.T, a, b core.Store, deliveries, rounds int) {
	t.Helper()
	ctx := t.Context()
	p := NewProject()
	w := NewWebhook(p.ID)
	if err := a.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	evs := make([]core.NewEvent, deliveries)
	for i := range evs {
		evs[i] = NewEvent(p.ID, core.EventBatchSucceeded, T0, w)
	}
	if _, err := a.PublishEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	at := T0.Add(time.Hour)
	for round := 1; round <= rounds; round++ {
		at = at.Add(time.Hour)
		owner := fmt.Sprintf("a%d", round)
		cs, err := a.ClaimDeliveries(ctx, core.ClaimParams{Owner: owner, Now: at, Limit: 2 * deliveries, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != deliveries {
			t.Fatalf("round %d: claimed %d deliveries, want %d", round, len(cs), deliveries)
		}
		var wg sync.WaitGroup
		errs := make(chan error, deliveries+8)
		// Completions in small batches, from a few goroutines.
		const batch = 4
		for lo := 0; lo < len(cs); lo += batch {
			part := cs[lo:min(lo+batch, len(cs))]
			wg.Add(1)
			go func() {
				defer wg.Done()
				var done []core.Completion
				for _, c := range part {
					s := succeeded(c, owner, at.Add(time.Second))
					s.Attempt.Number = round
					done = append(done, s)
				}
				if err := a.CompleteDeliveries(ctx, done); err != nil {
					errs <- fmt.Errorf("complete: %w", err)
				}
			}()
		}
		// The replays at the same time, from the other store: odd rounds
		// redeliver one by one, even rounds recover the webhook's finished
		// deliveries (some may finish only after the recovery: they are
		// redelivered one by one after it).
		replayAt := at.Add(2 * time.Second)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if round%2 == 0 {
				if _, _, err := b.RecoverDeliveries(ctx, core.RecoverParams{ProjectID: p.ID, WebhookID: w.ID,
					Since: T0, Limit: 1000, Now: replayAt}); err != nil {
					errs <- fmt.Errorf("recover: %w", err)
				}
				return
			}
			for _, c := range cs {
				if _, err := b.Redeliver(ctx, p.ID, c.ID, replayAt); err != nil {
					errs <- fmt.Errorf("redeliver: %w", err)
				}
			}
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		// Whatever finished after the replay is replayed now, so that
		// every delivery is pending for the next round.
		for _, c := range cs {
			d, _, err := b.GetDelivery(ctx, p.ID, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != core.DeliveryPending {
				if _, err := b.Redeliver(ctx, p.ID, c.ID, replayAt); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, ne := range evs {
		id := ne.Deliveries[0].ID
		for _, s := range []core.Store{a, b} {
			d, as, err := s.GetDelivery(ctx, p.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != core.DeliveryPending {
				t.Errorf("%s: status %s, want pending", id, d.Status)
			}
			if len(as) != rounds {
				t.Errorf("%s: %d attempts, want %d: %+v", id, len(as), rounds, as)
				continue
			}
			for i, at := range as {
				if at.Number != i+1 {
					t.Errorf("%s: attempt %d has number %d, want %d", id, i, at.Number, i+1)
				}
			}
		}
	}
}
