package publish

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/store/sqlite"
	"github.com/longhook/longhook/internal/store/storetest"
)

type fixture struct {
	st      *sqlite.Store
	p       *Publisher
	project string
}

func setup(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cat, _ := core.NewCatalog()
	pr := storetest.NewProject()
	if err := st.CreateProject(context.Background(), pr); err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, p: New(Config{Store: st, Catalog: cat}), project: pr.ID}
}

func (f *fixture) hook(t *testing.T, state core.WebhookState, events ...string) *core.Webhook {
	t.Helper()
	w := storetest.NewWebhook(f.project)
	w.State = state
	w.SubscribedEvents = events
	if err := f.st.CreateWebhook(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestFanOutToSubscribedWebhooks(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	on := f.hook(t, core.WebhookEnabled, "batch.succeeded")
	off := f.hook(t, core.WebhookDisabled, "batch.succeeded")
	other := f.hook(t, core.WebhookEnabled, "batch.failed")
	res, err := f.p.Publish(ctx, f.project, []Input{{Type: "batch.succeeded", Data: json.RawMessage(`{"id":"batches/1"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Deliveries != 2 {
		t.Fatalf("deliveries = %d, want 2 (enabled + disabled-as-skipped)", res[0].Deliveries)
	}
	status := func(w *core.Webhook) []core.DeliveryStatus {
		ds, err := f.st.ListDeliveries(ctx, core.ListDeliveriesParams{ProjectID: f.project, WebhookID: w.ID, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var out []core.DeliveryStatus
		for _, d := range ds {
			out = append(out, d.Status)
		}
		return out
	}
	if s := status(on); len(s) != 1 || s[0] != core.DeliveryPending {
		t.Errorf("enabled webhook: %v", s)
	}
	if s := status(off); len(s) != 1 || s[0] != core.DeliverySkipped {
		t.Errorf("disabled webhook: %v, want skipped", s)
	}
	if s := status(other); len(s) != 0 {
		t.Errorf("unsubscribed webhook got %v", s)
	}
	var env map[string]any
	if err := json.Unmarshal(res[0].Event.Payload, &env); err != nil || env["version"] != "v1" || env["type"] != "batch.succeeded" {
		t.Fatalf("payload %s", res[0].Event.Payload)
	}
}

func TestDynamicConfigReplacesStaticWebhooks(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.hook(t, core.WebhookEnabled, "batch.succeeded")
	res, err := f.p.Publish(context.Background(), f.project, []Input{{Type: "batch.succeeded", Data: json.RawMessage(`{"id":"b"}`),
		WebhookConfig: &core.WebhookConfig{URIs: []string{"https://a.example/x", "https://b.example/y"}, UserMetadata: json.RawMessage(`{"k":[1,"v"]}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Deliveries != 2 {
		t.Fatalf("deliveries = %d, want one per URI", res[0].Deliveries)
	}
	var env struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	json.Unmarshal(res[0].Event.Payload, &env)
	if string(env.Data["user_metadata"]) != `{"k":[1,"v"]}` {
		t.Fatalf("user_metadata = %s", env.Data["user_metadata"])
	}
}

func TestValidationWritesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	w := f.hook(t, core.WebhookEnabled, "batch.succeeded")
	bad := [][]Input{
		{{Type: "nope.nope"}},
		{{Type: ""}},
		{{Type: "batch.succeeded", Data: json.RawMessage(`[1]`)}},
		{{Type: "batch.succeeded", WebhookConfig: &core.WebhookConfig{URIs: []string{"http://insecure.example"}}}},
		{{Type: "batch.succeeded"}, {Type: "bad type"}}, // all or nothing
		{{Type: "webhook.ping"}}, // not publishable by clients
	}
	for i, in := range bad {
		if _, err := f.p.Publish(context.Background(), f.project, in); err == nil || !core.IsInvalid(err) {
			t.Errorf("case %d: err = %v, want invalid argument", i, err)
		}
	}
	ds, _ := f.st.ListDeliveries(context.Background(), core.ListDeliveriesParams{ProjectID: f.project, WebhookID: w.ID, Limit: 10})
	if len(ds) != 0 {
		t.Fatalf("rejected publishes wrote %d deliveries", len(ds))
	}
}

// Concurrent publishes are coalesced into shared commits and each caller
// gets its own results; idempotency keys hold across them.
func TestGroupCommitAndIdempotency(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.hook(t, core.WebhookEnabled, "batch.succeeded")
	const n = 64
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := ""
			if i%2 == 0 {
				key = "same-key"
			}
			res, err := f.p.Publish(context.Background(), f.project, []Input{{Type: "batch.succeeded", IdempotencyKey: key, Timestamp: time.Unix(int64(i), 0)}})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = res[0].Event.ID
		}()
	}
	wg.Wait()
	first := ids[0]
	distinct := map[string]bool{}
	for i, id := range ids {
		distinct[id] = true
		if i%2 == 0 && id != first {
			t.Fatalf("publish %d with the same idempotency key got event %s, want %s", i, id, first)
		}
	}
	if len(distinct) != n/2+1 {
		t.Fatalf("%d distinct events, want %d", len(distinct), n/2+1)
	}
}

// Data a caller has not decoded is scanned; data it has (DataValid) is
// only checked to be an object.
func TestValidateData(t *testing.T) {
	t.Parallel()
	cat, _ := core.NewCatalog()
	p := New(Config{Catalog: cat})
	for _, c := range []struct {
		data  string
		valid bool
		ok    bool
	}{
		{`{"a":1}`, false, true},
		{`{"a":`, false, false},
		{`[1]`, false, false},
		{`{"a":1}`, true, true},
		{`[1]`, true, false},
		{` 7`, true, false},
		{``, false, true},
	} {
		in := Input{Type: core.EventBatchSucceeded, Data: json.RawMessage(c.data), DataValid: c.valid}
		if err := p.Validate("", &in); (err == nil) != c.ok {
			t.Errorf("Validate(%q, DataValid %v) = %v", c.data, c.valid, err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	cat, _ := core.NewCatalog()
	p := New(Config{Catalog: cat})
	data := json.RawMessage(`{"id":"batches/bench","output_file_uri":"files/bench","pad":"` + strings.Repeat("x", 480) + `"}`)
	for _, valid := range []bool{false, true} {
		b.Run(map[bool]string{false: "scan", true: "decoded"}[valid], func(b *testing.B) {
			in := Input{Type: core.EventBatchSucceeded, Data: data, DataValid: valid}
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Validate("", &in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDeliveriesSizedToSubscribers checks that an event's deliveries are
// allocated for the webhooks it goes to, not for all of its project's
// (the publisher's webhook list holds them all).
func TestDeliveriesSizedToSubscribers(t *testing.T) {
	t.Parallel()
	p := New(Config{})
	var hooks []*core.Webhook
	for i := range 100 {
		typ := "batch.failed"
		if i == 42 {
			typ = "batch.succeeded"
		}
		hooks = append(hooks, &core.Webhook{ID: core.NewID(), ProjectID: "p", State: core.WebhookEnabled, SubscribedEvents: []string{typ}})
	}
	data := json.RawMessage(`{"id":"batches/1"}`)
	ne, err := p.build(time.Now(), "p", &Input{Type: "batch.succeeded", Data: data}, hooks)
	if err != nil {
		t.Fatal(err)
	}
	if len(ne.Deliveries) != 1 || cap(ne.Deliveries) != 1 || ne.Deliveries[0].WebhookID != hooks[42].ID {
		t.Errorf("deliveries: len %d, cap %d; want the one subscribed webhook in a slice of 1", len(ne.Deliveries), cap(ne.Deliveries))
	}
	ne, err = p.build(time.Now(), "p", &Input{Type: "batch.expired", Data: data}, hooks)
	if err != nil || ne.Deliveries != nil {
		t.Errorf("no subscriber: deliveries %v, %v; want nil", ne.Deliveries, err)
	}
}
