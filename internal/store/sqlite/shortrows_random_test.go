package sqlite

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestShortRowsWriteSameRowsRandom is TestShortRowsWriteSameRows over
// random groups: two projects, webhooks of each, more event types and
// lease owners than the fan statements take keys (maxFans), deliveries
// skipped, attempted before or updated since their creation, leased or
// not, times before 1970, and completions that succeed (with and without
// a body), fail, or come from an owner whose lease is lost. The fan and
// short statements must store exactly what the full ones do.
func TestShortRowsWriteSameRowsRandom(t *testing.T) {
	for seed := range uint64(4) {
		r := rand.New(rand.NewPCG(seed, 7))
		at := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)
		if seed%4 == 3 {
			at = time.Date(1960, 1, 1, 0, 0, 0, 1000, time.UTC)
		}
		ps := []core.Project{storetest.NewProject(), storetest.NewProject()}
		var hooks []*core.Webhook
		for i := range 7 {
			w := storetest.NewWebhook(ps[i%2].ID)
			w.CreateTime, w.UpdateTime, w.Secrets[0].CreateTime = at, at, at
			hooks = append(hooks, w)
		}
		types := []string{core.EventBatchSucceeded, core.EventBatchFailed, core.EventVideoGenerated,
			core.EventBatchExpired, core.EventVideoFailed, core.EventBatchCancelled}
		owners := []string{"", "a", "b", "c", "d", "e"}
		var evs []core.NewEvent
		var cs []core.Completion
		for i := range 20 + r.IntN(60) {
			p := ps[r.IntN(2)]
			var hs []*core.Webhook
			for _, w := range hooks {
				if w.ProjectID == p.ID && r.IntN(3) > 0 {
					hs = append(hs, w)
				}
			}
			ev := storetest.NewEvent(p.ID, types[r.IntN(len(types))],
				at.Add(time.Duration(i)*time.Millisecond+time.Duration(r.IntN(3))*time.Microsecond), hs...)
			for j := range ev.Deliveries {
				d := &ev.Deliveries[j]
				switch r.IntN(8) {
				case 0:
					d.Status = core.DeliverySkipped
				case 1:
					d.Attempts, d.LastStatusCode, d.LastError = 1, 500, "x"
				case 2:
					d.UpdateTime = d.CreateTime.Add(time.Second)
				}
				if o := owners[r.IntN(len(owners))]; o != "" && d.Status == core.DeliveryPending {
					d.LeaseOwner, d.NextAttemptTime = o, at.Add(time.Minute+time.Duration(r.IntN(5))*time.Second)
				}
				if d.LeaseOwner == "" || r.IntN(2) == 0 {
					continue
				}
				c := core.Completion{DeliveryID: d.ID, Owner: d.LeaseOwner, WebhookID: d.WebhookID,
					Attempt: core.Attempt{DeliveryID: d.ID, Number: 1, Time: at.Add(2 * time.Second),
						URI: "https://h.example/", Latency: time.Millisecond}}
				if r.IntN(3) > 0 {
					c.Status, c.Success, c.Attempt.StatusCode = core.DeliverySucceeded, true, 200
					if r.IntN(2) == 0 {
						c.Attempt.Response = []byte("ok")
					}
				} else {
					c.Status, c.Attempt.StatusCode, c.Attempt.Error = core.DeliveryFailed, 500, "http_status: HTTP 500"
				}
				if r.IntN(6) == 0 {
					c.Owner = "lost" // another owner's lease
				}
				cs = append(cs, c)
			}
			evs = append(evs, ev)
		}
		dump := func(short, fan bool) map[string][][]any {
			s := writeRows(t, short, fan, ps, hooks, evs, cs)
			out := dumpTables(t, s)
			out["webhooks"] = rowsOf(t, s.w, `SELECT id, consecutive_failures, failing_since FROM webhooks ORDER BY 1`)
			return out
		}
		fan, short, full := dump(true, true), dump(true, false), dump(false, false)
		for table, want := range full {
			for name, got := range map[string][][]any{"fan and short": fan[table], "short": short[table]} {
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d, %s: %s statements wrote\n%v\nfull statements wrote\n%v", seed, table, name, got, want)
				}
			}
		}
		if len(full["deliveries"]) == 0 || len(full["attempts"]) == 0 {
			t.Fatalf("seed %d: a group without deliveries or attempt rows", seed)
		}
	}
}
