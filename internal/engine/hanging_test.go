package engine

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// hangingReceiver never answers: each request waits until the engine
// gives up on it (or the test ends).
func hangingReceiver(t *testing.T) *recorder {
	done := make(chan struct{})
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})
	t.Cleanup(func() { close(done) }) // runs before the server's Close
	return rec
}

// A destination that has not answered yet gets one attempt at a time, so
// one that hangs holds one worker slot, not its whole cap: the healthy
// destination's deliveries go through while it hangs (before, four
// attempts to it held all four slots until they timed out).
func TestUnknownDestinationStartsWithOneAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{direct: true, workers: 4, perDest: 4, attemptTimeout: 10 * time.Minute})
	hang := hangingReceiver(t)
	healthy := newRecorder(t, nil)
	b.webhook(hang.srv.URL)
	ok, _ := b.webhook(healthy.srv.URL)
	for i := range 8 {
		b.publish(`{"i":"` + itoa(i) + `"}`) // to both
	}
	waitFor(t, "the healthy destination's 8 deliveries while the other hangs", func() bool {
		return countSucceeded(b, ok.ID) == 8
	})
	if n := hang.count(); n != 1 {
		t.Fatalf("the hanging destination got %d attempts at once; want 1 until one ends", n)
	}
}

// Destinations whose last attempt timed out are hanging: one attempt at a
// time each, and together at most HangingWorkers of the worker slots
// (here 1 of 4), so healthy deliveries keep the rest; every hanging
// destination still gets its turns.
func TestHangingDestinationsShareFewSlots(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	b := setup(t, setupOpts{direct: true, workers: 4, perDest: 4, attemptTimeout: timeout})
	hang := hangingReceiver(t)
	var hooks []*core.Webhook
	for range 4 {
		w, _ := b.webhook(hang.srv.URL + "/" + core.NewID())
		hooks = append(hooks, w)
	}
	healthy := newRecorder(t, nil)
	ok, _ := b.webhook(healthy.srv.URL)
	// First wave: every destination is unknown, one attempt each; all
	// four time out.
	b.publish(`{"i":"w1"}`)
	waitFor(t, "the first attempts to time out", func() bool {
		for _, w := range hooks {
			ds := b.deliveries(w.ID)
			if len(ds) != 1 || ds[0].Attempts != 1 {
				return false
			}
		}
		return true
	})
	// From now on count the attempts in flight to the four destinations
	// whenever an attempt starts.
	hanging := map[string]bool{}
	for _, w := range hooks {
		hanging[w.ID] = true
	}
	var mu sync.Mutex
	most := 0
	b.engine.mu.Lock()
	b.engine.onStart = func(t *task) {
		n := 0
		for k, d := range b.engine.dests {
			if hanging[k] {
				n += d.running
			}
		}
		mu.Lock()
		most = max(most, n)
		mu.Unlock()
	}
	b.engine.mu.Unlock()

	for i := range 3 {
		b.publish(`{"i":"w2-` + itoa(i) + `"}`) // 4 hanging deliveries and 1 healthy each
	}
	waitFor(t, "the healthy deliveries", func() bool { return countSucceeded(b, ok.ID) == 4 })
	// Every hanging delivery gets its attempt (the fake clock stands still,
	// so the first wave's retries are not due).
	waitFor(t, "an attempt of every second-wave delivery", func() bool {
		for _, w := range hooks {
			n := 0
			for _, d := range b.deliveries(w.ID) {
				if d.Attempts > 0 {
					n++
				}
			}
			if n != 4 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	if most > 1 {
		t.Fatalf("%d attempts in flight to hanging destinations at once; want at most HangingWorkers = 1", most)
	}
}

func countSucceeded(b *bundle, webhookID string) int {
	n := 0
	for _, d := range b.deliveries(webhookID) {
		if d.Status == core.DeliverySucceeded {
			n++
		}
	}
	return n
}
