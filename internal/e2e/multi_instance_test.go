package e2e

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/pgtest"
)

// Multi-instance test parameters.
const (
	multiInstances  = 3
	multiPublishers = 16
	multiBatch      = 50
	// multiLease is the claim lease (--lease, the minimum serve accepts):
	// deliveries held by a killed instance are taken over after it.
	multiLease = 20 * time.Second
	// multiDrain bounds the wait for every accepted event after the
	// publishers finished (and after the kill): one lease plus a margin.
	multiDrain = multiLease + 40*time.Second
	// multiCleanEvents is the size of the run without a crash.
	multiCleanEvents = 3000
)

// multiEvents is LONGHOOK_E2E_MULTI_EVENTS, default 20000.
func multiEvents(t testing.TB) int {
	if v := os.Getenv("LONGHOOK_E2E_MULTI_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < multiBatch {
			t.Fatalf("LONGHOOK_E2E_MULTI_EVENTS=%q: want an integer ≥ %d", v, multiBatch)
		}
		return n
	}
	return 20000
}

// TestMultiInstance (issue 7, docs/contract.md §10): three serve processes share
// one PostgreSQL database; sixteen publishers spread single and batch
// publishes over them round-robin while one instance, picked at random, is
// killed with SIGKILL mid-run and not restarted. The survivors must take
// over what it had claimed once its lease expires: every event whose
// publish got a 2xx reaches both webhooks at least once. Duplicates (the
// attempts the dead instance made but never recorded) are reported, not
// failed.
func TestMultiInstance(t *testing.T) {
	t.Parallel()
	dbURL := newTestDatabase(t, pgtest.URL(t))
	r := runMulti(t, dbURL, multiEvents(t), true)
	t.Logf("%d events × 2 webhooks over %d instances, one killed -9 at %d accepted (%v into publishing, not restarted): "+
		"published in %v (%d publish retries), all delivered %v after publishing; %d receipts, %d duplicates",
		r.total, multiInstances, r.killedAt, r.killAfter.Round(time.Millisecond), r.publishTime.Round(time.Millisecond),
		r.retries, r.drainTime.Round(time.Millisecond), r.receipts, r.duplicates)
}

// TestMultiInstanceNoDuplicates: the same three-instance setup without a
// crash delivers every event to each webhook exactly once — duplicates
// happen only where a crash forces them (an attempt made but not
// recorded). Each delivery also has exactly one attempt in the database.
func TestMultiInstanceNoDuplicates(t *testing.T) {
	t.Parallel()
	dbURL := newTestDatabase(t, pgtest.URL(t))
	r := runMulti(t, dbURL, multiCleanEvents, false)
	t.Logf("%d events × 2 webhooks over %d instances: published in %v (%d publish retries), delivered %v later; %d receipts, %d duplicates, %d attempts for %d deliveries",
		r.total, multiInstances, r.publishTime.Round(time.Millisecond), r.retries, r.drainTime.Round(time.Millisecond),
		r.receipts, r.duplicates, r.attempts, r.deliveries)
	if r.duplicates != 0 {
		t.Errorf("%d duplicate receipts without a crash, want 0", r.duplicates)
	}
	if r.attempts != r.deliveries {
		t.Errorf("%d attempts recorded for %d deliveries without a crash, want one each", r.attempts, r.deliveries)
	}
}

// multiResult is what runMulti measured.
type multiResult struct {
	total                  int
	killedAt               int64         // accepted events when the instance was killed
	killAfter              time.Duration // from the first publish to the kill
	publishTime, drainTime time.Duration
	retries                int64
	receipts, duplicates   int // over both receivers
	attempts, deliveries   int // rows in the database
}

// runMulti starts three instances on dbURL, two webhooks with a counting
// receiver each, publishes total events through all instances and, with
// kill, kills one instance at a random point between 30 % and 70 % of the
// accepted events. It waits until every accepted event reached both
// receivers, stops the survivors gracefully (so that no attempt is still
// in flight when receipts are counted) and checks that the database holds
// no unfinished delivery.
func runMulti(t *testing.T, dbURL string, total int, kill bool) multiResult {
	t.Helper()
	procs := startCluster(t, multiInstances, dbURL, "--lease", multiLease.String(), "--time-scale", "60")
	clients := make([]*apiClient, len(procs))
	for i, s := range procs {
		clients[i] = s.client(t)
	}
	rcvs := []*seqReceiver{newSeqReceiver(t, total), newSeqReceiver(t, total)}
	for i, r := range rcvs {
		// Created on different instances: each sees the other's webhook.
		clients[i%len(clients)].createWebhook(t, r.srv.URL+"/multi", "batch.succeeded")
	}

	// Jobs: mostly batches of 50, about one job in five a single publish.
	type job struct{ start, n int }
	jobs := make(chan job, total)
	for seq := 0; seq < total; {
		n := min(multiBatch, total-seq)
		if rand.IntN(5) == 0 {
			n = 1
		}
		jobs <- job{seq, n}
		seq += n
	}
	close(jobs)

	pub := newSpreadPublisher("multi-", total, clients...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, multiPublishers)
	for range multiPublishers {
		wg.Go(func() {
			for j := range jobs {
				if err := pub.publish(ctx, j.start, j.n); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}

	res := multiResult{total: total}
	live := procs
	if kill {
		th := int64(total*3/10 + rand.IntN(total*4/10))
		if pub.waitAccepted(ctx, th) {
			victim := rand.IntN(len(procs))
			procs[victim].kill9()
			res.killedAt, res.killAfter = pub.nAccepted.Load(), time.Since(start)
			live = append(append([]*serveProc(nil), procs[:victim]...), procs[victim+1:]...)
			t.Logf("kill -9 instance %d at %d accepted events", victim, res.killedAt)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if kill && res.killedAt == 0 {
		t.Fatal("no instance was killed")
	}
	res.publishTime = time.Since(start)
	res.retries = pub.retries.Load()
	if got := pub.nAccepted.Load(); got != int64(total) {
		t.Fatalf("%d of %d events accepted", got, total)
	}
	for i := range clients {
		if pub.perClient[i].Load() == 0 {
			t.Errorf("instance %d accepted no publish: the publishers did not spread", i)
		}
	}

	missing := waitDelivered(multiDrain, pub.accepted, rcvs...)
	res.drainTime = time.Since(start) - res.publishTime
	for i, m := range missing {
		if len(m) > 0 {
			t.Fatalf("webhook %d: %d accepted events never arrived within %v of the last publish; first: %v",
				i, len(m), multiDrain, m[:min(len(m), 20)])
		}
	}
	conn := connectPG(t, dbURL)
	if kill {
		// The killed instance may have sent deliveries it never recorded:
		// receivers have them, the database holds them pending under its
		// lease. The survivors must finish them once the lease expires.
		waitSettled(t, conn, 2*total, multiDrain)
	}
	// Stop the survivors: no attempt is in flight when receipts are
	// counted, and they have recorded every attempt they made.
	for _, s := range live {
		stopGracefully(t, s)
	}
	for _, r := range rcvs {
		receipts, distinct := r.stats()
		res.receipts += receipts
		res.duplicates += receipts - distinct
	}

	states := deliveryStates(t, conn)
	res.deliveries = states["succeeded"]
	if res.deliveries != 2*total || len(states) != 1 {
		t.Errorf("deliveries by status: %v, want %d succeeded and nothing else", states, 2*total)
	}
	// A delivery's final success is kept in its row (inline_attempt,
	// docs/design.md "Storage"), every other attempt in attempts.
	res.attempts = queryInt(t, conn, `SELECT (SELECT count(*) FROM attempts) +
		(SELECT count(*) FROM deliveries WHERE inline_attempt > 0)`)
	if n := queryInt(t, conn, `SELECT count(*) FROM events`); n != total {
		t.Errorf("%d events stored, want %d (the idempotency keys make publish retries harmless)", n, total)
	}
	return res
}

// waitSettled waits until the database holds want deliveries, all
// succeeded, or timeout passes (the caller then reports what it holds).
func waitSettled(t testing.TB, conn *pgx.Conn, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		states := deliveryStates(t, conn)
		if (states["succeeded"] == want && len(states) == 1) || time.Now().After(deadline) {
			return
		}
		<-tick.C
	}
}
