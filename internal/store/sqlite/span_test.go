package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestEventSweepWithoutEventIndex checks the retention sweep of events
// after migration 0011: deliveries has no index on event_id, and the
// sweep keeps an event while a delivery of it is pending by looking in
// the range of delivery ids the event records — ranges written by
// publishes, widened by Redeliver and RecoverDeliveries, and made by the
// migration for the events written before it.
func TestEventSweepWithoutEventIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "span.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()

	var idx []string
	rows, err := s.r.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'deliveries' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		idx = append(idx, n)
	}
	rows.Close()
	if got := strings.Join(idx, " "); got != "deliveries_due deliveries_webhook sqlite_autoindex_deliveries_1" {
		t.Errorf("indexes of deliveries: %s", got)
	}
	var plan strings.Builder
	rows, err = s.r.Query(`EXPLAIN QUERY PLAN SELECT e.id FROM events e WHERE e.id < '1' AND e.create_time < 1
		AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id >= e.first_delivery AND d.id <= e.last_delivery
		                AND d.event_id = e.id AND d.status = 'pending') ORDER BY e.id LIMIT 10`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	rows.Close()
	if !strings.Contains(plan.String(), "SEARCH d USING INDEX sqlite_autoindex_deliveries_1 (id>? AND id<?)") {
		t.Errorf("the sweep does not range over the deliveries' primary key:\n%s", plan.String())
	}

	p := storetest.NewProject()
	if err := s.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	hooks := []*core.Webhook{storetest.NewWebhook(p.ID), storetest.NewWebhook(p.ID)}
	for _, w := range hooks {
		if err := s.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	t0 := storetest.T0
	// Events at t0, their deliveries leased by "o". Which are completed
	// (succeeded) is up to the caller.
	publish := func(n int) []core.NewEvent {
		t.Helper()
		evs := make([]core.NewEvent, n)
		for i := range evs {
			evs[i] = storetest.NewEvent(p.ID, core.EventBatchSucceeded, t0, hooks...)
			for j := range evs[i].Deliveries {
				evs[i].Deliveries[j].LeaseOwner = "o"
				evs[i].Deliveries[j].NextAttemptTime = t0.Add(time.Minute)
			}
		}
		if _, err := s.PublishEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		return evs
	}
	complete := func(ds ...core.Delivery) {
		t.Helper()
		cs := make([]core.Completion, len(ds))
		for i, d := range ds {
			cs[i] = core.Completion{DeliveryID: d.ID, Owner: "o", Status: core.DeliverySucceeded,
				WebhookID: d.WebhookID, Success: true,
				Attempt: core.Attempt{DeliveryID: d.ID, Number: 1, Time: t0.Add(time.Second),
					URI: "https://example.com/x", StatusCode: 204}}
		}
		if err := s.CompleteDeliveries(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	span := func(eventID string) string {
		t.Helper()
		var first, last string
		if err := s.r.QueryRow(`SELECT first_delivery, last_delivery FROM events WHERE id = ?`, eventID).
			Scan(&first, &last); err != nil {
			t.Fatal(err)
		}
		return first + ".." + last
	}
	kept := func(what string, ev core.NewEvent, want bool) {
		t.Helper()
		_, err := s.GetEvent(ctx, p.ID, ev.Event.ID)
		if got := err == nil; got != want {
			t.Errorf("%s: event kept = %v (%v), want %v", what, got, err, want)
		}
	}
	cutoff := t0.Add(time.Hour)

	// A pending; B succeeded, then one of its deliveries redelivered after
	// its range was cleared (as an event written before 0011 whose
	// deliveries had all finished has none); C succeeded; D pending, its
	// second delivery's id made an hour later than the event.
	evs := publish(3)
	a, b, c := evs[0], evs[1], evs[2]
	d := storetest.NewEvent(p.ID, core.EventBatchSucceeded, t0, hooks...)
	d.Deliveries[1].ID = core.NewMessageID(t0.Add(time.Hour))
	if _, err := s.PublishEvents(ctx, []core.NewEvent{d}); err != nil {
		t.Fatal(err)
	}
	lo, hi := min(d.Deliveries[0].ID, d.Deliveries[1].ID), max(d.Deliveries[0].ID, d.Deliveries[1].ID)
	if got := span(d.Event.ID); got != lo+".."+hi {
		t.Errorf("range of D = %s, want %s..%s", got, lo, hi)
	}
	// A delivery published beside another event but naming D widens D's
	// range.
	x := storetest.NewEvent(p.ID, core.EventBatchSucceeded, t0, hooks[0])
	x.Deliveries[0].EventID = d.Event.ID
	x.Deliveries[0].ID = core.NewMessageID(t0.Add(2 * time.Hour))
	if _, err := s.PublishEvents(ctx, []core.NewEvent{x}); err != nil {
		t.Fatal(err)
	}
	if got := span(d.Event.ID); got != lo+".."+x.Deliveries[0].ID {
		t.Errorf("range of D after a delivery published with X = %s, want %s..%s", got, lo, x.Deliveries[0].ID)
	}
	if got := span(x.Event.ID); got != ".." {
		t.Errorf("range of X = %s, want none (its one delivery names D)", got)
	}
	complete(append(b.Deliveries, c.Deliveries...)...)
	if _, err := s.w.Exec(`UPDATE events SET first_delivery = '', last_delivery = '' WHERE id = ?`, b.Event.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Redeliver(ctx, p.ID, b.Deliveries[1].ID, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := span(b.Event.ID); got != b.Deliveries[1].ID+".."+b.Deliveries[1].ID {
		t.Errorf("range of B after Redeliver = %s, want its redelivered delivery's id", got)
	}
	if _, err := s.DeleteExpired(ctx, cutoff, 100); err != nil {
		t.Fatal(err)
	}
	kept("A (pending)", a, true)
	kept("B (redelivered)", b, true)
	kept("C (succeeded)", c, false)
	kept("D (pending, ids an hour apart)", d, true)

	// RecoverDeliveries widens the ranges of the events it re-queues.
	e := publish(1)[0]
	complete(e.Deliveries...)
	if _, err := s.w.Exec(`UPDATE events SET first_delivery = '', last_delivery = '' WHERE id = ?`, e.Event.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RecoverDeliveries(ctx, core.RecoverParams{ProjectID: p.ID, WebhookID: hooks[0].ID,
		Since: t0, Now: t0.Add(3 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteExpired(ctx, cutoff, 100); err != nil {
		t.Fatal(err)
	}
	kept("E (recovered)", e, true)

	// A store written before 0011 (the index back, the columns gone),
	// migrated again: pending deliveries' events get their range, others
	// none.
	f := publish(1)[0]
	complete(f.Deliveries...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	execFile(t, path,
		`CREATE INDEX deliveries_pending_event ON deliveries (event_id) WHERE status = 'pending'`,
		`ALTER TABLE events DROP COLUMN first_delivery`,
		`ALTER TABLE events DROP COLUMN last_delivery`,
		`DELETE FROM schema_migrations WHERE version = '0011_event_delivery_span'`,
	)
	if s, err = Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	lo, hi = min(a.Deliveries[0].ID, a.Deliveries[1].ID), max(a.Deliveries[0].ID, a.Deliveries[1].ID)
	if got := span(a.Event.ID); got != lo+".."+hi {
		t.Errorf("range of A after the migration = %s, want %s..%s", got, lo, hi)
	}
	if got := span(f.Event.ID); got != ".." {
		t.Errorf("range of F (no pending delivery) after the migration = %s, want none", got)
	}
	if _, err := s.DeleteExpired(ctx, cutoff, 100); err != nil {
		t.Fatal(err)
	}
	kept("A after the migration", a, true)
	kept("B after the migration", b, true)
	kept("D after the migration", d, true)
	kept("F after the migration", f, false)
}
