package logsvc

import (
	"errors"
	"sync"
	"time"

	gometrics "github.com/hashicorp/go-metrics/compat"
	gometricsprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/akutan/akutan/snapshot"
)

// serverMetrics are what a log replica records as it works; the gauges are
// read from its state when scraped. docs/metrics.md describes each one.
type serverMetrics struct {
	appendSeconds *prometheus.HistogramVec
	leaderChanges prometheus.Counter
}

// registerMetrics registers the replica's metrics on cfg.Registerer (nil:
// a private registry), wraps the archive store in the bucket metrics, and
// starts counting leader changes. open calls it once Raft runs and before
// gRPC serves.
func (s *Server) registerMetrics() error {
	reg := s.cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &serverMetrics{
		appendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "akutan_log_append_duration_seconds",
			Help:    "Time from the leader handing an append to Raft until it is committed and applied, by result.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms .. 16 s
		}, []string{"result"}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "akutan_log_leader_changes_total",
			Help: "Times this replica learned of a new leader (itself included).",
		}),
	}
	m.appendSeconds.WithLabelValues("ok")
	m.appendSeconds.WithLabelValues("error")
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		m.appendSeconds, m.leaderChanges,
		gauge("akutan_log_last_index", "The log's last index applied by this replica.",
			func() float64 { return float64(s.store.Meta().Last) }),
		gauge("akutan_log_first_index", "The first index this replica still holds; below it the log is read from the archive.",
			func() float64 { return float64(s.store.Meta().First) }),
		gauge("akutan_log_is_leader", "1 while this replica is the Raft leader.",
			func() float64 { return bool01(s.raft.State() == raft.Leader) }),
		gauge("akutan_log_has_leader", "1 while this replica knows a leader.",
			func() float64 { _, id := s.raft.LeaderWithID(); return bool01(id != "") }),
		gauge("akutan_log_halted", "1 once this replica has stopped applying the log (an unsupported version or a broken store).",
			func() float64 { return bool01(s.fsm.haltErr() != nil) }),
	}
	if s.cfg.Archiver != nil {
		s.fsm.commits.start(s.store.Meta().Last, time.Now())
		cs = append(cs,
			gauge("akutan_log_archived_index", "The index the archive holds the log through (the replicated watermark).",
				func() float64 { return float64(s.store.Meta().ArchivedThrough) }),
			gauge("akutan_log_archive_lag_seconds", "Age of the oldest committed entry not yet archived: the recovery point objective from the bucket. 0 when everything is archived.",
				func() float64 {
					meta := s.store.Meta()
					return s.fsm.commits.age(meta.ArchivedThrough, meta.Last, time.Now()).Seconds()
				}))
	}
	var errs []error
	for _, c := range cs {
		errs = append(errs, reg.Register(c))
	}
	errs = append(errs, registerRaftMetrics(reg))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// The archiver the replica built for ArchiveStore talks to the bucket
	// through the bucket metrics.
	if sa, ok := s.cfg.Archiver.(*SegmentArchiver); ok && s.cfg.ArchiveStore != nil && sa.store == s.cfg.ArchiveStore {
		sa.store = snapshot.InstrumentStore(sa.store, reg)
	}
	s.metrics = m
	s.watchLeader()
	return nil
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// watchLeader counts Raft's leader observations until the server closes.
func (s *Server) watchLeader() {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		lo, ok := o.Data.(raft.LeaderObservation)
		return ok && lo.LeaderID != ""
	})
	s.raft.RegisterObserver(obs)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.raft.DeregisterObserver(obs)
		for {
			select {
			case <-ch:
				s.metrics.leaderChanges.Inc()
			case <-s.closing:
				return
			}
		}
	}()
}

// observeAppend records one append the leader handed to Raft.
func (m *serverMetrics) observeAppend(start time.Time, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.appendSeconds.WithLabelValues(result).Observe(time.Since(start).Seconds())
}

// raftSink is the process's one bridge from Raft's go-metrics to
// Prometheus. go-metrics keeps a process-wide sink, so however many
// replicas a process runs (tests run several), there is one bridge; each
// registry a replica names collects from it.
var raftSink = sync.OnceValues(func() (*gometricsprom.PrometheusSink, error) {
	sink, err := gometricsprom.NewPrometheusSinkFrom(gometricsprom.PrometheusOpts{
		Name:       "akutan_raft_go_metrics",
		Expiration: time.Minute,
		Registerer: prometheus.NewRegistry(), // not the global default; see registerRaftMetrics
	})
	if err != nil {
		return nil, err
	}
	conf := gometrics.DefaultConfig("akutan")
	conf.EnableHostname = false
	conf.EnableHostnameLabel = false
	conf.EnableRuntimeMetrics = false // the Go collector has them
	if _, err := gometrics.NewGlobal(conf, sink); err != nil {
		return nil, err
	}
	return sink, nil
})

// registerRaftMetrics makes reg collect Raft's go-metrics, as akutan_raft_*
// (timers in milliseconds, as go-metrics records them).
func registerRaftMetrics(reg prometheus.Registerer) error {
	sink, err := raftSink()
	if err != nil {
		return err
	}
	if err := reg.Register(sink); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return err
		}
	}
	return nil
}

// commitClock remembers roughly when entries were committed, so that the
// age of the oldest unarchived entry can be told. It holds marks (last,
// at): the entries after the previous mark through last were committed at
// or after at. Marks closer together than commitClockGrain merge, so an
// age may be over by up to that much; entries committed before the
// replica started count as committed when it started.
type commitClock struct {
	mu      sync.Mutex
	started time.Time
	marks   []commitMark
}

type commitMark struct {
	last uint64
	at   time.Time
}

const (
	commitClockGrain = 50 * time.Millisecond // the RPO is watched at under a second
	commitClockMax   = 4096                  // marks kept; beyond it neighbours merge
)

// start records that entries through last exist at t, committed at an
// unknown earlier time.
func (c *commitClock) start(last uint64, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started.IsZero() {
		c.started = t
	}
	if len(c.marks) == 0 || c.marks[0].last > last {
		c.marks = append([]commitMark{{last, t}}, c.marks...)
	}
}

// note records that entries through last were committed at t, and forgets
// what is archived.
func (c *commitClock) note(last, archived uint64, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started.IsZero() {
		c.started = t
	}
	c.pruneLocked(archived)
	n := len(c.marks)
	switch {
	case n > 0 && last <= c.marks[n-1].last:
		return
	case n > 0 && t.Sub(c.marks[n-1].at) < commitClockGrain:
		c.marks[n-1].last = last
		return
	}
	c.marks = append(c.marks, commitMark{last, t})
	if len(c.marks) > commitClockMax {
		// Merge pairs: each keeps the older time, so ages only grow.
		merged := c.marks[:0]
		for i := 0; i+1 < len(c.marks); i += 2 {
			merged = append(merged, commitMark{c.marks[i+1].last, c.marks[i].at})
		}
		if len(c.marks)%2 == 1 {
			merged = append(merged, c.marks[len(c.marks)-1])
		}
		c.marks = merged
	}
}

func (c *commitClock) pruneLocked(archived uint64) {
	i := 0
	for i < len(c.marks) && c.marks[i].last <= archived {
		i++
	}
	c.marks = c.marks[i:]
}

// age is how long the oldest entry after archived (and through last) has
// waited at now; 0 when there is none.
func (c *commitClock) age(archived, last uint64, now time.Time) time.Duration {
	if last <= archived {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pruneLocked(archived)
	at := c.started
	if len(c.marks) > 0 {
		at = c.marks[0].at
	}
	if at.IsZero() {
		return 0
	}
	return max(now.Sub(at), 0)
}
