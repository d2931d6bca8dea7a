package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A webhook deleted while an attempt to it is under way: the attempt
// finishes and is counted — attempt_count agrees with the attempts listed.
// A success stays succeeded; a failure is cancelled, not retried. The
// delivery was cancelled under the attempt and showed attempt_count 0
// beside the attempt it listed.
func TestDeleteWebhookMidAttempt(t *testing.T) {
	s := startServe(t)
	c := s.client(t)
	arrived := make(chan string, 2)
	release := map[string]chan int{"/ok": make(chan int, 1), "/fail": make(chan int, 1)}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- r.URL.Path
		w.WriteHeader(<-release[r.URL.Path])
	}))
	t.Cleanup(rcv.Close)
	t.Cleanup(func() { // a retry the test did not expect must not hang the server's close
		for _, ch := range release {
			select {
			case ch <- http.StatusOK:
			default:
			}
		}
	})

	want := map[string]string{"/ok": "succeeded", "/fail": "cancelled"}
	status := map[string]int{"/ok": http.StatusOK, "/fail": http.StatusInternalServerError}
	hooks := map[string]string{}
	for path := range want {
		hooks[path] = c.createWebhook(t, rcv.URL+path, "batch.succeeded").ID
	}
	c.publish(t, map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/mid"}})
	for range want {
		select {
		case <-arrived:
		case <-time.After(60 * time.Second):
			t.Fatal("the attempts did not reach the receiver")
		}
	}
	// Both attempts are under way: delete the webhooks, then let the
	// receiver answer.
	for path, id := range hooks {
		c.call(t, "DELETE", "/v1beta/webhooks/"+id, nil, nil)
		release[path] <- status[path]
	}
	for path, id := range hooks {
		ds := listDeliveries(t, c, id)
		if len(ds) != 1 {
			t.Fatalf("%s: %d deliveries, want 1", path, len(ds))
		}
		pollUntil(t, 60*time.Second, 20*time.Millisecond, path+": the attempt's outcome", func() (bool, string) {
			d := getDelivery(t, c, ds[0].ID)
			got := fmt.Sprintf("%s, attempt_count %d, %d attempts listed", d.Status, d.AttemptCount, len(d.Attempts))
			return got == want[path]+", attempt_count 1, 1 attempts listed", got
		})
	}
}
