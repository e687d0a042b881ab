package logsvc

import (
	"context"
	"time"

	"github.com/hashicorp/raft"

	"github.com/akutan/akutan/logsvc/internal/entrystore"
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

// archiveLoop runs on every replica and works only while it leads: it feeds
// new entries to the archiver and replicates the watermark it reports.
func (s *Server) archiveLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.ArchiveInterval)
	defer t.Stop()
	var next uint64 // next index to hand over; 0 = restart from watermark
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		if s.raft.State() != raft.Leader || s.fsm.haltErr() != nil {
			next = 0
			continue
		}
		meta := s.store.Meta()
		if next == 0 || next <= meta.ArchivedThrough {
			next = max(meta.ArchivedThrough+1, meta.First)
		}
		var entries []Entry
		if next <= meta.Last {
			var err error
			entries, err = s.store.Read(next, 10000, 16<<20)
			if err != nil {
				s.logger.Warn("archive: read entries", "from", next, "error", err)
				next = 0
				continue
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		through, err := s.cfg.Archiver.Archive(ctx, entries)
		cancel()
		if err != nil {
			s.logger.Warn("archive: archiver failed; will retry", "from", next, "error", err)
			next = 0
			continue
		}
		if len(entries) > 0 {
			next = entries[len(entries)-1].Index + 1
		}
		if through > meta.ArchivedThrough {
			if err := s.raft.Apply(encodeIndex(cmdArchived, through), s.cfg.ApplyTimeout).Error(); err != nil {
				s.logger.Warn("archive: replicate watermark", "through", through, "error", err)
			}
		}
	}
}
