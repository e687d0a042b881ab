package viewsvc

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akutan/akutan/proto/viewpb"
	"github.com/akutan/akutan/snapshot"
)

// logPollInterval is how often a running view asks the log for its last
// index, for akutan_view_lag_entries.
const logPollInterval = time.Second

// viewMetrics is what a view's metrics read besides the view itself. Every
// series carries the view's space and range as labels, so that several
// views may share one registry.
type viewMetrics struct {
	opened time.Time

	logLast atomic.Uint64            // the log's last index, as last polled
	prog    atomic.Pointer[progress] // what the running stream delivered

	mu           sync.Mutex
	checkpointAt time.Time // when the newest checkpoint was created; zero: unknown

	checkpoints *prometheus.CounterVec
}

// registerMetrics registers the view's metrics on cfg.Registerer (nil: a
// private registry) and wraps the store in the bucket metrics. Open calls
// it before the view is shared. A view reopened in the same process
// replaces the closed one's collectors.
func (v *View) registerMetrics() {
	reg := v.cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &viewMetrics{opened: time.Now()}
	v.met = m
	labels := prometheus.Labels{"space": v.cfg.Space.String(), "range": v.cfg.Range.String()}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f)
	}
	cs := []prometheus.Collector{
		gauge("akutan_view_applied_index", "The last log index the view has applied.",
			func() float64 { return float64(v.LastApplied()) }),
		gauge("akutan_view_log_last_index", "The log's last index as the view last learned it.",
			func() float64 { return float64(v.KnownLogIndex()) }),
		gauge("akutan_view_lag_entries", "How many entries the view is behind the log's last index it knows (0 when caught up).",
			func() float64 {
				known, applied := v.KnownLogIndex(), v.LastApplied()
				if known <= applied {
					return 0
				}
				return float64(known - applied)
			}),
		gauge("akutan_view_serving", "1 while the view reports SERVING.",
			func() float64 {
				v.mu.Lock()
				defer v.mu.Unlock()
				if v.state == viewpb.State_SERVING {
					return 1
				}
				return 0
			}),
		&pebbleCollector{v: v, labels: labels},
	}
	if v.cfg.Store != nil {
		m.checkpoints = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "akutan_view_checkpoints_total", Help: "Checkpoints this view attempted since it started, by result.", ConstLabels: labels,
		}, []string{"result"})
		m.checkpoints.WithLabelValues("ok")
		m.checkpoints.WithLabelValues("error")
		cs = append(cs, m.checkpoints,
			gauge("akutan_view_checkpoint_index", "The index of the newest checkpoint this view wrote to the bucket (0: none).",
				func() float64 {
					v.mu.Lock()
					defer v.mu.Unlock()
					return float64(v.checkpointIndex)
				}),
			gauge("akutan_view_checkpoint_age_seconds", "Age of the newest checkpoint this view wrote; with none, how long the view has been open.",
				func() float64 { return m.checkpointAge(time.Now()).Seconds() }),
		)
		v.cfg.Store = snapshot.InstrumentStore(v.cfg.Store, reg)
	}
	for _, c := range cs {
		if err := registerOrReplace(reg, c); err != nil {
			v.log.Warn("metric not registered", "err", err)
		}
	}
}

// registerOrReplace registers c, replacing an equal collector that reg
// already holds (a closed view's).
func registerOrReplace(reg prometheus.Registerer, c prometheus.Collector) error {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		reg.Unregister(are.ExistingCollector)
		err = reg.Register(c)
	}
	return err
}

// KnownLogIndex is the log's last index as the view last learned it: from
// polling the log (when its reader is a LogTail) or from what the log
// delivered, whichever is higher. A view restoring to StopAt knows no
// further than that.
func (v *View) KnownLogIndex() uint64 {
	m := v.met
	if m == nil {
		return 0
	}
	known := m.logLast.Load()
	if p := m.prog.Load(); p != nil {
		index, _ := p.get()
		known = max(known, index)
	}
	if stop := v.cfg.StopAt; stop > 0 {
		known = min(known, stop)
	}
	return known
}

// watchLog polls the log's last index while Run runs, and finds out when
// the view's newest checkpoint was written if it was before this process.
func (v *View) watchLog(ctx context.Context, log LogReader, prog *progress) {
	m := v.met
	m.prog.Store(prog)
	tail, _ := log.(LogTail)
	t := time.NewTicker(logPollInterval)
	defer t.Stop()
	for {
		if tail != nil {
			tctx, cancel := context.WithTimeout(ctx, logPollInterval)
			if last, err := tail.LastIndex(tctx); err == nil {
				for old := m.logLast.Load(); last > old && !m.logLast.CompareAndSwap(old, last); old = m.logLast.Load() {
				}
			}
			cancel()
		}
		v.findCheckpointTime(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// findCheckpointTime reads when the view's newest checkpoint was created
// from the checkpoint catalog, once, when it was written before this
// process opened the view.
func (v *View) findCheckpointTime(ctx context.Context) {
	m := v.met
	v.mu.Lock()
	index := v.checkpointIndex
	v.mu.Unlock()
	m.mu.Lock()
	known := !m.checkpointAt.IsZero()
	m.mu.Unlock()
	if known || index == 0 || v.cfg.Store == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cat, _, err := snapshot.LoadCheckpointCatalog(cctx, v.cfg.Store)
	if err != nil {
		return
	}
	space := spaceName(v.cfg.Space)
	for _, r := range cat.Checkpoints {
		if r.Space == space && r.Start == v.cfg.Range.Start && r.End == v.cfg.Range.End && r.Index == index && r.Cluster == v.cfg.Cluster {
			m.mu.Lock()
			if m.checkpointAt.IsZero() {
				m.checkpointAt = r.Created
			}
			m.mu.Unlock()
			return
		}
	}
}

// checkpointed records a checkpoint attempt.
func (m *viewMetrics) checkpointed(ref snapshot.CheckpointRef, err error) {
	if m == nil || m.checkpoints == nil {
		return
	}
	if err != nil {
		m.checkpoints.WithLabelValues("error").Inc()
		return
	}
	m.checkpoints.WithLabelValues("ok").Inc()
	m.mu.Lock()
	if ref.Created.After(m.checkpointAt) {
		m.checkpointAt = ref.Created
	}
	m.mu.Unlock()
}

func (m *viewMetrics) checkpointAge(now time.Time) time.Duration {
	m.mu.Lock()
	at := m.checkpointAt
	m.mu.Unlock()
	if at.IsZero() {
		at = m.opened
	}
	return max(now.Sub(at), 0)
}

// pebbleCollector reports the view's Pebble metrics when scraped.
type pebbleCollector struct {
	v      *View
	labels prometheus.Labels
	once   sync.Once
	descs  map[string]*prometheus.Desc
}

var pebbleMetricHelp = map[string]string{
	"akutan_view_pebble_l0_files":               "Sstables in Pebble's level 0.",
	"akutan_view_pebble_l0_sublevels":           "Sublevels of Pebble's level 0.",
	"akutan_view_pebble_read_amplification":     "Pebble's read amplification: L0 sublevels plus non-empty lower levels.",
	"akutan_view_pebble_compactions_total":      "Compactions Pebble has run since the view opened.",
	"akutan_view_pebble_compaction_debt_bytes":  "Pebble's estimate of the bytes to compact before the LSM is stable.",
	"akutan_view_pebble_flushes_total":          "Memtable flushes since the view opened.",
	"akutan_view_pebble_disk_bytes":             "Bytes the view's Pebble store uses on disk (sstables, WAL, manifests).",
	"akutan_view_pebble_block_cache_bytes":      "Bytes in Pebble's block cache.",
	"akutan_view_pebble_block_cache_hits_total": "Block cache hits.",
	"akutan_view_pebble_block_cache_miss_total": "Block cache misses.",
}

func (c *pebbleCollector) desc(name string) *prometheus.Desc {
	c.once.Do(func() {
		c.descs = map[string]*prometheus.Desc{}
		for n, help := range pebbleMetricHelp {
			c.descs[n] = prometheus.NewDesc(n, help, nil, c.labels)
		}
	})
	return c.descs[name]
}

// Describe implements prometheus.Collector.
func (c *pebbleCollector) Describe(ch chan<- *prometheus.Desc) {
	for n := range pebbleMetricHelp {
		ch <- c.desc(n)
	}
}

// Collect implements prometheus.Collector. A closed view reports nothing.
func (c *pebbleCollector) Collect(ch chan<- prometheus.Metric) {
	if err := c.v.acquire(); err != nil {
		return
	}
	m := c.v.db.Metrics()
	c.v.readers.Done()
	gauge := func(name string, val float64) {
		ch <- prometheus.MustNewConstMetric(c.desc(name), prometheus.GaugeValue, val)
	}
	counter := func(name string, val float64) {
		ch <- prometheus.MustNewConstMetric(c.desc(name), prometheus.CounterValue, val)
	}
	gauge("akutan_view_pebble_l0_files", float64(m.Levels[0].TablesCount))
	gauge("akutan_view_pebble_l0_sublevels", float64(m.Levels[0].Sublevels))
	gauge("akutan_view_pebble_read_amplification", float64(m.ReadAmp()))
	counter("akutan_view_pebble_compactions_total", float64(m.Compact.Count))
	gauge("akutan_view_pebble_compaction_debt_bytes", float64(m.Compact.EstimatedDebt))
	counter("akutan_view_pebble_flushes_total", float64(m.Flush.Count))
	gauge("akutan_view_pebble_disk_bytes", float64(m.DiskSpaceUsage()))
	gauge("akutan_view_pebble_block_cache_bytes", float64(m.BlockCache.Size))
	counter("akutan_view_pebble_block_cache_hits_total", float64(m.BlockCache.Hits))
	counter("akutan_view_pebble_block_cache_miss_total", float64(m.BlockCache.Misses))
}
