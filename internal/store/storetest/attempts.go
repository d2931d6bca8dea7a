package storetest

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// testAttemptHistory drives deliveries through sequences of completions
// and replays and checks that GetDelivery returns every attempt recorded,
// field for field, in attempt order — whichever way a driver stores them
// (a driver may keep a delivery's final successful attempt in the
// delivery row itself).
func testAttemptHistory(t *testing.T, b *bundle) {
	w := b.webhook("")
	at := T0
	// step returns a fresh time a second after the last.
	step := func() time.Time {
		at = at.Add(time.Second)
		return at
	}
	// claimOne leases id alone (any other due delivery is released).
	claimOne := func(owner, id string) core.Claimed {
		t.Helper()
		var got *core.Claimed
		var others []string
		for _, c := range b.claim(owner, step(), 100) {
			if c.ID == id {
				got = &c
			} else {
				others = append(others, c.ID)
			}
		}
		if err := b.s.ReleaseDeliveries(b.ctx, owner, others); err != nil {
			t.Fatalf("ReleaseDeliveries: %v", err)
		}
		if got == nil {
			t.Fatalf("%s not claimable", id)
		}
		return *got
	}
	ok := func(c core.Claimed, owner string) core.Completion {
		return succeeded(c, owner, step())
	}
	fail := func(c core.Claimed, owner string, status core.DeliveryStatus) core.Completion {
		next := time.Time{}
		if status == core.DeliveryPending {
			next = at // due at once
		}
		return failed(c, owner, step(), status, next)
	}
	// want is what GetDelivery must return for the completions' attempts.
	want := func(cs ...core.Completion) []core.Attempt {
		var as []core.Attempt
		for _, c := range cs {
			a := c.Attempt
			if len(a.Response) > 4<<10 {
				a.Response = a.Response[:4<<10]
			}
			if len(a.Response) == 0 {
				a.Response = nil
			}
			as = append(as, a)
		}
		return as
	}
	check := func(name, id string, status core.DeliveryStatus, attempts int, as []core.Attempt) {
		t.Helper()
		d, got := b.delivery(id)
		if d.Status != status || d.Attempts != attempts {
			t.Errorf("%s: status %s attempts %d, want %s %d", name, d.Status, d.Attempts, status, attempts)
		}
		wantEqual(t, name+": attempts", got, as)
	}
	fresh := func() string {
		t.Helper()
		return b.events(1, step(), w)[0].ID
	}

	t.Run("success", func(t *testing.T) {
		id := fresh()
		s := ok(claimOne("e", id), "e")
		b.complete(s)
		check("success", id, core.DeliverySucceeded, 1, want(s))
		d, _ := b.delivery(id)
		if d.LastStatusCode != 200 || d.LastError != "" || !d.UpdateTime.Equal(s.Attempt.Time) {
			t.Errorf("success: delivery %+v", *d)
		}
	})
	t.Run("success without body or latency", func(t *testing.T) {
		id := fresh()
		s := ok(claimOne("e", id), "e")
		s.Attempt.StatusCode, s.Attempt.Latency, s.Attempt.Response = 204, 0, nil
		b.complete(s)
		check("bare success", id, core.DeliverySucceeded, 1, want(s))
	})
	t.Run("failure then success", func(t *testing.T) {
		id := fresh()
		f := fail(claimOne("e", id), "e", core.DeliveryPending)
		b.complete(f)
		s := ok(claimOne("e", id), "e")
		s.Attempt.URI = "https://example.com/moved" // the webhook's URI changed between attempts
		b.complete(s)
		check("failure then success", id, core.DeliverySucceeded, 2, want(f, s))
	})
	t.Run("failures exhausted", func(t *testing.T) {
		id := fresh()
		f1 := fail(claimOne("e", id), "e", core.DeliveryPending)
		b.complete(f1)
		f2 := fail(claimOne("e", id), "e", core.DeliveryFailed)
		b.complete(f2)
		check("failures exhausted", id, core.DeliveryFailed, 2, want(f1, f2))
	})
	t.Run("large response truncated", func(t *testing.T) {
		id := fresh()
		s := ok(claimOne("e", id), "e")
		s.Attempt.Response = bytes.Repeat([]byte("y"), 10<<10)
		b.complete(s)
		check("large response", id, core.DeliverySucceeded, 1, want(s))
	})
	t.Run("redeliver after success", func(t *testing.T) {
		id := fresh()
		s1 := ok(claimOne("e", id), "e")
		b.complete(s1)
		if _, err := b.s.Redeliver(b.ctx, b.p.ID, id, step()); err != nil {
			t.Fatal(err)
		}
		check("redelivered", id, core.DeliveryPending, 1, want(s1))
		s2 := ok(claimOne("e", id), "e")
		s2.Attempt.Response = []byte("second")
		b.complete(s2)
		check("redelivered, succeeded", id, core.DeliverySucceeded, 2, want(s1, s2))
		if _, err := b.s.Redeliver(b.ctx, b.p.ID, id, step()); err != nil {
			t.Fatal(err)
		}
		f3 := fail(claimOne("e", id), "e", core.DeliveryFailed)
		b.complete(f3)
		check("redelivered twice", id, core.DeliveryFailed, 3, want(s1, s2, f3))
	})
	t.Run("recover after success", func(t *testing.T) {
		w2 := b.webhook("")
		id := b.events(1, step(), w2)[0].ID
		s1 := ok(claimOne("e", id), "e")
		b.complete(s1)
		n, _, err := b.s.RecoverDeliveries(b.ctx, core.RecoverParams{ProjectID: b.p.ID, WebhookID: w2.ID,
			Since: T0, Limit: 10, Now: step()})
		if err != nil || n != 1 {
			t.Fatalf("RecoverDeliveries = %d, %v", n, err)
		}
		check("recovered", id, core.DeliveryPending, 1, want(s1))
		s2 := ok(claimOne("e", id), "e")
		b.complete(s2)
		check("recovered, succeeded", id, core.DeliverySucceeded, 2, want(s1, s2))
	})
	t.Run("dynamic URI", func(t *testing.T) {
		ne := NewDynamicEvent(b.p.ID, step(), "https://a.example/hook", "https://b.example/hook", "https://c.example/hook")
		b.publish(ne)
		var cs []core.Completion
		for i, d := range ne.Deliveries {
			c := ok(claimOne("e", d.ID), "e")
			switch i {
			case 0:
				c.Attempt.URI = d.URI // what the engine sends
			case 1:
				c.Attempt.URI = "https://elsewhere.example/x"
			case 2:
				c.Attempt.URI = ""
			}
			cs = append(cs, c)
		}
		b.complete(cs...)
		for i, d := range ne.Deliveries {
			check("dynamic", d.ID, core.DeliverySucceeded, 1, want(cs[i]))
		}
	})
	t.Run("stale lease", func(t *testing.T) {
		// a's lease runs out, b claims and succeeds first, then a's
		// success arrives: both attempts are recorded, the delivery is
		// b's. a's attempt is the later one, and is listed last; it is
		// counted, and numbered after b's (both claimed at 0 attempts).
		id := fresh()
		ca := claimOne("a", id)
		at = at.Add(2 * time.Minute) // past a's lease
		cb := claimOne("b", id)
		sb := ok(cb, "b")
		sa := succeeded(ca, "a", at.Add(time.Second))
		b.complete(sb)
		b.complete(sa)
		sa.Attempt.Number = 2
		check("stale lease", id, core.DeliverySucceeded, 2, want(sb, sa))
		d, _ := b.delivery(id)
		if !d.UpdateTime.Equal(sb.Attempt.Time) {
			t.Errorf("stale lease: update time %v, want b's attempt %v", d.UpdateTime, sb.Attempt.Time)
		}
		// The other order: the stale success is recorded first but is the
		// earlier attempt.
		id = fresh()
		ca = claimOne("a", id)
		early := succeeded(ca, "a", step())
		at = at.Add(2 * time.Minute)
		cb = claimOne("b", id)
		late := ok(cb, "b")
		b.complete(early) // b's claim took a's lease
		b.complete(late)
		late.Attempt.Number = 2
		check("stale lease, earlier attempt", id, core.DeliverySucceeded, 2, want(early, late))
	})
	t.Run("lease lost beside held ones", func(t *testing.T) {
		id1, id2, id3 := fresh(), fresh(), fresh()
		c1, c2 := claimOne("e", id1), claimOne("e", id2)
		c3 := claimOne("e", id3)
		s1, s2, s3 := ok(c1, "e"), ok(c2, "gone"), ok(c3, "e")
		b.complete(s1, s2, s3)
		check("held, first", id1, core.DeliverySucceeded, 1, want(s1))
		check("not held", id2, core.DeliveryPending, 1, want(s2))
		check("held, last", id3, core.DeliverySucceeded, 1, want(s3))
	})
	t.Run("same delivery twice in a batch", func(t *testing.T) {
		id := fresh()
		c := claimOne("e", id)
		s1, s2 := ok(c, "e"), ok(c, "e")
		s2.Attempt.Number = 2
		b.complete(s1, s2)
		check("twice in a batch", id, core.DeliverySucceeded, 2, want(s1, s2))
	})
	t.Run("no owner", func(t *testing.T) {
		id := fresh()
		c := claimOne("e", id)
		s := ok(c, "")
		b.complete(s)
		check("no owner", id, core.DeliveryPending, 1, want(s))
		s2 := ok(c, "e")
		b.complete(s2)
		s2.Attempt.Number = 2
		check("no owner, then the owner", id, core.DeliverySucceeded, 2, want(s, s2))
	})
	t.Run("expired", func(t *testing.T) {
		id := fresh()
		b.complete(ok(claimOne("e", id), "e"))
		if _, err := b.s.DeleteExpired(b.ctx, at.Add(time.Hour), 1000); err != nil {
			t.Fatal(err)
		}
		_, _, err := b.s.GetDelivery(b.ctx, b.p.ID, id)
		wantNotFound(t, "GetDelivery after DeleteExpired", err)
	})
}

// AttemptScenario is a fixed set of events and the completions and
// replays that Run applies to them, for drivers to compare two ways of
// storing attempts: the same scenario run on two stores must read back
// the same (see DeliveryHistory).
type AttemptScenario struct {
	p   core.Project
	w   *core.Webhook
	evs []core.NewEvent
}

// DeliveryHistory is what GetDelivery returns for one delivery.
type DeliveryHistory struct {
	Delivery *core.Delivery
	Attempts []core.Attempt
}

// CompareHistories reports every delivery of want whose history in got
// differs, naming what was compared.
func CompareHistories(t testing.TB, what string, got, want map[string]DeliveryHistory) {
	t.Helper()
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			g := got[k]
			if g.Delivery == nil {
				t.Errorf("%s: %s: missing", what, k)
				continue
			}
			t.Errorf("%s: %s:\n%+v\n%+v\nwant\n%+v\n%+v", what, k, *g.Delivery, g.Attempts, *w.Delivery, w.Attempts)
		}
	}
}

// CompareStored reads every delivery of want again from s and reports
// each whose history differs (CompareHistories).
func CompareStored(t testing.TB, what string, s core.Store, want map[string]DeliveryHistory) {
	t.Helper()
	got := make(map[string]DeliveryHistory, len(want))
	for id, h := range want {
		d, as, err := s.GetDelivery(context.Background(), h.Delivery.ProjectID, id)
		if err != nil {
			t.Fatalf("%s: %s: %v", what, id, err)
		}
		got[id] = DeliveryHistory{Delivery: d, Attempts: as}
	}
	CompareHistories(t, what, got, want)
}

// NewAttemptScenario returns a scenario with fresh ids.
func NewAttemptScenario() *AttemptScenario {
	sc := &AttemptScenario{p: NewProject()}
	sc.w = NewWebhook(sc.p.ID)
	for i := range 5 {
		sc.evs = append(sc.evs, NewEvent(sc.p.ID, core.EventBatchSucceeded, T0.Add(time.Duration(i)*time.Millisecond), sc.w))
	}
	sc.evs = append(sc.evs, NewDynamicEvent(sc.p.ID, T0, "https://a.example/x", "https://b.example/y"))
	return sc
}

// ScenarioAttempts is how many attempts AttemptScenario.Run records, all
// of them rows of attempts in a store that keeps none in the delivery
// row; ScenarioInlineRows of them are rows when the final successes whose
// lease was held are kept in their delivery rows (the 7 others: those of
// 0, 1, 2, 3, 4 — its second, Redeliver moves the first to attempts — and
// both dynamic ones).
const (
	ScenarioAttempts   = 10
	ScenarioInlineRows = 3
)

// Run applies the scenario to the empty store s and returns the history
// of every delivery by id: a success first try (0), a failure then a
// success (1), a success with a large body (2), a success whose lease was
// not held then one that was (3), a success replayed then a second
// success (4), dynamic deliveries whose attempt URI is the delivery's and
// is not (5).
func (sc *AttemptScenario) Run(t testing.TB, s core.Store) map[string]DeliveryHistory {
	t.Helper()
	ctx := t.Context()
	at := T0
	id := func(i int) string { return sc.evs[i].Deliveries[0].ID }
	attempt := func(i, n int, code int, errText, body, uri string) core.Attempt {
		return core.Attempt{DeliveryID: id(i), Number: n, Time: at.Add(time.Duration(10*n+i) * time.Second),
			URI: uri, StatusCode: code, Latency: time.Duration(n*1000+i) * time.Microsecond, Error: errText,
			Response: []byte(body)}
	}
	const hook = "https://example.com/x"
	done := func(i, n int, owner string, body string) core.Completion {
		return core.Completion{DeliveryID: id(i), Owner: owner, Status: core.DeliverySucceeded, WebhookID: sc.w.ID,
			Success: true, Attempt: attempt(i, n, 200, "", body, hook)}
	}
	retry := func(i, n int, owner string) core.Completion {
		return core.Completion{DeliveryID: id(i), Owner: owner, Status: core.DeliveryPending, WebhookID: sc.w.ID,
			NextAttemptTime: at, Attempt: attempt(i, n, 503, "http_status: HTTP 503", "busy", hook)}
	}
	dyn := sc.evs[5].Deliveries
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateProject(ctx, sc.p))
	must(s.CreateWebhook(ctx, sc.w))
	_, err := s.PublishEvents(ctx, sc.evs)
	must(err)
	claim := func(owner string, now time.Time) {
		t.Helper()
		_, err := s.ClaimDeliveries(ctx, core.ClaimParams{Owner: owner, Now: now, Limit: 100, Lease: time.Minute})
		must(err)
	}
	claim("e", at.Add(time.Hour))
	must(s.CompleteDeliveries(ctx, []core.Completion{
		done(0, 1, "e", ""),
		retry(1, 1, "e"),
		done(2, 1, "e", string(bytes.Repeat([]byte("z"), 9000))),
		done(4, 1, "e", "ok"),
		{DeliveryID: dyn[0].ID, Owner: "e", Status: core.DeliverySucceeded, Success: true,
			Attempt: core.Attempt{DeliveryID: dyn[0].ID, Number: 1, Time: at, URI: dyn[0].URI, StatusCode: 204}},
		{DeliveryID: dyn[1].ID, Owner: "e", Status: core.DeliverySucceeded, Success: true,
			Attempt: core.Attempt{DeliveryID: dyn[1].ID, Number: 1, Time: at, URI: hook, StatusCode: 204}},
	}))
	must(s.CompleteDeliveries(ctx, []core.Completion{done(3, 1, "other", "")}))
	_, err = s.Redeliver(ctx, sc.p.ID, id(4), at.Add(2*time.Hour))
	must(err)
	claim("f", at.Add(3*time.Hour))
	must(s.CompleteDeliveries(ctx, []core.Completion{done(1, 2, "f", ""), done(3, 1, "f", ""), done(4, 2, "f", "")}))
	out := map[string]DeliveryHistory{}
	for _, ne := range sc.evs {
		for _, d := range ne.Deliveries {
			got, as, err := s.GetDelivery(ctx, sc.p.ID, d.ID)
			must(err)
			out[d.ID] = DeliveryHistory{got, as}
		}
	}
	return out
}
