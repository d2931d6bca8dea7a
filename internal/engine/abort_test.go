package engine

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// An attempt that longhook itself cuts short at hard stop (it outlasted
// the soft stop) says nothing about the destination: the delivery stays
// pending and due, and the next engine delivers it. It used to be an
// ordinary failure, so the attempts that get no retry after a failure
// ended for good, as failed, with an error that said "it is retried": a
// manual :redeliver of a finished delivery, and the last attempt at the
// 24 h horizon; and a retry cut mid-schedule waited the schedule's next
// step (30 s, or hours later on) before the destination was tried again.
func TestAttemptCutByHardStopIsNotTheLast(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// first answers the delivery's first attempt; next brings on the
		// attempt that the hard stop cuts (the one with no retry after it).
		first int
		next  func(b *bundle, id string, rec *recorder)
	}{
		{name: "manual redelivery", first: http.StatusNoContent, next: func(b *bundle, id string, rec *recorder) {
			if _, err := b.store.Redeliver(context.Background(), b.project, id, b.clock.Now()); err != nil {
				b.t.Fatal(err)
			}
		}},
		{name: "last attempt at the horizon", first: http.StatusInternalServerError, next: func(b *bundle, id string, rec *recorder) {
			// Move the clock past the 24 h horizon: the retry due after
			// attempt 1 is then the last one. Nudged on until it starts
			// (the engine may have armed its timer as the clock moved).
			b.clock.Set(b.clock.Now().Add(25 * time.Hour))
			deadline := time.Now().Add(waitLimit)
			for i := 1; rec.count() < 2; i++ {
				if i%25 == 0 {
					b.clock.Advance(time.Second)
				}
				if time.Now().After(deadline) {
					b.t.Fatal("the last attempt never came")
				}
				time.Sleep(time.Millisecond)
			}
		}},
	}
	// The retry an hour after the first attempt is cut too: it has
	// retries after it, but the next is due at once, not a schedule step
	// later (the destination was never heard from).
	cases = append(cases, struct {
		name  string
		first int
		next  func(b *bundle, id string, rec *recorder)
	}{name: "a retry mid-schedule", first: http.StatusInternalServerError, next: func(b *bundle, id string, rec *recorder) {
		b.clock.Set(b.clock.Now().Add(time.Hour))
		deadline := time.Now().Add(waitLimit)
		for i := 1; rec.count() < 2; i++ {
			if i%25 == 0 {
				b.clock.Advance(time.Second)
			}
			if time.Now().After(deadline) {
				b.t.Fatal("the retry never came")
			}
			time.Sleep(time.Millisecond)
		}
	}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, setupOpts{attemptTimeout: time.Minute, softStop: 200 * time.Millisecond})
			// The first request is answered; the second is held until its
			// connection closes (the hard stop) or the test ends.
			g := newGate(func(n int64) bool { return n == 2 })
			defer close(g.open)
			rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
				if g.n.Load() == 0 && tc.first != http.StatusNoContent {
					g.n.Add(1)
					w.WriteHeader(tc.first)
					return
				}
				g.handler(w, r)
			})
			w, _ := b.webhook(rec.srv.URL + "/hook")
			b.publish(`{"id":"batches/cut"}`)
			id := b.deliveries(w.ID)[0].ID
			b.attemptsOf(id, 1)
			tc.next(b, id, rec)
			waitFor(t, "the second attempt in flight", func() bool { return rec.count() == 2 })

			b.stop() // soft stop, then the attempt in flight is cut
			d, as, err := b.store.GetDelivery(context.Background(), b.project, id)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != core.DeliveryPending || d.NextAttemptTime.After(b.clock.Now()) || d.LeaseOwner != "" {
				t.Fatalf("after the hard stop cut its attempt: %s, next attempt %v (now %v), owner %q; want pending, due, unleased",
					d.Status, d.NextAttemptTime, b.clock.Now(), d.LeaseOwner)
			}
			if len(as) != 2 || !strings.Contains(as[1].Error, "aborted") {
				t.Fatalf("attempts %+v; want the cut one recorded as aborted", as)
			}

			// The next start delivers it.
			b2 := b.restart()
			waitFor(t, "the delivery made after the restart", func() bool {
				d, _, err = b2.store.GetDelivery(context.Background(), b2.project, id)
				if err != nil {
					t.Fatal(err)
				}
				return d.Status != core.DeliveryPending
			})
			if d.Status != core.DeliverySucceeded || d.Attempts != 3 {
				t.Fatalf("after the restart: %s after %d attempts; want succeeded at the third", d.Status, d.Attempts)
			}
		})
	}
}
