package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// gate is a receiver handler that holds requests until opened.
type gate struct {
	open chan struct{}
	hold func(n int64) bool // whether the n-th request (from 1) waits for open
	n    atomic.Int64
}

func newGate(hold func(n int64) bool) *gate {
	return &gate{open: make(chan struct{}), hold: hold}
}

func (g *gate) handler(w http.ResponseWriter, r *http.Request) {
	if g.hold(g.n.Add(1)) {
		select {
		case <-g.open:
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// count returns how many requests carried event i, from the recorder.
func countEvent(rec *recorder, i string) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for _, r := range rec.reqs {
		var ev struct {
			Data struct {
				I string `json:"i"`
			} `json:"data"`
		}
		if json.Unmarshal(r.body, &ev) == nil && ev.Data.I == i {
			n++
		}
	}
	return n
}

func (e *Engine) holding() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.held)
}

// A delivery parked behind its destination's cap (here by the direct
// path, as `serve` runs) whose lease runs out while it waits is not sent
// by the engine holding it: another instance has taken it over and
// delivers it, once.
func TestParkedDeliveryPastItsLeaseIsNotSent(t *testing.T) {
	t.Parallel()
	const lease = 30 * time.Second
	b := setup(t, setupOpts{direct: true, perDest: 1, lease: lease, attemptTimeout: 2 * time.Second})
	g := newGate(func(n int64) bool { return n == 1 }) // the first attempt hangs
	rec := newRecorder(t, g.handler)
	b.webhook(rec.srv.URL)
	b.publish(`{"i":"1"}`)
	<-rec.got // e1's attempt hangs; e2 parks behind the cap of 1
	b.publish(`{"i":"2"}`)
	waitFor(t, "e2 parked", func() bool { return b.engine.holding() == 2 })

	// The first engine stalls past the lease; a second one takes over.
	b.clock.Advance(lease + time.Second)
	other := New(Config{Store: b.store, Cipher: b.box, Clock: b.clock, Owner: "other",
		Sender: NewSender(SenderConfig{Policy: core.AddressPolicy{Dev: true}, AttemptTimeout: 2 * time.Second})})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- other.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the other engine delivers e2", func() bool { return countEvent(rec, "2") == 1 })

	close(g.open) // e1's attempt ends; the first engine's slot frees up
	waitFor(t, "the first engine lets go", func() bool { return b.engine.holding() == 0 })
	waitFor(t, "the other engine is idle", func() bool { return other.holding() == 0 })
	if n := countEvent(rec, "2"); n != 1 {
		t.Fatalf("e2 was sent %d times; the stale parked copy must not be sent", n)
	}
}

// The direct path holds at most QueueBytes of payloads (each event's
// once) and bookkeeping; what does not fit goes to the store unleased
// and is delivered all the same.
func TestDirectPathBoundedByBytes(t *testing.T) {
	t.Parallel()
	const limit = 100 << 10
	b := setup(t, setupOpts{direct: true, workers: 1, perDest: 1, queueBytes: limit,
		// No attempt times out while held, and no lease runs short while
		// the fake clock moves on below (a second each 50 ms, for up to
		// waitLimit): the test is about memory, not about leases.
		attemptTimeout: time.Minute, lease: time.Hour})
	g := newGate(func(int64) bool { return true })
	rec := newRecorder(t, g.handler)
	var hooks []*core.Webhook
	for range 8 {
		w, _ := b.webhook(rec.srv.URL)
		hooks = append(hooks, w)
	}
	pad := strings.Repeat("x", 60<<10)
	const events = 4
	for i := range events {
		b.publish(`{"i":"` + itoa(i) + `","pad":"` + pad + `"}`)
		b.engine.mu.Lock()
		held, bytes := b.engine.direct, b.engine.bytes
		b.engine.mu.Unlock()
		if bytes > limit {
			t.Fatalf("after event %d the direct path holds %d deliveries, %d bytes; the bound is %d", i, held, bytes, limit)
		}
	}
	close(g.open)
	// The fake clock moves on by the safety poll every 50 ms, as the
	// real one would, so the claim loop does not depend on a wake-up.
	last := time.Now()
	defer func() {
		if t.Failed() {
			e := b.engine
			e.mu.Lock()
			t.Logf("running %d claimed %d direct %d reserved %d ready %v excluded %v", e.running, e.claimed, e.direct, e.reserved, e.ready, e.excluded)
			for k, d := range e.dests {
				t.Logf("dest %s running %d parked %d ready %v", k[:6], d.running, len(d.parked), d.ready)
			}
			e.mu.Unlock()
			for _, w := range hooks {
				for _, d := range b.deliveries(w.ID) {
					t.Logf("%s %s attempts %d next %v owner %q", w.ID[:6], d.Status, d.Attempts, d.NextAttemptTime.Sub(b.clock.Now()), d.LeaseOwner)
				}
			}
		}
	}()
	waitFor(t, "every delivery", func() bool {
		if time.Since(last) > 50*time.Millisecond {
			b.clock.Advance(time.Second)
			last = time.Now()
		}
		for _, w := range hooks {
			ds := b.deliveries(w.ID)
			if len(ds) != events {
				return false
			}
			for _, d := range ds {
				if d.Status != core.DeliverySucceeded {
					return false
				}
			}
		}
		return true
	})
	b.engine.mu.Lock()
	defer b.engine.mu.Unlock()
	if b.engine.bytes != 0 || len(b.engine.payloads) != 0 {
		t.Fatalf("idle engine still counts %d bytes of %d events", b.engine.bytes, len(b.engine.payloads))
	}
}
