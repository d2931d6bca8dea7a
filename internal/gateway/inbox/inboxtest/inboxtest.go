// Package inboxtest is the gateway inbox contract: every driver's tests
// run it (like storetest for the sender's store).
package inboxtest

import (
	"context"
	"errors"
	"fmt"
	"github.com/longhook/longhook/internal/gateway/inbox"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// Opener opens a fresh, empty inbox for t (closed when t ends) and
// returns a function that opens the same store again once the first
// inbox is closed.
type Opener func(t *testing.T) (in inbox.Inbox, reopen func(t *testing.T) inbox.Inbox)

// Run is the inbox.Inbox contract: the SQLite and PostgreSQL drivers
// both pass it, and every change to the inbox.Inbox behaviour extends it.
func Run(t *testing.T, open Opener) {
	for _, c := range []struct {
		name string
		test func(*testing.T, Opener)
	}{
		{"dedupe under concurrency", testInboxDedupe},
		{"concurrent accepts and readers", testInboxConcurrentLog},
		{"log, cursors, retries, durability", testInboxDurability},
		{"retry queue", testInboxRetries},
		{"sweep", testInboxSweep},
		{"since a time", testInboxSince},
		{"bytes round trip", testInboxBytes},
		{"close", testInboxClose},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.test(t, open)
		})
	}
}

var suiteNow = time.Now().Truncate(time.Microsecond)

// Accept accepts a small event of source with id.
func Accept(t *testing.T, in inbox.Inbox, src, id string, expire time.Time) inbox.AcceptResult {
	t.Helper()
	r, err := in.Accept(context.Background(), inbox.AcceptParams{
		Source: src, WebhookID: id, Type: "t", Header: http.Header{"Webhook-Id": {id}},
		Body: []byte(`{"id":"` + id + `"}`), ReceivedAt: suiteNow, ExpireAt: expire,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testInboxSince(t *testing.T, open Opener) {
	in, _ := open(t)
	ctx := context.Background()
	accept := func(src, id string, at time.Time) int64 {
		t.Helper()
		r, err := in.Accept(ctx, inbox.AcceptParams{Source: src, WebhookID: id, Type: "t", Body: []byte("{}"),
			ReceivedAt: at, ExpireAt: at.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return r.Seq
	}
	t0 := suiteNow
	accept("a", "old", t0.Add(-time.Hour))
	accept("b", "other", t0)
	first := accept("a", "at", t0)
	accept("b", "other2", t0.Add(time.Minute))
	accept("a", "later", t0.Add(time.Minute))
	check := func(src string, at time.Time, wantFrom, wantN int64) {
		t.Helper()
		from, n, err := in.Since(ctx, src, at)
		if err != nil {
			t.Fatal(err)
		}
		if from != wantFrom || n != wantN {
			t.Errorf("Since(%s, %s) = %d, %d; want %d, %d", src, at.Sub(t0), from, n, wantFrom, wantN)
		}
		// After reads the replay's first event first.
		if evs, _, err := in.After(ctx, src, from, 1); err != nil || (n > 0) != (len(evs) == 1) {
			t.Errorf("After(%s, %d) = %v, %v", src, from, evs, err)
		}
	}
	check("a", t0, first-1, 2)
	check("a", t0.Add(-2*time.Hour), first-3, 3) // from before the source's first event
	last, err := in.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("a", t0.Add(time.Hour), last, 0) // nothing since: the log's end
	check("c", t0, last, 0)                // no such source
}

func testInboxDedupe(t *testing.T, open Opener) {
	in, _ := open(t)
	now := suiteNow
	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh := map[string]int{}
	seqs := map[string]map[int64]bool{}
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("msg_%d", i%50)
			r := Accept(t, in, "a", id, now.Add(time.Hour))
			mu.Lock()
			defer mu.Unlock()
			if !r.Duplicate {
				fresh[id]++
			}
			if seqs[id] == nil {
				seqs[id] = map[int64]bool{}
			}
			seqs[id][r.Seq] = true
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
		if len(seqs[id]) != 1 {
			t.Errorf("%s got several seqs: %v", id, seqs[id])
		}
	}
	// Same id, other source: not a duplicate.
	if r := Accept(t, in, "b", "msg_1", now.Add(time.Hour)); r.Duplicate {
		t.Error("dedupe crosses sources")
	}
}

// testInboxConcurrentLog accepts from many goroutines (with duplicates,
// across two sources) while a reader per source follows the log the way
// forwarders do (Changed, then After). Each reader must see every event of
// its source exactly once and in Seq order: an event committed behind a
// reader's position would be missed.
func testInboxConcurrentLog(t *testing.T, open Opener) {
	in, _ := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const writers, perWriter, ids = 16, 60, 400
	sources := []string{"a", "b"}

	type got struct {
		seqs []int64
		ids  map[string]int
	}
	results := make([]got, len(sources))
	stop := make(chan struct{}) // closed when writing is done
	var last int64              // LastSeq after writing; read after stop
	var readers sync.WaitGroup
	for i, src := range sources {
		readers.Add(1)
		go func() {
			defer readers.Done()
			res := got{ids: map[string]int{}}
			defer func() { results[i] = res }()
			pos := int64(0)
			done := false
			for {
				changed := in.Changed()
				evs, next, err := in.After(ctx, src, pos, 7) // a small page: many reads
				if err != nil {
					t.Errorf("After: %v", err)
					return
				}
				for _, e := range evs {
					if e.Source != src {
						t.Errorf("After(%s) returned an event of %s", src, e.Source)
					}
					res.seqs = append(res.seqs, e.Seq)
					res.ids[e.WebhookID]++
				}
				if next < pos {
					t.Errorf("After moved back from %d to %d", pos, next)
				}
				pos = next
				if done && pos >= last {
					return
				}
				if len(evs) > 0 {
					continue
				}
				select {
				case <-changed:
				case <-stop:
					done = true
				case <-ctx.Done():
					t.Errorf("reader of %s stuck at %d", src, pos)
					return
				}
			}
		}()
	}

	// What the inbox promises: exactly one fresh accept per id, and every
	// accept of an id reports the same Seq. (Which of two concurrent
	// accepts of one id is the fresh one is up to the writer; the order in
	// which their callers return is up to the scheduler.)
	var mu sync.Mutex
	accepts := map[string][]inbox.AcceptResult{} // "source/id" → its accepts
	var writersWG sync.WaitGroup
	for w := range writers {
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			for i := range perWriter {
				n := (w*perWriter + i) * 7919 % ids // spread, with repeats
				src := sources[n%len(sources)]
				id := fmt.Sprintf("msg_%d", n)
				r, err := in.Accept(ctx, inbox.AcceptParams{Source: src, WebhookID: id, Type: "t",
					Body: []byte(id), ReceivedAt: suiteNow, ExpireAt: suiteNow.Add(time.Hour)})
				if err != nil {
					t.Errorf("Accept: %v", err)
					return
				}
				mu.Lock()
				accepts[src+"/"+id] = append(accepts[src+"/"+id], r)
				mu.Unlock()
			}
		}()
	}
	writersWG.Wait()
	fresh := map[string]int64{} // "source/id" → seq of its new accept
	for key, rs := range accepts {
		for _, r := range rs {
			if r.Seq != rs[0].Seq {
				t.Errorf("%s: accepts report seqs %+v", key, rs)
				break
			}
			if !r.Duplicate {
				if _, ok := fresh[key]; ok {
					t.Errorf("%s: accepted fresh twice: %+v", key, rs)
				}
				fresh[key] = r.Seq
			}
		}
		if _, ok := fresh[key]; !ok {
			t.Errorf("%s: every accept is a duplicate: %+v", key, rs)
		}
	}
	var err error
	if last, err = in.LastSeq(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	readers.Wait()

	for i, src := range sources {
		res := results[i]
		if !slices.IsSorted(res.seqs) {
			t.Errorf("%s: events out of order", src)
		}
		want := 0
		for key, seq := range fresh {
			if key[:len(src)+1] != src+"/" {
				continue
			}
			want++
			id := key[len(src)+1:]
			if res.ids[id] != 1 {
				t.Errorf("%s: %s (seq %d) read %d times", src, id, seq, res.ids[id])
			}
		}
		if len(res.seqs) != want {
			t.Errorf("%s: read %d events, want %d", src, len(res.seqs), want)
		}
	}
	// A fresh read from the start returns the same log.
	for _, src := range sources {
		evs, _, err := in.After(ctx, src, 0, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for key := range fresh {
			if key[:len(src)+1] == src+"/" {
				n++
			}
		}
		if len(evs) != n {
			t.Errorf("%s: After(0) returned %d events, want %d", src, len(evs), n)
		}
	}
}

func testInboxDurability(t *testing.T, open Opener) {
	ctx := context.Background()
	now := suiteNow
	in, reopen := open(t)
	changed := in.Changed()
	r1 := Accept(t, in, "a", "m1", now.Add(-time.Second)) // already expired
	select {
	case <-changed:
	default:
		t.Error("Changed not closed by an accept")
	}
	r2 := Accept(t, in, "b", "m2", now.Add(time.Hour))
	r3 := Accept(t, in, "a", "m3", now.Add(time.Hour))
	if !(r1.Seq < r2.Seq && r2.Seq < r3.Seq) {
		t.Errorf("seqs not increasing: %d %d %d", r1.Seq, r2.Seq, r3.Seq)
	}
	evs, next, err := in.After(ctx, "a", 0, 10)
	if err != nil || len(evs) != 2 || evs[0].Seq != r1.Seq || evs[1].Seq != r3.Seq || next < r3.Seq {
		t.Fatalf("After = %v, %d, %v", evs, next, err)
	}
	if evs[0].Header.Get("Webhook-Id") != "m1" || string(evs[0].Body) != `{"id":"m1"}` || evs[0].Type != "t" ||
		evs[0].WebhookID != "m1" || !evs[0].ReceivedAt.Equal(now) {
		t.Errorf("event round trip: %+v", evs[0])
	}
	if evs, next, _ := in.After(ctx, "a", 0, 1); len(evs) != 1 || next != r1.Seq {
		t.Errorf("After with limit: %v next %d", evs, next)
	}
	// A reader of a quiet source moves past what others committed.
	if evs, next, err := in.After(ctx, "quiet", 0, 10); err != nil || len(evs) != 0 || next < r3.Seq {
		t.Errorf("After of a quiet source: %v next %d (%v), want next >= %d", evs, next, err, r3.Seq)
	}
	if last, err := in.LastSeq(ctx); err != nil || last != r3.Seq {
		t.Errorf("LastSeq = %d, %v; want %d", last, err, r3.Seq)
	}
	if _, ok, _ := in.Cursor(ctx, "a/x"); ok {
		t.Error("cursor before SetCursor")
	}
	if err := in.SetCursor(ctx, "a/x", r1.Seq); err != nil {
		t.Fatal(err)
	}
	if err := in.SetCursor(ctx, "a/x", r3.Seq); err != nil {
		t.Fatal(err)
	}
	if err := in.AddRetry(ctx, inbox.RetryParams{Sink: "a/x", Seq: r1.Seq, Attempts: 1, NextAt: now, LastError: "boom"}); err != nil {
		t.Fatal(err)
	}
	due, err := in.DueRetries(ctx, "a/x", now, 10, nil)
	if err != nil || len(due) != 1 || due[0].WebhookID != "m1" || due[0].Attempts != 1 || due[0].Sink != "a/x" ||
		string(due[0].Body) != `{"id":"m1"}` || due[0].Header.Get("Webhook-Id") != "m1" {
		t.Fatalf("DueRetries = %+v, %v", due, err)
	}
	if due, _ := in.DueRetries(ctx, "a/x", now, 10, func(int64) bool { return true }); len(due) != 0 {
		t.Error("skip ignored")
	}
	// The retry pins the expired event.
	if n, err := in.Sweep(ctx, inbox.SweepParams{Now: now, Source: "a", Upto: r3.Seq, Limit: 10}); err != nil || n != 0 {
		t.Errorf("sweep with a pending retry deleted %d (%v)", n, err)
	}
	if err := in.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}

	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	in = reopen(t)
	if seq, ok, err := in.Cursor(ctx, "a/x"); err != nil || !ok || seq != r3.Seq {
		t.Errorf("cursor after reopen: %d %v %v", seq, ok, err)
	}
	if r := Accept(t, in, "a", "m3", now.Add(time.Hour)); !r.Duplicate || r.Seq != r3.Seq {
		t.Errorf("dedupe after reopen: %+v", r)
	}
	if evs, _, err := in.After(ctx, "a", 0, 10); err != nil || len(evs) != 2 {
		t.Errorf("After after reopen: %v %v", evs, err)
	}
	if p, _ := in.PendingRetries(ctx); p["a/x"] != 1 {
		t.Errorf("pending retries after reopen: %v", p)
	}
	if err := in.UpdateRetry(ctx, inbox.RetryParams{Sink: "a/x", Seq: r1.Seq, Done: true}); err != nil {
		t.Fatal(err)
	}
	if n, err := in.Sweep(ctx, inbox.SweepParams{Now: now, Source: "a", Upto: r3.Seq, Limit: 10}); err != nil || n != 1 {
		t.Errorf("sweep deleted %d (%v), want 1", n, err)
	}
	r4 := Accept(t, in, "a", "m1", now.Add(time.Hour))
	if r4.Duplicate || r4.Seq <= r3.Seq {
		t.Errorf("after sweep m1 should be new with a higher seq: %+v", r4)
	}
	if last, _ := in.LastSeq(ctx); last != r4.Seq {
		t.Errorf("LastSeq %d, want %d", last, r4.Seq)
	}
	if evs, _, err := in.After(ctx, "a", r3.Seq, 10); err != nil || len(evs) != 1 || evs[0].Seq != r4.Seq {
		t.Errorf("After past the reopen: %v %v", evs, err)
	}
}

func testInboxRetries(t *testing.T, open Opener) {
	ctx := context.Background()
	now := suiteNow
	in, _ := open(t)
	var seqs []int64
	for i := range 5 {
		seqs = append(seqs, Accept(t, in, "a", fmt.Sprintf("r%d", i), now.Add(time.Hour)).Seq)
	}
	// Due times out of Seq order; r4 is not due yet.
	at := []time.Duration{-3 * time.Second, -time.Second, -2 * time.Second, -time.Second, time.Minute}
	for i, seq := range seqs {
		if err := in.AddRetry(ctx, inbox.RetryParams{Sink: "a/x", Seq: seq, Attempts: 1, NextAt: now.Add(at[i]), LastError: "e"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.AddRetry(ctx, inbox.RetryParams{Sink: "a/y", Seq: seqs[0], Attempts: 1, NextAt: now}); err != nil {
		t.Fatal(err)
	}
	ids := func(fs []inbox.Forward) (out []string) {
		for _, f := range fs {
			out = append(out, f.WebhookID)
		}
		return out
	}
	due, err := in.DueRetries(ctx, "a/x", now, 10, nil)
	if got := ids(due); err != nil || !slices.Equal(got, []string{"r0", "r2", "r1", "r3"}) {
		t.Errorf("DueRetries = %v, %v; want oldest due first", got, err)
	}
	if due, _ := in.DueRetries(ctx, "a/x", now, 2, nil); !slices.Equal(ids(due), []string{"r0", "r2"}) {
		t.Errorf("DueRetries with limit = %v", ids(due))
	}
	skipR0 := func(seq int64) bool { return seq == seqs[0] }
	if due, _ := in.DueRetries(ctx, "a/x", now, 2, skipR0); !slices.Equal(ids(due), []string{"r2", "r1"}) {
		t.Errorf("DueRetries with skip = %v", ids(due))
	}
	// A retry pushed back, one parked as dead, one done.
	if err := in.UpdateRetry(ctx, inbox.RetryParams{Sink: "a/x", Seq: seqs[0], Attempts: 2, NextAt: now.Add(time.Hour), LastError: "again"}); err != nil {
		t.Fatal(err)
	}
	if err := in.UpdateRetry(ctx, inbox.RetryParams{Sink: "a/x", Seq: seqs[2], Attempts: 3, LastError: "gone", Dead: true}); err != nil {
		t.Fatal(err)
	}
	if err := in.UpdateRetry(ctx, inbox.RetryParams{Sink: "a/x", Seq: seqs[1], Done: true}); err != nil {
		t.Fatal(err)
	}
	if due, _ := in.DueRetries(ctx, "a/x", now.Add(24*time.Hour*365), 10, nil); !slices.Equal(ids(due), []string{"r3", "r4", "r0"}) {
		t.Errorf("DueRetries a year later = %v (dead and done ones must not come back)", ids(due))
	} else if due[2].Attempts != 2 {
		t.Errorf("attempts after UpdateRetry: %d", due[2].Attempts)
	}
	p, err := in.PendingRetries(ctx)
	if err != nil || p["a/x"] != 3 || p["a/y"] != 1 || len(p) != 2 {
		t.Errorf("PendingRetries = %v, %v", p, err)
	}
	// AddRetry of a known (seq, sink) replaces it.
	if err := in.AddRetry(ctx, inbox.RetryParams{Sink: "a/y", Seq: seqs[0], Attempts: 5, NextAt: now}); err != nil {
		t.Fatal(err)
	}
	if due, _ := in.DueRetries(ctx, "a/y", now, 10, nil); len(due) != 1 || due[0].Attempts != 5 {
		t.Errorf("AddRetry again: %+v", due)
	}
}

func testInboxSweep(t *testing.T, open Opener) {
	ctx := context.Background()
	now := suiteNow
	in, _ := open(t)
	var seqs []int64
	for i := range 6 {
		seqs = append(seqs, Accept(t, in, "a", fmt.Sprintf("s%d", i), now.Add(-time.Minute)).Seq)
	}
	b := Accept(t, in, "b", "s0", now.Add(-time.Minute))
	fresh := Accept(t, in, "a", "fresh", now.Add(time.Hour))
	last := Accept(t, in, "a", "last", now.Add(-time.Minute)) // expired, but the newest event
	// Up to seqs[3] (a lagging sink), two at a time.
	n, err := in.Sweep(ctx, inbox.SweepParams{Now: now, Source: "a", Upto: seqs[3], Limit: 2})
	if err != nil || n != 2 {
		t.Fatalf("sweep = %d, %v; want 2", n, err)
	}
	if n, _ := in.Sweep(ctx, inbox.SweepParams{Now: now, Source: "a", Upto: seqs[3], Limit: 10}); n != 2 {
		t.Errorf("second sweep deleted %d, want 2", n)
	}
	if n, _ := in.Sweep(ctx, inbox.SweepParams{Now: now, Source: "a", Upto: 1 << 62, Limit: 10}); n != 2 {
		t.Errorf("third sweep deleted %d, want the 2 left of s0-s5 (not fresh, not the newest)", n)
	}
	if got, _ := in.LastSeq(ctx); got != last.Seq {
		t.Errorf("LastSeq %d after sweeps, want %d", got, last.Seq)
	}
	// Swept webhook-ids are new again; the others are still known. (After
	// may still serve swept events from memory: they are past every
	// sink's cursor, so only a listen stream reading old events sees them.)
	for i := range 6 {
		if r := Accept(t, in, "a", fmt.Sprintf("s%d", i), now.Add(time.Hour)); r.Duplicate {
			t.Errorf("s%d: swept id still deduped", i)
		}
	}
	for _, k := range []struct {
		src, id string
		seq     int64
	}{{"a", "fresh", fresh.Seq}, {"a", "last", last.Seq}, {"b", "s0", b.Seq}} {
		if r := Accept(t, in, k.src, k.id, now.Add(time.Hour)); !r.Duplicate || r.Seq != k.seq {
			t.Errorf("%s/%s was swept: %+v", k.src, k.id, r)
		}
	}
}

func testInboxBytes(t *testing.T, open Opener) {
	ctx := context.Background()
	now := suiteNow
	in, reopen := open(t)
	id := "msg_\xff\xfe_ü"
	h := http.Header{"Webhook-Id": {id}, "X-Multi": {"one", "two\x80"}, "Content-Type": {"application/json"}}
	body := []byte{0, 1, 2, 0xff, '{', '}'}
	r, err := in.Accept(ctx, inbox.AcceptParams{Source: "a", WebhookID: id, Type: "batch.succeeded", Header: h, Body: body,
		ReceivedAt: now, ExpireAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	empty, err := in.Accept(ctx, inbox.AcceptParams{Source: "a", WebhookID: "msg_empty", ReceivedAt: now, ExpireAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	check := func(in inbox.Inbox, when string) {
		t.Helper()
		evs, _, err := in.After(ctx, "a", 0, 10)
		if err != nil || len(evs) != 2 {
			t.Fatalf("%s: After = %v, %v", when, evs, err)
		}
		e := evs[0]
		if e.WebhookID != id || string(e.Body) != string(body) || e.Type != "batch.succeeded" ||
			!slices.Equal(e.Header["X-Multi"], h["X-Multi"]) || e.Header.Get("Webhook-Id") != id {
			t.Errorf("%s: round trip: %+v", when, e)
		}
		if e := evs[1]; e.Seq != empty.Seq || len(e.Body) != 0 || len(e.Header) != 0 || e.Type != "" {
			t.Errorf("%s: empty event: %+v", when, e)
		}
	}
	check(in, "before reopen") // may come from memory
	in.Close()
	in = reopen(t)
	check(in, "after reopen") // from the store
	if r2, err := in.Accept(ctx, inbox.AcceptParams{Source: "a", WebhookID: id, ReceivedAt: now, ExpireAt: now}); err != nil || !r2.Duplicate || r2.Seq != r.Seq {
		t.Errorf("dedupe of a non-UTF-8 id: %+v, %v", r2, err)
	}
	if r2, _ := in.Accept(ctx, inbox.AcceptParams{Source: "a", WebhookID: "msg_\xff\xff_ü", ReceivedAt: now, ExpireAt: now}); r2.Duplicate {
		t.Error("ids that differ only in non-UTF-8 bytes were taken as equal")
	}
	if err := in.AddRetry(ctx, inbox.RetryParams{Sink: "a/x", Seq: r.Seq, Attempts: 1, NextAt: now, LastError: "bad \xff byte\x00"}); err != nil {
		t.Errorf("AddRetry with a non-UTF-8 error: %v", err)
	}
}

func testInboxClose(t *testing.T, open Opener) {
	ctx := context.Background()
	in, _ := open(t)
	Accept(t, in, "a", "c1", suiteNow.Add(time.Hour))
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := in.Accept(ctx, inbox.AcceptParams{Source: "a", WebhookID: "c2"}); !errors.Is(err, inbox.ErrClosed) {
		t.Errorf("Accept after Close: %v, want inbox.ErrClosed", err)
	}
	if err := in.SetCursor(ctx, "a/x", 1); !errors.Is(err, inbox.ErrClosed) {
		t.Errorf("SetCursor after Close: %v, want inbox.ErrClosed", err)
	}
	if err := in.Ping(ctx); !errors.Is(err, inbox.ErrClosed) {
		t.Errorf("Ping after Close: %v, want inbox.ErrClosed", err)
	}
}

// WaitFor polls cond until it holds, failing t after within.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}
