// Package storetest is the conformance suite of core.Store: every driver
// runs Run against fresh stores, and every behaviour promised by the doc
// comments of core.Store has a subtest here. Extend it with every store
// change.
//
// It also exports fixtures (NewProject, NewWebhook, NewEvent, ...) for
// other packages' tests, and RunBenchmarks for driver throughput.
package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// Run runs the conformance suite. newStore must return a fresh, empty
// store for each call; the suite closes it. Subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) core.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b *bundle)
	}{
		{"Basics", testBasics},
		{"Projects", testProjects},
		{"APIKeys", testAPIKeys},
		{"SigningKeys", testSigningKeys},
		{"Leases", testLeases},
		{"WebhookRoundTrip", testWebhookRoundTrip},
		{"RateLimitRoundTrip", testRateLimitRoundTrip},
		{"Tracing", testTracing},
		{"TakeRate", testTakeRate},
		{"DeferWithoutAttempt", testDeferWithoutAttempt},
		{"WebhookProjectIsolation", testWebhookIsolation},
		{"ListWebhooks", testListWebhooks},
		{"UpdateWebhook", testUpdateWebhook},
		{"UpdateWebhookError", testUpdateWebhookError},
		{"DeleteWebhook", testDeleteWebhook},
		{"DeleteWebhookMidAttempt", testDeleteWebhookMidAttempt},
		{"SubscribedWebhooks", testSubscribedWebhooks},
		{"WebhooksByID", testWebhooksByID},
		{"DisableFailingWebhooks", testDisableFailingWebhooks},
		{"Publish", testPublish},
		{"PublishDynamic", testPublishDynamic},
		{"Idempotency", testIdempotency},
		{"ListEvents", testListEvents},
		{"EventsByKeys", testEventsByKeys},
		{"Wake", testWake},
		{"Claim", testClaim},
		{"ClaimNotDue", testClaimNotDue},
		{"ClaimFirstAttemptsFirst", testClaimFirstAttemptsFirst},
		{"ClaimRetryShare", testClaimRetryShare},
		{"ClaimExcludeDests", testClaimExcludeDests},
		{"LeaseExpiry", testLeaseExpiry},
		{"Complete", testComplete},
		{"CompleteWithoutAttempt", testCompleteWithoutAttempt},
		{"PublishLeased", testPublishLeased},
		{"LeasedReaders", testLeasedReaders},
		{"FailureRun", testFailureRun},
		{"DisableOnGone", testDisableOnGone},
		{"ReleaseDeliveries", testRelease},
		{"NextDueTime", testNextDueTime},
		{"QueueDepth", testQueueDepth},
		{"GetDelivery", testGetDelivery},
		{"AttemptHistory", testAttemptHistory},
		{"ListDeliveries", testListDeliveries},
		{"Redeliver", testRedeliver},
		{"RedeliverRetrying", testRedeliverRetrying},
		{"RedeliverInFlight", testRedeliverInFlight},
		{"Recover", testRecover},
		{"RecoverLimit", testRecoverLimit},
		{"DeleteExpired", testDeleteExpired},
		{"DeleteExpiredReplayed", testDeleteExpiredReplayed},
		{"DeferredCompletions", testDeferredCompletions},
		{"DeferredReaders", testDeferredReaders},
		{"DeferredMixed", testDeferredMixed},
		{"DeferredLeaseExpiry", testDeferredLeaseExpiry},
		{"DeferredPublishMixed", testDeferredPublishMixed},
		{"DeferredExpire", testDeferredExpire},
		{"DeferredOwners", testDeferredOwners},
		{"DeferredConcurrent", testDeferredConcurrent},
		{"Stats", testStats},
		{"StatsManyWebhooks", testStatsManyWebhooks},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, setup(t, newStore(t)))
		})
	}
}

// bundle is one subtest's fixture: a fresh store with one project.
type bundle struct {
	t   testing.TB
	ctx context.Context
	s   core.Store
	p   core.Project
}

func setup(t testing.TB, s core.Store) *bundle {
	t.Helper()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	b := &bundle{t: t, ctx: context.Background(), s: s, p: NewProject()}
	if err := s.CreateProject(b.ctx, b.p); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	return b
}

// project creates another project.
func (b *bundle) project() core.Project {
	b.t.Helper()
	p := NewProject()
	if err := b.s.CreateProject(b.ctx, p); err != nil {
		b.t.Fatalf("CreateProject: %v", err)
	}
	return p
}

// webhook creates a webhook in project projectID ("" = the bundle's).
func (b *bundle) webhook(projectID string) *core.Webhook {
	b.t.Helper()
	if projectID == "" {
		projectID = b.p.ID
	}
	w := NewWebhook(projectID)
	if err := b.s.CreateWebhook(b.ctx, w); err != nil {
		b.t.Fatalf("CreateWebhook: %v", err)
	}
	return w
}

func (b *bundle) publish(evs ...core.NewEvent) []core.PublishResult {
	b.t.Helper()
	res, err := b.s.PublishEvents(b.ctx, evs)
	if err != nil {
		b.t.Fatalf("PublishEvents: %v", err)
	}
	if len(res) != len(evs) {
		b.t.Fatalf("PublishEvents: %d results for %d events", len(res), len(evs))
	}
	return res
}

// events publishes n events at at with a delivery to each hook, and
// returns the deliveries.
func (b *bundle) events(n int, at time.Time, hooks ...*core.Webhook) []core.Delivery {
	b.t.Helper()
	var evs []core.NewEvent
	var ds []core.Delivery
	for range n {
		ne := NewEvent(b.p.ID, core.EventBatchSucceeded, at, hooks...)
		evs = append(evs, ne)
		ds = append(ds, ne.Deliveries...)
	}
	b.publish(evs...)
	return ds
}

func (b *bundle) claim(owner string, now time.Time, limit int, exclude ...string) []core.Claimed {
	b.t.Helper()
	cs, err := b.s.ClaimDeliveries(b.ctx, core.ClaimParams{
		Owner: owner, Now: now, Limit: limit, Lease: time.Minute, ExcludeDests: exclude,
	})
	if err != nil {
		b.t.Fatalf("ClaimDeliveries: %v", err)
	}
	return cs
}

func (b *bundle) complete(cs ...core.Completion) {
	b.t.Helper()
	if err := b.s.CompleteDeliveries(b.ctx, cs); err != nil {
		b.t.Fatalf("CompleteDeliveries: %v", err)
	}
}

func (b *bundle) delivery(id string) (*core.Delivery, []core.Attempt) {
	b.t.Helper()
	d, as, err := b.s.GetDelivery(b.ctx, b.p.ID, id)
	if err != nil {
		b.t.Fatalf("GetDelivery(%s): %v", id, err)
	}
	return d, as
}

func (b *bundle) getWebhook(id string) *core.Webhook {
	b.t.Helper()
	w, err := b.s.GetWebhook(b.ctx, b.p.ID, id)
	if err != nil {
		b.t.Fatalf("GetWebhook: %v", err)
	}
	return w
}

// retries turns n fresh deliveries to the hooks into retries (queue
// "retried"): claimed and failed at T0, next attempt at due.
func (b *bundle) retries(n int, due time.Time, hooks ...*core.Webhook) []core.Delivery {
	b.t.Helper()
	ds := b.events(n, T0.Add(-2*time.Hour), hooks...)
	cs := b.claim("setup", T0.Add(-time.Hour), len(ds)+1)
	if len(cs) != len(ds) {
		b.t.Fatalf("retries: claimed %d of %d", len(cs), len(ds))
	}
	var comps []core.Completion
	for _, c := range cs {
		comps = append(comps, failed(c, "setup", T0.Add(-time.Hour+time.Second), core.DeliveryPending, due))
	}
	b.complete(comps...)
	return ds
}

// succeeded is a successful completion of c by owner at at.
func succeeded(c core.Claimed, owner string, at time.Time) core.Completion {
	return core.Completion{
		DeliveryID: c.ID, Owner: owner, ProjectID: c.ProjectID, Status: core.DeliverySucceeded,
		WebhookID: c.WebhookID, Success: true,
		Attempt: core.Attempt{DeliveryID: c.ID, Number: c.Attempts + 1, Time: at, URI: "https://example.com/x",
			StatusCode: 200, Latency: 1500 * time.Microsecond, Response: []byte("ok")},
	}
}

// failed is a failed completion of c by owner at at with the new status.
func failed(c core.Claimed, owner string, at time.Time, status core.DeliveryStatus, next time.Time) core.Completion {
	return core.Completion{
		DeliveryID: c.ID, Owner: owner, Status: status, NextAttemptTime: next,
		WebhookID: c.WebhookID,
		Attempt: core.Attempt{DeliveryID: c.ID, Number: c.Attempts + 1, Time: at, URI: "https://example.com/x",
			StatusCode: 500, Latency: 2 * time.Millisecond, Error: "http_status: HTTP 500", Response: []byte("boom")},
	}
}

func ids[T any](xs []T, id func(T) string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[id(x)] = true
	}
	return m
}

func claimedIDs(cs []core.Claimed) map[string]bool {
	return ids(cs, func(c core.Claimed) string { return c.ID })
}

func deliveryIDs(ds []core.Delivery) map[string]bool {
	return ids(ds, func(d core.Delivery) string { return d.ID })
}

func wantNotFound(t testing.TB, what string, err error) {
	t.Helper()
	if !errors.Is(err, core.ErrNotFound) {
		t.Errorf("%s: err = %v, want ErrNotFound", what, err)
	}
}

func wantEqual(t testing.TB, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func wantTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func testBasics(t *testing.T, b *bundle) {
	caps := b.s.Capabilities()
	if caps.Driver == "" {
		t.Errorf("Capabilities().Driver is empty")
	}
	if b.s.Wake() == nil {
		t.Errorf("Wake() is nil")
	}
	if err := b.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
