package fanout

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// metrics are the fanout's: the latency of each RPC to a view and the
// hedges it sent. The API server registers them (Collectors).
type metrics struct {
	rpcSeconds *prometheus.HistogramVec
	hedges     *prometheus.CounterVec
	fallbacks  *prometheus.CounterVec
}

// The lookup RPCs, the values of the rpc label.
var rpcNames = []string{"LookupS", "LookupSP", "LookupSPO", "LookupPO", "LookupPOCmp"}

func newMetrics() *metrics {
	m := &metrics{
		rpcSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "akutan_api_view_lookup_duration_seconds",
			Help:    "Latency of one lookup RPC from the API server to one view, by RPC and result (ok, error, or canceled: it lost a hedge race or its caller left).",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 18), // 0.2 ms .. 26 s
		}, []string{"rpc", "result"}),
		hedges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "akutan_api_hedges_total",
			Help: "Hedged lookup RPCs: sent to a second view because the first had not answered within the hedge delay, by RPC.",
		}, []string{"rpc"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "akutan_api_view_fallback_calls_total",
			Help: "Lookup RPCs sent to another datacenter's view (the explicit fallback) because no view of this datacenter could serve or take the hedge, by RPC.",
		}, []string{"rpc"}),
	}
	for _, rpc := range rpcNames {
		m.hedges.WithLabelValues(rpc)
		m.fallbacks.WithLabelValues(rpc)
		m.rpcSeconds.WithLabelValues(rpc, "ok")
	}
	return m
}

// Collectors returns the fanout's metrics, for the caller to register:
// lookup latency per view RPC, hedges, the hedge delay, and the views it
// sees healthy (docs/metrics.md).
func (f *Fanout) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		f.met.rpcSeconds, f.met.hedges, f.met.fallbacks,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "akutan_api_hedge_delay_seconds",
			Help: "The current hedge delay: how long a lookup RPC may take before it is hedged.",
		}, func() float64 { return f.lat.hedgeDelay().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "akutan_api_views",
			Help: "Views the API server has discovered.",
		}, func() float64 { return float64(len(f.Views())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "akutan_api_views_healthy",
			Help: "Discovered views whose last ping succeeded and no lookup failed since.",
		}, func() float64 {
			n := 0
			for _, v := range f.Views() {
				if v.Healthy {
					n++
				}
			}
			return float64(n)
		}),
	}
}

// observeRPC records one lookup RPC of rpc to a view.
func (m *metrics) observeRPC(rpc string, start time.Time, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled:
		result = "canceled"
	default:
		result = "error"
	}
	m.rpcSeconds.WithLabelValues(rpc, result).Observe(time.Since(start).Seconds())
}
