package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/publish"
	"github.com/longhook/longhook/internal/secretbox"
	"github.com/longhook/longhook/internal/store/postgres"
	"github.com/longhook/longhook/webhook"
)

// BenchmarkRateLimitPostgres runs three engines (three instances, each
// with its own pool) on one PostgreSQL schema. One webhook is limited to
// 100/s (burst 10) and has a 40 s backlog; two unlimited webhooks get
// batches of events before and while the limited one drains. It reports
// the limited webhook's rate over 30 s from its first delivery (limit
// ratio: 1.00 is the limit) and the unlimited webhooks' throughput while
// the limited one drains, relative to the mean of before and after it
// (unlimited ratio).
//
//	go test -run '^$' -bench RateLimitPostgres -benchtime 1x ./internal/engine
func BenchmarkRateLimitPostgres(b *testing.B) {
	url := pgtest.URL(b)
	ctx := context.Background()
	schema := pgtest.Schema(b, url, "lh_bench_rate_")
	const perSecond, burst, window = 100.0, 10, 30 * time.Second
	box, err := secretbox.New(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		b.Fatal(err)
	}
	stores := make([]*postgres.Store, 3)
	for i := range stores {
		if stores[i], err = postgres.Open(ctx, url, postgres.Options{Migrate: true, Schema: schema}); err != nil {
			b.Fatal(err)
		}
		defer stores[i].Close()
	}
	st := stores[0]
	project := core.NewID()
	if err := st.CreateProject(ctx, core.Project{ID: project, Name: "p", CreateTime: time.Now()}); err != nil {
		b.Fatal(err)
	}
	var limitedTimes []time.Time
	var mu sync.Mutex
	var unlimited atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/limited" {
			mu.Lock()
			limitedTimes = append(limitedTimes, time.Now())
			mu.Unlock()
		} else {
			unlimited.Add(1)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	hook := func(path, event string, l *core.RateLimit) {
		secret, _ := webhook.NewSecret()
		sealed, _ := box.Seal([]byte(secret))
		w := &core.Webhook{ID: core.NewID(), ProjectID: project, URI: srv.URL + path, SubscribedEvents: []string{event},
			State: core.WebhookEnabled, CreateTime: time.Now(), UpdateTime: time.Now(), RateLimit: l,
			Secrets: []core.SigningSecret{{ID: core.NewID(), Sealed: sealed, Hint: "abcd", CreateTime: time.Now()}}}
		if err := st.CreateWebhook(ctx, w); err != nil {
			b.Fatal(err)
		}
	}
	hook("/limited", "batch.succeeded", &core.RateLimit{PerSecond: perSecond, Burst: burst})
	hook("/u1", "batch.failed", nil)
	hook("/u2", "batch.failed", nil)

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var tmu sync.Mutex
	var takes []takeRec
	for i, s := range stores {
		e := New(Config{Store: diagStore{s, &tmu, &takes}, Cipher: box, Owner: fmt.Sprintf("bench-%d", i),
			Sender: NewSender(SenderConfig{Policy: core.AddressPolicy{Dev: true}})})
		wg.Go(func() { _ = e.Run(runCtx) })
	}
	defer func() { cancel(); wg.Wait() }()
	cat, _ := core.NewCatalog()
	pub := publish.New(publish.Config{Store: st, Catalog: cat, Policy: core.AddressPolicy{Dev: true}})
	publishN := func(typ string, n int) {
		for i := 0; i < n; i += 100 {
			in := make([]publish.Input, min(100, n-i))
			for j := range in {
				in[j] = publish.Input{Type: typ, Data: json.RawMessage(`{"i":1}`)}
			}
			if _, err := pub.Publish(ctx, project, in); err != nil {
				b.Fatal(err)
			}
		}
	}
	// unlimitedRun publishes n events to the two unlimited webhooks and
	// returns their deliveries per second.
	unlimitedRun := func(n int) float64 {
		start, base := time.Now(), unlimited.Load()
		publishN("batch.failed", n)
		for unlimited.Load() < base+int64(2*n) {
			time.Sleep(5 * time.Millisecond)
		}
		return float64(2*n) / time.Since(start).Seconds()
	}
	const batch = 2000
	b.ResetTimer()
	before := unlimitedRun(batch)
	publishN("batch.succeeded", int(perSecond*40))
	var during []float64
	for {
		mu.Lock()
		started := len(limitedTimes) > 0 && time.Since(limitedTimes[0]) > window+time.Second
		mu.Unlock()
		if started {
			break
		}
		during = append(during, unlimitedRun(batch))
	}
	// Once the limited backlog has drained, the unlimited webhooks alone
	// again: the store has aged meanwhile (rows updated, dead tuples
	// where autovacuum is off), so "during" is set against the mean of
	// before and after, not against a fresh table alone.
	for {
		mu.Lock()
		drained := len(limitedTimes) >= int(perSecond*40)
		mu.Unlock()
		if drained {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	after := unlimitedRun(batch)
	b.StopTimer()
	mu.Lock()
	t0, n := limitedTimes[0], 0
	for _, t := range limitedTimes {
		if t.Sub(t0) < window {
			n++
		}
	}
	perSec := make([]int, 31)
	for _, t := range limitedTimes {
		if i := int(t.Sub(t0) / time.Second); i < len(perSec) {
			perSec[i]++
		}
	}
	b.Logf("limited deliveries per second: %v", perSec) // docs/benchmarks.md
	tmu.Lock()
	// Takes in the window: how many found fewer tasks than tokens, how
	// many ran out of tokens, and the gaps between consecutive takes
	// longer than the burst (without reservations, their tokens are lost).
	var workLimited, tokenLimited, longGaps int
	var maxGap time.Duration
	var last time.Time
	for _, tr := range takes {
		if tr.at.Before(t0) || tr.at.Sub(t0) > window {
			continue
		}
		if tr.granted == tr.n {
			workLimited++
		} else {
			tokenLimited++
		}
		if !last.IsZero() {
			gap := tr.at.Sub(last)
			maxGap = max(maxGap, gap)
			if gap > time.Duration(burst)*time.Second/time.Duration(perSecond) {
				longGaps++
			}
		}
		last = tr.at
	}
	b.Logf("takes: %d work-limited, %d token-limited; %d gaps longer than the burst, the longest %v", workLimited, tokenLimited, longGaps, maxGap.Round(time.Millisecond))
	tmu.Unlock()
	mu.Unlock()
	avg := 0.0
	for _, d := range during {
		avg += d
	}
	avg /= float64(len(during))
	rate := float64(n) / window.Seconds()
	b.ReportMetric(rate, "limited/s")
	b.ReportMetric(rate/perSecond, "limit_ratio")
	b.ReportMetric(before, "unlimited_before/s")
	b.ReportMetric(avg, "unlimited_during/s")
	b.ReportMetric(after, "unlimited_after/s")
	b.ReportMetric(avg/((before+after)/2), "unlimited_ratio")
}
