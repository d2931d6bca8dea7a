package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

// BenchmarkClaimBehindScheduledRetries claims due first attempts (and
// completes them) with 0 or 1,000,000 retries scheduled for later in the
// table: the partial index ordered by next_attempt_time must keep the two
// equally fast.
func BenchmarkClaimBehindScheduledRetries(b *testing.B) {
	for _, backlog := range []int{0, 1_000_000} {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "backlog.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			p := storetest.NewProject()
			w := storetest.NewWebhook(p.ID)
			if err := s.CreateProject(ctx, p); err != nil {
				b.Fatal(err)
			}
			if err := s.CreateWebhook(ctx, w); err != nil {
				b.Fatal(err)
			}
			later := micros(storetest.T0.Add(time.Hour))
			if _, err := s.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
				INSERT INTO deliveries (id, event_id, project_id, webhook_id, dest, event_type, status, queue,
					attempts, next_attempt_time, schedule_start, create_time, update_time)
				SELECT printf('msg_backlog%09d', i), 'evt_backlog', ?, ?, ?, 'batch.succeeded', 'pending', 1,
					1, ? + i, ?, ?, ? FROM n`,
				backlog, p.ID, w.ID, w.ID, later, later, later, later); err != nil && backlog > 0 {
				b.Fatal(err)
			}
			clock := storetest.T0
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				var evs []core.NewEvent
				for range 100 {
					clock = clock.Add(time.Millisecond)
					evs = append(evs, storetest.NewEvent(p.ID, core.EventBatchSucceeded, clock, w))
				}
				if _, err := s.PublishEvents(ctx, evs); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				cs, err := s.ClaimDeliveries(ctx, core.ClaimParams{Owner: "o", Now: clock, Limit: 100, Lease: time.Minute})
				if err != nil || len(cs) != 100 {
					b.Fatalf("claimed %d, %v", len(cs), err)
				}
			}
		})
	}
}
