package postgres

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestFanPublish publishes the same calls through insertFanSQL and
// through the general insert (fanPublish off), on stores with the
// caller's clock and with the database's, and compares every column of
// every row written: calls that fit the fan form (leased, not leased,
// both, scheduled, with an idempotency key repeated) take it, calls with a
// delivery that does not fit (a dynamic URI, a retry, another creation
// time, a second lease owner) take the general form whole.
func TestFanPublish(t *testing.T) {
	// Not parallel: it turns fanPublish off, which every other test's
	// publishes read.
	pgtest.URL(t) // skips without PostgreSQL
	t0 := storetest.T0
	p := storetest.NewProject()
	hooks := []*core.Webhook{storetest.NewWebhook(p.ID), storetest.NewWebhook(p.ID), storetest.NewWebhook(p.ID)}
	// calls[i].make builds call i; fits says whether it fits the fan
	// form.
	event := func(key string, hs ...*core.Webhook) core.NewEvent {
		ne := storetest.NewEvent(p.ID, core.EventBatchSucceeded, t0, hs...)
		ne.Event.IdempotencyKey = key
		return ne
	}
	lease := func(ne core.NewEvent, owner string, js ...int) core.NewEvent {
		for _, j := range js {
			ne.Deliveries[j].LeaseOwner = owner
			ne.Deliveries[j].NextAttemptTime = t0.Add(time.Minute)
		}
		return ne
	}
	calls := []struct {
		name string
		fits bool
		make func() []core.NewEvent
	}{
		{"leased", true, func() []core.NewEvent {
			return []core.NewEvent{lease(event("", hooks...), "o", 0, 1, 2), lease(event("", hooks...), "o", 0, 1, 2)}
		}},
		{"not leased", true, func() []core.NewEvent { return []core.NewEvent{event("", hooks...), event("", hooks[0])} }},
		{"some leased", true, func() []core.NewEvent {
			return []core.NewEvent{lease(event("", hooks...), "o", 1), event("", hooks[2])}
		}},
		{"scheduled", true, func() []core.NewEvent {
			ne := event("", hooks...)
			ne.Deliveries[0].NextAttemptTime = t0.Add(time.Hour)
			return []core.NewEvent{ne}
		}},
		{"no deliveries", true, func() []core.NewEvent { return []core.NewEvent{event(""), event("", hooks[0])} }},
		{"keys", true, func() []core.NewEvent {
			return []core.NewEvent{event("k1", hooks...), event("k2", hooks[0]), event("k1", hooks...)}
		}},
		{"key again", true, func() []core.NewEvent { return []core.NewEvent{event("k1", hooks...)} }},
		{"dynamic", false, func() []core.NewEvent {
			return []core.NewEvent{event("", hooks...), storetest.NewDynamicEvent(p.ID, t0, "https://a.example/x")}
		}},
		{"retry", false, func() []core.NewEvent {
			ne := event("", hooks...)
			ne.Deliveries[2].Attempts, ne.Deliveries[2].ScheduleBase = 2, 2
			return []core.NewEvent{ne}
		}},
		{"created later", false, func() []core.NewEvent {
			ne := event("", hooks...)
			ne.Deliveries[1].CreateTime = t0.Add(time.Second)
			return []core.NewEvent{ne}
		}},
		{"two owners", false, func() []core.NewEvent {
			return []core.NewEvent{lease(event("", hooks...), "o", 0), lease(event("", hooks...), "o2", 1)}
		}},
		{"failed", false, func() []core.NewEvent {
			ne := event("", hooks...)
			ne.Deliveries[0].Status = core.DeliveryFailed
			return []core.NewEvent{ne}
		}},
	}
	// run publishes every call on a fresh store and returns its rows, and
	// for each call whether it took the fan form.
	built := make([][]core.NewEvent, len(calls))
	for i, c := range calls {
		built[i] = c.make()
	}
	run := func(fan, deferred bool, open func(testing.TB, string, string) *Store) ([]string, []bool) {
		t.Helper()
		fanPublish, deferLeased = fan, deferred
		defer func() { fanPublish, deferLeased = true, true }()
		s := seededStore(t, open, p, hooks)
		var took []bool
		s.batchHook = func(kind string, b *pgx.Batch) {
			if kind == "publish" {
				took = append(took, anyFan(b))
			}
		}
		for i, c := range calls {
			if _, err := s.PublishEvents(t.Context(), built[i]); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		if err := s.settleAll(t.Context()); err != nil {
			t.Fatal(err)
		}
		return textRows(t, s, `SELECT row_to_json(x)::text FROM (
				SELECT d.*, d.next_attempt_time - d.lease_time AS lease_length,
					d.lease_time = `+zeroTime+` AS unleased, e.first_delivery, e.last_delivery, e.delivery_count
				FROM deliveries d JOIN events e ON e.id = d.event_id ORDER BY d.id) x`), took
	}
	for _, clock := range []struct {
		name string
		open func(testing.TB, string, string) *Store
	}{{"caller's clock", open}, {"database's clock", openDBClock}} {
		general, tookGeneral := run(false, false, clock.open)
		fan, tookFan := run(true, false, clock.open)
		// Deferred: the leased deliveries' rows are written by the
		// barrier (settleAll), as the publish would have written them.
		deferred, _ := run(true, true, clock.open)
		if d := normalize(deferred, clock.name != "caller's clock"); !slices.Equal(d, normalize(general,
			clock.name != "caller's clock")) {
			t.Errorf("%s: deferred and materialized rows differ from the publish's:\n%s", clock.name,
				diffRows(normalize(general, clock.name != "caller's clock"), d))
		}
		for i, c := range calls {
			if tookGeneral[i] {
				t.Errorf("%s, %s: the fan form was used with fanPublish off", clock.name, c.name)
			}
			if tookFan[i] != c.fits {
				t.Errorf("%s, %s: fan form used = %v, want %v", clock.name, c.name, tookFan[i], c.fits)
			}
		}
		g, f := normalize(general, clock.name != "caller's clock"), normalize(fan, clock.name != "caller's clock")
		if len(g) != len(f) {
			t.Fatalf("%s: %d rows through the general insert, %d through the fan form", clock.name, len(g), len(f))
		}
		for i := range g {
			if g[i] != f[i] {
				t.Errorf("%s: row %d:\ngeneral %s\nfan     %s", clock.name, i, g[i], f[i])
			}
		}
	}
}

func anyFan(b *pgx.Batch) bool {
	for _, q := range b.QueuedQueries {
		if strings.Contains(q.SQL, insertFanSQL) {
			return true
		}
	}
	return false
}

// normalize drops from rows (JSON of deliveries joined with their
// events) the columns the database's now() sets, with its clock.
func normalize(rows []string, dbClock bool) []string {
	if !dbClock {
		return rows
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		fs := strings.Split(r, ",")
		for j, f := range fs {
			if k, _, _ := strings.Cut(f, ":"); k == `"next_attempt_time"` || k == `"lease_time"` {
				fs[j] = k + ":(now)"
			}
		}
		out[i] = strings.Join(fs, ",")
	}
	return out
}

// TestLeanCompletion completes the same batches through completeLeanSQL
// and through completeSQL (leanComplete off) and compares every column of
// the deliveries and attempts written: batches of successes of one owner
// take the lean form (one of them with a lease lost, whose attempt goes to
// attempts), batches with a failure, a second owner, a delivery twice or
// an attempt with an error take the general form whole.
func TestLeanCompletion(t *testing.T) {
	// Not parallel: it turns leanComplete off, which every other test's
	// completions read.
	pgtest.URL(t) // skips without PostgreSQL
	t0 := storetest.T0
	p := storetest.NewProject()
	hooks := []*core.Webhook{storetest.NewWebhook(p.ID), storetest.NewWebhook(p.ID)}
	var evs []core.NewEvent
	for range 8 {
		ne := storetest.NewEvent(p.ID, core.EventBatchSucceeded, t0, hooks...)
		for j := range ne.Deliveries {
			ne.Deliveries[j].LeaseOwner = "o"
			ne.Deliveries[j].NextAttemptTime = t0.Add(time.Minute)
		}
		evs = append(evs, ne)
	}
	ok := func(d core.Delivery, owner string) core.Completion {
		c := succeeded(core.Claimed{Delivery: d}, owner, t0.Add(time.Second))
		c.ProjectID = p.ID
		return c
	}
	failed := func(d core.Delivery) core.Completion {
		c := ok(d, "o")
		c.Status, c.Success, c.NextAttemptTime = core.DeliveryPending, false, t0.Add(time.Hour)
		c.Attempt.StatusCode, c.Attempt.Error = 500, "server error"
		return c
	}
	batches := []struct {
		name string
		lean bool
		cs   []core.Completion
	}{
		{"successes", true, []core.Completion{ok(evs[0].Deliveries[0], "o"), ok(evs[0].Deliveries[1], "o"),
			ok(evs[1].Deliveries[0], "o")}},
		{"a lease lost", true, []core.Completion{ok(evs[1].Deliveries[1], "o"), ok(evs[0].Deliveries[0], "o")}},
		{"a failure", false, []core.Completion{ok(evs[2].Deliveries[0], "o"), failed(evs[2].Deliveries[1])}},
		{"two owners", false, []core.Completion{ok(evs[3].Deliveries[0], "o"), ok(evs[3].Deliveries[1], "x")}},
		{"twice", false, []core.Completion{ok(evs[4].Deliveries[0], "o"), ok(evs[4].Deliveries[0], "o")}},
		{"dynamic URI", true, func() []core.Completion {
			c := ok(evs[5].Deliveries[0], "o")
			c.Attempt.URI = "https://other.example/y"
			return []core.Completion{c, ok(evs[5].Deliveries[1], "o")}
		}()},
		{"no URI", false, func() []core.Completion {
			c := ok(evs[6].Deliveries[0], "o")
			c.Attempt.URI = ""
			return []core.Completion{c}
		}()},
		{"retry succeeds", true, func() []core.Completion {
			c := ok(evs[2].Deliveries[1], "")
			c.Owner = "o"
			c.Attempt.Number = 2
			return []core.Completion{c}
		}()},
	}
	run := func(lean, deferred bool) ([]string, []bool) {
		t.Helper()
		leanComplete, leanDeferred, deferLeased = lean, lean, deferred
		defer func() { leanComplete, leanDeferred, deferLeased = true, true, true }()
		s := seededStore(t, open, p, hooks)
		for _, ne := range evs { // a group each (deferred)
			if _, err := s.PublishEvents(t.Context(), []core.NewEvent{ne}); err != nil {
				t.Fatal(err)
			}
		}
		var took []bool
		s.batchHook = func(kind string, b *pgx.Batch) {
			if kind == "complete" {
				used := false
				for _, q := range b.QueuedQueries {
					used = used || q.SQL == completeLeanSQL || q.SQL == completeDeferredLeanSQL
				}
				took = append(took, used)
			}
		}
		for _, b := range batches {
			if b.name == "retry succeeds" {
				// The failed delivery's retry is due; claim it for "o".
				if _, err := s.ClaimDeliveries(t.Context(), core.ClaimParams{Owner: "o", Now: t0.Add(2 * time.Hour),
					Limit: 10, Lease: time.Minute}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.CompleteDeliveries(t.Context(), b.cs); err != nil {
				t.Fatalf("%s: %v", b.name, err)
			}
		}
		if err := s.settleAll(t.Context()); err != nil {
			t.Fatal(err)
		}
		return textRows(t, s, `SELECT row_to_json(d)::text FROM deliveries d
				UNION ALL SELECT (to_jsonb(a) - 'id')::text FROM attempts a
				ORDER BY 1`), took
	}
	general, tookGeneral := run(false, false)
	lean, tookLean := run(true, false)
	// Deferred: each completion of a delivery still deferred inserts its
	// final row (finalRow), which must be the row completeSQL leaves.
	deferred, tookDeferred := run(true, true)
	if !slices.Equal(general, deferred) {
		t.Errorf("deferred rows differ from completeSQL's:\n%s", diffRows(general, deferred))
	}
	for i, b := range batches {
		if b.lean && !tookDeferred[i] {
			t.Errorf("%s, deferred: no lean form used", b.name)
		}
	}
	// completeDeferredSQL whole (the lean forms off).
	deferredGeneral, _ := run(false, true)
	if !slices.Equal(general, deferredGeneral) {
		t.Errorf("deferred rows (completeDeferredSQL) differ from completeSQL's:\n%s", diffRows(general, deferredGeneral))
	}
	for i, b := range batches {
		if tookGeneral[i] {
			t.Errorf("%s: the lean form was used with leanComplete off", b.name)
		}
		if tookLean[i] != b.lean {
			t.Errorf("%s: lean form used = %v, want %v", b.name, tookLean[i], b.lean)
		}
	}
	if len(general) != len(lean) {
		t.Fatalf("%d rows through completeSQL, %d through the lean form", len(general), len(lean))
	}
	for i := range general {
		if general[i] != lean[i] {
			t.Errorf("row %d:\ncompleteSQL %s\nlean        %s", i, general[i], lean[i])
		}
	}
}

// diffRows lists the rows of a and b that differ.
func diffRows(a, b []string) string {
	var out []string
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			out = append(out, fmt.Sprintf("row %d:\n  want %s\n  got  %s", i, x, y))
		}
	}
	return strings.Join(out, "\n")
}
