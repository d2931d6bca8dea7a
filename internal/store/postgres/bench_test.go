package postgres

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/procstat"
	"github.com/longhook/longhook/internal/store/storetest"
)

// claimComplete claims up to limit deliveries as owner, completes them as
// succeeded in one call and returns how many there were.
func claimComplete(tb testing.TB, s *Store, owner string, limit int) int {
	now := storetest.T0.Add(time.Second)
	cs, err := s.ClaimDeliveries(tb.Context(), core.ClaimParams{Owner: owner, Now: now, Limit: limit, Lease: time.Minute})
	if err != nil {
		tb.Fatalf("ClaimDeliveries: %v", err)
	}
	if len(cs) == 0 {
		return 0
	}
	comps := make([]core.Completion, len(cs))
	for i, c := range cs {
		comps[i] = succeeded(c, owner, now)
	}
	if err := s.CompleteDeliveries(tb.Context(), comps); err != nil {
		tb.Fatalf("CompleteDeliveries: %v", err)
	}
	return len(cs)
}

// BenchmarkPublishClaimComplete measures the whole life of a delivery:
// publish (fan-out 10), claim, complete. Each op is 1,000 deliveries.
//
//   - Serial: one goroutine publishes 100 events, then claims and
//     completes batches of 250 until nothing is due.
//   - Parallel: 8 goroutines over two stores on one schema (two
//     processes, as far as the database can tell) each publish 10 events
//     and claim and complete batches of 50 until nothing is due.
func BenchmarkPublishClaimComplete(b *testing.B) {
	url := pgtest.URL(b)
	const fanout = 10

	b.Run("Serial", func(b *testing.B) {
		s := open(b, url, pgtest.Schema(b, url, "lh_test_"))
		f := newFixture(b, s, fanout)
		b.ResetTimer()
		done := 0
		for range b.N {
			f.publish(100, storetest.T0)
			for {
				n := claimComplete(b, s, "bench", 250)
				if n == 0 {
					break
				}
				done += n
			}
		}
		b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "deliveries/s")
	})

	b.Run("Parallel", func(b *testing.B) {
		schema := pgtest.Schema(b, url, "lh_test_")
		stores := []*Store{open(b, url, schema), open(b, url, schema)}
		f := newFixture(b, stores[0], fanout)
		var done atomic.Int64
		var next atomic.Int64
		b.ResetTimer()
		var wg sync.WaitGroup
		for g := range 8 {
			s := stores[g%2]
			owner := fmt.Sprintf("bench-%d", g)
			wg.Go(func() {
				for next.Add(1) <= int64(b.N)*10 {
					var evs []core.NewEvent
					for range 10 {
						evs = append(evs, storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, storetest.T0, f.hooks...))
					}
					if _, err := s.PublishEvents(b.Context(), evs); err != nil {
						b.Errorf("PublishEvents: %v", err)
						return
					}
					for {
						n := claimComplete(b, s, owner, 50)
						if n == 0 {
							break
						}
						done.Add(int64(n))
					}
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(done.Load())/b.Elapsed().Seconds(), "deliveries/s")
	})
}

// BenchmarkEngineGroups is the engine's shape on PostgreSQL: groups of 32
// single-delivery events published already leased (as the engine does
// with deliveries it attempts at once), then completed as succeeded in
// one call per group. It reports the CPU time of the store's one backend
// per delivery (db-µs/delivery; of it, in publishes: db-publish-µs) beside
// the client's. The backend's CPU is read from /proc in clock ticks, so
// the split is an estimate that needs a few hundred groups.
func BenchmarkEngineGroups(b *testing.B) {
	engineGroups(b, 32, 1)
}

// BenchmarkEngineFanout is BenchmarkEngineGroups' shape for fan-out 10:
// groups of 32 events with ten deliveries each, published leased, then
// completed as succeeded in one call per group.
func BenchmarkEngineFanout(b *testing.B) {
	engineGroups(b, 32, 10)
}

func engineGroups(b *testing.B, events, hooks int) {
	group := events * hooks
	url := pgtest.URL(b)
	s := openWith(b, url, Options{Migrate: true, Schema: pgtest.Schema(b, url, "lh_test_"), MaxConns: 1})
	f := newFixture(b, s, hooks)
	var pid int32
	if err := s.run(b.Context(), true, func(c *pgx.Conn) error {
		return c.QueryRow(b.Context(), `SELECT pg_backend_pid()`).Scan(&pid)
	}); err != nil {
		b.Fatal(err)
	}
	b.Logf("backend pid %d", pid)
	db0, err := procstat.ProcessCPU(int(pid))
	if err != nil {
		b.Skipf("backend CPU: %v", err)
	}
	cpu0 := procstat.CPUTime()
	last, pub := db0, time.Duration(0) // the backend's CPU so far, and in publishes
	b.ResetTimer()
	for range b.N {
		now := time.Now().UTC()
		evs := make([]core.NewEvent, events)
		for i := range evs {
			evs[i] = storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, now, f.hooks...)
			for j := range evs[i].Deliveries {
				evs[i].Deliveries[j].LeaseOwner = "engine"
				evs[i].Deliveries[j].NextAttemptTime = now.Add(time.Minute)
			}
		}
		if _, err := s.PublishEvents(b.Context(), evs); err != nil {
			b.Fatalf("PublishEvents: %v", err)
		}
		if t, err := procstat.ProcessCPU(int(pid)); err == nil {
			pub += t - last
			last = t
		}
		comps := make([]core.Completion, 0, group)
		for _, ne := range evs {
			for _, d := range ne.Deliveries {
				comps = append(comps, succeeded(core.Claimed{Delivery: d}, "engine", time.Now().UTC()))
			}
		}
		if err := s.CompleteDeliveries(b.Context(), comps); err != nil {
			b.Fatalf("CompleteDeliveries: %v", err)
		}
		if t, err := procstat.ProcessCPU(int(pid)); err == nil {
			last = t
		}
	}
	b.StopTimer()
	db1, err := procstat.ProcessCPU(int(pid))
	if err != nil {
		b.Fatalf("backend CPU: %v (the pool replaced its connection)", err)
	}
	n := float64(b.N * group)
	b.ReportMetric(float64((db1-db0).Microseconds())/n, "db-µs/delivery")
	b.ReportMetric(float64(pub.Microseconds())/n, "db-publish-µs/delivery")
	b.ReportMetric(float64((procstat.CPUTime()-cpu0).Microseconds())/n, "cpu-µs/delivery")
}
