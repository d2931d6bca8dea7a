package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestDatabaseRestart restarts PostgreSQL (pg_ctl restart -m fast) under a
// stream of publishes: every publish that returned nil is claimable and
// completable afterwards, publishing resumes (the pool replaces its dead
// connections), and the wake listener of another store reconnects.
func TestDatabaseRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private PostgreSQL server")
	}
	pg := pgtest.Start(t)
	ctx := context.Background()
	logs := &countingHandler{}
	openPrivate := func() *Store {
		s, err := Open(ctx, pg.URL, Options{Migrate: true, MaxConns: 4, Logger: slog.New(logs)})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	a, b := openPrivate(), openPrivate()
	f := newFixture(t, a, 1)

	// The publisher retries each event (same id, same idempotency key)
	// until a publish returns nil: an attempt whose outcome was unknown is
	// then reported as a duplicate of itself, or written now.
	var mu sync.Mutex
	accepted := map[string]bool{}
	var published, failures atomic.Int64
	publish := func(key string) error {
		ne := storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, storetest.T0, f.hooks...)
		ne.Event.IdempotencyKey = key
		for {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			res, err := a.PublishEvents(pctx, []core.NewEvent{ne})
			cancel()
			if err == nil {
				if res[0].Event.ID != ne.Event.ID {
					return fmt.Errorf("publish %s: got event %s", key, res[0].Event.ID)
				}
				mu.Lock()
				accepted[ne.Event.ID] = true
				mu.Unlock()
				published.Add(1)
				return nil
			}
			failures.Add(1)
			if !core.Sleep(ctx, 20*time.Millisecond) {
				return err
			}
		}
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := publish(fmt.Sprintf("k-%d", i)); err != nil {
				done <- err
				return
			}
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("publishes before the restart", func() bool { return published.Load() >= 100 })
	if err := pg.Ctl("restart", "-m", "fast"); err != nil {
		t.Fatalf("restart: %v", err)
	}
	after := published.Load()
	waitFor("publishes after the restart", func() bool { return published.Load() >= after+100 })
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("published %d events; %d publish calls failed, %d retries inside the driver",
		published.Load(), failures.Load(), logs.count("postgres.retry"))

	// The other store's listener is back: a publish on a wakes b, three
	// times in a row (its one post-reconnect signal cannot pass for all).
	deadline := time.Now().Add(30 * time.Second)
	for streak := 0; streak < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("the wake listener did not recover after the restart")
		}
		drain(b)
		if err := publish(fmt.Sprintf("wake-%d", time.Now().UnixNano())); err != nil {
			t.Fatal(err)
		}
		select {
		case <-b.Wake():
			streak++
		case <-time.After(time.Second):
			streak = 0
		}
	}

	waitFor("both listeners to reconnect", func() bool { return logs.count("postgres.listener_reconnected") >= 2 })

	// Everything accepted is claimable (exactly once) and completable.
	now := storetest.T0.Add(time.Hour)
	claimed := map[string]int{}
	for {
		cs, err := b.ClaimDeliveries(ctx, core.ClaimParams{Owner: "b", Now: now, Limit: 500, Lease: time.Minute})
		if err != nil {
			t.Fatalf("ClaimDeliveries: %v", err)
		}
		if len(cs) == 0 {
			break
		}
		comps := make([]core.Completion, len(cs))
		for i, c := range cs {
			claimed[c.EventID]++
			comps[i] = succeeded(c, "b", now)
		}
		if err := b.CompleteDeliveries(ctx, comps); err != nil {
			t.Fatalf("CompleteDeliveries: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range accepted {
		if claimed[id] != 1 {
			t.Errorf("accepted event %s: %d deliveries claimed, want 1", id, claimed[id])
		}
	}
	if len(claimed) != len(accepted) {
		t.Errorf("claimed deliveries of %d events, accepted %d", len(claimed), len(accepted))
	}
}

// countingHandler counts log records by message.
type countingHandler struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }

func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[string]int{}
	}
	h.n[r.Message]++
	return nil
}

func (h *countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[msg]
}
