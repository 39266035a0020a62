package main

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/amber-kafka/amber/proxy"
)

// proxyMetrics turns proxy.Metrics calls into Prometheus collectors. Label
// lookups are resolved once per API key and cached, so the hot path costs a
// few atomic adds.
type proxyMetrics struct {
	connsActive prometheus.Gauge
	connsTotal  prometheus.Counter
	requests    *prometheus.CounterVec
	errors      *prometheus.CounterVec
	bytesIn     *prometheus.CounterVec
	bytesOut    *prometheus.CounterVec
	latency     *prometheus.HistogramVec

	byKey [maxMetricKey + 1]atomic.Pointer[keyMetrics] // last slot: other keys
}

const maxMetricKey = 127

type keyMetrics struct {
	requests, bytesIn, bytesOut prometheus.Counter
	latency                     prometheus.Observer
}

var _ proxy.Metrics = (*proxyMetrics)(nil)

func newProxyMetrics(reg prometheus.Registerer) *proxyMetrics {
	m := &proxyMetrics{
		connsActive: prometheus.NewGauge(prometheus.GaugeOpts{Name: "amber_proxy_connections_active", Help: "Client connections open now."}),
		connsTotal:  prometheus.NewCounter(prometheus.CounterOpts{Name: "amber_proxy_connections_total", Help: "Client connections accepted."}),
		requests:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "amber_proxy_requests_total", Help: "Requests read from clients, by API."}, []string{"api"}),
		errors:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "amber_proxy_errors_total", Help: "Requests or connections that failed at the proxy, by API and reason."}, []string{"api", "reason"}),
		bytesIn:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "amber_proxy_request_bytes_total", Help: "Bytes read from clients, by API."}, []string{"api"}),
		bytesOut:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "amber_proxy_response_bytes_total", Help: "Bytes written to clients, by API."}, []string{"api"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "amber_proxy_request_duration_seconds",
			Help:    "Time from forwarding a request to delivering its response, by API.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18), // 100µs .. 13s
		}, []string{"api"}),
	}
	reg.MustRegister(m.connsActive, m.connsTotal, m.requests, m.errors, m.bytesIn, m.bytesOut, m.latency)
	return m
}

func apiLabel(key int16) string {
	if key < 0 {
		return "none"
	}
	if name := kmsg.NameForKey(key); name != "Unknown" && name != "" {
		return name
	}
	return "key_" + strconv.Itoa(int(key))
}

func (m *proxyMetrics) key(key int16) *keyMetrics {
	slot := int(key)
	if slot < 0 || slot > maxMetricKey {
		slot = maxMetricKey
		key = -2
	}
	if km := m.byKey[slot].Load(); km != nil {
		return km
	}
	label := apiLabel(key)
	if key == -2 {
		label = "other"
	}
	km := &keyMetrics{
		requests: m.requests.WithLabelValues(label),
		bytesIn:  m.bytesIn.WithLabelValues(label),
		bytesOut: m.bytesOut.WithLabelValues(label),
		latency:  m.latency.WithLabelValues(label),
	}
	m.byKey[slot].Store(km)
	return km
}

func (m *proxyMetrics) ConnOpened() { m.connsActive.Inc(); m.connsTotal.Inc() }
func (m *proxyMetrics) ConnClosed() { m.connsActive.Dec() }

func (m *proxyMetrics) Request(key int16, bytes int) {
	km := m.key(key)
	km.requests.Inc()
	km.bytesIn.Add(float64(bytes))
}

func (m *proxyMetrics) Response(key int16, bytes int, latency time.Duration) {
	km := m.key(key)
	km.bytesOut.Add(float64(bytes))
	km.latency.Observe(latency.Seconds())
}

func (m *proxyMetrics) Error(key int16, reason string) {
	m.errors.WithLabelValues(apiLabel(key), reason).Inc()
}
