package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestEventSweepWithoutEventIndex is the SQLite driver's test of the same
// name, after migration 0012: deliveries has no index on event_id, and
// the retention sweep keeps an event while a delivery of it is pending by
// looking in the range of delivery ids the event records — ranges written
// by publishes, widened by Redeliver and RecoverDeliveries, and made by
// the migration for the events written before it.
func TestEventSweepWithoutEventIndex(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url, "lh_test_")
	s := open(t, url, schema)
	ctx := t.Context()
	exec := func(q string, args ...any) {
		t.Helper()
		if err := s.run(ctx, false, func(c *pgx.Conn) error { _, err := c.Exec(ctx, q, args...); return err }); err != nil {
			t.Fatal(err)
		}
	}
	var idx string
	if err := s.run(ctx, true, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM pg_indexes
			WHERE schemaname = current_schema() AND tablename = 'deliveries'`).Scan(&idx)
	}); err != nil {
		t.Fatal(err)
	}
	if idx != "deliveries_due deliveries_pkey deliveries_webhook" {
		t.Errorf("indexes of deliveries: %s", idx)
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
		if err := s.run(ctx, true, func(c *pgx.Conn) error {
			return c.QueryRow(ctx, `SELECT first_delivery, last_delivery FROM events WHERE id = $1`, eventID).
				Scan(&first, &last)
		}); err != nil {
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
	// its range was cleared (as an event written before 0012 whose
	// deliveries had all finished has none); C succeeded; D pending, its
	// second delivery's id made an hour later than the event, published in
	// one call with Y, whose one delivery names D.
	evs := publish(3)
	a, b, c := evs[0], evs[1], evs[2]
	d := storetest.NewEvent(p.ID, core.EventBatchSucceeded, t0, hooks...)
	d.Deliveries[1].ID = core.NewMessageID(t0.Add(time.Hour))
	y := storetest.NewEvent(p.ID, core.EventBatchSucceeded, t0, hooks[0])
	y.Deliveries[0].EventID = d.Event.ID
	y.Deliveries[0].ID = core.NewMessageID(t0.Add(2 * time.Hour))
	if _, err := s.PublishEvents(ctx, []core.NewEvent{d, y}); err != nil {
		t.Fatal(err)
	}
	lo := min(d.Deliveries[0].ID, d.Deliveries[1].ID)
	if got := span(d.Event.ID); got != lo+".."+y.Deliveries[0].ID {
		t.Errorf("range of D = %s, want %s..%s", got, lo, y.Deliveries[0].ID)
	}
	if got := span(y.Event.ID); got != ".." {
		t.Errorf("range of Y = %s, want none (its one delivery names D)", got)
	}
	complete(append(b.Deliveries, c.Deliveries...)...)
	exec(`UPDATE events SET first_delivery = '', last_delivery = '' WHERE id = $1`, b.Event.ID)
	if _, err := s.Redeliver(ctx, p.ID, b.Deliveries[1].ID, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := span(b.Event.ID); got != b.Deliveries[1].ID+".."+b.Deliveries[1].ID {
		t.Errorf("range of B after Redeliver = %s, want its redelivered delivery's id", got)
	}
	// A redelivery inside the range changes nothing.
	before := span(a.Event.ID)
	if _, err := s.Redeliver(ctx, p.ID, a.Deliveries[0].ID, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := span(a.Event.ID); got != before {
		t.Errorf("range of A after Redeliver = %s, want %s", got, before)
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
	exec(`UPDATE events SET first_delivery = '', last_delivery = '' WHERE id = $1`, e.Event.ID)
	if _, _, err := s.RecoverDeliveries(ctx, core.RecoverParams{ProjectID: p.ID, WebhookID: hooks[0].ID,
		Since: t0, Now: t0.Add(3 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got := span(e.Event.ID); got != e.Deliveries[0].ID+".."+e.Deliveries[0].ID {
		t.Errorf("range of E after RecoverDeliveries = %s, want its recovered delivery's id", got)
	}
	if _, err := s.DeleteExpired(ctx, cutoff, 100); err != nil {
		t.Fatal(err)
	}
	kept("E (recovered)", e, true)

	// The sweep looks for pending deliveries through the primary key, also
	// with many pending.
	for range 20 {
		publish(100)
	}
	exec(`ANALYZE deliveries; ANALYZE events`)
	var plan strings.Builder
	if err := s.run(ctx, true, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `EXPLAIN SELECT e.id FROM events e WHERE e.id < 'z' AND e.create_time < now()
			AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id >= e.first_delivery AND d.id <= e.last_delivery
			                AND d.event_id = e.id AND d.status = 'pending') ORDER BY e.id LIMIT 10`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return err
			}
			plan.WriteString(line + "\n")
		}
		return rows.Err()
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.String(), "deliveries_pkey") {
		t.Errorf("the sweep does not range over the deliveries' primary key:\n%s", plan.String())
	}

	// A store written before 0012 (the index back, the columns gone),
	// migrated again: pending deliveries' events get their range, others
	// none.
	f := publish(1)[0]
	complete(f.Deliveries...)
	exec(`CREATE INDEX deliveries_pending_event ON deliveries (event_id) WHERE status = 'pending';
		ALTER TABLE events DROP COLUMN first_delivery, DROP COLUMN last_delivery;
		DELETE FROM schema_migrations WHERE version = '0012_event_delivery_span'`)
	_ = s.Close()
	s = open(t, url, schema)
	lo, hi := min(a.Deliveries[0].ID, a.Deliveries[1].ID), max(a.Deliveries[0].ID, a.Deliveries[1].ID)
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
