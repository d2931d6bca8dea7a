package sqlite

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

// deferredFixture is a store at path with a project, two webhooks and
// three events to both, their six deliveries published leased by "eng"
// (deferred) with their lease expiring at until.
type deferredFixture struct {
	path  string
	p     core.Project
	ds    []core.Delivery
	until time.Time
}

func newDeferredFixture(t *testing.T) (*Store, deferredFixture) {
	t.Helper()
	ctx := context.Background()
	f := deferredFixture{path: filepath.Join(t.TempDir(), "d.db"), p: storetest.NewProject(), until: storetest.T0.Add(time.Minute)}
	s, err := Open(ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateProject(ctx, f.p); err != nil {
		t.Fatal(err)
	}
	w1, w2 := storetest.NewWebhook(f.p.ID), storetest.NewWebhook(f.p.ID)
	for _, w := range []*core.Webhook{w1, w2} {
		if err := s.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	var evs []core.NewEvent
	for i := range 3 {
		ne := storetest.NewEvent(f.p.ID, core.EventBatchSucceeded, storetest.T0.Add(time.Duration(i)*time.Millisecond), w1, w2)
		for j := range ne.Deliveries {
			ne.Deliveries[j].LeaseOwner, ne.Deliveries[j].NextAttemptTime = "eng", f.until
			f.ds = append(f.ds, ne.Deliveries[j])
		}
		evs = append(evs, ne)
	}
	if _, err := s.PublishEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if n, m := count(t, s, "deferred_deliveries"), count(t, s, "deliveries"); n != 1 || m != 0 {
		t.Fatalf("after the publish: %d records, %d rows; want 1 record, no row", n, m)
	}
	return s, f
}

func succeed(d core.Delivery, owner string, at time.Time) core.Completion {
	return core.Completion{DeliveryID: d.ID, Owner: owner, ProjectID: d.ProjectID, Status: core.DeliverySucceeded,
		WebhookID: d.WebhookID, Success: true,
		Attempt: core.Attempt{DeliveryID: d.ID, Number: 1, Time: at, URI: "https://h.example/", StatusCode: 204}}
}

// TestDeferredDeliveriesSurviveRestart publishes deferred deliveries,
// completes none or a subset of them, and closes the store without
// completing the rest (as a crash leaves the file: the records are
// there). Reopened, the store finds every delivery not completed pending
// with its lease (owner and expiry), claimable once the lease expires, and
// still completable by its holder; the completed ones as completed.
func TestDeferredDeliveriesSurviveRestart(t *testing.T) {
	for _, completeFirst := range []int{0, 3} {
		ctx := context.Background()
		s, f := newDeferredFixture(t)
		at := storetest.T0.Add(time.Second)
		var cs []core.Completion
		for _, d := range f.ds[:completeFirst] {
			cs = append(cs, succeed(d, "eng", at))
		}
		if completeFirst > 0 {
			cs[1].Status, cs[1].Success, cs[1].NextAttemptTime = core.DeliveryPending, false, at.Add(time.Hour)
			cs[1].Attempt.StatusCode, cs[1].Attempt.Error = 503, "http_status: HTTP 503"
			if err := s.CompleteDeliveries(ctx, cs); err != nil {
				t.Fatal(err)
			}
		}
		written := rowsOf(t, s.w, `SELECT * FROM deliveries ORDER BY id`)
		if len(written) != completeFirst {
			t.Fatalf("%d rows written by %d completions", len(written), completeFirst)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err := Open(ctx, f.path); err != nil {
			t.Fatal(err)
		} else {
			defer s.Close()
			checkReopened(t, s, f, completeFirst, written)
		}
	}
}

func checkReopened(t *testing.T, s *Store, f deferredFixture, completed int, written [][]any) {
	t.Helper()
	ctx := context.Background()
	if n := count(t, s, "deferred_deliveries"); n != 0 {
		t.Errorf("%d records left after Open", n)
	}
	if got := rowsOf(t, s.w, `SELECT * FROM deliveries WHERE status != 'leased' ORDER BY id`); !reflect.DeepEqual(got, written) {
		t.Errorf("completed rows changed by Open:\n%v\nwant\n%v", got, written)
	}
	for i, d := range f.ds {
		got, _, err := s.GetDelivery(ctx, f.p.ID, d.ID)
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		if i < completed {
			continue
		}
		if got.Status != core.DeliveryPending || got.LeaseOwner != "eng" || !got.NextAttemptTime.Equal(f.until) ||
			got.Attempts != 0 || !got.CreateTime.Equal(d.CreateTime) || got.WebhookID != d.WebhookID {
			t.Errorf("delivery %d after the restart: %+v; want pending, leased by eng until %v", i, got, f.until)
		}
	}
	if next, ok, err := s.NextDueTime(ctx); err != nil || !ok || !next.Equal(f.until) {
		t.Errorf("NextDueTime = %v, %v, %v; want the lease expiry %v", next, ok, err, f.until)
	}
	claim := func(now time.Time) []core.Claimed {
		t.Helper()
		cs, err := s.ClaimDeliveries(ctx, core.ClaimParams{Owner: "new", Now: now, Limit: 100, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	if got := claim(f.until.Add(-time.Millisecond)); len(got) != 0 {
		t.Fatalf("claimed %d before the lease expired", len(got))
	}
	// The holder still completes the last one (its lease is held).
	last := f.ds[len(f.ds)-1]
	if err := s.CompleteDeliveries(ctx, []core.Completion{succeed(last, "eng", f.until.Add(-time.Second))}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.GetDelivery(ctx, f.p.ID, last.ID); err != nil || got.Status != core.DeliverySucceeded {
		t.Fatalf("completed by its holder after the restart: %+v, %v", got, err)
	}
	want := len(f.ds) - completed - 1
	if got := claim(f.until); len(got) != want {
		t.Fatalf("after the lease expired: claimed %d, want %d", len(got), want)
	}
}

// TestDeferredDeliveriesSettledByAnotherStore: a second store opening the
// file (a CLI command beside serve) settles the first's records; the
// first's completions then find the rows (UPDATE path) and its readers
// see each delivery once.
func TestDeferredDeliveriesSettledByAnotherStore(t *testing.T) {
	ctx := context.Background()
	a, f := newDeferredFixture(t)
	defer a.Close()
	b, err := Open(ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n, m := count(t, a, "deferred_deliveries"), count(t, a, "deliveries"); n != 0 || m != len(f.ds) {
		t.Fatalf("after the second Open: %d records, %d rows; want none and %d", n, m, len(f.ds))
	}
	at := storetest.T0.Add(time.Second)
	// One completion empties nothing, the other call empties the group.
	if err := a.CompleteDeliveries(ctx, []core.Completion{succeed(f.ds[0], "eng", at)}); err != nil {
		t.Fatal(err)
	}
	var rest []core.Completion
	for _, d := range f.ds[1:] {
		rest = append(rest, succeed(d, "eng", at))
	}
	if err := a.CompleteDeliveries(ctx, rest); err != nil {
		t.Fatal(err)
	}
	if !a.def.empty() {
		t.Error("the first store still holds the settled group")
	}
	for _, s := range []*Store{a, b} {
		ds, err := s.ListDeliveries(ctx, core.ListDeliveriesParams{ProjectID: f.p.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != len(f.ds) {
			t.Fatalf("listed %d deliveries, want %d", len(ds), len(f.ds))
		}
		for _, d := range ds {
			if d.Status != core.DeliverySucceeded || d.Attempts != 1 || d.LeaseOwner != "" {
				t.Errorf("%s: %+v, want succeeded after one attempt", d.ID, d)
			}
		}
	}
}

// TestDeferredDeliveriesSettledByClaim: a claim settles the groups its
// lease-span sweep would sweep (expiring within its lease less a second),
// and no other; the settled rows are swept pending as a lease span's.
func TestDeferredDeliveriesSettledByClaim(t *testing.T) {
	ctx := context.Background()
	s, f := newDeferredFixture(t)
	defer s.Close()
	claim := func(now time.Time) int {
		t.Helper()
		cs, err := s.ClaimDeliveries(ctx, core.ClaimParams{Owner: "new", Now: now, Limit: 100, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	if n := claim(storetest.T0); n != 0 || count(t, s, "deferred_deliveries") != 1 {
		t.Fatalf("a claim at the publish: claimed %d, %d records; want 0 and the record kept", n, count(t, s, "deferred_deliveries"))
	}
	if n := claim(storetest.T0.Add(time.Second)); n != 0 {
		t.Fatalf("a second later: claimed %d before the lease expired", n)
	}
	if n, m := count(t, s, "deferred_deliveries"), count(t, s, "deliveries"); n != 0 || m != len(f.ds) || !s.def.empty() {
		t.Fatalf("a second later: %d records, %d rows; want the group settled", n, m)
	}
	var pending int
	if err := s.w.QueryRow(`SELECT count(*) FROM deliveries WHERE status = 'pending' AND lease_owner = 'eng'`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending != len(f.ds) {
		t.Errorf("%d rows pending and leased after the sweep, want %d", pending, len(f.ds))
	}
	if err := s.CompleteDeliveries(ctx, []core.Completion{succeed(f.ds[0], "eng", storetest.T0.Add(2*time.Second))}); err != nil {
		t.Fatal(err)
	}
	if n := claim(f.until); n != len(f.ds)-1 {
		t.Fatalf("after the lease: claimed %d, want %d", n, len(f.ds)-1)
	}
}

// TestDeferredEncoding round-trips random deliveries through a record's
// data.
func TestDeferredEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(vs ...string) string { return vs[r.IntN(len(vs))] }
	tm := func() time.Time {
		if r.IntN(5) == 0 {
			return time.Time{}
		}
		return storetest.T0.Add(time.Duration(r.Int64N(1e12)-5e11) * time.Microsecond).UTC()
	}
	for range 200 {
		ds := make([]core.Delivery, 1+r.IntN(40))
		for i := range ds {
			d := core.Delivery{ID: core.NewID(), EventID: pick("e1", "e2"), ProjectID: pick("p1", "p2"),
				WebhookID: pick("", "w1", "w2"), URI: pick("", "https://x/é"), EventType: pick("a.b", "c.d"),
				Status: core.DeliveryPending, Attempts: r.IntN(3), NextAttemptTime: tm(), Manual: r.IntN(2) == 0,
				LastStatusCode: r.IntN(600), LastError: pick("", "boom"), ScheduleStart: tm(), CreateTime: tm(),
				UpdateTime: tm(), LeaseOwner: pick("eng", "other")}
			d.Dest = pick(d.WebhookID, "dyn:x", "")
			ds[i] = d
		}
		got, err := decodeDeferred(encodeDeferred(ds))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, ds) {
			t.Fatalf("decoded\n%+v\nwant\n%+v", got, ds)
		}
	}
	for _, bad := range [][]byte{nil, {2}, {1, 5}, {1, 1, 0, 200}} {
		if _, err := decodeDeferred(bad); err == nil {
			t.Errorf("decoded %v without an error", bad)
		}
	}
}
