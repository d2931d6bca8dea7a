package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/relay"
	"github.com/longhook/longhook/webhook"
)

// sseFrame is one server-sent event.
type sseFrame struct {
	id, event string
	data      []byte
}

// sseConn is an open listen stream read by a goroutine.
type sseConn struct {
	cancel context.CancelFunc
	frames chan sseFrame
	done   chan struct{}
}

// openListen connects to a webhook's listen stream and asserts 200.
func openListen(t *testing.T, base, key, hook, after string, header http.Header) *sseConn {
	t.Helper()
	u := base + "/v1beta/webhooks/" + hook + ":listen"
	if after != "" {
		u += "?after=" + after
	}
	return openSSE(t, u, key, header)
}

// openSSE connects to a text/event-stream URL and asserts 200.
func openSSE(t *testing.T, u, key string, header http.Header) *sseConn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("x-goog-api-key", key)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		resp.Body.Close()
		t.Fatalf("stream %s: %d %s", u, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseConn{cancel: cancel, frames: make(chan sseFrame), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.frames)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var fr sseFrame
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if fr.event != "" {
					select {
					case c.frames <- fr:
					case <-ctx.Done():
						return
					}
				}
				fr = sseFrame{}
			case strings.HasPrefix(line, ":"):
			default:
				k, v, _ := strings.Cut(line, ": ")
				switch k {
				case "id":
					fr.id = v
				case "event":
					fr.event = v
				case "data":
					fr.data = []byte(v)
				}
			}
		}
	}()
	t.Cleanup(c.close)
	return c
}

// next returns the next frame; it fails the test if the stream ends or
// nothing arrives within a generous bound.
func (c *sseConn) next(t *testing.T) sseFrame {
	t.Helper()
	select {
	case fr, ok := <-c.frames:
		if !ok {
			t.Fatal("listen stream ended")
		}
		return fr
	case <-time.After(60 * time.Second): // a failure bound: a loaded machine under -race takes seconds
		t.Fatal("no listen event within 60 s")
	}
	return sseFrame{}
}

// nextEvent returns the next "webhook" frame, decoded.
func (c *sseConn) nextEvent(t *testing.T) relay.Event {
	t.Helper()
	fr := c.next(t)
	if fr.event != "webhook" {
		t.Fatalf("event %q, want webhook: %s", fr.event, fr.data)
	}
	var ev relay.Event
	if err := json.Unmarshal(fr.data, &ev); err != nil {
		t.Fatal(err)
	}
	if fr.id != ev.ID || ev.Header.Get(webhook.HeaderID) != ev.ID {
		t.Fatalf("frame id %q, event id %q, webhook-id %q", fr.id, ev.ID, ev.Header.Get(webhook.HeaderID))
	}
	return ev
}

// ready reads the opening frame and returns its cursor.
func (c *sseConn) ready(t *testing.T) string {
	t.Helper()
	fr := c.next(t)
	var r relay.Ready
	if fr.event != "ready" || json.Unmarshal(fr.data, &r) != nil || r.After != fr.id {
		t.Fatalf("first frame: %+v %s", fr, fr.data)
	}
	return fr.id
}

func (c *sseConn) close() {
	c.cancel()
	<-c.done
}

// publishN publishes n batch.succeeded events and returns their ids.
func (f *fixture) publishN(n int, tag string) []string {
	f.t.Helper()
	var ids []string
	for i := range n {
		r := f.call("POST", "/v1beta/events", map[string]any{
			"type": "batch.succeeded", "data": map[string]any{"id": fmt.Sprintf("batches/%s-%d", tag, i)},
		}).must(f.t, http.StatusOK)
		ids = append(ids, r.str("id"))
	}
	return ids
}

// deliveryIDs lists a webhook's delivery ids, oldest first.
func (f *fixture) deliveryIDs(hook string) []string {
	f.t.Helper()
	var ids []string
	for _, d := range f.deliveries(hook) {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	slices.Reverse(ids)
	return ids
}

// check verifies one streamed delivery: signature, body and ids.
func (f *fixture) checkEvent(t *testing.T, v *webhook.Verifier, ev relay.Event, wantID string) {
	t.Helper()
	if ev.ID != wantID {
		t.Fatalf("got delivery %s, want %s", ev.ID, wantID)
	}
	if ev.ResumeAfter == "" || ev.ResumeAfter > ev.ID {
		t.Fatalf("%s: resume_after %q", ev.ID, ev.ResumeAfter)
	}
	if err := v.Verify(ev.Header, ev.Body); err != nil {
		t.Fatalf("%s: signature: %v", ev.ID, err)
	}
	stored, err := f.store.GetEvent(t.Context(), f.project.ID, ev.EventID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored.Payload, ev.Body) || ev.EventType != "batch.succeeded" || ev.Status == "" ||
		ev.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s: body %s (stored %s), type %q, status %q", ev.ID, ev.Body, stored.Payload, ev.EventType, ev.Status)
	}
}

func TestListenReplaysThenFollows(t *testing.T) {
	t.Parallel()
	f := setup(t)
	created := f.createWebhook("l", "batch.succeeded")
	hook, secret := created.str("id"), created.str("new_signing_secret")
	v, err := webhook.NewVerifier([]string{secret})
	if err != nil {
		t.Fatal(err)
	}
	f.createWebhook("other", "batch.succeeded") // its deliveries are not on hook's stream
	f.publishN(5, "a")
	want := f.deliveryIDs(hook)

	// Replay from the start, in id order, then follow live.
	c := openListen(t, f.srv.URL, f.key, hook, relay.FromStart, nil)
	if got := c.ready(t); got != relay.FromStart {
		t.Fatalf("ready cursor %q", got)
	}
	for _, id := range want {
		f.checkEvent(t, v, c.nextEvent(t), id)
	}
	f.publishN(1, "live")
	want = f.deliveryIDs(hook)
	last := want[len(want)-1]
	f.checkEvent(t, v, c.nextEvent(t), last)
	c.close()

	// Published while disconnected: a reconnect after the last id gets
	// exactly those, then follows (the sentinel comes next, nothing else).
	f.publishN(3, "gap")
	rest := f.deliveryIDs(hook)[len(want):]
	c = openListen(t, f.srv.URL, f.key, hook, last, nil)
	if got := c.ready(t); got != last {
		t.Fatalf("ready cursor %q, want %q", got, last)
	}
	for _, id := range rest {
		f.checkEvent(t, v, c.nextEvent(t), id)
	}
	f.publishN(1, "sentinel")
	all := f.deliveryIDs(hook)
	f.checkEvent(t, v, c.nextEvent(t), all[len(all)-1])
	c.close()

	// Last-Event-ID works as the cursor too; without any cursor the stream
	// starts after the newest delivery.
	c = openListen(t, f.srv.URL, f.key, hook, "", http.Header{"Last-Event-ID": {all[len(all)-2]}})
	c.ready(t)
	f.checkEvent(t, v, c.nextEvent(t), all[len(all)-1])
	c.close()
	c = openListen(t, f.srv.URL, f.key, hook, "", nil)
	if got := c.ready(t); got != all[len(all)-1] {
		t.Fatalf("ready cursor %q, want the newest %q", got, all[len(all)-1])
	}
	f.publishN(1, "new")
	all = f.deliveryIDs(hook)
	f.checkEvent(t, v, c.nextEvent(t), all[len(all)-1])
	c.close()
}

func TestListenErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("l", "batch.succeeded").str("id")
	path := "/v1beta/webhooks/" + hook + ":listen"

	other := f.newKey(f.newProject("other").ID, false)
	f.callWith(other, nil, "GET", path, nil).mustError(t, http.StatusNotFound, "NOT_FOUND", hook)
	f.call("GET", "/v1beta/webhooks/nope:listen", nil).mustError(t, http.StatusNotFound, "NOT_FOUND")
	for _, bad := range []string{"nope", "0", "msg_", "MSG_00000000000000000000000000", "msg_0000000000000000000000000I", "msg_80000000000000000000000000"} {
		f.call("GET", path+"?after="+bad, nil).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "after")
	}
	f.callWith(f.key, http.Header{"Last-Event-ID": {"nope"}}, "GET", path, nil).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "after")
	// A cursor made after this server's time names no delivery (a typo, a
	// state file of another server): the stream skipped everything until
	// then without a word.
	for _, future := range []string{core.NewMessageID(time.Now().Add(24 * time.Hour)), core.NewMessageID(time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC))} {
		for _, h := range []http.Header{{}, {"Last-Event-ID": {future}}} {
			u := f.srv.URL + path
			if len(h) == 0 {
				u += "?after=" + future
			}
			// With a deadline: a stream that is opened never ends.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			req.Header = h
			req.Header.Set("x-goog-api-key", f.key)
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			var b []byte
			if resp.StatusCode != http.StatusOK {
				b, _ = io.ReadAll(resp.Body)
			}
			resp.Body.Close()
			cancel()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "no delivery has that id yet") || !strings.Contains(string(b), "INVALID_ARGUMENT") {
				t.Errorf("cursor %s (in Last-Event-ID: %t): %d %s, want 400 INVALID_ARGUMENT saying no delivery has that id yet", future, h.Get("Last-Event-ID") != "", resp.StatusCode, b)
			}
		}
	}
	f.callWith("", nil, "GET", path, nil).mustError(t, http.StatusUnauthorized, "UNAUTHENTICATED")
	// Other verbs stay unknown, and the plain GET is unchanged.
	f.call("GET", "/v1beta/webhooks/"+hook+":ping", nil).mustError(t, http.StatusNotFound, "NOT_FOUND")
	if f.call("GET", "/v1beta/webhooks/"+hook, nil).must(t, http.StatusOK).str("id") != hook {
		t.Fatal("plain GET changed")
	}
}

// A backlog larger than a store page, with more deliveries in one
// millisecond (a batch publish) than a page, replays whole and in order.
func TestListenLargeBacklog(t *testing.T) {
	t.Parallel()
	f := setup(t)
	created := f.createWebhook("l", "batch.succeeded")
	hook := created.str("id")
	for b := range 2 {
		evs := make([]map[string]any, 600)
		for i := range evs {
			evs[i] = map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": fmt.Sprintf("batches/%d-%d", b, i)}}
		}
		f.call("POST", "/v1beta/events:batchPublish", map[string]any{"events": evs}).must(t, http.StatusOK)
	}
	f.publishN(3, "tail")
	var want []string
	for d, err := range f.allDeliveries(hook) {
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, d)
	}
	slices.Reverse(want)
	if len(want) != 1203 {
		t.Fatalf("%d deliveries, want 1203", len(want))
	}
	c := openListen(t, f.srv.URL, f.key, hook, relay.FromStart, nil)
	c.ready(t)
	for i, id := range want {
		if ev := c.nextEvent(t); ev.ID != id {
			t.Fatalf("event %d: %s, want %s", i, ev.ID, id)
		}
	}
	c.close()
}

// allDeliveries yields every delivery id of hook, newest first, through
// the store (the API pages are at most 100).
func (f *fixture) allDeliveries(hook string) func(func(string, error) bool) {
	return func(yield func(string, error) bool) {
		before := ""
		for {
			ds, err := f.store.ListDeliveries(context.Background(), core.ListDeliveriesParams{ProjectID: f.project.ID, WebhookID: hook, BeforeID: before, Limit: 1000})
			if err != nil {
				yield("", err)
				return
			}
			for _, d := range ds {
				if !yield(d.ID, nil) {
					return
				}
			}
			if len(ds) == 0 {
				return
			}
			before = ds[len(ds)-1].ID
		}
	}
}

// Rotating the secret during a stream: later events carry both
// signatures, each verifiable on its own.
func TestListenRotation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	created := f.createWebhook("l", "batch.succeeded")
	hook, oldSecret := created.str("id"), created.str("new_signing_secret")
	c := openListen(t, f.srv.URL, f.key, hook, "", nil)
	c.ready(t)
	newSecret := f.call("POST", "/v1beta/webhooks/"+hook+":rotateSigningSecret", map[string]any{}).must(t, http.StatusOK).str("secret")
	f.publishN(1, "r")
	ev := c.nextEvent(t)
	for _, s := range []string{oldSecret, newSecret} {
		v, _ := webhook.NewVerifier([]string{s})
		if err := v.Verify(ev.Header, ev.Body); err != nil {
			t.Errorf("secret …%s: %v", s[len(s)-4:], err)
		}
	}
}

// The stream extends the server's WriteTimeout for each write.
func TestListenOutlivesWriteTimeout(t *testing.T) {
	t.Parallel()
	var deps api.Deps
	f := setup(t, func(d *api.Deps) { deps = *d })
	srv := httptest.NewUnstartedServer(api.NewServer(deps))
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	hook := f.createWebhook("l", "batch.succeeded").str("id")
	c := openListen(t, srv.URL, f.key, hook, "", nil)
	c.ready(t)
	time.Sleep(500 * time.Millisecond) // the scenario: outlive the server's WriteTimeout
	f.publishN(1, "late")
	if ev := c.nextEvent(t); ev.ID != f.deliveryIDs(hook)[0] {
		t.Fatalf("got %s", ev.ID)
	}
	c.close()
}

// A delivery that becomes visible after one with a greater id was sent
// (a concurrent publish committing late) is still sent on that stream.
func TestListenStraggler(t *testing.T) {
	t.Parallel()
	f := setup(t)
	hook := f.createWebhook("l", "batch.succeeded").str("id")
	c := openListen(t, f.srv.URL, f.key, hook, "", nil)
	c.ready(t)
	f.publishN(1, "first")
	first := c.nextEvent(t)

	at := first.CreateTime.Add(-2 * time.Millisecond)
	payload, _ := core.Envelope("batch.succeeded", at, []byte(`{"id":"batches/late"}`))
	ev := core.Event{ID: core.NewSortableID(at), ProjectID: f.project.ID, Type: "batch.succeeded", Payload: payload, CreateTime: at}
	late := core.Delivery{ID: core.NewMessageID(at), WebhookID: hook, Dest: hook, Status: core.DeliveryPending,
		NextAttemptTime: at, ScheduleStart: at, CreateTime: at, UpdateTime: at}
	if late.ID >= first.ID {
		t.Fatalf("straggler id %s not below %s", late.ID, first.ID)
	}
	if _, err := f.store.PublishEvents(t.Context(), []core.NewEvent{{Event: ev, Deliveries: []core.Delivery{late}}}); err != nil {
		t.Fatal(err)
	}
	got := c.nextEvent(t)
	if got.ID != late.ID || !bytes.Equal(got.Body, payload) {
		t.Fatalf("got %s, want the straggler %s", got.ID, late.ID)
	}
	// Resuming after the greatest id would skip it; resuming after
	// resume_after does not.
	if got.ResumeAfter >= late.ID || first.ResumeAfter >= late.ID {
		t.Errorf("resume_after %s / %s, want below the straggler %s", first.ResumeAfter, got.ResumeAfter, late.ID)
	}
	c.close()
	c = openListen(t, f.srv.URL, f.key, hook, first.ResumeAfter, nil)
	c.ready(t)
	seen := map[string]bool{}
	for range 2 {
		seen[c.nextEvent(t).ID] = true
	}
	if !seen[first.ID] || !seen[late.ID] {
		t.Errorf("resumed after %s: got %v, want %s and %s", first.ResumeAfter, seen, first.ID, late.ID)
	}
}
