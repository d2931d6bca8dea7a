package leader

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/longhook/longhook/internal/clocktest"
	"github.com/longhook/longhook/internal/store/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("database/sql.(*DB).connectionOpener"))
}

// counting is the real SQLite store, counting lease acquisitions so a
// test can wait for a renewal.
type counting struct {
	*sqlite.Store
	acquires atomic.Int64
}

func (c *counting) AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error) {
	ok, err := c.Store.AcquireLease(ctx, name, owner, now, ttl)
	c.acquires.Add(1)
	return ok, err
}

const ttl = time.Second // the lease under --time-scale 600 and more

type fixture struct {
	store  *counting
	clock  *clocktest.Clock
	leader *Leader
	// started is signalled when the blocking task runs; release ends it.
	started  chan struct{}
	release  chan struct{}
	taskErr  chan error // the blocking task's ctx error when it returned
	after    atomic.Bool
	leaderCh chan bool
}

// setup builds a leader whose round runs one task that blocks until
// released or until its context ends, and a second task after it.
func setup(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{store: &counting{Store: st}, clock: clocktest.New(time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC)),
		started: make(chan struct{}), release: make(chan struct{}), taskErr: make(chan error, 1), leaderCh: make(chan bool, 10)}
	f.leader = New(Config{Store: f.store, Clock: f.clock, Owner: "a", LeaseTTL: ttl, Interval: time.Hour,
		OnLeader: func(v bool) { f.leaderCh <- v },
		Tasks: []Task{
			{Name: "slow", Run: func(ctx context.Context, _ time.Time) error {
				close(f.started)
				select {
				case <-f.release:
					f.taskErr <- nil
				case <-ctx.Done():
					f.taskErr <- ctx.Err()
				}
				return nil
			}},
			{Name: "after", Run: func(context.Context, time.Time) error { f.after.Store(true); return nil }},
		}})
	return f
}

// round runs one round in the background; the channel closes when it ends.
func (f *fixture) round() <-chan struct{} {
	done := make(chan struct{})
	go func() { f.leader.round(context.Background()); close(done) }()
	return done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronisation
	}
}

// A round that outlives its lease renews it: past the first lease's end,
// another process still cannot take it, and the round completes.
func TestLongRoundRenewsItsLease(t *testing.T) {
	t.Parallel()
	f := setup(t)
	done := f.round()
	<-f.started
	if !<-f.leaderCh {
		t.Fatal("not leader")
	}
	t0 := f.clock.Now()
	for i := int64(1); i <= 4; i++ { // two lease lengths, half a lease at a time
		waitFor(t, "the renewal timer", func() bool { return f.clock.Pending() == 1 })
		f.clock.Advance(ttl / 2)
		waitFor(t, "the renewal", func() bool { return f.store.acquires.Load() == 1+i })
	}
	// The first lease ended at t0+ttl; the renewed one has not.
	now := f.clock.Now()
	if now.Sub(t0) < 2*ttl {
		t.Fatalf("clock at %v", now.Sub(t0))
	}
	if ok, err := f.store.Store.AcquireLease(context.Background(), LeaseName, "b", now, ttl); err != nil || ok {
		t.Fatalf("another process took the lease of a running round: %v %v", ok, err)
	}
	close(f.release)
	<-done
	if err := <-f.taskErr; err != nil || !f.after.Load() || !f.leader.IsLeader() {
		t.Fatalf("round: task error %v, later task ran %v, leader %v", err, f.after.Load(), f.leader.IsLeader())
	}
}

// A round whose lease was taken over (it expired, say during a pause of
// this process, and another took it) stops: the running task's context is
// cancelled, later tasks do not run, and leadership is given up.
func TestRoundStopsWhenItsLeaseIsLost(t *testing.T) {
	t.Parallel()
	f := setup(t)
	done := f.round()
	<-f.started
	<-f.leaderCh
	// Another process finds the lease expired (its clock is past it) and
	// takes it, before this round's renewal is due.
	later := f.clock.Now().Add(ttl + time.Millisecond)
	if ok, err := f.store.Store.AcquireLease(context.Background(), LeaseName, "b", later, ttl); err != nil || !ok {
		t.Fatalf("b acquire: %v %v", ok, err)
	}
	waitFor(t, "the renewal timer", func() bool { return f.clock.Pending() == 1 })
	f.clock.Advance(ttl / 2) // the renewal is refused
	<-done
	if err := <-f.taskErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("the running task's context: %v, want cancelled", err)
	}
	if f.after.Load() {
		t.Error("a task ran after the lease was lost")
	}
	if f.leader.IsLeader() || <-f.leaderCh {
		t.Error("still leader after losing the lease")
	}
}

// Run gives the lease up when it stops, so another process leads at once.
func TestRunReleasesTheLease(t *testing.T) {
	t.Parallel()
	f := setup(t)
	close(f.release)
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan error)
	go func() { exited <- f.leader.Run(ctx) }()
	<-f.started
	waitFor(t, "the first round", f.after.Load)
	cancel()
	if err := <-exited; err != nil {
		t.Fatal(err)
	}
	if f.leader.IsLeader() {
		t.Error("leader after Run returned")
	}
	if ok, err := f.store.Store.AcquireLease(context.Background(), LeaseName, "b", f.clock.Now(), ttl); err != nil || !ok {
		t.Fatalf("another process cannot lead after Run returned: %v %v", ok, err)
	}
}
