package engine

import (
	"net/http"
	"testing"
	"time"
)

// A destination at its cap with due work waiting in the store (here one
// that never answers, cap 1, a backlog behind it) must not delay another
// destination's retries: the claim loop took that backlog for due work
// "held back by a cap" and waited for the safety poll instead of the
// retry's time, so every other destination's retry came up to a poll
// interval late — in a real serve --time-scale 3600, gaps of 1,006 ms
// where 8, 33, 167 and 500 ms were due (an hour late each). The poll is an
// hour here: the old loop makes no retry at all while the backlog waits.
func TestRetryNotDelayedByACappedDestination(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{direct: true, workers: 8, perDest: 1, attemptTimeout: 10 * time.Minute,
		lease: time.Hour, poll: time.Hour, realTime: true, timeScale: 3600})
	hang := hangingReceiver(t)
	b.webhook(hang.srv.URL)
	for i := range 4 {
		b.publish(`{"i":"` + itoa(i) + `"}`)
	}
	// One attempt in flight to the hanging destination, one parked behind
	// its cap (perDest 1); the other two are left in the store, due.
	waitFor(t, "the hanging destination's first attempt", func() bool { return hang.count() == 1 })

	failing := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	f, _ := b.webhook(failing.srv.URL)
	b.pub.Invalidate(b.project) // the publisher's subscription list predates f
	b.publish(`{"i":"f"}`)
	id := b.deliveries(f.ID)[0].ID
	// 5 s, 30 s and 2 min at 3600: the fourth attempt is due 45 ms after
	// the first.
	_, as := b.attemptsOf(id, 4)
	for i, step := range []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute} {
		if gap := as[i+1].Time.Sub(as[i].Time); gap < step/3600 {
			t.Errorf("retry %d came %v after attempt %d; want at least %v", i+1, gap, i+1, step/3600)
		}
	}
}
