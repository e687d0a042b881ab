package apisvc

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akutan/akutan/apisvc/internal/fanout"
)

// serverMetrics are the API server's own metrics; the fanout adds its own
// (docs/metrics.md).
type serverMetrics struct {
	writeSeconds  *prometheus.HistogramVec
	appendSeconds *prometheus.HistogramVec
}

// newMetrics registers the API server's and its fanout's metrics on reg
// (nil: a private registry).
func newMetrics(reg prometheus.Registerer, fan *fanout.Fanout) (*serverMetrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &serverMetrics{
		writeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "akutan_api_write_duration_seconds",
			Help:    "Latency of a Write, from the request to its answer (resolving names, appending, retries), by result.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms .. 16 s
		}, []string{"result"}),
		appendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "akutan_api_append_duration_seconds",
			Help:    "Latency of one append of a write's transaction to the log, as the API server's appender sees it, by kind (plain, guarded) and result.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"kind", "result"}),
	}
	for _, r := range []string{"ok", "error"} {
		m.writeSeconds.WithLabelValues(r)
		m.appendSeconds.WithLabelValues("plain", r)
		m.appendSeconds.WithLabelValues("guarded", r)
	}
	cs := []prometheus.Collector{m.writeSeconds, m.appendSeconds}
	if fan != nil {
		cs = append(cs, fan.Collectors()...)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// observeWrite records one Write.
func (m *serverMetrics) observeWrite(start time.Time, err error) {
	if m != nil {
		m.writeSeconds.WithLabelValues(result(err)).Observe(time.Since(start).Seconds())
	}
}

// observeAppend records one append to the log.
func (m *serverMetrics) observeAppend(guarded bool, start time.Time, err error) {
	if m == nil {
		return
	}
	kind := "plain"
	if guarded {
		kind = "guarded"
	}
	m.appendSeconds.WithLabelValues(kind, result(err)).Observe(time.Since(start).Seconds())
}
