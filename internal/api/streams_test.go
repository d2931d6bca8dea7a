package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

// newKeyID creates an API key of project and returns it and its id.
func (f *fixture) newKeyID(projectID string) (plain, id string) {
	f.t.Helper()
	plain, digest, hint := api.NewAPIKey()
	k := core.APIKey{ID: core.NewID(), ProjectID: projectID, Name: "stream", Digest: digest, Hint: hint,
		CreateTime: core.SystemClock{}.Now()}
	if err := f.store.CreateAPIKey(context.Background(), k); err != nil {
		f.t.Fatalf("create key: %v", err)
	}
	return plain, k.ID
}

// ended waits for the stream to end, failing on any "webhook" or
// "delivery" frame before that.
func (c *sseConn) ended(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case fr, ok := <-c.frames:
			if !ok {
				return
			}
			if fr.event == "webhook" || fr.event == "delivery" {
				t.Fatalf("a %s frame arrived on the stream of a revoked key or deleted webhook: %s", fr.event, fr.data)
			}
		case <-deadline:
			t.Fatalf("the stream is still open after %s", within)
		}
	}
}

// TestStreamsEndWhenKeyRevoked (issue 13, defect 2): a listen stream and
// a deliveries stream end once their API key is revoked — here in the
// store, as another process (the CLI, another instance) would, so no
// cache purge helps — and nothing newly signed arrives on them. With a
// recheck period longer than the test, the listen stream still signs
// nothing for the revoked key: it looks the key up before signing.
func TestStreamsEndWhenKeyRevoked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		recheck time.Duration
	}{{"recheck", 50 * time.Millisecond}, {"before signing", time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, func(d *api.Deps) { d.StreamRecheck = tc.recheck })
			hook := f.createWebhook("l", "batch.succeeded").str("id")
			key, id := f.newKeyID(f.project.ID)
			listen := openListen(t, f.srv.URL, key, hook, "", nil)
			listen.ready(t)
			tail := openSSE(t, f.srv.URL+"/v1/deliveries:stream?webhook_id="+hook, key, nil)
			if fr := tail.next(t); fr.event != "ready" {
				t.Fatalf("tail: first frame %q", fr.event)
			}
			if err := f.store.RevokeAPIKey(t.Context(), id, time.Now()); err != nil {
				t.Fatal(err)
			}
			f.publishN(2, "after-revoke") // with the fixture's other key
			listen.ended(t, 60*time.Second)
			if tc.recheck < time.Minute {
				tail.ended(t, 60*time.Second)
			}
		})
	}
}

// TestListenEndsWhenWebhookDeleted (issue 13, defect 2): deleting the
// webhook ends its listen stream (and a deliveries stream following it)
// within the recheck period, not at the next 15 s heartbeat.
func TestListenEndsWhenWebhookDeleted(t *testing.T) {
	t.Parallel()
	f := setup(t, func(d *api.Deps) { d.StreamRecheck = 50 * time.Millisecond })
	hook := f.createWebhook("l", "batch.succeeded").str("id")
	listen := openListen(t, f.srv.URL, f.key, hook, "", nil)
	listen.ready(t)
	tail := openSSE(t, f.srv.URL+"/v1/deliveries:stream?webhook_id="+hook, f.key, nil)
	if fr := tail.next(t); fr.event != "ready" {
		t.Fatalf("tail: first frame %q", fr.event)
	}
	f.call("DELETE", "/v1beta/webhooks/"+hook, nil).must(t, http.StatusOK)
	// 200 times the recheck period, and under the 15 s heartbeat that
	// was the only check before.
	listen.ended(t, 10*time.Second)
	tail.ended(t, 10*time.Second)
}

// TestStreamsPerKeyCapped (issue 13, defect 2): one key holds at most
// MaxStreamsPerKey streams (listen and deliveries streams together); one
// more is 429 RESOURCE_EXHAUSTED; another key is not affected, and a
// closed stream frees its place.
func TestStreamsPerKeyCapped(t *testing.T) {
	t.Parallel()
	f := setup(t, func(d *api.Deps) { d.MaxStreamsPerKey = 2 })
	hook := f.createWebhook("l", "batch.succeeded").str("id")
	first := openListen(t, f.srv.URL, f.key, hook, "", nil)
	first.ready(t)
	second := openSSE(t, f.srv.URL+"/v1/deliveries:stream", f.key, nil)
	second.next(t)
	for _, path := range []string{"/v1beta/webhooks/" + hook + ":listen", "/v1/deliveries:stream"} {
		if st := statusOf(t, f.srv.URL+path, f.key); st != http.StatusTooManyRequests {
			t.Fatalf("a third stream (%s): %d, want 429", path, st)
		}
		f.call("GET", path, nil).mustError(t, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "2 streams")
	}
	other, _ := f.newKeyID(f.project.ID)
	openListen(t, f.srv.URL, other, hook, "", nil).ready(t)

	first.close()
	deadline := time.Now().Add(60 * time.Second)
	for statusOf(t, f.srv.URL+"/v1beta/webhooks/"+hook+":listen", f.key) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("a closed stream did not free its place")
		}
		time.Sleep(20 * time.Millisecond) // poll until the closed stream's handler returned
	}
}

// statusOf opens a stream, returns its status and closes it.
func statusOf(t *testing.T, u, key string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("x-goog-api-key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}
