package logsvc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/akutan/akutan/logsvc/internal/entrystore"
	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/snapshot"
)

// Entry is one committed Akutan log entry.
type Entry = entrystore.Entry

// Archiver durably copies committed entries out of the log, so that the
// prefix can be discarded. The leader calls it from one goroutine, in index
// order, starting right after the replicated "archived through" watermark.
// After a leader change the new leader starts again from the watermark, so
// an archiver must accept entries it has seen before.
type Archiver interface {
	// Archive takes the next consecutive entries (possibly none, so that an
	// archiver can flush by age) and returns the highest index that is now
	// durably archived. It may buffer and return a lower index.
	Archive(ctx context.Context, entries []Entry) (durableThrough uint64, err error)
}

// archiveRequest asks the archive loop to archive through index and
// answer with the watermark it replicated.
type archiveRequest struct {
	ctx     context.Context
	through uint64
	done    chan archiveResult
}

type archiveResult struct {
	through uint64
	err     error
}

// archiveLoop runs on every replica and works only while it leads: it feeds
// new entries to the archiver, replicates the watermark it reports, and
// serves ArchiveNow. It is the only caller of the archiver.
//
// It wakes at every commit of the entry store, so that entries reach the
// archiver as soon as they commit, and every ArchiveInterval, so that the
// archiver can cut a segment by age while the log is quiet. The bucket-only
// recovery point is then about SegmentAge plus one upload.
func (s *Server) archiveLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.ArchiveInterval)
	defer t.Stop()
	a := &archiveState{s: s}
	failed := false // after a failure, retry at the ticker's pace only
	for {
		var changed <-chan struct{}
		if !failed {
			changed = s.store.Changed()
		}
		select {
		case <-s.closing:
			return
		case req := <-s.archiveNow:
			through, err := a.now(req)
			if err != nil {
				s.logger.Warn("archive now", "through", req.through, "error", err)
			}
			req.done <- archiveResult{through, err}
			continue
		case <-changed:
		case <-t.C:
		}
		if s.raft.State() != raft.Leader || s.fsm.haltErr() != nil {
			a.next = 0
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := a.step(ctx, false)
		if c, ok := s.cfg.Archiver.(Compactor); ok && err == nil {
			// After the watermark, so that merging never delays it; one
			// merge a step, so that it never delays the next hand-over
			// by more than one merge.
			if _, cerr := c.Compact(ctx); cerr != nil {
				s.logger.Warn("archive: compaction will retry", "error", cerr)
			}
		}
		cancel()
		failed = err != nil
		switch {
		case errors.Is(err, snapshot.ErrCatalogMissing), errors.Is(err, ErrArchiveConflict), errors.Is(err, ErrArchiveMismatch):
			// Only an operator can repair the bucket; keep trying, so
			// that archiving resumes once they have.
			s.logger.Error("archive: stopped: the bucket needs an operator", "error", err)
		case err != nil:
			s.logger.Warn("archive: will retry", "error", err)
		}
	}
}

// archiveState is the archive loop's position.
type archiveState struct {
	s    *Server
	next uint64 // next index to hand over; 0 = restart from the watermark
}

// step hands the archiver the next entries (at most one read's worth; none
// when caught up, so that it can flush by age), or with flush set makes
// it write out what it buffers, and replicates the watermark it reports.
func (a *archiveState) step(ctx context.Context, flush bool) (uint64, error) {
	s := a.s
	meta := s.store.Meta()
	if a.next == 0 || a.next <= meta.ArchivedThrough {
		a.next = max(meta.ArchivedThrough+1, meta.First)
	}
	var entries []Entry
	if a.next <= meta.Last && !flush {
		var err error
		entries, err = s.store.Read(a.next, 10000, 16<<20)
		if err != nil {
			from := a.next
			a.next = 0
			return 0, fmt.Errorf("read entries from %d: %w", from, err)
		}
	}
	var through uint64
	var err error
	if f, ok := s.cfg.Archiver.(Flusher); ok && flush {
		through, err = f.Flush(ctx)
	} else {
		through, err = s.cfg.Archiver.Archive(ctx, entries)
	}
	if err != nil {
		// Start again from the watermark: the archiver skips what it has.
		a.next = 0
		return 0, fmt.Errorf("archiver: %w", err)
	}
	if len(entries) > 0 {
		a.next = entries[len(entries)-1].Index + 1
	}
	if through > meta.ArchivedThrough {
		f := s.raft.Apply(encodeIndex(cmdArchived, through), timeoutOf(ctx, s.cfg.ApplyTimeout))
		if err := f.Error(); err != nil {
			return meta.ArchivedThrough, fmt.Errorf("replicate watermark %d: %w", through, s.raftErr(err))
		}
		if r, ok := f.Response().(uint64); ok {
			return r, nil
		}
	}
	return max(through, meta.ArchivedThrough), nil
}

// now hands over every entry through req.through, then flushes.
func (a *archiveState) now(req archiveRequest) (uint64, error) {
	s := a.s
	for {
		if err := req.ctx.Err(); err != nil {
			return 0, err
		}
		if s.raft.State() != raft.Leader {
			id, addr := s.leader()
			return 0, logerr.NotLeader(id, addr)
		}
		if err := s.fsm.haltErr(); err != nil {
			return 0, err
		}
		if a.next == 0 || a.next <= req.through {
			if _, err := a.step(req.ctx, false); err != nil {
				return 0, err
			}
			if a.next != 0 && a.next <= req.through {
				continue
			}
		}
		through, err := a.step(req.ctx, true)
		if err != nil {
			return 0, err
		}
		if through < req.through {
			return through, logerr.New(logerr.ErrUnavailable, nil, "archived through %d, short of %d", through, req.through)
		}
		return through, nil
	}
}
