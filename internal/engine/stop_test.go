package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// accounting returns the engine's counts of held work.
func (e *Engine) accounting() (running, claimed, direct, reserved int, bytes int64, held, dests int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running, e.claimed, e.direct, e.reserved, e.bytes, len(e.held), len(e.dests)
}

func wantIdle(t *testing.T, e *Engine) {
	t.Helper()
	r, c, d, res, b, h, ds := e.accounting()
	if r != 0 || c != 0 || d != 0 || res != 0 || b != 0 || h != 0 || ds != 0 {
		t.Fatalf("idle engine: running %d claimed %d direct %d reserved %d bytes %d held %d dests %d; want all 0", r, c, d, res, b, h, ds)
	}
}

// The direct path as `serve` runs it: a burst to a destination capped at
// 2 is reserved, dispatched, parked and started in turn, every delivery
// succeeds once, and the reservation and slot counts return to zero.
func TestDirectPathAccounting(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{direct: true, perDest: 2, workers: 4})
	rec := newRecorder(t, nil)
	w, _ := b.webhook(rec.srv.URL)
	const n = 40
	for i := range n {
		b.publish(`{"i":"` + itoa(i) + `"}`)
	}
	waitFor(t, "every delivery", func() bool {
		ds := b.deliveries(w.ID)
		if len(ds) != n {
			return false
		}
		for _, d := range ds {
			if d.Status != core.DeliverySucceeded {
				return false
			}
		}
		return true
	})
	if got := rec.count(); got != n {
		t.Fatalf("the receiver got %d requests for %d deliveries", got, n)
	}
	waitFor(t, "slots freed", func() bool { return b.engine.holding() == 0 })
	wantIdle(t, b.engine)
}

// Shutdown gives parked deliveries back at once, lets the attempt in
// flight run for the soft stop, then ends it: it is recorded as an
// attempt and due again at once (the cut says nothing about the
// destination); the parked delivery was never tried.
func TestSoftStopThenHardStop(t *testing.T) {
	t.Parallel()
	const soft = 300 * time.Millisecond
	b := setup(t, setupOpts{direct: true, perDest: 1, attemptTimeout: time.Minute, softStop: soft})
	g := newGate(func(int64) bool { return true })
	rec := newRecorder(t, g.handler)
	w, _ := b.webhook(rec.srv.URL)
	e1 := b.publish(`{"i":"1"}`)
	<-rec.got
	e2 := b.publish(`{"i":"2"}`)
	waitFor(t, "e2 parked", func() bool { return b.engine.holding() == 2 })

	start := time.Now()
	b.stop()
	if took := time.Since(start); took < soft {
		t.Errorf("Run returned after %v, before the soft stop of %v", took, soft)
	}
	defer close(g.open)
	for _, d := range b.deliveries(w.ID) {
		switch d.EventID {
		case e1.ID:
			if d.Status != core.DeliveryPending || d.Attempts != 1 || d.LeaseOwner != "" || d.NextAttemptTime.After(b.clock.Now()) {
				t.Errorf("the attempt cut short: %s, %d attempts, owner %q, next %v; want pending, 1 attempt, unleased, due now",
					d.Status, d.Attempts, d.LeaseOwner, d.NextAttemptTime)
			}
			// Recorded truthfully: longhook ended the attempt, the
			// receiver did not close the connection (fasthttp's message
			// for a closed connection said so, and the console repeated it).
			if !strings.Contains(d.LastError, "aborted") || strings.Contains(d.LastError, "server closed") {
				t.Errorf("the attempt cut short by the hard stop is recorded as %q; want it to say longhook aborted it", d.LastError)
			}
		case e2.ID:
			if d.Status != core.DeliveryPending || d.Attempts != 0 || d.LeaseOwner != "" || d.NextAttemptTime.After(b.clock.Now()) {
				t.Errorf("the parked delivery: %s, %d attempts, owner %q, next %v; want pending, untried, unleased, due",
					d.Status, d.Attempts, d.LeaseOwner, d.NextAttemptTime)
			}
		}
	}
	if rec.count() != 1 {
		t.Errorf("the receiver got %d requests; want only e1's", rec.count())
	}
	wantIdle(t, b.engine)
}
