package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestShortRowsWriteSameRows writes the same events, deliveries and
// completions with the short and fan statements, with the short ones
// without the fan ones, and with the full ones only, and compares every
// row of the tables they write: the short and fan statements must store
// exactly what the full ones do.
func TestShortRowsWriteSameRows(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)
	p := storetest.NewProject()
	w := storetest.NewWebhook(p.ID)
	w.CreateTime, w.UpdateTime = at, at
	w.Secrets[0].CreateTime = at

	plain := storetest.NewEvent(p.ID, core.EventBatchSucceeded, at, w)
	plain.Deliveries[0].LeaseOwner, plain.Deliveries[0].NextAttemptTime = "eng", at.Add(time.Minute)
	keyed := storetest.NewEvent(p.ID, core.EventBatchSucceeded, at.Add(time.Millisecond), w)
	keyed.Event.IdempotencyKey, keyed.Event.TraceParent = "k1", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	dynamic := storetest.NewDynamicEvent(p.ID, at.Add(2*time.Millisecond), "https://a.example/x", "https://b.example/y")
	dynamic.Deliveries[0].LeaseOwner, dynamic.Deliveries[0].NextAttemptTime = "eng", at.Add(time.Minute)
	old := storetest.NewEvent(p.ID, core.EventBatchSucceeded, at.Add(3*time.Millisecond), w)
	d := &old.Deliveries[0]
	d.Attempts, d.LastStatusCode, d.LastError = 2, 503, "http_status: HTTP 503"
	d.ScheduleStart, d.UpdateTime = at.Add(-time.Hour), at.Add(-time.Minute)
	skipped := storetest.NewEvent(p.ID, core.EventBatchSucceeded, at.Add(4*time.Millisecond), w)
	skipped.Deliveries[0].Status = core.DeliverySkipped
	// Fan-outs, leased and not, of more event types than maxFans: the
	// deliveries of the last types take the short statement.
	w2, w3 := storetest.NewWebhook(p.ID), storetest.NewWebhook(p.ID)
	w2.CreateTime, w2.UpdateTime, w2.Secrets[0].CreateTime = at, at, at
	w3.CreateTime, w3.UpdateTime, w3.Secrets[0].CreateTime = at, at, at
	evs := []core.NewEvent{plain, keyed, dynamic, old, skipped}
	for i, typ := range []string{core.EventBatchSucceeded, core.EventBatchFailed, core.EventBatchSucceeded,
		core.EventVideoGenerated, core.EventBatchExpired, core.EventVideoFailed, core.EventBatchCancelled} {
		ev := storetest.NewEvent(p.ID, typ, at.Add(time.Duration(5+i)*time.Millisecond), w, w2, w3)
		if i%2 == 0 {
			for j := range ev.Deliveries {
				ev.Deliveries[j].LeaseOwner, ev.Deliveries[j].NextAttemptTime = "eng", at.Add(time.Minute)
			}
		}
		evs = append(evs, ev)
	}

	owner := func(d core.Delivery) string { return d.LeaseOwner }
	attempt := func(d core.Delivery, code int, errText string, body string) core.Attempt {
		a := core.Attempt{DeliveryID: d.ID, Number: d.Attempts + 1, Time: at.Add(time.Second), URI: "https://example.com/x",
			StatusCode: code, Latency: 1500 * time.Microsecond, Error: errText}
		if body != "" {
			a.Response = []byte(body)
		}
		return a
	}
	pd, kd, dd, od := plain.Deliveries[0], keyed.Deliveries[0], dynamic.Deliveries[0], old.Deliveries[0]
	cs := []core.Completion{
		{DeliveryID: pd.ID, Owner: owner(pd), Status: core.DeliverySucceeded, WebhookID: w.ID, Success: true,
			Attempt: attempt(pd, 204, "", "")},
		{DeliveryID: kd.ID, Owner: "other", Status: core.DeliverySucceeded, WebhookID: w.ID, Success: true,
			Attempt: attempt(kd, 200, "", "ok")},
		{DeliveryID: dd.ID, Owner: owner(dd), Status: core.DeliveryPending, NextAttemptTime: at.Add(time.Hour),
			Attempt: attempt(dd, 500, "http_status: HTTP 500", "")},
		{DeliveryID: od.ID, Owner: "", Status: core.DeliveryFailed, WebhookID: w.ID,
			Attempt: attempt(od, 0, "timeout", "")},
	}

	dump := func(short, fan bool) map[string][][]any {
		t.Helper()
		// The plain and the dynamic event's first delivery are inserted
		// leased by "eng": their completions change them, the others'
		// only record their attempts.
		s := writeRows(t, short, fan, []core.Project{p}, []*core.Webhook{w, w2, w3}, evs, cs)
		return dumpTables(t, s)
	}
	fan, short, full := dump(true, true), dump(true, false), dump(false, false)
	for table, want := range full {
		if len(want) == 0 {
			t.Errorf("%s: no rows written", table)
		}
		if got := short[table]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: short statements wrote\n%v\nfull statements wrote\n%v", table, got, want)
		}
		if got := fan[table]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: fan and short statements wrote\n%v\nfull statements wrote\n%v", table, got, want)
		}
	}
}

// rowsOf reads every row of query as printed values with their types, so
// that NULL, an empty text and an empty blob differ.
func rowsOf(t *testing.T, db *sql.DB, query string) [][]any {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]any, len(vals))
		for i, v := range vals {
			row[i] = fmt.Sprintf("%T %v", v, v)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// writeRows opens a new store and writes projects, webhooks, the events
// published in one call and the completions, with the short and the fan
// statements on or off (the full statements otherwise); the store closes
// when t ends.
func writeRows(t *testing.T, short, fan bool, ps []core.Project, hooks []*core.Webhook, evs []core.NewEvent, cs []core.Completion) *Store {
	t.Helper()
	ctx := context.Background()
	shortRows, fanRows = short, fan
	defer func() { shortRows, fanRows = true, true }()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, p := range ps {
		if err := s.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range hooks {
		if err := s.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PublishEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteDeliveries(ctx, cs); err != nil {
		t.Fatal(err)
	}
	return s
}

// dumpTables reads every row of the tables publishing and completing
// write, for comparing two stores.
func dumpTables(t *testing.T, s *Store) map[string][][]any {
	t.Helper()
	out := map[string][][]any{}
	for _, table := range []string{"events", "deliveries", "attempts", "stats"} {
		out[table] = rowsOf(t, s.w, `SELECT * FROM `+table+` ORDER BY 1, 2, 3`)
	}
	return out
}
