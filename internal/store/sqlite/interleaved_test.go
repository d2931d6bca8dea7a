package sqlite

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/procstat"
	"github.com/longhook/longhook/internal/store/storetest"
)

// BenchmarkInterleaved is Store/DirectFanout as serve meets it: each
// publish group's deliveries (16 events to 10 webhooks, leased) complete
// in calls of 100 drawn at random from the deliveries of the last three
// groups, so a call completes several groups' deliveries out of id order,
// as the engine's completions of concurrent publishes arrive. With
// deferred deliveries the completion inserts the rows, where the publish
// inserted them in id order. The undeferred run is the store with
// deferral off. Compare their cpu-µs/delivery (user and system time),
// not only callgrind's instructions: on this benchmark the deferred store
// ran 28 % fewer instructions in the same CPU time (docs/benchmarks.md).
// Run one at a time (-test.bench 'Interleaved/^deferred$').
func BenchmarkInterleaved(b *testing.B) {
	for _, deferred := range []bool{true, false} {
		name := "deferred"
		if !deferred {
			name = "undeferred"
		}
		b.Run(name, func(b *testing.B) {
			deferDeliveries = deferred
			defer func() { deferDeliveries = true }()
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "b.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			p := storetest.NewProject()
			if err := s.CreateProject(ctx, p); err != nil {
				b.Fatal(err)
			}
			hooks := make([]*core.Webhook, 10)
			for i := range hooks {
				hooks[i] = storetest.NewWebhook(p.ID)
				if err := s.CreateWebhook(ctx, hooks[i]); err != nil {
					b.Fatal(err)
				}
			}
			r := rand.New(rand.NewPCG(1, 2))
			clock := storetest.T0
			var window []core.Completion
			complete := func(n int) {
				r.Shuffle(len(window), func(i, j int) { window[i], window[j] = window[j], window[i] })
				n = min(n, len(window))
				if err := s.CompleteDeliveries(ctx, window[:n]); err != nil {
					b.Fatal(err)
				}
				window = window[n:]
			}
			b.ResetTimer()
			cpu0 := procstat.CPUTime()
			for range b.N {
				evs := make([]core.NewEvent, 16)
				for i := range evs {
					clock = clock.Add(100 * time.Microsecond)
					evs[i] = storetest.NewEvent(p.ID, core.EventBatchSucceeded, clock, hooks...)
					for j := range evs[i].Deliveries {
						d := &evs[i].Deliveries[j]
						d.LeaseOwner, d.NextAttemptTime = "bench", clock.Add(time.Minute)
						window = append(window, core.Completion{DeliveryID: d.ID, Owner: "bench", ProjectID: p.ID,
							Status: core.DeliverySucceeded, WebhookID: d.WebhookID, Success: true,
							Attempt: core.Attempt{DeliveryID: d.ID, Number: 1, Time: clock, URI: "https://example.com/x",
								StatusCode: 200, Latency: 1500 * time.Microsecond, Response: []byte("ok")}})
					}
				}
				if _, err := s.PublishEvents(ctx, evs); err != nil {
					b.Fatal(err)
				}
				for len(window) > 320 { // the last two groups' deliveries wait
					complete(100)
				}
			}
			b.ReportMetric(float64((procstat.CPUTime()-cpu0).Microseconds())/float64(160*b.N), "cpu-µs/delivery")
		})
	}
}
