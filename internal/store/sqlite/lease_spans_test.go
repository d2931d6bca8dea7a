package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestLeaseSpansMigration upgrades a database written before migration
// 0012 while deliveries inserted leased are in flight (status 'pending',
// in deliveries_due, no lease span): the lease holder still completes
// them, and one whose holder is gone is claimed after its lease.
func TestLeaseSpansMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	p := storetest.NewProject()
	if err := s.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	w := storetest.NewWebhook(p.ID)
	if err := s.CreateWebhook(ctx, w); err != nil {
		t.Fatal(err)
	}
	t0 := storetest.T0
	until := t0.Add(time.Minute)
	ne := storetest.NewEvent(p.ID, core.EventBatchSucceeded, t0, w)
	ne2 := storetest.NewEvent(p.ID, core.EventBatchSucceeded, t0, w)
	ne.Deliveries = append(ne.Deliveries, ne2.Deliveries[0])
	ne.Deliveries[1].EventID = ""
	for i := range ne.Deliveries {
		ne.Deliveries[i].LeaseOwner, ne.Deliveries[i].NextAttemptTime = "old", until
	}
	if _, err := s.PublishEvents(ctx, []core.NewEvent{ne}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// What the version before 0012 wrote for the same publish.
	execFile(t, path,
		`UPDATE deliveries SET status = 'pending' WHERE status = 'leased'`,
		`DROP TABLE lease_spans`,
		`DELETE FROM schema_migrations WHERE version = '0012_lease_spans'`,
	)
	if s, err = Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	d0, d1 := ne.Deliveries[0], ne.Deliveries[1]
	if err := s.CompleteDeliveries(ctx, []core.Completion{{DeliveryID: d0.ID, Owner: "old", ProjectID: p.ID,
		Status: core.DeliverySucceeded, WebhookID: w.ID, Success: true,
		Attempt: core.Attempt{DeliveryID: d0.ID, Number: 1, Time: t0.Add(time.Second), URI: w.URI, StatusCode: 200}}}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.GetDelivery(ctx, p.ID, d0.ID); err != nil || got.Status != core.DeliverySucceeded {
		t.Fatalf("completed by its holder after the upgrade: %+v, %v", got, err)
	}
	if next, ok, err := s.NextDueTime(ctx); err != nil || !ok || !next.Equal(until) {
		t.Errorf("NextDueTime = %v, %v, %v; want the lease expiry %v", next, ok, err, until)
	}
	claim := func(now time.Time) []core.Claimed {
		t.Helper()
		cs, err := s.ClaimDeliveries(ctx, core.ClaimParams{Owner: "new", Now: now, Limit: 10, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	if got := claim(until.Add(-time.Millisecond)); len(got) != 0 {
		t.Fatalf("claimed %d before the lease expired", len(got))
	}
	if got := claim(until); len(got) != 1 || got[0].ID != d1.ID {
		t.Fatalf("after the lease expired: claimed %d, want %s", len(got), d1.ID)
	}
}
