package truncate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/proto/logpb"
	"github.com/akutan/akutan/snapshot"
)

// Log is the log as the coordinator uses it.
type Log interface {
	// Info returns the log's bounds as the leader confirms them.
	Info(ctx context.Context) (LogInfo, error)
	// DiscardPrefix drops entries below before and returns the new first
	// index.
	DiscardPrefix(ctx context.Context, before uint64) (uint64, error)
}

// Coordinator plans and performs log truncation.
//
// It judges every age by the store's clock (snapshot.StoreNow) and the
// time the store stamped on each checkpoint's manifest, which is uploaded
// last, never by the local clock or the view's. It counts a checkpoint
// only once it is whole: its manifest reads back and matches the catalog,
// and every data file is there with the manifest's size (a HEAD each, on
// every plan); the checkpoints a plan relies on (the newest at each point
// of each space) also have every file's CRC-32C checked, once per
// coordinator, since objects are immutable. And it plans twice, the
// second time right before DiscardPrefix, and discards only the lower of
// the two, so a checkpoint that went meanwhile cannot be counted on.
type Coordinator struct {
	Config Config
	// Store holds both catalogs (the cluster's bucket or prefix).
	Store snapshot.Store
	Log   Log
	// FromRegistry takes the critical clusters from the store's cluster
	// registry (snapshot.ClusterRegistryKey), read on every plan, instead
	// of Config.Clusters: the control plane adds and retires clusters there.
	FromRegistry bool

	mu       sync.Mutex
	checksum map[string]bool // manifests whose files' CRC-32C were checked
}

// Plan gathers the catalogs and the log's state and computes the plan
// without acting on it.
func (c *Coordinator) Plan(ctx context.Context) (*Plan, error) {
	cfg := c.Config
	if c.FromRegistry {
		reg, _, err := snapshot.LoadClusterRegistry(ctx, c.Store)
		if err != nil {
			return nil, fmt.Errorf("cluster registry: %w", err)
		}
		if cfg.Clusters = reg.Critical(); len(cfg.Clusters) == 0 {
			return nil, fmt.Errorf("the cluster registry (%s) lists no critical cluster; register the clusters first (akutan backup clusters add)", snapshot.ClusterRegistryKey)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("truncate config: %w", err)
	}
	// The log first: its watermark never runs ahead of the catalog, so
	// reading the catalog after it can only find more.
	log, err := c.Log.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("log info: %w", err)
	}
	cps, _, err := snapshot.LoadCheckpointCatalog(ctx, c.Store)
	if err != nil {
		return nil, fmt.Errorf("checkpoint catalog: %w", err)
	}
	logCat, _, err := snapshot.LoadLogCatalog(ctx, c.Store)
	if err != nil {
		return nil, fmt.Errorf("log catalog: %w", err)
	}
	now, err := snapshot.StoreNow(ctx, c.Store)
	if err != nil {
		return nil, err
	}
	whole, problems, err := c.wholeCheckpoints(ctx, cfg, cps, now)
	if err != nil {
		return nil, err
	}
	p := Compute(cfg, now, whole, logCat, log)
	p.Unverified = problems
	return p, nil
}

// wholeCheckpoints returns the critical clusters' checkpoints that are
// whole, each with Created set to its manifest's time by the store's
// clock, and a problem for each that is not.
func (c *Coordinator) wholeCheckpoints(ctx context.Context, cfg Config, cat *snapshot.CheckpointCatalog, now time.Time) (*snapshot.CheckpointCatalog, []snapshot.Problem, error) {
	critical := map[string]bool{}
	for _, cl := range cfg.Clusters {
		critical[cl] = true
	}
	var problems []snapshot.Problem
	bad := func(ref snapshot.CheckpointRef, err error) error {
		if errors.Is(err, snapshot.ErrNotFound) || errors.Is(err, snapshot.ErrCorrupt) {
			problems = append(problems, snapshot.Problem{Key: ref.Manifest, Reason: err.Error()})
			return nil
		}
		return fmt.Errorf("check checkpoint: %w", err)
	}
	// Present with the right sizes.
	out := &snapshot.CheckpointCatalog{Format: cat.Format}
	for _, ref := range cat.Checkpoints {
		if !critical[ref.Cluster] {
			continue
		}
		_, info, err := snapshot.CheckCheckpoint(ctx, c.Store, ref, false)
		if err != nil {
			if err := bad(ref, err); err != nil {
				return nil, nil, err
			}
			continue
		}
		ref.Created = info.Modified
		if ref.Created.IsZero() {
			ref.Created = now // unknown: too new to count
		}
		out.Checkpoints = append(out.Checkpoints, ref)
	}
	// Checksums of the ones the plan relies on: the newest old-enough
	// checkpoint at every point. One that fails drops out, and the next
	// newest is checked in its place.
	cutoff := now.Add(-cfg.Delay)
	for {
		var dropped []string
		for _, cl := range cfg.Clusters {
			eligible := &snapshot.CheckpointCatalog{}
			for _, ref := range out.Checkpoints {
				if ref.Cluster == cl && !ref.Created.After(cutoff) {
					eligible.Checkpoints = append(eligible.Checkpoints, ref)
				}
			}
			for _, space := range Spaces {
				chosen := newestAtEveryPoint(eligible, space)
				for _, ref := range chosen {
					if c.checked(ref.Manifest) {
						continue
					}
					if _, _, err := snapshot.CheckCheckpoint(ctx, c.Store, ref, true); err != nil {
						if err := bad(ref, err); err != nil {
							return nil, nil, err
						}
						dropped = append(dropped, ref.Manifest)
						continue
					}
					c.setChecked(ref.Manifest)
				}
			}
		}
		if len(dropped) == 0 {
			return out, problems, nil
		}
		out.Checkpoints = slices.DeleteFunc(out.Checkpoints, func(r snapshot.CheckpointRef) bool { return slices.Contains(dropped, r.Manifest) })
	}
}

// newestAtEveryPoint is the newest checkpoint at every covered point of a
// space: the ones a plan relies on.
func newestAtEveryPoint(cat *snapshot.CheckpointCatalog, space string) []snapshot.CheckpointRef {
	var out []snapshot.CheckpointRef
	seen := map[string]bool{}
	for _, lim := range spacePieces(space, cat.Checkpoints) {
		if lim.Covered && !seen[lim.Checkpoint.Manifest] {
			seen[lim.Checkpoint.Manifest] = true
			out = append(out, lim.Checkpoint)
		}
	}
	return out
}

func (c *Coordinator) checked(manifest string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checksum[manifest]
}

func (c *Coordinator) setChecked(manifest string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.checksum == nil {
		c.checksum = map[string]bool{}
	}
	c.checksum[manifest] = true
}

// Once plans and, unless dryRun, discards. It plans again right before
// the discard and discards only below the lower of the two plans.
func (c *Coordinator) Once(ctx context.Context, dryRun bool) (*Plan, error) {
	p, err := c.Plan(ctx)
	if err != nil || dryRun || !p.Act() {
		return p, err
	}
	again, err := c.Plan(ctx)
	if err != nil {
		return p, fmt.Errorf("re-check before discarding: %w", err)
	}
	if again.Discard > p.Discard {
		again.Discard, again.Reason = p.Discard, p.Reason
	}
	p = again
	if !p.Act() {
		return p, nil
	}
	first, err := c.Log.DiscardPrefix(ctx, p.Discard)
	if err != nil {
		return p, fmt.Errorf("discard below %d: %w", p.Discard, err)
	}
	p.Done, p.FirstAfter = true, first
	return p, nil
}

// Run calls Once every interval until ctx ends, handing each outcome to
// report (which may be nil). Failures are reported and retried next time.
func (c *Coordinator) Run(ctx context.Context, every time.Duration, report func(*Plan, error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, max(every, time.Minute))
		p, err := c.Once(cctx, false)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if report != nil {
			report(p, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// GRPCLog is Log over the log service's gRPC API, through the log admin
// client (logclient.Admin), which fails over between the replicas.
type GRPCLog struct {
	admin *logclient.Admin
}

var _ Log = (*GRPCLog)(nil)

// NewGRPCLog talks to the log replicas at addrs.
func NewGRPCLog(addrs []string) *GRPCLog { return &GRPCLog{admin: logclient.NewAdmin(addrs)} }

// Close releases the connections.
func (g *GRPCLog) Close() { g.admin.Close() }

// Info implements Log with a linearizable Info.
func (g *GRPCLog) Info(ctx context.Context) (LogInfo, error) {
	in, err := g.admin.Info(ctx, &logpb.InfoRequest{Linearizable: true, LocalOnly: true})
	if err != nil {
		return LogInfo{}, err
	}
	return LogInfo{First: in.FirstIndex, Last: in.LastIndex, ArchivedThrough: in.ArchivedThrough}, nil
}

// DiscardPrefix implements Log. Any replica takes it (a follower forwards
// it to the leader); a refusal such as NOT_ARCHIVED is returned at once.
func (g *GRPCLog) DiscardPrefix(ctx context.Context, before uint64) (uint64, error) {
	return g.admin.DiscardPrefix(ctx, before)
}
