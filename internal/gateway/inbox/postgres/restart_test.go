package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/gateway/inbox"
	"github.com/longhook/longhook/internal/gateway/inbox/inboxtest"
	"github.com/longhook/longhook/internal/pgtest"
)

// TestPostgresInboxDatabaseRestart restarts PostgreSQL under a stream of
// accepts, then stops it for a while:
//
//   - every accept that returned nil is stored (a duplicate afterwards)
//     and read back by a follower exactly once, in order;
//   - accepts resume after the restart without reopening the inbox;
//   - while the server is down, accepts fail (a 503, never a false 2xx),
//     Ping fails, and the writer reconnects at the backoff pace rather
//     than in a hot loop; it recovers by itself once the server is back.
func TestPostgresInboxDatabaseRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private PostgreSQL server")
	}
	pgtest.URL(t) // PostgreSQL tests run when asked for
	t.Parallel()
	pg := pgtest.Start(t)
	in := openPG(t, pg.URL, "gw")
	ctx := context.Background()

	var mu sync.Mutex
	accepted := map[string]int64{}
	var failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("msg_%d", next.Add(1))
				actx, cancel := context.WithTimeout(ctx, 20*time.Second)
				r, err := in.Accept(actx, inbox.AcceptParams{Source: "a", WebhookID: id, Body: []byte(id),
					ReceivedAt: time.Now(), ExpireAt: time.Now().Add(time.Hour)})
				cancel()
				if err != nil {
					failures.Add(1)
					continue
				}
				mu.Lock()
				accepted[id] = r.Seq
				mu.Unlock()
			}
		}()
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted)
	}
	inboxtest.WaitFor(t, 30*time.Second, "accepts before the restart", func() bool { return count() >= 300 })
	if err := pg.Ctl("restart", "-m", "fast"); err != nil {
		t.Fatalf("restart: %v", err)
	}
	n := count()
	inboxtest.WaitFor(t, 30*time.Second, "accepts after the restart", func() bool { return count() >= n+300 })
	close(stop)
	wg.Wait()
	if f := failures.Load(); f > 0 {
		t.Errorf("%d accepts failed across a fast restart (the writer should ride it out)", f)
	}

	// Down for a while: writes fail, Ping says so, no hot loop.
	if err := pg.Ctl("stop", "-m", "fast"); err != nil {
		t.Fatalf("stop: %v", err)
	}
	dials := in.nDials.Load()
	down := time.Now()
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err := in.Accept(actx, inbox.AcceptParams{Source: "a", WebhookID: "while_down", ReceivedAt: time.Now(), ExpireAt: time.Now().Add(time.Hour)})
	cancel()
	if err == nil {
		t.Fatal("Accept succeeded with the server stopped")
	}
	inboxtest.WaitFor(t, 15*time.Second, "the accept to fail for good", func() bool {
		_, err := in.Accept(ctx, inbox.AcceptParams{Source: "a", WebhookID: "while_down_2", ReceivedAt: time.Now(), ExpireAt: time.Now().Add(time.Hour)})
		return err != nil && !errors.Is(err, context.DeadlineExceeded)
	})
	if err := in.Ping(ctx); err == nil {
		t.Error("Ping succeeded with the server stopped")
	}
	elapsed := time.Since(down)
	if d := in.nDials.Load() - dials; d > 12+int64(elapsed/(500*time.Millisecond)) {
		t.Errorf("%d connection attempts in %s: a hot loop", d, elapsed.Round(time.Millisecond))
	}
	if err := pg.Ctl("start"); err != nil {
		t.Fatalf("start: %v", err)
	}
	inboxtest.WaitFor(t, 30*time.Second, "the inbox to recover", func() bool { return in.Ping(ctx) == nil })
	if r := inboxtest.Accept(t, in, "a", "after_recovery", time.Now().Add(time.Hour)); r.Duplicate {
		t.Errorf("accept after recovery: %+v", r)
	}

	// Everything accepted is stored once and read back in order.
	for id, seq := range accepted {
		if r := inboxtest.Accept(t, in, "a", id, time.Now().Add(time.Hour)); !r.Duplicate || r.Seq != seq {
			t.Fatalf("%s accepted at %d, now %+v", id, seq, r)
		}
	}
	seen := map[string]int{}
	pos := int64(0)
	for {
		evs, next, err := in.After(ctx, "a", pos, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Seq <= pos {
				t.Fatalf("After(%d) returned seq %d", pos, e.Seq)
			}
			pos = e.Seq
			seen[e.WebhookID]++
		}
		if len(evs) == 0 {
			break
		}
		pos = next
	}
	for id := range accepted {
		if seen[id] != 1 {
			t.Errorf("%s read %d times", id, seen[id])
		}
	}
	t.Logf("%d accepts across a restart and a stop; %d writer connection attempts in all", len(accepted), in.nDials.Load())
}
