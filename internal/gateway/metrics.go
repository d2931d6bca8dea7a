package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the gateway's Prometheus series, registered on a registry of
// its own (never the global one), served at /metrics.
type metrics struct {
	received       *prometheus.CounterVec
	intakeSeconds  *prometheus.HistogramVec
	forwarded      *prometheus.CounterVec
	forwardSeconds *prometheus.HistogramVec
	pending        *prometheus.GaugeVec
	listeners      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "longhook_gateway_received_total",
			Help: "Webhook requests by source and outcome (accepted, duplicate, unauthenticated, stale, invalid, too_large, error).",
		}, []string{"source", "outcome"}),
		intakeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "longhook_gateway_intake_seconds",
			Help:    "Time from request start to answer, including the durable write.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"source"}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "longhook_gateway_forward_attempts_total",
			Help: "Forward attempts by sink (source/name) and outcome (ok, retry, dead).",
		}, []string{"sink", "outcome"}),
		forwardSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "longhook_gateway_forward_seconds",
			Help:    "Duration of forward attempts by sink.",
			Buckets: prometheus.DefBuckets,
		}, []string{"sink"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "longhook_gateway_pending_retries",
			Help: "Forwards waiting for a retry by sink (not counting dead ones), sampled periodically.",
		}, []string{"sink"}),
		listeners: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "longhook_gateway_listen_streams",
			Help: "Connected listen streams by source.",
		}, []string{"source"}),
	}
	reg.MustRegister(m.received, m.intakeSeconds, m.forwarded, m.forwardSeconds, m.pending, m.listeners)
	return m
}

// newRegistry returns a registry with the Go runtime and process
// collectors, for a gateway that was not given one.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// sourceMetrics are one source's series, resolved once: label look-ups
// per request cost more than the increments.
type sourceMetrics struct {
	outcomes map[string]prometheus.Counter
	seconds  prometheus.Observer
}

func (m *metrics) forSource(name string) *sourceMetrics {
	sm := &sourceMetrics{outcomes: map[string]prometheus.Counter{}, seconds: m.intakeSeconds.WithLabelValues(name)}
	for _, o := range []string{"accepted", "duplicate", "unauthenticated", "stale", "invalid", "too_large", "error"} {
		sm.outcomes[o] = m.received.WithLabelValues(name, o)
	}
	return sm
}

// sinkMetrics are one sink's series, resolved once.
type sinkMetrics struct {
	ok, retry, dead prometheus.Counter
	seconds         prometheus.Observer
}

func (m *metrics) forSink(id string) *sinkMetrics {
	return &sinkMetrics{
		ok:      m.forwarded.WithLabelValues(id, "ok"),
		retry:   m.forwarded.WithLabelValues(id, "retry"),
		dead:    m.forwarded.WithLabelValues(id, "dead"),
		seconds: m.forwardSeconds.WithLabelValues(id),
	}
}
