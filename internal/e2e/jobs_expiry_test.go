package e2e

import (
	"encoding/json"
	"testing"
	"time"
)

// TestBatchExpiryUnderTimeScale: with --time-scale 36000 the 48 h batch
// window lasts 4.8 s, so a batch whose model never finishes ([[expire]])
// expires: its state becomes BATCH_STATE_EXPIRED and the subscribed
// webhook receives exactly one batch.expired for it.
func TestBatchExpiryUnderTimeScale(t *testing.T) {
	t.Parallel()
	s := startServe(t, withFlags("--time-scale", "36000"))
	c := s.client(t)
	rcv := newReceiver(t, nil)
	c.createWebhook(t, rcv.URL("/expired"), "batch.expired", "batch.succeeded")
	reqs := []map[string]any{{
		"request":  map[string]any{"contents": []map[string]any{{"role": "user", "parts": []map[string]any{{"text": "never ends [[expire]]"}}}}},
		"metadata": map[string]any{"key": "r1"},
	}}
	var op struct {
		Name string `json:"name"`
	}
	c.call(t, "POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", map[string]any{"batch": map[string]any{
		"displayName": "expiring", "inputConfig": map[string]any{"requests": map[string]any{"requests": reqs}},
	}}, &op)
	got := rcv.waitFor(t, 30*time.Second, "batch.expired", func(rs []received) bool { return len(rs) >= 1 })
	env := got[0].envelope(t)
	var data struct {
		ID       string `json:"id"`
		Sequence int    `json:"sequence"`
	}
	if err := json.Unmarshal(env.Data, &data); err != nil {
		t.Fatal(err)
	}
	if env.Type != "batch.expired" || data.ID != op.Name {
		t.Fatalf("got %s for %s, want batch.expired for %s", env.Type, data.ID, op.Name)
	}
	var res struct {
		Done     bool `json:"done"`
		Metadata struct {
			State string `json:"state"`
		} `json:"metadata"`
	}
	c.call(t, "GET", "/v1beta/"+op.Name, nil, &res)
	if !res.Done || res.Metadata.State != "BATCH_STATE_EXPIRED" {
		t.Fatalf("batch after expiry: done=%v state=%s", res.Done, res.Metadata.State)
	}
	if n := len(rcv.requests()); n != 1 {
		t.Fatalf("receiver got %d events, want exactly one terminal event", n)
	}
}
