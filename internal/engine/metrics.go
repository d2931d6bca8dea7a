package engine

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/longhook/longhook/internal/core"
)

// Metrics are the engine's Prometheus series.
type Metrics struct {
	attempts   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	deliveries *prometheus.CounterVec

	// series caches the children of the vectors by outcome and status
	// class: WithLabelValues hashes its labels and looks the child up
	// under a lock, three times per attempt otherwise.
	series [len(outcomes)][10]atomic.Pointer[attemptSeries]

	mu       sync.Mutex
	failures map[string]int // webhook id → consecutive failures seen here
}

// outcomes are the outcome labels of an attempt.
var outcomes = [...]string{"succeeded", "retry", "failed"}

// attemptSeries are the series one attempt's outcome and status class
// count in.
type attemptSeries struct {
	attempts   prometheus.Counter
	latency    prometheus.Observer
	deliveries prometheus.Counter // nil for retries
}

// NewMetrics registers the engine's series on reg. depth, when non-nil,
// is called at scrape time for the queue gauges.
func NewMetrics(reg prometheus.Registerer, depth func(ctx context.Context) (core.QueueDepth, error)) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "longhook_delivery_attempts_total",
			Help: "Delivery attempts by outcome (succeeded, retry, failed) and HTTP status class.",
		}, []string{"outcome", "status_class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "longhook_delivery_attempt_duration_seconds",
			Help:    "Latency of delivery attempts.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 15},
		}, []string{"outcome"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "longhook_deliveries_finished_total",
			Help: "Deliveries that reached a final outcome (succeeded, failed).",
		}, []string{"outcome"}),
		failures: map[string]int{},
	}
	reg.MustRegister(m.attempts, m.latency, m.deliveries)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "longhook_webhooks_failing",
		Help: "Webhooks whose most recent attempt from this instance failed.",
	}, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		return float64(len(m.failures))
	}))
	reg.MustRegister(&failuresCollector{m: m, desc: prometheus.NewDesc(
		"longhook_webhooks_failing_streak",
		"Webhooks whose recent attempts from this instance failed, by how many in a row (1, 2-9, 10-99, 100+).",
		[]string{"streak"}, nil)})
	if depth != nil {
		reg.MustRegister(newDepthCollector(depth))
	}
	return m
}

func (m *Metrics) observe(c *core.Claimed, a core.Attempt, outcome string, status int) {
	if m == nil {
		return
	}
	s := m.seriesOf(outcome, status)
	s.attempts.Inc()
	s.latency.Observe(a.Latency.Seconds())
	if s.deliveries != nil {
		s.deliveries.Inc()
	}
	if c.WebhookID != "" {
		m.mu.Lock()
		if outcome == "succeeded" {
			delete(m.failures, c.WebhookID)
		} else {
			m.failures[c.WebhookID]++
		}
		m.mu.Unlock()
	}
}

// seriesOf returns the series of an attempt with outcome and status (0:
// no response), from the cache when the pair is a usual one.
func (m *Metrics) seriesOf(outcome string, status int) *attemptSeries {
	o := -1
	for i, name := range outcomes {
		if name == outcome {
			o = i
		}
	}
	class := 0 // "none"
	if status > 0 {
		class = status / 100 // 1 to 9 for a valid status line
	}
	if o < 0 || class < 0 || class >= len(m.series[0]) {
		return m.newSeries(outcome, status)
	}
	p := &m.series[o][class]
	if s := p.Load(); s != nil {
		return s
	}
	s := m.newSeries(outcome, status)
	p.Store(s)
	return s
}

func (m *Metrics) newSeries(outcome string, status int) *attemptSeries {
	class := "none"
	if status > 0 {
		class = strconv.Itoa(status/100) + "xx"
	}
	s := &attemptSeries{
		attempts: m.attempts.WithLabelValues(outcome, class),
		latency:  m.latency.WithLabelValues(outcome),
	}
	if outcome != "retry" {
		s.deliveries = m.deliveries.WithLabelValues(outcome)
	}
	return s
}

// streakBuckets are the failure-streak buckets of
// longhook_webhooks_failing_streak: aggregates, so the public /metrics
// names no webhook (docs/security.md).
var streakBuckets = []struct {
	label string
	min   int
}{{"100+", 100}, {"10-99", 10}, {"2-9", 2}, {"1", 1}}

type failuresCollector struct {
	m    *Metrics
	desc *prometheus.Desc
}

func (f *failuresCollector) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }
func (f *failuresCollector) Collect(ch chan<- prometheus.Metric) {
	counts := make([]int, len(streakBuckets))
	f.m.mu.Lock()
	for _, n := range f.m.failures {
		for i, b := range streakBuckets {
			if n >= b.min {
				counts[i]++
				break
			}
		}
	}
	f.m.mu.Unlock()
	for i, b := range streakBuckets {
		ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, float64(counts[i]), b.label)
	}
}

// prune drops the failure streaks of webhooks that are gone or no longer
// enabled (deleted, disabled by hand or for failing): nothing attempts
// them any more, so no success would ever clear their entry.
func (m *Metrics) prune(ctx context.Context, lookup func(context.Context, []string) (map[string]*core.Webhook, error)) error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	ids := make([]string, 0, len(m.failures))
	for id := range m.failures {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	hooks, err := lookup(ctx, ids)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if h := hooks[id]; h == nil || h.State != core.WebhookEnabled {
			delete(m.failures, id)
		}
	}
	return nil
}

// tracked reports how many webhooks have a failure streak here.
func (m *Metrics) tracked() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.failures)
}

// depthCollector reports the queue depth at scrape time, cached for a
// second so frequent scrapes do not load the store.
type depthCollector struct {
	depth    func(ctx context.Context) (core.QueueDepth, error)
	due, sch *prometheus.Desc
	mu       sync.Mutex
	last     core.QueueDepth
	lastTime time.Time
}

func newDepthCollector(depth func(ctx context.Context) (core.QueueDepth, error)) *depthCollector {
	return &depthCollector{
		depth: depth,
		due:   prometheus.NewDesc("longhook_deliveries_due", "Pending deliveries due now (including those in flight).", nil, nil),
		sch:   prometheus.NewDesc("longhook_deliveries_scheduled", "Pending deliveries waiting for a later retry.", nil, nil),
	}
}

func (d *depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- d.due; ch <- d.sch }
func (d *depthCollector) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.lastTime) > time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if q, err := d.depth(ctx); err == nil {
			d.last, d.lastTime = q, time.Now()
		}
		cancel()
	}
	ch <- prometheus.MustNewConstMetric(d.due, prometheus.GaugeValue, float64(d.last.Due))
	ch <- prometheus.MustNewConstMetric(d.sch, prometheus.GaugeValue, float64(d.last.Scheduled))
}
