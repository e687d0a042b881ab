package fanout

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/viewpb"
)

// Fanout reads from the views it discovers. It is safe for concurrent use.
type Fanout struct {
	cfg      Config
	log      *slog.Logger
	resolver Resolver
	lat      *latencies
	met      *metrics

	ctx    context.Context // ends at Close; parent of every background call
	stop   context.CancelFunc
	wg     sync.WaitGroup // background goroutines
	closed atomic.Bool
	once   sync.Once

	top      atomic.Pointer[topology]
	inflight atomic.Int64 // bytes of paged answers read and not yet released

	mu       sync.Mutex
	replicas map[string]*replica
	resolved map[string][]string // DNS name -> its addresses at the last successful resolution
	listed   map[string][]string // view file -> its addresses at the last successful read
	changed  chan struct{}       // closed and replaced when top changes
}

// View is what a Fanout knows about one discovered view.
type View struct {
	Addr string
	// Status is the view's answer to the last successful ping; nil before
	// the first.
	Status *viewpb.StatusResponse
	// Err says why the view is unhealthy: its last ping or lookup failed.
	// It is nil while the view is healthy.
	Err error
	// Healthy means the last ping succeeded and no lookup has failed since.
	Healthy bool
	// LastPing is when a ping last succeeded.
	LastPing time.Time
	// Slow means hedges keep beating the view, so requests prefer others.
	Slow bool
	// Fallback marks another datacenter's view (Config.Fallback).
	Fallback bool
}

// New validates cfg, resolves the DNS names once, and starts pinging every
// view. It returns once every view has answered or failed its first ping,
// which takes at most about 2·PingTimeout; use WaitReady to wait for full
// coverage.
func New(cfg Config) (*Fanout, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Fanout{
		cfg:      cfg,
		log:      cfg.Logger,
		resolver: cfg.Resolver,
		lat:      newLatencies(cfg.HedgeFloor, cfg.HedgePercentile),
		met:      newMetrics(),
		replicas: map[string]*replica{},
		resolved: map[string][]string{},
		listed:   map[string][]string{},
		changed:  make(chan struct{}),
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	f.log = f.log.With("component", "fanout")
	if f.resolver == nil {
		f.resolver = net.DefaultResolver
	}
	f.ctx, f.stop = context.WithCancel(context.Background())
	f.top.Store(buildTopology(nil))

	f.resolveAll()
	f.mu.Lock()
	f.applyAddrsLocked()
	var first []<-chan struct{}
	for _, rep := range f.replicas {
		first = append(first, rep.firstPing)
	}
	f.mu.Unlock()
	timeout := time.NewTimer(cfg.PingTimeout + 100*time.Millisecond)
	defer timeout.Stop()
	for _, ch := range first {
		select {
		case <-ch:
		case <-timeout.C:
		}
	}
	if len(cfg.DNS) > 0 || len(cfg.Files) > 0 || len(cfg.FallbackFiles) > 0 {
		f.wg.Add(1)
		go f.resolveLoop()
	}
	return f, nil
}

// Close stops discovery and pings and closes every connection. Requests in
// flight fail; later ones return ErrClosed.
func (f *Fanout) Close() error {
	f.once.Do(func() {
		f.closed.Store(true)
		f.stop()
		f.wg.Wait()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.replicas = map[string]*replica{}
		f.rebuildLocked()
	})
	return nil
}

// WaitReady waits until every point of both spaces is covered by a healthy
// view, or ctx ends; then the error names the first uncovered range.
func (f *Fanout) WaitReady(ctx context.Context) error {
	for {
		f.mu.Lock()
		changed := f.changed
		f.mu.Unlock()
		if f.closed.Load() {
			return ErrClosed
		}
		top := f.top.Load()
		gap := top.sp.firstGap()
		if gap == nil {
			gap = top.po.firstGap()
		}
		if gap == nil {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait ready: %v: %w", gap, ctx.Err())
		}
	}
}

// Views describes every discovered view, sorted by address.
func (f *Fanout) Views() []View {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]View, 0, len(f.replicas))
	for _, rep := range f.replicas {
		v := View{Addr: rep.addr, Err: rep.err, Healthy: rep.healthy, LastPing: rep.lastPing, Slow: rep.slow.slow(), Fallback: rep.fallback}
		if rep.status != nil {
			v.Status = proto.Clone(rep.status).(*viewpb.StatusResponse)
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

// RecentIndex is the highest index that every point of space has applied
// on some healthy view, as of the latest pings: the minimum over segments of
// the largest last_applied among the views covering the segment. It is 0
// while any point is uncovered, and for an unknown space.
func (f *Fanout) RecentIndex(space viewpb.Space) uint64 {
	s := f.top.Load().space(space)
	if s == nil {
		return 0
	}
	return s.recent
}

// rebuildLocked publishes a new topology from the replicas. f.mu is held.
func (f *Fanout) rebuildLocked() {
	reps := make([]*replica, 0, len(f.replicas))
	for _, rep := range f.replicas {
		reps = append(reps, rep)
	}
	sort.Slice(reps, func(i, j int) bool { return reps[i].addr < reps[j].addr })
	f.top.Store(buildTopology(reps))
	close(f.changed)
	f.changed = make(chan struct{})
}
