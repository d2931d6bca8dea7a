package storetest

import (
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/procstat"
)

// RunBenchmarks measures a driver's delivery throughput. newStore must
// return a fresh, empty store; the benchmark closes it. Each benchmark
// reports deliveries/s.
//
//   - Publish: PublishEvents of 100 events × fan-out 10 per call.
//   - ClaimComplete: claim batches of 250 and complete them (succeeded).
//   - Pipeline: publish, then claim and complete everything, per 1,000
//     deliveries.
//   - Direct: publish deliveries already leased (core.Delivery.LeaseOwner,
//     the engine's direct path) and complete them, in batches of 250.
//   - DirectSingle: the same with groups of 16 events to one webhook each,
//     as single-event publishes gather under load: what a delivery costs
//     when per-event and per-statement work is not spread over a fan-out.
//   - DirectFanout: the same with groups of 16 events to 10 webhooks each,
//     as single-event fan-out publishes gather under load: their 160
//     deliveries published leased, then completed in one call.
func RunBenchmarks(b *testing.B, newStore func(b *testing.B) core.Store) {
	const events, fanout, batch = 100, 10, 250
	perOp := float64(events * fanout)

	b.Run("Publish", func(b *testing.B) {
		bd, hooks := benchSetup(b, newStore, fanout)
		clock := T0
		b.ResetTimer()
		cpu0 := procstat.CPUTime()
		for range b.N {
			bd.publish(benchEvents(bd.p.ID, &clock, events, hooks)...)
		}
		reportDeliveries(b, int(perOp)*b.N, cpu0)
	})

	b.Run("ClaimComplete", func(b *testing.B) {
		bd, hooks := benchSetup(b, newStore, fanout)
		// Publish everything up front, outside the timer.
		clock := T0
		for range (b.N*batch + events*fanout - 1) / (events * fanout) {
			bd.publish(benchEvents(bd.p.ID, &clock, events, hooks)...)
		}
		b.ResetTimer()
		cpu0 := procstat.CPUTime()
		done := 0
		for done < b.N*batch {
			n := claimAndComplete(bd, clock, batch)
			if n == 0 {
				b.Fatalf("ran out of deliveries after %d", done)
			}
			done += n
		}
		reportDeliveries(b, done, cpu0)
	})

	b.Run("Pipeline", func(b *testing.B) {
		bd, hooks := benchSetup(b, newStore, fanout)
		clock := T0
		b.ResetTimer()
		cpu0 := procstat.CPUTime()
		done := 0
		for range b.N {
			bd.publish(benchEvents(bd.p.ID, &clock, events, hooks)...)
			for {
				n := claimAndComplete(bd, clock, batch)
				if n == 0 {
					break
				}
				done += n
			}
		}
		reportDeliveries(b, done, cpu0)
	})

	b.Run("Direct", func(b *testing.B) {
		bd, hooks := benchSetup(b, newStore, fanout)
		clock := T0
		b.ResetTimer()
		cpu0 := procstat.CPUTime()
		done := 0
		for range b.N {
			evs := benchEvents(bd.p.ID, &clock, events, hooks)
			var cs []core.Completion
			for i := range evs {
				for j := range evs[i].Deliveries {
					d := &evs[i].Deliveries[j]
					d.LeaseOwner, d.NextAttemptTime = "bench", clock.Add(time.Minute)
					cs = append(cs, succeeded(core.Claimed{Delivery: *d}, "bench", clock))
				}
			}
			bd.publish(evs...)
			for len(cs) > 0 {
				n := min(batch, len(cs))
				bd.complete(cs[:n]...)
				cs = cs[n:]
				done += n
			}
		}
		reportDeliveries(b, done, cpu0)
	})

	b.Run("DirectSingle", benchDirect(newStore, 1, 0))
	b.Run("DirectFanout", benchDirect(newStore, fanout, 0))
	b.Run("DirectFanoutPolled", benchDirect(newStore, fanout, 25))
}

// benchDirect publishes groups of 16 events to hooks webhooks each, their
// deliveries already leased (the engine's direct path), and completes them
// all in one call. With poll > 0, every poll groups a claim finds nothing
// due, as the engine's claim loop polls the store while the direct path
// takes every delivery (one claim a second: 250 fan-out groups of 160 at
// 40,000 deliveries/s, 25 here), at a time when every lease taken so far
// has expired (SQLite sweeps the lease spans then, see its migration
// 0012).
func benchDirect(newStore func(b *testing.B) core.Store, hooks, poll int) func(b *testing.B) {
	return func(b *testing.B) {
		bd, ws := benchSetup(b, newStore, hooks)
		clock := T0
		b.ResetTimer()
		cpu0 := procstat.CPUTime()
		done := 0
		for i := range b.N {
			evs := benchEvents(bd.p.ID, &clock, 16, ws)
			cs := make([]core.Completion, 0, 16*hooks)
			for i := range evs {
				for j := range evs[i].Deliveries {
					d := &evs[i].Deliveries[j]
					d.LeaseOwner, d.NextAttemptTime = "bench", clock.Add(time.Minute)
					cs = append(cs, succeeded(core.Claimed{Delivery: *d}, "bench", clock))
				}
			}
			bd.publish(evs...)
			bd.complete(cs...)
			done += len(cs)
			if poll > 0 && (i+1)%poll == 0 {
				if got := bd.claim("bench", clock.Add(time.Minute), 100); len(got) != 0 {
					b.Fatalf("claimed %d completed deliveries", len(got))
				}
			}
		}
		reportDeliveries(b, done, cpu0)
	}
}

func benchSetup(b *testing.B, newStore func(b *testing.B) core.Store, hooks int) (*bundle, []*core.Webhook) {
	bd := setup(b, newStore(b))
	ws := make([]*core.Webhook, hooks)
	for i := range ws {
		ws[i] = bd.webhook("")
	}
	return bd, ws
}

// benchEvents makes n events to every hook, advancing *clock by 100 µs per
// event so that ids grow as they do in production.
func benchEvents(projectID string, clock *time.Time, n int, hooks []*core.Webhook) []core.NewEvent {
	evs := make([]core.NewEvent, n)
	for i := range evs {
		*clock = clock.Add(100 * time.Microsecond)
		evs[i] = NewEvent(projectID, core.EventBatchSucceeded, *clock, hooks...)
	}
	return evs
}

// claimAndComplete claims up to limit deliveries due at now, completes
// them as succeeded in one call and returns how many there were.
func claimAndComplete(bd *bundle, now time.Time, limit int) int {
	cs := bd.claim("bench", now, limit)
	if len(cs) == 0 {
		return 0
	}
	comps := make([]core.Completion, len(cs))
	for i, c := range cs {
		comps[i] = succeeded(c, "bench", now)
	}
	bd.complete(comps...)
	return len(cs)
}

// reportDeliveries reports deliveries/s and the process CPU time per
// delivery since cpu0: the second is what to compare between runs on a
// shared machine, where wall time swings with the neighbours' load.
func reportDeliveries(b *testing.B, n int, cpu0 time.Duration) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "deliveries/s")
	if cpu := procstat.CPUTime() - cpu0; cpu > 0 && n > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/delivery")
	}
}
