package viewsvc

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/akutan/akutan/viewsvc/internal/keys"
)

// headState is a fact's newest version: live with an id, or not live.
type headState struct {
	live bool
	id   uint64
}

// headCache answers "what is this fact's newest version?" for the applier
// without searching Pebble's memtables, which are slow to search (a skiplist
// of random keys, with no bloom filter). It holds the heads of every fact
// written since the last flush it started, in two generations, and reads
// everything older from an iterator that sees only flushed sstables, where
// prefix bloom filters answer most misses.
//
//  1. Every head the applier writes goes into cur.
//  2. When cur holds HeadCacheFacts heads (after a commit), the cache starts a
//     flush of everything committed so far, and cur becomes prev.
//  3. When that flush is done, prev is dropped and the durable iterator is
//     reopened, so it sees what prev held.
//  4. A lookup tries cur, then prev, then the durable iterator. By 1 to 3,
//     every write missing from cur and prev is in a flushed sstable that the
//     iterator sees.
//
// Before any of that, the fact filter (factfilter.go) may say that a fact
// was never written, which ends the lookup. It holds every body written since
// the cache opened, and once the loader has scanned what was in the view
// before, every body at all; until then its "no" is not trusted.
type headCache struct {
	db       *pebble.DB
	log      *slog.Logger
	limit    int
	cur      *headMap
	prev     *headMap
	spare    *headMap // an empty map, sized, for the next cur
	prevDone <-chan struct{}
	it       *pebble.Iterator // OnlyReadGuaranteedDurable

	filter     factFilter
	loaded     bool // filter covers every fact, not only new ones
	loadDone   chan filterLoad
	stopLoad   context.CancelFunc
	filterHits int // lookups the filter answered, for tests
}

// filterLoad is what the filter loader found.
type filterLoad struct {
	f     *factFilter
	facts int
	err   error
}

func newHeadCache(ctx context.Context, db *pebble.DB, space Space, limit int, log *slog.Logger) (*headCache, error) {
	// Make everything committed so far visible to durable-only iterators.
	done, err := db.AsyncFlush()
	if err != nil {
		return nil, fmt.Errorf("flush: %w", err)
	}
	if err := waitFlush(ctx, done); err != nil {
		return nil, err
	}
	c := &headCache{db: db, log: log, limit: limit, cur: newHeadMap(min(limit, 1<<16))}
	if err := c.reopen(); err != nil {
		return nil, err
	}
	// Scan what the view held before this point in the background; every
	// later write goes through put, so the two together are complete.
	snap := db.NewSnapshot()
	ctx, cancel := context.WithCancel(context.Background())
	c.loadDone, c.stopLoad = make(chan filterLoad, 1), cancel
	go func() {
		defer closeQuietly(snap)
		start := time.Now()
		f, n, err := loadFactFilter(ctx, snap, space)
		if err == nil {
			log.Debug("fact filter loaded", "facts", n, "bytes", f.bytes(), "took", time.Since(start))
		}
		c.loadDone <- filterLoad{f: f, facts: n, err: err}
	}()
	return c, nil
}

func (c *headCache) reopen() error {
	if c.it != nil {
		_ = c.it.Close()
		c.it = nil
	}
	it, err := c.db.NewIter(&pebble.IterOptions{OnlyReadGuaranteedDurable: true, UseL6Filters: true})
	if err != nil {
		return err
	}
	c.it = it
	return nil
}

func (c *headCache) close() {
	if c.stopLoad != nil {
		c.stopLoad()
		if c.loadDone != nil {
			<-c.loadDone
		}
		c.stopLoad = nil
	}
	if c.it != nil {
		_ = c.it.Close()
		c.it = nil
	}
}

// get returns the head of the fact with the given MVCC prefix in the
// hash-first table; body is the prefix's body, the cache key, and hash its
// factHash.
func (c *headCache) get(hash uint64, body, prefix []byte) (headState, error) {
	if h, ok := c.cur.get(hash, body); ok {
		return h, nil
	}
	if h, ok := c.prev.get(hash, body); ok {
		return h, nil
	}
	if c.loaded && !c.filter.mayContain(hash) {
		c.filterHits++
		return headState{}, nil
	}
	if !c.it.SeekPrefixGE(prefix) {
		return headState{}, c.it.Error()
	}
	val, err := c.it.ValueAndErr()
	if err != nil {
		return headState{}, err
	}
	live, id, err := keys.ParseValue(val)
	if err != nil {
		return headState{}, fmt.Errorf("fact %x: %w", c.it.Key(), err)
	}
	return headState{live: live, id: id}, nil
}

func (c *headCache) put(hash uint64, body []byte, h headState) {
	c.filter.add(hash)
	c.cur.put(hash, body, h)
}

// takeFilter adopts the loader's filter if it has finished.
func (c *headCache) takeFilter() {
	if c.loadDone == nil {
		return
	}
	select {
	case l := <-c.loadDone:
		c.loadDone = nil
		c.loaded = l.err == nil
		if l.err != nil {
			// Without it every lookup goes to Pebble: slower, still right.
			c.log.Warn("fact filter: loading failed; head lookups go to the store", "err", l.err)
			return
		}
		c.filter.merge(l.f)
	default:
	}
}

// committed moves the generations along after a commit (steps 2 and 3).
func (c *headCache) committed(ctx context.Context) error {
	c.takeFilter()
	if c.prev != nil {
		select {
		case <-c.prevDone:
			if err := c.dropPrev(); err != nil {
				return err
			}
		default:
		}
	}
	if c.cur.len() < c.limit {
		return nil
	}
	if c.prev != nil {
		// The last flush is still running: wait for it.
		if err := waitFlush(ctx, c.prevDone); err != nil {
			return err
		}
		if err := c.dropPrev(); err != nil {
			return err
		}
	}
	done, err := c.db.AsyncFlush()
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	next := c.spare
	if next == nil {
		next = newHeadMap(min(c.limit, 1<<16))
	}
	c.prev, c.prevDone, c.cur, c.spare = c.cur, done, next, nil
	return nil
}

func (c *headCache) dropPrev() error {
	c.prev.reset() // keeps its memory for reuse
	c.spare, c.prev, c.prevDone = c.prev, nil, nil
	return c.reopen()
}
