package engine

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/longhook/longhook/internal/core"
)

// Metrics are the engine's Prometheus series.
type Metrics struct {
	attempts   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	deliveries *prometheus.CounterVec

	mu       sync.Mutex
	failures map[string]int // webhook id → consecutive failures seen here
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
		"longhook_webhook_consecutive_failures",
		"Consecutive failed attempts per webhook, as seen by this instance.",
		[]string{"webhook_id"}, nil)})
	if depth != nil {
		reg.MustRegister(newDepthCollector(depth))
	}
	return m
}

func (m *Metrics) observe(c *core.Claimed, a core.Attempt, outcome string, status int) {
	if m == nil {
		return
	}
	class := "none"
	if status > 0 {
		class = strconv.Itoa(status/100) + "xx"
	}
	m.attempts.WithLabelValues(outcome, class).Inc()
	m.latency.WithLabelValues(outcome).Observe(a.Latency.Seconds())
	if outcome != "retry" {
		m.deliveries.WithLabelValues(outcome).Inc()
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

type failuresCollector struct {
	m    *Metrics
	desc *prometheus.Desc
}

func (f *failuresCollector) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }
func (f *failuresCollector) Collect(ch chan<- prometheus.Metric) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	for id, n := range f.m.failures {
		ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, float64(n), id)
	}
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
