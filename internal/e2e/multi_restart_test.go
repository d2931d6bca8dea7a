package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/pgtest"
)

// Database-restart test parameters.
const (
	// restartMaxEvents sizes the receiver; publishing stops well before.
	restartMaxEvents = 50000
	// restartBefore and restartAfter are how many events must be accepted
	// before the restart and after it.
	restartBefore, restartAfter = 300, 300
	restartPublishers           = 4
	restartBatch                = 10
)

// TestMultiPostgresRestart: two serve instances on a private PostgreSQL
// server; publishers spread events over both, retrying refused calls,
// while the server is restarted (pg_ctl restart -m fast). The instances
// ride it out without being restarted themselves: they keep answering
// /healthz, publishes succeed again on each of them, and every event whose
// publish got a 2xx reaches the receiver. Attempts in flight during the
// restart may be made twice (their completion could not be recorded), so
// duplicates are reported, not failed.
func TestMultiPostgresRestart(t *testing.T) {
	t.Parallel()
	pgtest.URL(t) // a PostgreSQL test like the others: skip without one
	if testing.Short() {
		t.Skip("starts a private PostgreSQL server")
	}
	pg := pgtest.Start(t)
	procs := startCluster(t, 2, pg.URL, "--lease", "20s", "--time-scale", "60")
	clients := []*apiClient{procs[0].client(t), procs[1].client(t)}
	rcv := newSeqReceiver(t, restartMaxEvents)
	clients[0].createWebhook(t, rcv.srv.URL+"/restart", "batch.succeeded")

	// Publishers take consecutive ranges of seqs until told to stop.
	pub := newSpreadPublisher("restart-", restartMaxEvents, clients...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop := make(chan struct{})
	var (
		mu      sync.Mutex
		nextSeq int
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		select {
		case <-stop:
			return 0, false
		default:
		}
		if nextSeq+restartBatch > restartMaxEvents {
			return 0, false
		}
		start := nextSeq
		nextSeq += restartBatch
		return start, true
	}
	var wg sync.WaitGroup
	errs := make(chan error, restartPublishers)
	for i := range restartPublishers {
		wg.Go(func() {
			for {
				start, ok := take()
				if !ok {
					return
				}
				n := restartBatch
				if i == 0 { // one publisher sends singles
					n = 1
				}
				if err := pub.publish(ctx, start, n); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}
	stopPublishers := func() {
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}

	if !pub.waitAccepted(ctx, restartBefore) {
		stopPublishers()
		t.Fatalf("only %d events accepted before the restart", pub.nAccepted.Load())
	}
	perClient := []int64{pub.perClient[0].Load(), pub.perClient[1].Load()}
	retries := pub.retries.Load()
	restartStart := time.Now()
	if err := pg.Ctl("restart", "-m", "fast"); err != nil {
		stopPublishers()
		t.Fatalf("pg_ctl restart: %v", err)
	}
	restartTook := time.Since(restartStart)
	atRestart := pub.nAccepted.Load()
	ok := pub.waitAccepted(ctx, atRestart+restartAfter)
	stopPublishers()
	if !ok {
		t.Fatalf("publishing did not resume after the restart: %d accepted before, %d now", atRestart, pub.nAccepted.Load())
	}
	resumed := time.Since(restartStart)

	for i, s := range procs {
		if !running(s) {
			t.Fatalf("instance %d exited after the database restart:\n%s", i, s.Logs())
		}
		hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
		err := healthz(hctx, clients[i])
		hcancel()
		if err != nil {
			t.Errorf("instance %d after the restart: %v", i, err)
		}
		if n := pub.perClient[i].Load() - perClient[i]; n == 0 {
			t.Errorf("instance %d accepted no publish after the restart", i)
		}
		// A publish straight to this instance succeeds at the first try.
		mu.Lock()
		seq := nextSeq
		nextSeq++
		mu.Unlock()
		ok, err := publishIdempotent(ctx, clients[i], "restart-", seq, 1)
		if err != nil || !ok {
			t.Errorf("instance %d: publish after the restart not accepted (err %v)", i, err)
		} else {
			pub.accepted[seq].Store(true)
			pub.nAccepted.Add(1)
		}
	}

	missing := waitDelivered(multiDrain, pub.accepted, rcv)[0]
	receipts, distinct := rcv.stats()
	t.Logf("pg_ctl restart took %v; publishing resumed %v after it began; %d events accepted (%d publish retries during the restart); %d receipts, %d duplicates",
		restartTook.Round(time.Millisecond), resumed.Round(time.Millisecond), pub.nAccepted.Load(),
		pub.retries.Load()-retries, receipts, receipts-distinct)
	if len(missing) > 0 {
		t.Fatalf("%d accepted events never arrived within %v; first: %v", len(missing), multiDrain, missing[:min(len(missing), 20)])
	}
}
