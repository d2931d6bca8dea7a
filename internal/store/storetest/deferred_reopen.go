package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// deferredWorld is the state the reopen and shared cases follow across
// stores: what was published, and how each delivery was completed.
type deferredWorld struct {
	t     *testing.T
	ctx   context.Context
	p     core.Project
	hooks []*core.Webhook
	evs   []core.NewEvent
	pub   map[string]core.Delivery       // as published
	kind  map[string]completionKind      // completed straight after the publish
	hook  map[string]*core.Webhook       // by delivery id
	owner map[string]string              // claimed after the lease expired by
	final map[string]core.DeliveryStatus // completed by the new holder
}

func newDeferredWorld(t *testing.T, s core.Store) *deferredWorld {
	t.Helper()
	w := &deferredWorld{t: t, ctx: t.Context(), p: NewProject(), pub: map[string]core.Delivery{},
		kind: map[string]completionKind{}, hook: map[string]*core.Webhook{}, owner: map[string]string{},
		final: map[string]core.DeliveryStatus{}}
	if err := s.CreateProject(w.ctx, w.p); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	for range 2 {
		h := NewWebhook(w.p.ID)
		if err := s.CreateWebhook(w.ctx, h); err != nil {
			t.Fatalf("CreateWebhook: %v", err)
		}
		w.hooks = append(w.hooks, h)
	}
	return w
}

// publish publishes n events, each with a delivery to hooks of w leased by
// direct until until, in one call, and returns their deliveries.
func (w *deferredWorld) publish(s core.Store, n, hooks int, until time.Time) []core.Delivery {
	w.t.Helper()
	var evs []core.NewEvent
	for range n {
		evs = append(evs, leasedEvent(w.p.ID, core.EventBatchSucceeded, T0, until, w.hooks[:hooks]...))
	}
	if _, err := s.PublishEvents(w.ctx, evs); err != nil {
		w.t.Fatalf("PublishEvents: %v", err)
	}
	w.evs = append(w.evs, evs...)
	var ds []core.Delivery
	for _, ne := range evs {
		for _, d := range ne.Deliveries {
			w.pub[d.ID] = d
			for _, h := range w.hooks {
				if h.ID == d.WebhookID {
					w.hook[d.ID] = h
				}
			}
			ds = append(ds, d)
		}
	}
	return ds
}

// heldKinds are the single kinds whose completion holds the lease: the
// delivery is no longer its first owner's afterwards.
func heldKinds() []completionKind {
	var out []completionKind
	for _, k := range singleKinds() {
		if k.owner == "" {
			out = append(out, k)
		}
	}
	return out
}

// complete completes ds with the held kinds in turn (from the i-th), in
// one call.
func (w *deferredWorld) complete(s core.Store, i int, ds ...core.Delivery) {
	w.t.Helper()
	kinds := heldKinds()
	var cs []core.Completion
	for j, d := range ds {
		k := kinds[(i+j)%len(kinds)]
		w.kind[d.ID] = k
		cs = append(cs, k.comps(d, w.hook[d.ID], kindAt)...)
	}
	if err := s.CompleteDeliveries(w.ctx, cs); err != nil {
		w.t.Fatalf("CompleteDeliveries: %v", err)
	}
}

// claimAll claims for owner at now in claims of 5 until none is left and
// returns the ids claimed, sorted, checking that none comes twice.
func (w *deferredWorld) claimAll(s core.Store, owner string, now time.Time) []string {
	w.t.Helper()
	var got []string
	for range 100 {
		cs, err := s.ClaimDeliveries(w.ctx, core.ClaimParams{Owner: owner, Now: now, Limit: 5, Lease: time.Minute})
		if err != nil {
			w.t.Fatalf("ClaimDeliveries: %v", err)
		}
		if len(cs) == 0 {
			break
		}
		for _, c := range cs {
			if slices.Contains(got, c.ID) {
				w.t.Errorf("claim by %s at %v: %s twice", owner, now, c.ID)
			}
			if w.owner[c.ID] != "" {
				w.t.Errorf("claim by %s at %v: %s, claimed before by %s", owner, now, c.ID, w.owner[c.ID])
			}
			w.owner[c.ID] = owner
			got = append(got, c.ID)
		}
	}
	return sorted(got)
}

// held returns the ids of ds not completed, sorted.
func (w *deferredWorld) held(ds []core.Delivery) []string {
	var out []string
	for _, d := range ds {
		if _, done := w.kind[d.ID]; !done {
			out = append(out, d.ID)
		}
	}
	return sorted(out)
}

// finish completes every claimed delivery with a success by its new
// holder at at.
func (w *deferredWorld) finish(s core.Store, at time.Time) {
	w.t.Helper()
	var cs []core.Completion
	for id, owner := range w.owner {
		if _, ok := w.final[id]; ok {
			continue
		}
		cs = append(cs, succeeded(asClaimed(w.pub[id]), owner, at))
		w.final[id] = core.DeliverySucceeded
	}
	if err := s.CompleteDeliveries(w.ctx, cs); err != nil {
		w.t.Fatalf("CompleteDeliveries: %v", err)
	}
}

// check reads every delivery published through s and checks it: as its
// completion left it, claimed (pending, its new owner's), completed by
// its new owner, or as published; ListDeliveries lists each once, and
// every event is there.
func (w *deferredWorld) check(what string, s core.Store) {
	w.t.Helper()
	t := w.t
	for id, pub := range w.pub {
		d, as, err := s.GetDelivery(w.ctx, w.p.ID, id)
		if err != nil {
			t.Errorf("%s: GetDelivery(%s): %v", what, id, err)
			continue
		}
		k, completed := w.kind[id]
		switch {
		case completed:
			wantOutcome(t, k, pub, w.hook[id], d, as)
		case w.final[id] != "":
			if d.Status != w.final[id] || d.Attempts != 1 || len(as) != 1 || d.LeaseOwner != "" {
				t.Errorf("%s: %s completed by %s: %s, %d attempts, %d listed, owner %q", what, id, w.owner[id],
					d.Status, d.Attempts, len(as), d.LeaseOwner)
			}
		case w.owner[id] != "":
			if d.Status != core.DeliveryPending || d.LeaseOwner != w.owner[id] || d.Attempts != 0 || len(as) != 0 {
				t.Errorf("%s: %s claimed by %s: %s, owner %q, %d attempts, %d listed", what, id, w.owner[id],
					d.Status, d.LeaseOwner, d.Attempts, len(as))
			}
		default:
			wantEqual(t, what+": held "+id, *d, pub)
			if len(as) != 0 {
				t.Errorf("%s: held %s has %d attempts", what, id, len(as))
			}
		}
	}
	ds, err := s.ListDeliveries(w.ctx, core.ListDeliveriesParams{ProjectID: w.p.ID, Limit: 1000})
	if err != nil {
		t.Fatalf("%s: ListDeliveries: %v", what, err)
	}
	seen := map[string]bool{}
	for _, d := range ds {
		if seen[d.ID] || w.pub[d.ID].ID == "" {
			t.Errorf("%s: ListDeliveries: %s listed twice or never published", what, d.ID)
		}
		seen[d.ID] = true
	}
	if len(seen) != len(w.pub) {
		t.Errorf("%s: ListDeliveries listed %d deliveries, want %d", what, len(seen), len(w.pub))
	}
	for _, ne := range w.evs {
		if _, err := s.GetEvent(w.ctx, w.p.ID, ne.Event.ID); err != nil {
			t.Errorf("%s: GetEvent(%s): %v", what, ne.Event.ID, err)
		}
	}
}

// RunDeferredReopen checks that deliveries published leased survive the
// store's closing, whether or not they were completed: open must return a
// store on the same database at each call (SQLite: the same file;
// PostgreSQL: the same schema); RunDeferredReopen closes the stores it
// opens. A store closed between a leased publish and the completions (as
// a process stopped, or killed, then restarted) must lose nothing and
// double nothing: the completed deliveries keep their final state, the
// others are pending with their lease, which expires as usual (another
// owner's claim gets each once), and the first owner's completions made
// before the close stand.
func RunDeferredReopen(t *testing.T, open func(t *testing.T) core.Store) {
	t.Helper()
	closeStore := func(s core.Store) {
		t.Helper()
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	s := open(t)
	w := newDeferredWorld(t, s)
	until := T0.Add(time.Minute)
	g1 := w.publish(s, 6, 2, until)
	w.complete(s, 0, g1[:4]...)
	g2 := w.publish(s, 3, 1, until)
	g3 := w.publish(s, 2, 2, until)
	w.complete(s, 4, g3...)
	closeStore(s)

	// Reopened, read first: as before the close.
	s = open(t)
	w.check("reopened", s)
	if got := w.claimAll(s, "other", until.Add(-time.Microsecond)); len(got) != 0 {
		t.Errorf("reopened: claimed %v before the lease expired", got)
	}
	wantEqual(t, "reopened: claimed at the lease expiry", w.claimAll(s, "other", until),
		sorted(append(w.held(g1), w.held(g2)...)))
	w.check("reopened, claimed", s)

	// Published, some completed, closed: reopened, a claim first.
	until4 := T0.Add(90 * time.Second) // before other's leases expire
	g4 := w.publish(s, 4, 2, until4)
	w.complete(s, 2, g4[1], g4[6])
	closeStore(s)
	s = open(t)
	defer closeStore(s)
	if got := w.claimAll(s, "third", until4.Add(-time.Microsecond)); len(got) != 0 {
		t.Errorf("reopened twice: claimed %v before the lease expired", got)
	}
	wantEqual(t, "reopened twice: claimed at the lease expiry", w.claimAll(s, "third", until4), w.held(g4))
	w.check("reopened twice", s)
	w.finish(s, until4.Add(time.Second))
	w.check("reopened twice, completed", s)
}

// RunDeferredShared checks deliveries published leased through store a as
// another store b on the same database sees them (drivers shared across
// processes only; it skips others): b lists them pending with their
// lease, a completes them, b reads the final state; a's completions racing
// b's reads lose nothing; b claims the ones a never completes once their
// lease expires. RunDeferredShared does not close a or b.
func RunDeferredShared(t *testing.T, a, b core.Store) {
	t.Helper()
	if !a.Capabilities().SharedAcrossProcesses {
		t.Skip("the driver is not shared across processes")
	}
	w := newDeferredWorld(t, a)
	until := T0.Add(time.Minute)

	// b reads first, then a completes.
	g1 := w.publish(a, 5, 2, until)
	w.check("b, after a's publish", b)
	w.complete(a, 0, g1...)
	w.check("b, after a's completions", b)
	w.check("a, after its completions", a)

	// a completes half straight after the publish, b reads, a completes
	// the rest.
	g2 := w.publish(a, 5, 2, until)
	w.complete(a, 3, g2[:5]...)
	w.check("b, after half of a's completions", b)
	w.complete(a, 8, g2[5:]...)
	w.check("b, after all of a's completions", b)

	// a's completions in batches from a few goroutines while b reads.
	success := heldKinds()[0]
	for round := range 5 {
		g := w.publish(a, 8, 2, until)
		var wg sync.WaitGroup
		errs := make(chan error, len(g))
		for lo := 0; lo < len(g); lo += 4 {
			part := g[lo:min(lo+4, len(g))]
			wg.Go(func() {
				var cs []core.Completion
				for _, d := range part {
					cs = append(cs, success.comps(d, w.hook[d.ID], kindAt)...)
				}
				if err := a.CompleteDeliveries(w.ctx, cs); err != nil {
					errs <- fmt.Errorf("round %d: CompleteDeliveries: %w", round, err)
				}
			})
		}
		wg.Go(func() {
			for _, d := range g {
				if _, _, err := b.GetDelivery(w.ctx, w.p.ID, d.ID); err != nil {
					errs <- fmt.Errorf("round %d: b: GetDelivery: %w", round, err)
				}
			}
		})
		wg.Go(func() {
			if _, err := b.ListDeliveries(w.ctx, core.ListDeliveriesParams{ProjectID: w.p.ID, Limit: 10}); err != nil {
				errs <- fmt.Errorf("round %d: b: ListDeliveries: %w", round, err)
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for _, d := range g {
			w.kind[d.ID] = success
		}
	}
	w.check("b, after racing completions", b)

	// b claims what a never completes, once its lease expired.
	g := w.publish(a, 4, 2, until)
	w.complete(a, 5, g[:3]...)
	if got := w.claimAll(b, "b", until.Add(-time.Microsecond)); len(got) != 0 {
		t.Errorf("b claimed %v before a's lease expired", got)
	}
	wantEqual(t, "b: claimed at a's lease expiry", w.claimAll(b, "b", until), w.held(g))
	w.finish(b, until.Add(time.Second))
	w.check("a, after b's completions", a)
	w.check("b, after its completions", b)
}
