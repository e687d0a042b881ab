package fanout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/akutan/akutan/proto/viewpb"
)

// Digest is the digest of the whole space at index. Digests add up only over
// disjoint ranges, so it asks one view of each range of a set of distinct
// ranges that tile the space exactly, preferring ranges already answered if
// it has to choose again after a failure. It is not hedged — a digest scans
// a whole range, and a hedge would double that work — but a failed view is
// replaced at once. It fails with ErrUncovered when a point has no healthy
// view and with ErrNoTiling when the healthy views' ranges cover the space
// but no subset of them tiles it.
func (f *Fanout) Digest(ctx context.Context, space viewpb.Space, index uint64) (*viewpb.DigestResponse, error) {
	r, err := f.newRequest(ctx, space, index)
	if err != nil {
		return nil, err
	}
	defer r.cancel()
	r.delay, r.record, r.rpc = -1, false, "Digest"

	var mu sync.Mutex
	done := map[[2]uint64]*viewpb.DigestResponse{}
	var cause error
	for {
		mu.Lock()
		tiles, err := r.tiling(done)
		mu.Unlock()
		if err != nil {
			if cause != nil {
				err = fmt.Errorf("%w (last error: %v)", err, cause)
			}
			return nil, err
		}
		missing := 0
		for _, tile := range tiles {
			key := [2]uint64{tile[0].lo, tile[0].last}
			mu.Lock()
			have := done[key] != nil
			mu.Unlock()
			if have {
				continue
			}
			missing++
			first := r.best(tile, nil)
			if first == nil {
				continue // it failed meanwhile; the next round routes around it
			}
			r.spawn(func() {
				resp, err := hedge(r, first,
					func(tried map[*member]bool) *member { return r.best(tile, tried) },
					func(ctx context.Context, m *member) (*viewpb.DigestResponse, error) {
						d, err := m.rep.client.Digest(ctx, &viewpb.DigestRequest{Index: index})
						if err == nil && d.GetIndex() != index {
							err = fmt.Errorf("%w: digest at index %d, not %d", ErrBadResponse, d.GetIndex(), index)
						}
						return d, err
					})
				mu.Lock()
				defer mu.Unlock()
				var ex *exhaustedError
				switch {
				case err == nil:
					done[key] = resp
				case errors.As(err, &ex):
					cause = ex.last
				default:
					r.setErr(err)
				}
			})
		}
		if missing == 0 {
			return sumDigests(index, tiles, done), nil
		}
		r.wg.Wait()
		if err := r.result(); err != nil {
			return nil, err
		}
	}
}

func sumDigests(index uint64, tiles [][]*member, done map[[2]uint64]*viewpb.DigestResponse) *viewpb.DigestResponse {
	sum := &viewpb.DigestResponse{Index: index}
	var viewErrs []string
	for _, tile := range tiles {
		d := done[[2]uint64{tile[0].lo, tile[0].last}]
		sum.Facts += d.GetFacts()
		sum.Sum1 += d.GetSum1()
		sum.Sum2 += d.GetSum2()
		if e := d.GetViewError(); e != "" && !slices.Contains(viewErrs, e) {
			viewErrs = append(viewErrs, e)
		}
	}
	sum.ViewError = strings.Join(viewErrs, "; ")
	return sum
}

// tiling returns distinct ranges that tile the space exactly, each as the
// usable views with that range, in hash order. Ranges in prefer come first
// when there is a choice; otherwise the choice follows the request's random
// preferences.
func (r *request) tiling(prefer map[[2]uint64]*viewpb.DigestResponse) ([][]*member, error) {
	type tile struct {
		members []*member
		key     uint64 // best member's preference
	}
	byRange := map[[2]uint64]*tile{}
	byStart := map[uint64][][2]uint64{}
	for _, m := range r.top.members {
		if r.best([]*member{m}, nil) == nil {
			continue // stopped before index, or failed
		}
		rk := [2]uint64{m.lo, m.last}
		t := byRange[rk]
		if t == nil {
			t = &tile{key: unusable}
			byRange[rk] = t
			byStart[m.lo] = append(byStart[m.lo], rk)
		}
		t.members = append(t.members, m)
		r.mu.Lock()
		t.key = min(t.key, r.keyLocked(m))
		r.mu.Unlock()
	}
	for _, rks := range byStart {
		sort.Slice(rks, func(i, j int) bool {
			pi, pj := prefer[rks[i]] != nil, prefer[rks[j]] != nil
			if pi != pj {
				return pi
			}
			return byRange[rks[i]].key < byRange[rks[j]].key
		})
	}
	// Depth-first search from 0 for a chain of ranges ending at 2^64.
	dead := map[uint64]bool{}
	var path [][]*member
	var walk func(pos uint64) bool
	walk = func(pos uint64) bool {
		if dead[pos] {
			return false
		}
		for _, rk := range byStart[pos] {
			path = append(path, byRange[rk].members)
			if rk[1] == ^uint64(0) || walk(rk[1]+1) {
				return true
			}
			path = path[:len(path)-1]
		}
		dead[pos] = true
		return false
	}
	if walk(0) {
		return path, nil
	}
	// Name a point nobody covers, or else the ranges that fail to tile.
	for i, c := range r.top.cover {
		if r.best(c, nil) == nil {
			return nil, r.uncovered(r.top.bounds[i], r.top.segLast(i), nil)
		}
	}
	keys := make([][2]uint64, 0, len(byRange))
	for rk := range byRange {
		keys = append(keys, rk)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	names := make([]string, len(keys))
	for i, rk := range keys {
		names[i] = fmtRange(rk[0], rk[1])
	}
	return nil, fmt.Errorf("%w: %s ranges %s at index %d", ErrNoTiling, spaceName(r.top.space), strings.Join(names, " "), r.index)
}
