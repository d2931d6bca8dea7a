package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// testDeferredConcurrent publishes leased groups while two engines'
// worth of goroutines complete them as they come, a reader lists and
// reads them, and a claimer asks for due deliveries before any lease
// expires: the claims get nothing, and every delivery ends as its
// completion says, its attempt recorded once; none is due afterwards but
// the retries.
func testDeferredConcurrent(t *testing.T, b *bundle) {
	hooks := []*core.Webhook{b.webhook(""), b.webhook("")}
	until := T0.Add(time.Minute)
	var kinds []completionKind
	for _, k := range heldKinds() {
		if k.status == core.DeliverySucceeded || k.status == core.DeliveryPending {
			kinds = append(kinds, k)
		}
	}
	hook := func(d core.Delivery) *core.Webhook {
		for _, w := range hooks {
			if w.ID == d.WebhookID {
				return w
			}
		}
		return nil
	}

	const rounds = 20
	work := make(chan []core.Delivery)
	done := make(chan struct{})
	errs := make(chan error, 100)
	var mu sync.Mutex
	var published []core.Delivery
	kindOf := map[string]completionKind{}
	var wg, workers sync.WaitGroup

	wg.Go(func() { // the publisher
		defer close(work)
		for r := range rounds {
			var evs []core.NewEvent
			for range 3 {
				evs = append(evs, leasedEvent(b.p.ID, core.EventBatchSucceeded, T0, until, hooks...))
			}
			if _, err := b.s.PublishEvents(b.ctx, evs); err != nil {
				errs <- fmt.Errorf("round %d: PublishEvents: %w", r, err)
				return
			}
			ds := deliveriesOf(evs...)
			mu.Lock()
			published = append(published, ds...)
			for i, d := range ds {
				kindOf[d.ID] = kinds[(r+i)%len(kinds)]
			}
			mu.Unlock()
			work <- ds[:3]
			work <- ds[3:]
		}
	})
	for range 2 { // the engines
		workers.Go(func() {
			for ds := range work {
				var cs []core.Completion
				mu.Lock()
				for _, d := range ds {
					cs = append(cs, kindOf[d.ID].comps(d, hook(d), kindAt)...)
				}
				mu.Unlock()
				if err := b.s.CompleteDeliveries(b.ctx, cs); err != nil {
					errs <- fmt.Errorf("CompleteDeliveries: %w", err)
				}
			}
		})
	}
	wg.Go(func() { // the reader and the claimer
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			mu.Lock()
			var id string
			if len(published) > 0 {
				id = published[i%len(published)].ID
			}
			mu.Unlock()
			if id != "" {
				if _, _, err := b.s.GetDelivery(b.ctx, b.p.ID, id); err != nil {
					errs <- fmt.Errorf("GetDelivery: %w", err)
					return
				}
			}
			if _, err := b.s.ListDeliveries(b.ctx, core.ListDeliveriesParams{ProjectID: b.p.ID, Limit: 20}); err != nil {
				errs <- fmt.Errorf("ListDeliveries: %w", err)
				return
			}
			cs, err := b.s.ClaimDeliveries(b.ctx, core.ClaimParams{Owner: "other", Now: T0.Add(30 * time.Second),
				Limit: 10, Lease: time.Minute})
			if err != nil || len(cs) != 0 {
				errs <- fmt.Errorf("a claim before any lease expired: %d, %v", len(cs), err)
				return
			}
		}
	})
	workers.Wait()
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(published) != rounds*6 {
		t.Fatalf("published %d deliveries, want %d", len(published), rounds*6)
	}
	for _, d := range published {
		got, as := b.delivery(d.ID)
		wantOutcome(t, kindOf[d.ID], d, hook(d), got, as)
	}
	if got := b.claim("later", until, 1000); len(got) != 0 {
		t.Errorf("claimed %d at the lease expiry; every delivery was completed", len(got))
	}
}

// deliveriesOf returns the deliveries of the events, in order.
func deliveriesOf(evs ...core.NewEvent) []core.Delivery {
	var ds []core.Delivery
	for _, ne := range evs {
		ds = append(ds, ne.Deliveries...)
	}
	return ds
}
