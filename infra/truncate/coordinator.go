package truncate

import (
	"context"
	"fmt"
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
type Coordinator struct {
	Config Config
	// Store holds both catalogs (the cluster's bucket or prefix).
	Store snapshot.Store
	Log   Log
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Plan gathers the catalogs and the log's state and computes the plan
// without acting on it.
func (c *Coordinator) Plan(ctx context.Context) (*Plan, error) {
	if err := c.Config.Validate(); err != nil {
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
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	return Compute(c.Config, now(), cps, logCat, log), nil
}

// Once plans and, unless dryRun, discards.
func (c *Coordinator) Once(ctx context.Context, dryRun bool) (*Plan, error) {
	p, err := c.Plan(ctx)
	if err != nil || dryRun || !p.Act() {
		return p, err
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
