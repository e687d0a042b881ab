package viewsvc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/akutan/akutan/snapshot"
)

// downloadAll fetches the files, BootParallelism at a time, and checks each
// one's size and CRC-32C. A missing or mismatching file makes its checkpoint
// corrupt.
func (v *View) downloadAll(ctx context.Context, all []*download) error {
	var total int64
	for _, d := range all {
		total += d.ref.Size
	}
	v.mu.Lock()
	v.bootDone, v.bootTotal = 0, total
	v.mu.Unlock()
	// The first failure cancels the other downloads; a corrupt object is
	// reported ahead of the cancellations and network errors it causes.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(min(v.cfg.BootParallelism, len(all)))
	var mu sync.Mutex
	var corruptErr error
	for _, d := range all {
		g.Go(func() error {
			err := v.download(gctx, d)
			var ce *corruptError
			if errors.As(err, &ce) {
				mu.Lock()
				corruptErr = cmp.Or(corruptErr, err)
				mu.Unlock()
			}
			return err
		})
	}
	err := g.Wait()
	return cmp.Or(corruptErr, err)
}

// progressWriter counts downloaded bytes into the view's boot progress.
type progressWriter struct {
	v *View
	n int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if p.n >= 1<<20 {
		p.flush()
	}
	return len(b), nil
}

func (p *progressWriter) flush() {
	p.v.mu.Lock()
	p.v.bootDone += p.n
	p.v.mu.Unlock()
	p.n = 0
}

func (v *View) download(ctx context.Context, d *download) error {
	manifest := d.p.ref.Manifest
	rc, _, err := v.cfg.Store.Get(ctx, d.ref.Key, 0, -1)
	if errors.Is(err, snapshot.ErrNotFound) {
		return corrupt(manifest, fmt.Errorf("file %s is missing", d.ref.Key))
	} else if err != nil {
		return fmt.Errorf("get %s: %w", d.ref.Key, err)
	}
	defer rc.Close()
	f, err := os.Create(d.path)
	if err != nil {
		return err
	}
	h := crc32.New(castagnoli)
	pw := &progressWriter{v: v}
	// Read one byte past the expected size to notice a longer object.
	n, err := io.Copy(io.MultiWriter(f, h, pw), io.LimitReader(rc, d.ref.Size+1))
	pw.flush()
	cerr := f.Close()
	switch {
	case err != nil:
		return fmt.Errorf("download %s: %w", d.ref.Key, err)
	case cerr != nil:
		return cerr
	case n != d.ref.Size:
		return corrupt(manifest, fmt.Errorf("file %s has %d bytes, manifest says %d: %w", d.ref.Key, n, d.ref.Size, snapshot.ErrCorrupt))
	case h.Sum32() != d.ref.CRC32C:
		return corrupt(manifest, fmt.Errorf("file %s has CRC-32C %08x, manifest says %08x: %w", d.ref.Key, h.Sum32(), d.ref.CRC32C, snapshot.ErrCorrupt))
	}
	return nil
}
