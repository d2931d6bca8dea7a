package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// testRateLimitRoundTrip: a webhook's rate limit is stored, updated and
// cleared.
func testRateLimitRoundTrip(t *testing.T, b *bundle) {
	w := NewWebhook(b.p.ID)
	w.RateLimit = &core.RateLimit{PerSecond: 2.5, Burst: 4}
	if err := b.s.CreateWebhook(b.ctx, w); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "GetWebhook", b.getWebhook(w.ID), w)
	for _, l := range []*core.RateLimit{{PerSecond: 100}, nil} {
		got, err := b.s.UpdateWebhook(b.ctx, b.p.ID, w.ID, func(x *core.Webhook) error { x.RateLimit = l; return nil })
		if err != nil {
			t.Fatal(err)
		}
		want := *w
		want.RateLimit = l
		wantEqual(t, "UpdateWebhook", got, &want)
		wantEqual(t, "GetWebhook after update", b.getWebhook(w.ID), &want)
	}
}

// testTakeRate: the bucket grants its burst, then one token per interval,
// never more across concurrent takers, and buckets are independent.
func testTakeRate(t *testing.T, b *bundle) {
	l := core.RateLimit{PerSecond: 10, Burst: 3}
	dest := "rate-" + core.NewID()
	g, next, _, err := b.s.TakeRate(b.ctx, dest, l, 5, T0)
	if err != nil || g != 3 || !next.Equal(T0.Add(100*time.Millisecond)) {
		t.Fatalf("first take = %d, %v, %v; want 3 with the next at +100ms", g, next, err)
	}
	if g, _, _, _ := b.s.TakeRate(b.ctx, dest, l, 5, T0.Add(50*time.Millisecond)); g != 0 {
		t.Fatalf("granted %d before the next token", g)
	}
	if g, _, _, _ := b.s.TakeRate(b.ctx, "rate-"+core.NewID(), l, 1, T0); g != 1 {
		t.Fatalf("another destination got %d, want its own bucket", g)
	}
	// Eight concurrent takers two seconds later share 3 tokens (the
	// bucket refilled to its burst), whatever their interleaving.
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			g, _, _, err := b.s.TakeRate(b.ctx, dest, l, 2, T0.Add(2*time.Second))
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += g
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != 3 {
		t.Fatalf("concurrent takers got %d tokens, want 3", total)
	}
}

// testDeferWithoutAttempt: a claimed delivery completed as pending with
// no attempt (the engine's rate-limit deferral) keeps its attempt count
// and is due again at the given time.
func testDeferWithoutAttempt(t *testing.T, b *bundle) {
	w := b.webhook("")
	b.events(1, T0, w)
	cs := b.claim("e", T0.Add(time.Second), 10)
	if len(cs) != 1 {
		t.Fatalf("claimed %d", len(cs))
	}
	at := T0.Add(time.Minute)
	b.complete(core.Completion{DeliveryID: cs[0].ID, Owner: "e", Status: core.DeliveryPending, NextAttemptTime: at,
		Attempt: core.Attempt{Time: T0.Add(time.Second)}})
	d, as := b.delivery(cs[0].ID)
	if d.Status != core.DeliveryPending || d.Attempts != 0 || len(as) != 0 || !d.NextAttemptTime.Equal(at) {
		t.Fatalf("deferred: status %s attempts %d rows %d next %v; want pending, none, %v", d.Status, d.Attempts, len(as), d.NextAttemptTime, at)
	}
	if got := b.claim("e", at.Add(-time.Millisecond), 10); len(got) != 0 {
		t.Fatalf("claimed %d before the deferral ends", len(got))
	}
	if got := b.claim("e", at, 10); len(got) != 1 || got[0].Attempts != 0 {
		t.Fatalf("claimed %v at the deferral's end, want it with no attempts", got)
	}
}
