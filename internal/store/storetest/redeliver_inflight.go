package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// testRedeliverInFlight is a :redeliver of a delivery whose attempt is in
// flight: the redelivery drops the lease of the engine sending it (a),
// another engine (b) claims it and sends too, and both attempts are
// recorded, in either order of completion. Every attempt of a delivery
// must then have a number of its own, and attempt_count must be the
// number of attempts recorded (the engine numbers an attempt from the
// count it claimed, which was the same for both). One engine alone does
// the same when it claims the redelivered delivery again while its first
// attempt is still in flight (a single SQLite instance): both claims
// then have the same owner.
func testRedeliverInFlight(t *testing.T, b *bundle) {
	w := b.webhook("")
	at := T0
	step := func() time.Time {
		at = at.Add(time.Second)
		return at
	}
	claim := func(owner, id string) core.Claimed {
		t.Helper()
		for _, c := range b.claim(owner, step(), 100) {
			if c.ID == id {
				return c
			}
		}
		t.Fatalf("%s: %s not claimable", owner, id)
		return core.Claimed{}
	}
	check := func(name, id string) {
		t.Helper()
		d, as := b.delivery(id)
		var nums []int
		for _, a := range as {
			nums = append(nums, a.Number)
		}
		sorted := slices.Clone(nums)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != len(nums) {
			t.Errorf("%s: attempt numbers %v, want distinct", name, nums)
		}
		if d.Attempts != len(as) {
			t.Errorf("%s: attempt_count %d over %d attempts %v", name, d.Attempts, len(as), nums)
		}
	}
	for _, tc := range []struct {
		name   string
		aFirst bool
		second string // the owner of the redelivery's claim
	}{
		{"in flight's completion first", true, "b"},
		{"redelivery's completion first", false, "b"},
		{"one engine, in flight's completion first", true, "a"},
		{"one engine, redelivery's completion first", false, "a"},
	} {
		name, aFirst := tc.name, tc.aFirst
		t.Run(name, func(t *testing.T) {
			id := b.events(1, step(), w)[0].ID
			// One failed attempt, then a retry in flight on a.
			c0 := claim("a", id)
			b.complete(failed(c0, "a", step(), core.DeliveryPending, at))
			ca := claim("a", id)
			if _, err := b.s.Redeliver(b.ctx, b.p.ID, id, step()); err != nil {
				t.Fatalf("Redeliver: %v", err)
			}
			cb := claim(tc.second, id)
			if ca.Attempts != cb.Attempts {
				t.Fatalf("claimed with %d and %d attempts", ca.Attempts, cb.Attempts)
			}
			fa := failed(ca, "a", step(), core.DeliveryPending, at.Add(time.Minute))
			sb := succeeded(cb, tc.second, step())
			if aFirst {
				b.complete(fa)
				b.complete(sb)
			} else {
				b.complete(sb)
				b.complete(fa)
			}
			check(name, id)
		})
	}
}
