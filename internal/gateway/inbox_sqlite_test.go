package gateway

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// runInboxSuite is the Inbox contract; a PostgreSQL inbox must pass it too.
// open returns a fresh inbox, or reopens the one at the same location
// when called again with reopen true.
func runInboxSuite(t *testing.T, open func(t *testing.T, reopen bool) Inbox) {
	ctx := context.Background()
	now := time.Now().Truncate(time.Microsecond)
	accept := func(in Inbox, src, id string, expire time.Time) AcceptResult {
		t.Helper()
		r, err := in.Accept(ctx, AcceptParams{
			Source: src, WebhookID: id, Type: "t", Header: http.Header{"Webhook-Id": {id}},
			Body: []byte(`{"id":"` + id + `"}`), ReceivedAt: now, ExpireAt: expire,
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("dedupe under concurrency", func(t *testing.T) {
		in := open(t, false)
		var wg sync.WaitGroup
		var mu sync.Mutex
		fresh := map[string]int{}
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("msg_%d", i%50)
				r := accept(in, "a", id, now.Add(time.Hour))
				if !r.Duplicate {
					mu.Lock()
					fresh[id]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(fresh) != 50 {
			t.Fatalf("%d ids accepted as new, want 50", len(fresh))
		}
		for id, n := range fresh {
			if n != 1 {
				t.Errorf("%s accepted as new %d times", id, n)
			}
		}
		// Same id, other source: not a duplicate.
		if r := accept(in, "b", "msg_1", now.Add(time.Hour)); r.Duplicate {
			t.Error("dedupe crosses sources")
		}
	})

	t.Run("log, cursors, retries, durability", func(t *testing.T) {
		in := open(t, false)
		changed := in.Changed()
		r1 := accept(in, "a", "m1", now.Add(-time.Second)) // already expired
		select {
		case <-changed:
		default:
			t.Error("Changed not closed by an accept")
		}
		accept(in, "b", "m2", now.Add(time.Hour))
		r3 := accept(in, "a", "m3", now.Add(time.Hour))
		evs, next, err := in.After(ctx, "a", 0, 10)
		if err != nil || len(evs) != 2 || evs[0].Seq != r1.Seq || evs[1].Seq != r3.Seq || next < r3.Seq {
			t.Fatalf("After = %v, %d, %v", evs, next, err)
		}
		if evs[0].Header.Get("Webhook-Id") != "m1" || string(evs[0].Body) != `{"id":"m1"}` {
			t.Errorf("event round trip: %+v", evs[0])
		}
		if evs, next, _ := in.After(ctx, "a", 0, 1); len(evs) != 1 || next != r1.Seq {
			t.Errorf("After with limit: %v next %d", evs, next)
		}
		if _, ok, _ := in.Cursor(ctx, "a/x"); ok {
			t.Error("cursor before SetCursor")
		}
		if err := in.SetCursor(ctx, "a/x", r3.Seq); err != nil {
			t.Fatal(err)
		}
		if err := in.AddRetry(ctx, RetryParams{Sink: "a/x", Seq: r1.Seq, Attempts: 1, NextAt: now, LastError: "boom"}); err != nil {
			t.Fatal(err)
		}
		due, err := in.DueRetries(ctx, "a/x", now, 10, nil)
		if err != nil || len(due) != 1 || due[0].WebhookID != "m1" || due[0].Attempts != 1 {
			t.Fatalf("DueRetries = %v, %v", due, err)
		}
		if due, _ := in.DueRetries(ctx, "a/x", now, 10, func(int64) bool { return true }); len(due) != 0 {
			t.Error("skip ignored")
		}
		// The retry pins the expired event.
		if n, err := in.Sweep(ctx, SweepParams{Now: now, Source: "a", Upto: r3.Seq, Limit: 10}); err != nil || n != 0 {
			t.Errorf("sweep with a pending retry deleted %d (%v)", n, err)
		}

		in.Close()
		in = open(t, true)
		if seq, ok, err := in.Cursor(ctx, "a/x"); err != nil || !ok || seq != r3.Seq {
			t.Errorf("cursor after reopen: %d %v %v", seq, ok, err)
		}
		if r := accept(in, "a", "m3", now.Add(time.Hour)); !r.Duplicate || r.Seq != r3.Seq {
			t.Errorf("dedupe after reopen: %+v", r)
		}
		if p, _ := in.PendingRetries(ctx); p["a/x"] != 1 {
			t.Errorf("pending retries after reopen: %v", p)
		}
		if err := in.UpdateRetry(ctx, RetryParams{Sink: "a/x", Seq: r1.Seq, Done: true}); err != nil {
			t.Fatal(err)
		}
		if n, err := in.Sweep(ctx, SweepParams{Now: now, Source: "a", Upto: r3.Seq, Limit: 10}); err != nil || n != 1 {
			t.Errorf("sweep deleted %d (%v), want 1", n, err)
		}
		if r := accept(in, "a", "m1", now.Add(time.Hour)); r.Duplicate || r.Seq <= r3.Seq {
			t.Errorf("after sweep m1 should be new with a higher seq: %+v", r)
		}
		if last, _ := in.LastSeq(ctx); last <= r3.Seq {
			t.Errorf("LastSeq %d", last)
		}
		in.Close()
	})
}

func TestSQLiteInbox(t *testing.T) {
	t.Parallel()
	var path string
	runInboxSuite(t, func(t *testing.T, reopen bool) Inbox {
		if !reopen {
			path = filepath.Join(t.TempDir(), "inbox.db")
		}
		in, err := OpenSQLiteInbox(context.Background(), path, "NORMAL")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = in.Close() })
		return in
	})
}

func TestTailEviction(t *testing.T) {
	t.Parallel()
	tl := newTail(10, 3, 1<<20)
	for i := int64(11); i <= 15; i++ {
		tl.add([]Event{{Seq: i, Source: "a"}})
	}
	if _, _, ok := tl.after("a", 11, 10); ok {
		t.Error("served a position below the floor")
	}
	evs, next, ok := tl.after("a", 12, 10)
	if !ok || len(evs) != 3 || next != 15 {
		t.Errorf("after(12) = %v %d %v", evs, next, ok)
	}
	if evs, next, ok := tl.after("b", 12, 10); !ok || len(evs) != 0 || next != 15 {
		t.Errorf("quiet source: %v %d %v", evs, next, ok)
	}
}
