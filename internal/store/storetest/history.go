package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

func testGetDelivery(t *testing.T, b *bundle) {
	w := b.webhook("")
	ds := b.events(1, T0, w)
	id := ds[0].ID
	big := bytes.Repeat([]byte("x"), 10<<10)
	for i, at := range []time.Time{T0, T0.Add(40 * time.Second), T0.Add(80 * time.Second)} {
		cs := b.claim("e", at, 1)
		if len(cs) != 1 {
			t.Fatalf("attempt %d: claimed %d", i+1, len(cs))
		}
		if cs[0].Attempts != i {
			t.Errorf("attempt %d: claimed with Attempts %d", i+1, cs[0].Attempts)
		}
		c := failed(cs[0], "e", at.Add(time.Second), core.DeliveryPending, at.Add(30*time.Second))
		if i == 2 {
			c = succeeded(cs[0], "e", at.Add(time.Second))
			c.Attempt.Response = big
		}
		if c.Attempt.Number != i+1 {
			t.Fatalf("fixture numbering")
		}
		b.complete(c)
	}
	d, as := b.delivery(id)
	if d.Status != core.DeliverySucceeded || d.Attempts != 3 || len(as) != 3 {
		t.Fatalf("status %s attempts %d rows %d", d.Status, d.Attempts, len(as))
	}
	for i, a := range as {
		if a.Number != i+1 || a.DeliveryID != id {
			t.Errorf("attempt %d: number %d delivery %s", i, a.Number, a.DeliveryID)
		}
	}
	if !bytes.Equal(as[2].Response, big[:4<<10]) {
		t.Errorf("stored response is %d bytes, want the first 4 KiB", len(as[2].Response))
	}

	_, _, err := b.s.GetDelivery(b.ctx, b.project().ID, id)
	wantNotFound(t, "GetDelivery(other project)", err)
	_, _, err = b.s.GetDelivery(b.ctx, b.p.ID, core.NewMessageID(T0))
	wantNotFound(t, "GetDelivery(missing)", err)
}

func testListDeliveries(t *testing.T, b *bundle) {
	w1, w2 := b.webhook(""), b.webhook("")
	var all, mine []string
	var evs []core.NewEvent
	for i := range 10 {
		typ := core.EventBatchSucceeded
		if i%3 == 0 {
			typ = core.EventBatchFailed
		}
		ne := NewEvent(b.p.ID, typ, T0.Add(time.Duration(i)*10*time.Millisecond), w1, w2)
		evs = append(evs, ne)
		for _, d := range ne.Deliveries {
			all = append(all, d.ID)
			if d.WebhookID == w1.ID {
				mine = append(mine, d.ID)
			}
		}
	}
	b.publish(evs...)
	slices.Sort(all)
	slices.Reverse(all)
	slices.Sort(mine)
	slices.Reverse(mine)

	list := func(p core.ListDeliveriesParams) []string {
		t.Helper()
		if p.ProjectID == "" {
			p.ProjectID = b.p.ID
		}
		ds, err := b.s.ListDeliveries(b.ctx, p)
		if err != nil {
			t.Fatalf("ListDeliveries: %v", err)
		}
		out := []string{}
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	wantEqual(t, "project, newest first", list(core.ListDeliveriesParams{Limit: 100}), all)
	wantEqual(t, "webhook, newest first", list(core.ListDeliveriesParams{WebhookID: w1.ID, Limit: 100}), mine)

	var paged []string
	before := ""
	for range 10 {
		page := list(core.ListDeliveriesParams{WebhookID: w1.ID, BeforeID: before, Limit: 3})
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		before = page[len(page)-1]
	}
	wantEqual(t, "paged with BeforeID", paged, mine)
	// AfterID and BeforeID bound the ids from both sides.
	wantEqual(t, "between AfterID and BeforeID", list(core.ListDeliveriesParams{WebhookID: w1.ID,
		AfterID: mine[5], BeforeID: mine[2], Limit: 100}), mine[3:5])

	// Status: finish the oldest two of w1.
	cs := b.claim("e", T0.Add(time.Second), 2, w2.ID)
	b.complete(succeeded(cs[0], "e", T0.Add(time.Second)), succeeded(cs[1], "e", T0.Add(time.Second)))
	done := list(core.ListDeliveriesParams{WebhookID: w1.ID, Status: core.DeliverySucceeded, Limit: 100})
	wantEqual(t, "status filter", done, mine[len(mine)-2:])
	pending := list(core.ListDeliveriesParams{WebhookID: w1.ID, Status: core.DeliveryPending, Limit: 100})
	wantEqual(t, "status filter (pending)", pending, mine[:len(mine)-2])

	// Event type: events 0, 3, 6, 9 failed.
	failedType := list(core.ListDeliveriesParams{WebhookID: w1.ID, EventType: core.EventBatchFailed, Limit: 100})
	wantEqual(t, "event type filter", failedType, []string{mine[0], mine[3], mine[6], mine[9]})

	// Time range [Since, Until): events 3, 4, 5.
	ranged := list(core.ListDeliveriesParams{WebhookID: w1.ID, Since: T0.Add(30 * time.Millisecond),
		Until: T0.Add(60 * time.Millisecond), Limit: 100})
	wantEqual(t, "time range", ranged, []string{mine[4], mine[5], mine[6]})

	// Another project sees nothing, even naming the webhook.
	other := b.project()
	wantEqual(t, "other project", list(core.ListDeliveriesParams{ProjectID: other.ID, WebhookID: w1.ID, Limit: 100}), []string{})
	wantEqual(t, "limit", len(list(core.ListDeliveriesParams{Limit: 5})), 5)
}

func testRedeliver(t *testing.T, b *bundle) {
	w := b.webhook("")
	ds := b.events(2, T0, w)
	cs := b.claim("a", T0, 2)
	for _, c := range cs {
		if c.ID == ds[0].ID {
			b.complete(failed(c, "a", T0.Add(time.Second), core.DeliveryFailed, time.Time{}))
		}
	}
	now := T0.Add(time.Hour)
	d, err := b.s.Redeliver(b.ctx, b.p.ID, ds[0].ID, now)
	if err != nil {
		t.Fatalf("Redeliver: %v", err)
	}
	if d.Status != core.DeliveryPending || !d.Manual || !d.NextAttemptTime.Equal(now) || d.Attempts != 1 {
		t.Errorf("Redeliver result: %+v", *d)
	}
	got, _ := b.delivery(ds[0].ID)
	wantEqual(t, "GetDelivery after Redeliver", got, d)
	rc := b.claim("b", now, 10)
	var again *core.Claimed
	for i := range rc {
		if rc[i].ID == ds[0].ID {
			again = &rc[i]
		}
	}
	if again == nil || !again.Manual {
		t.Fatalf("redelivered delivery not claimable as manual: %+v", rc)
	}

	// Redeliver while leased: the old lease holder's completion is stale.
	if _, err := b.s.Redeliver(b.ctx, b.p.ID, ds[0].ID, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	b.complete(succeeded(*again, "b", now.Add(2*time.Second)))
	if got, _ := b.delivery(ds[0].ID); got.Status != core.DeliveryPending {
		t.Errorf("completion of a lease dropped by Redeliver changed the delivery: %s", got.Status)
	}
	if rc := b.claim("c", now.Add(2*time.Second), 10); len(rc) != 1 || rc[0].ID != ds[0].ID {
		t.Errorf("after Redeliver of a leased delivery: claimed %d", len(rc))
	}

	_, err = b.s.Redeliver(b.ctx, b.project().ID, ds[0].ID, now)
	wantNotFound(t, "Redeliver(other project)", err)
	_, err = b.s.Redeliver(b.ctx, b.p.ID, core.NewMessageID(T0), now)
	wantNotFound(t, "Redeliver(missing)", err)
}

// recoverFixture publishes six deliveries to w, one per minute from T0,
// and leaves them: 0 succeeded, 1 failed, 2 skipped, 3 pending (retry in
// a day), 4 failed, 5 failed.
func recoverFixture(t *testing.T, b *bundle, w *core.Webhook) []core.Delivery {
	var evs []core.NewEvent
	var ds []core.Delivery
	for i := range 6 {
		ne := NewEvent(b.p.ID, core.EventBatchSucceeded, T0.Add(time.Duration(i)*time.Minute), w)
		if i == 2 {
			ne.Deliveries[0].Status = core.DeliverySkipped
		}
		evs = append(evs, ne)
		ds = append(ds, ne.Deliveries[0])
	}
	b.publish(evs...)
	at := T0.Add(10 * time.Minute)
	for _, c := range b.claim("e", at, 10) {
		switch c.ID {
		case ds[0].ID:
			b.complete(succeeded(c, "e", at))
		case ds[3].ID:
			b.complete(failed(c, "e", at, core.DeliveryPending, at.Add(24*time.Hour)))
		default:
			b.complete(failed(c, "e", at, core.DeliveryFailed, time.Time{}))
		}
	}
	return ds
}

func testRecover(t *testing.T, b *bundle) {
	w := b.webhook("")
	ds := recoverFixture(t, b, w)
	now := T0.Add(time.Hour)
	p := core.RecoverParams{ProjectID: b.p.ID, WebhookID: w.ID, Since: T0, Until: T0.Add(5 * time.Minute),
		OnlyFailed: true, Limit: 100, DryRun: true, Now: now}
	recov := func(p core.RecoverParams, wantN int, wantMore bool) {
		t.Helper()
		n, next, err := b.s.RecoverDeliveries(b.ctx, p)
		if err != nil {
			t.Fatalf("RecoverDeliveries: %v", err)
		}
		if n != wantN || (next != "") != wantMore {
			t.Errorf("RecoverDeliveries(%+v) = %d, %q; want %d, more %v", p, n, next, wantN, wantMore)
		}
	}
	recov(p, 3, false) // 1, 2, 4; 5 is at Until (exclusive)
	if d, _ := b.delivery(ds[1].ID); d.Status != core.DeliveryFailed {
		t.Errorf("DryRun changed a delivery: %s", d.Status)
	}
	all := p
	all.OnlyFailed = false
	recov(all, 4, false) // 0, 1, 2, 4: every non-pending one

	p.DryRun = false
	recov(p, 3, false)
	for i, d := range ds {
		got, _ := b.delivery(d.ID)
		switch i {
		case 1, 2, 4:
			if got.Status != core.DeliveryPending || got.Manual || !got.ScheduleStart.Equal(now) ||
				!got.NextAttemptTime.Equal(now) {
				t.Errorf("recovered %d: %+v", i, *got)
			}
			if i != 2 && got.Attempts != 1 {
				t.Errorf("recovered %d: Attempts %d, want the history kept (1)", i, got.Attempts)
			}
			if got.ScheduleBase != got.Attempts {
				t.Errorf("recovered %d: ScheduleBase %d, want the attempts made before the recovery (%d)", i, got.ScheduleBase, got.Attempts)
			}
		case 0:
			if got.Status != core.DeliverySucceeded {
				t.Errorf("delivery 0: %s", got.Status)
			}
		case 3:
			wantTime(t, "pending delivery untouched", got.NextAttemptTime, T0.Add(10*time.Minute+24*time.Hour))
		case 5:
			if got.Status != core.DeliveryFailed {
				t.Errorf("delivery 5 outside the range: %s", got.Status)
			}
		}
	}
	got := b.claim("e", now, 10)
	wantEqual(t, "claimable after recover", claimedIDs(got),
		map[string]bool{ds[1].ID: true, ds[2].ID: true, ds[4].ID: true})

	p.ProjectID = b.project().ID
	_, _, err := b.s.RecoverDeliveries(b.ctx, p)
	wantNotFound(t, "RecoverDeliveries(other project)", err)
	p.ProjectID, p.WebhookID = b.p.ID, core.NewID()
	_, _, err = b.s.RecoverDeliveries(b.ctx, p)
	wantNotFound(t, "RecoverDeliveries(missing webhook)", err)
}

// testRecoverLimit: calls repeated without a cursor take the rest of the
// range (a re-queued delivery is pending, so no longer matches); with the
// cursor each returns, every delivery is taken once even when it finished
// again between the calls — without it, a caller taking every finished
// delivery would take the first ones again and never reach the end.
func testRecoverLimit(t *testing.T, b *bundle) {
	w := b.webhook("")
	ds := b.events(5, T0, w)
	for _, c := range b.claim("e", T0.Add(time.Second), 10) {
		b.complete(failed(c, "e", T0.Add(time.Second), core.DeliveryFailed, time.Time{}))
	}
	p := core.RecoverParams{ProjectID: b.p.ID, WebhookID: w.ID, Since: T0, OnlyFailed: true, Limit: 2,
		DryRun: true, Now: T0.Add(time.Hour)}
	for i, want := range []struct {
		dry  bool
		n    int
		more bool
	}{{true, 2, true}, {false, 2, true}, {false, 2, true}, {false, 1, false}, {false, 0, false}} {
		p.DryRun = want.dry
		n, next, err := b.s.RecoverDeliveries(b.ctx, p)
		if err != nil || n != want.n || (next != "") != want.more {
			t.Errorf("call %d: RecoverDeliveries = %d, %q, %v; want %d, more %v", i, n, next, err, want.n, want.more)
		}
	}
	depth, err := b.s.QueueDepth(b.ctx, T0.Add(time.Hour))
	if err != nil || depth.Due != 5 {
		t.Errorf("after recovering everything: depth %+v, %v; want 5 due", depth, err)
	}

	// Every delivery succeeds; then every finished one is recovered, 2 a
	// call, and what each call re-queued succeeds before the next.
	finish := func(at time.Time) {
		t.Helper()
		for _, c := range b.claim("e", at, 10) {
			b.complete(succeeded(c, "e", at))
		}
	}
	finish(T0.Add(time.Hour))
	id := make([]string, len(ds))
	for i, d := range ds {
		id[i] = d.ID
	}
	slices.Sort(id)
	p = core.RecoverParams{ProjectID: b.p.ID, WebhookID: w.ID, Since: T0, Limit: 2, DryRun: true, Now: T0.Add(2 * time.Hour)}
	for _, c := range []struct {
		after string
		limit int
		n     int
		next  string
	}{{"", 2, 2, id[1]}, {id[1], 2, 2, id[3]}, {id[1], 3, 3, ""}, {id[4], 2, 0, ""}} {
		p.AfterID, p.Limit = c.after, c.limit
		if n, next, err := b.s.RecoverDeliveries(b.ctx, p); err != nil || n != c.n || next != c.next {
			t.Errorf("dry run after %q, limit %d = %d, %q, %v; want %d, %q", c.after, c.limit, n, next, err, c.n, c.next)
		}
	}
	p.DryRun, p.AfterID, p.Limit = false, "", 2
	calls := 0
	for ; calls < 5; calls++ {
		n, next, err := b.s.RecoverDeliveries(b.ctx, p)
		if err != nil {
			t.Fatalf("RecoverDeliveries: %v", err)
		}
		finish(T0.Add(2 * time.Hour))
		if wantN := min(2, 5-2*calls); n != wantN {
			t.Errorf("call %d after %q re-queued %d, want %d", calls, p.AfterID, n, wantN)
		}
		if next == "" {
			break
		}
		p.AfterID = next
	}
	if calls != 2 {
		t.Errorf("recovering 5 deliveries 2 at a time took %d calls, want 3", calls+1)
	}
	for i, d := range ds {
		// failed, succeeded, succeeded once more after the recovery
		if got, _ := b.delivery(d.ID); got.Attempts != 3 {
			t.Errorf("delivery %d was attempted %d times, want 3", i, got.Attempts)
		}
	}
}

func testDeleteExpired(t *testing.T, b *bundle) {
	w := b.webhook("")
	cutoff := T0.Add(time.Hour)
	old := b.events(3, T0, w) // 0 succeeded, 1 pending retry, 2 failed
	fresh := b.events(1, cutoff.Add(time.Minute), w)
	for _, c := range b.claim("e", cutoff.Add(2*time.Minute), 10) {
		switch c.ID {
		case old[1].ID:
			b.complete(failed(c, "e", cutoff, core.DeliveryPending, cutoff.Add(time.Hour)))
		case old[2].ID:
			b.complete(failed(c, "e", cutoff, core.DeliveryFailed, time.Time{}))
		default:
			b.complete(succeeded(c, "e", cutoff))
		}
	}
	n, err := b.s.DeleteExpired(b.ctx, cutoff, 100)
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	if n < 4 {
		t.Errorf("DeleteExpired removed %d rows, want at least 2 deliveries and 2 events", n)
	}
	for i, d := range old {
		_, _, err := b.s.GetDelivery(b.ctx, b.p.ID, d.ID)
		_, evErr := b.s.GetEvent(b.ctx, b.p.ID, d.EventID)
		if i == 1 {
			if err != nil || evErr != nil {
				t.Errorf("pending delivery or its event deleted: %v, %v", err, evErr)
			}
			continue
		}
		wantNotFound(t, "GetDelivery(expired)", err)
		wantNotFound(t, "GetEvent(expired)", evErr)
	}
	if _, _, err := b.s.GetDelivery(b.ctx, b.p.ID, fresh[0].ID); err != nil {
		t.Errorf("fresh delivery deleted: %v", err)
	}

	// limit bounds one call; repeated calls finish the job.
	many := b.events(5, T0, w)
	for _, c := range b.claim("e", cutoff.Add(3*time.Minute), 10) {
		b.complete(succeeded(c, "e", cutoff))
	}
	if _, err := b.s.DeleteExpired(b.ctx, cutoff, 2); err != nil {
		t.Fatal(err)
	}
	left := 0
	for _, d := range many {
		if _, _, err := b.s.GetDelivery(b.ctx, b.p.ID, d.ID); err == nil {
			left++
		}
	}
	if left < 3 {
		t.Errorf("DeleteExpired(limit 2) left %d of 5 deliveries, want at least 3", left)
	}
	for range 10 {
		n, err := b.s.DeleteExpired(b.ctx, cutoff, 2)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	for _, d := range many {
		_, _, err := b.s.GetDelivery(b.ctx, b.p.ID, d.ID)
		wantNotFound(t, "GetDelivery(expired, after sweeps)", err)
	}
}

// testDeleteExpiredReplayed: a delivery made pending again after it
// finished (Redeliver, RecoverDeliveries) keeps its old event through the
// sweep, as a pending delivery does, also when the event's other
// delivery ids were made in another millisecond.
func testDeleteExpiredReplayed(t *testing.T, b *bundle) {
	w1, w2 := b.webhook(""), b.webhook("")
	cutoff := T0.Add(time.Hour)
	var evs []core.NewEvent
	for range 3 {
		ne := NewEvent(b.p.ID, core.EventBatchSucceeded, T0, w1, w2)
		ne.Deliveries[1].ID = core.NewMessageID(T0.Add(time.Minute))
		evs = append(evs, ne)
	}
	b.publish(evs...)
	for _, c := range b.claim("e", T0.Add(time.Second), 10) {
		b.complete(succeeded(c, "e", T0.Add(time.Second)))
	}
	redelivered, recovered, done := evs[0], evs[1], evs[2]
	if _, err := b.s.Redeliver(b.ctx, b.p.ID, redelivered.Deliveries[1].ID, cutoff); err != nil {
		t.Fatalf("Redeliver: %v", err)
	}
	// RecoverDeliveries re-queues w1's delivery of every event; all but
	// recovered's (and the redelivered one) are completed again below.
	if _, _, err := b.s.RecoverDeliveries(b.ctx, core.RecoverParams{ProjectID: b.p.ID, WebhookID: w1.ID,
		Since: T0, Now: cutoff}); err != nil {
		t.Fatalf("RecoverDeliveries: %v", err)
	}
	for _, c := range b.claim("f", cutoff.Add(time.Second), 10) {
		if c.ID == recovered.Deliveries[0].ID || c.ID == redelivered.Deliveries[1].ID {
			continue // left leased: pending
		}
		b.complete(succeeded(c, "f", cutoff.Add(time.Second)))
	}
	if _, err := b.s.DeleteExpired(b.ctx, cutoff, 100); err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	for _, c := range []struct {
		what string
		ne   core.NewEvent
		kept bool
	}{{"redelivered", redelivered, true}, {"recovered", recovered, true}, {"done", done, false}} {
		_, err := b.s.GetEvent(b.ctx, b.p.ID, c.ne.Event.ID)
		if c.kept && err != nil {
			t.Errorf("event with a %s pending delivery deleted: %v", c.what, err)
		}
		if !c.kept {
			wantNotFound(t, "GetEvent(expired, all deliveries done)", err)
		}
	}
}

// testRedeliverRetrying: Redeliver of a delivery still on its automatic
// schedule makes it due now and leaves it automatic (a failure of that
// attempt is retried as usual); only a finished delivery becomes a
// manual one-shot send.
func testRedeliverRetrying(t *testing.T, b *bundle) {
	w := b.webhook("")
	ds := b.events(1, T0, w)
	cs := b.claim("a", T0, 1)
	if len(cs) != 1 {
		t.Fatalf("claimed %d", len(cs))
	}
	b.complete(failed(cs[0], "a", T0.Add(time.Second), core.DeliveryPending, T0.Add(time.Hour)))
	now := T0.Add(time.Minute)
	d, err := b.s.Redeliver(b.ctx, b.p.ID, ds[0].ID, now)
	if err != nil {
		t.Fatalf("Redeliver: %v", err)
	}
	if d.Status != core.DeliveryPending || d.Manual || !d.NextAttemptTime.Equal(now) || d.Attempts != 1 {
		t.Errorf("Redeliver of a retrying delivery: %+v", *d)
	}
	rc := b.claim("b", now, 10)
	if len(rc) != 1 || rc[0].ID != ds[0].ID || rc[0].Manual {
		t.Fatalf("redelivered retrying delivery not claimable as automatic: %+v", rc)
	}
}
