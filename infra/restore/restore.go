package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/akutan/akutan/infra/backup"
	"github.com/akutan/akutan/logsvc"
	"github.com/akutan/akutan/logsvc/logclient"
	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/viewsvc"
)

// ViewSpec is one view of the restored cluster.
type ViewSpec struct {
	Name  string
	Space viewsvc.Space
	Range viewsvc.HashRange
	Dir   string // must be empty or absent
}

// Options says what to restore and where.
type Options struct {
	Source snapshot.Store // the bucket (prefix) holding the history
	Target snapshot.Store // the new timeline's prefix; must hold no catalog
	Index  uint64         // the index to restore at; 0 means the newest archived
	LogDir string         // data dir of the restored log replica
	Log    logsvc.RestoreConfig
	Views  []ViewSpec
	// Parallel bounds how many views restore at once (default 2).
	Parallel int
	// Progress, if set, hears about long steps.
	Progress Progress
	// Logf, if set, hears about each step.
	Logf func(format string, args ...any)
}

// Run restores the cluster and returns the index it restored at.
func Run(ctx context.Context, o Options) (uint64, error) {
	if o.Progress == nil {
		o.Progress = func(string, int64, int64) {}
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Parallel < 1 {
		o.Parallel = 2
	}
	inv, lc, cc, err := backup.Load(ctx, o.Source)
	if err != nil {
		return 0, err
	}
	n := o.Index
	if n == 0 {
		n = inv.ArchivedThrough
	}
	if n == 0 {
		return 0, errors.New("the archive is empty: nothing to restore")
	}
	plans, err := backup.PlanAt(lc, cc, n)
	if err != nil {
		return 0, err
	}
	for _, p := range plans {
		if len(p.Checkpoints) == 0 {
			o.Logf("space %s: no checkpoints at or below %d; replaying the archive from 1", p.Space, n)
		} else {
			o.Logf("space %s: %d checkpoints at or below %d; replaying the archive from %d", p.Space, len(p.Checkpoints), n, p.ReplayFrom)
		}
	}
	// viewsvc.Restore and logsvc.RestoreDataDir refuse non-empty dirs too;
	// checking here first fails before any history is copied.
	for _, dir := range append([]string{o.LogDir}, viewDirs(o.Views)...) {
		if err := mustBeEmpty(dir); err != nil {
			return 0, err
		}
	}

	o.Logf("copying the history through %d to the new timeline", n)
	if err := copyHistory(ctx, o.Source, o.Target, lc, plans, n, o.Progress); err != nil {
		return 0, fmt.Errorf("new timeline: %w", err)
	}

	o.Logf("restoring %d views at %d", len(o.Views), n)
	if err := restoreViews(ctx, o, n); err != nil {
		return 0, err
	}

	o.Logf("restoring the log replica at %d", n)
	err = logsvc.RestoreDataDir(ctx, o.LogDir, o.Log, o.Target, n, func(done, total uint64) {
		o.Progress("check log", int64(done), int64(total))
	})
	if err != nil {
		return 0, fmt.Errorf("log: %w", err)
	}
	return n, nil
}

func viewDirs(vs []ViewSpec) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Dir)
	}
	return out
}

func mustBeEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty: a restore never writes over existing data", dir)
	}
	return nil
}

func restoreViews(ctx context.Context, o Options, n uint64) error {
	// The first view that fails cancels the others: the restore has failed.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Parallel)
	var mu sync.Mutex
	var done int64
	for _, spec := range o.Views {
		g.Go(func() error {
			cfg := viewsvc.DefaultConfig()
			cfg.Space, cfg.Range, cfg.Dir, cfg.Store = spec.Space, spec.Range, spec.Dir, o.Source
			cfg.Logger = quiet
			if err := viewsvc.Restore(gctx, cfg, viewLog{store: o.Source, through: n}, n); err != nil {
				return fmt.Errorf("view %s: %w", spec.Name, err)
			}
			mu.Lock()
			defer mu.Unlock()
			done++
			o.Progress("restore views", done, int64(len(o.Views)))
			o.Logf("view %s restored at %d", spec.Name, n)
			return nil
		})
	}
	return g.Wait()
}

// quiet silences the restored views' own logging; Run reports progress.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// viewLog is the log of a cluster that no longer runs: the archive through
// index through. After the last entry it waits, like a log with nothing
// new, until the view stops it.
type viewLog struct {
	store   snapshot.Store
	through uint64
}

func (l viewLog) Stream(ctx context.Context, from uint64, fn func([]viewsvc.LogEntry) error) error {
	if from <= l.through {
		err := logclient.ReadArchive(ctx, l.store, from, l.through, func(entries []logclient.Entry) error {
			batch := make([]viewsvc.LogEntry, len(entries))
			for i, e := range entries {
				batch[i] = viewsvc.LogEntry{Index: e.Index, Data: e.Data}
			}
			return fn(batch)
		})
		if err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}
