package e2e

import (
	"bytes"
	"testing"
)

// TestDynamicRateLimitPerProject: an event's webhook_config.rate_limit
// limits its URIs for the project that published it. Every project may
// name any URI, so a limit keyed by the URI alone let project B stall
// project C's deliveries to a receiver they share: B's limit of one
// delivery in ~12 days pushed the URI's bucket past C's own 10/s, and C's
// event waited for B's next token (seen: due 23 days later).
func TestDynamicRateLimitPerProject(t *testing.T) {
	t.Parallel()
	s := startServe(t)
	admin := s.client(t)
	_, keyB := createProject(t, admin, "tenant-b")
	_, keyC := createProject(t, admin, "tenant-c")
	b, c := s.client(t), s.client(t)
	b.key, c.key = keyB, keyC

	rcv := newReceiver(t, nil)
	shared := rcv.URL("/shared")
	limited := func(dataID string, perSecond float64, burst int) map[string]any {
		ev := dynamicEvent(dataID, shared, "")
		ev["webhook_config"].(map[string]any)["rate_limit"] = map[string]any{"per_second": perSecond, "burst": burst}
		return ev
	}

	// B takes the one token its limit allows and queues a second event
	// behind a token ~11.6 days away.
	b.publish(t, limited("batches/B-1", 0.000001, 1))
	rcv.waitN(t, 1, deliveryTimeout)
	b.publish(t, limited("batches/B-2", 0.000001, 1))

	// C's own limit on the same URI has tokens to spare: its event goes
	// out now, not after B's.
	c.publish(t, limited("batches/C-1", 10, 5))
	rcv.waitFor(t, deliveryTimeout, "C's event", func(rs []received) bool {
		for _, r := range rs {
			if bytes.Contains(r.Body, []byte("batches/C-1")) {
				return true
			}
		}
		return false
	})
	for _, r := range rcv.requests() {
		if bytes.Contains(r.Body, []byte("batches/B-2")) {
			t.Fatalf("B's second event was delivered within B's limit of one per ~11.6 days: %s", r.Body)
		}
	}
}
