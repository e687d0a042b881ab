package restore

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/akutan/akutan/infra/backup"
	"github.com/akutan/akutan/snapshot"
	"github.com/akutan/akutan/viewsvc"
)

// DeepResult is what VerifyDeep found.
type DeepResult struct {
	Index  uint64
	SP, PO viewsvc.Digest
}

// OK reports whether both spaces hold the same facts.
func (r DeepResult) OK() bool { return r.SP.Equal(r.PO) }

// VerifyDeep restores one full-range view of each space at index n (0: the
// newest archived) into dir, from the checkpoints and the archive exactly as
// a real restore would, and compares their digests. The two spaces are
// built from different checkpoints, yet must hold the same facts, and a
// view's digest does not depend on its space; so equal digests mean the
// checkpoints and the archive agree.
func VerifyDeep(ctx context.Context, s snapshot.Store, n uint64, dir string) (DeepResult, error) {
	inv, lc, cc, err := backup.Load(ctx, s)
	if err != nil {
		return DeepResult{}, err
	}
	if n == 0 {
		n = inv.ArchivedThrough
	}
	if _, err := backup.PlanAt(lc, cc, n); err != nil {
		return DeepResult{}, err
	}
	res := DeepResult{Index: n}
	for _, space := range []viewsvc.Space{viewsvc.SpaceSP, viewsvc.SpacePO} {
		cfg := viewsvc.DefaultConfig()
		cfg.Space, cfg.Range, cfg.Dir, cfg.Store = space, viewsvc.FullRange, filepath.Join(dir, space.String()), s
		cfg.Logger = quiet
		if err := viewsvc.Restore(ctx, cfg, viewLog{store: s, through: n}, n); err != nil {
			return res, fmt.Errorf("restore %s: %w", space, err)
		}
		cfg.Store = nil
		v, err := viewsvc.Open(cfg)
		if err != nil {
			return res, err
		}
		d, err := v.Digest(ctx, n)
		v.Close()
		if err != nil {
			return res, fmt.Errorf("digest of %s: %w", space, err)
		}
		if space == viewsvc.SpaceSP {
			res.SP = d
		} else {
			res.PO = d
		}
	}
	return res, nil
}
