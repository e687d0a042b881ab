package logsvc

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/akutan/akutan/logsvc/internal/entrystore"
	"github.com/akutan/akutan/logsvc/logerr"
)

// fsm is the Raft glue: it decodes commands and applies them to the entry
// store in one durable batch per call. Its rules are the package's
// invariants (doc.go).
type fsm struct {
	store     *entrystore.Store
	supported uint32
	logger    hclog.Logger

	mu     sync.Mutex
	halted error       // set once; the replica applies nothing after it
	onHalt func(error) // called once, outside the FSM goroutine's locks

	commits commitClock // when entries were committed, for the archive lag
}

// appendResult is the response of an applied append command.
type appendResult struct {
	first uint64
}

var _ raft.BatchingFSM = (*fsm)(nil)

func (f *fsm) haltErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.halted
}

func (f *fsm) halt(err error) {
	f.mu.Lock()
	first := f.halted == nil
	if first {
		f.halted = err
	}
	f.mu.Unlock()
	if first {
		f.logger.Error("stopped applying the log", "error", err)
		if f.onHalt != nil {
			go f.onHalt(err)
		}
	}
}

func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed Raft entries. Entries at or below the store's
// RaftApplied were applied before a restart and are skipped. A halted FSM
// applies nothing more, so that no entry is ever skipped: after an upgrade
// the replica re-applies from where it stopped.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	resp := make([]interface{}, len(logs))
	if err := f.haltErr(); err != nil {
		for i := range resp {
			resp[i] = err
		}
		return resp
	}
	if err := f.store.Err(); err != nil {
		f.halt(fmt.Errorf("entry store unusable: %w", err))
		return f.ApplyBatch(logs)
	}
	b := f.store.NewBatch()
	meta := b.Meta()
	dirty := false
	for i, l := range logs {
		if l.Index <= meta.RaftApplied {
			continue
		}
		if l.Type != raft.LogCommand {
			continue
		}
		r, stop := f.applyOne(b, l)
		if stop != nil {
			f.halt(stop)
			for j := i; j < len(logs); j++ {
				resp[j] = stop
			}
			break
		}
		resp[i] = r
		meta.RaftApplied = l.Index
		dirty = true
	}
	if !dirty {
		b.Abort()
		return resp
	}
	if err := f.store.DiskErr(); err != nil {
		// The entry store cannot flush (a full disk): a commit would
		// soon block Raft's apply loop with no error. Stop here instead;
		// a restart once space is freed replays from RaftApplied.
		b.Abort()
		err = fmt.Errorf("write applied entries: %w", err)
		f.halt(err)
		for i := range resp {
			resp[i] = err
		}
		return resp
	}
	if err := b.Commit(); err != nil {
		// The store did not take the batch, so nothing in it happened.
		// Stop here; after a restart Raft replays from RaftApplied.
		err = fmt.Errorf("write applied entries: %w", err)
		f.halt(err)
		for i := range resp {
			resp[i] = err
		}
		return resp
	}
	f.commits.note(meta.Last, meta.ArchivedThrough, time.Now())
	return resp
}

// applyOne stages one command. It returns the command's response, or a
// non-nil stop error when the replica must halt at this entry.
func (f *fsm) applyOne(b *entrystore.Batch, l *raft.Log) (interface{}, error) {
	meta := b.Meta()
	c, err := decodeCommand(l.Data)
	if err != nil {
		return nil, fmt.Errorf("raft entry %d: %w", l.Index, err)
	}
	switch c.kind {
	case cmdAppend, cmdGuarded:
		if c.kind == cmdGuarded {
			if refusal, err := checkGuards(b, c); refusal != nil || err != nil {
				return refusal, err
			}
		}
		version := meta.LogVersion
		for i, e := range c.entries {
			h, err := peekEnvelope(e)
			if err != nil {
				return nil, fmt.Errorf("log entry %d: %w: %v", meta.Last+1+uint64(i), logerr.ErrInvalidEntry, err)
			}
			if h.version > f.supported {
				return nil, logerr.Unsupported(h.version, f.supported)
			}
			if h.versionChange {
				if h.toVersion > f.supported {
					return nil, logerr.Unsupported(h.toVersion, f.supported)
				}
				if h.toVersion > version {
					version = h.toVersion
				}
			}
		}
		first, err := b.Append(l.Index, c.entries)
		if err != nil {
			return nil, err
		}
		if err := b.Claim(first, c.keys); err != nil {
			return nil, err
		}
		meta.LogVersion = version
		return appendResult{first: first}, nil
	case cmdDiscard:
		switch {
		case c.index == 0:
			return logerr.New(logerr.ErrInvalidArgument, nil, "discard before 0"), nil
		case c.index-1 > meta.ArchivedThrough:
			return notArchived(c.index, meta.ArchivedThrough), nil
		case c.index > meta.Last+1:
			return logerr.PastEnd(c.index, meta.Last), nil
		}
		if err := b.DiscardBefore(c.index); err != nil {
			return nil, err
		}
		return meta.First, nil
	case cmdArchived:
		through := min(c.index, meta.Last)
		if through > meta.ArchivedThrough {
			meta.ArchivedThrough = through
		}
		return meta.ArchivedThrough, nil
	case cmdRegister:
		meta.Members[c.id] = c.addr
		return nil, nil
	}
	return nil, fmt.Errorf("raft entry %d: %w", l.Index, errBadCommand)
}

// checkGuards refuses a guarded append whose keys were claimed after its
// guard index. The answer depends only on the log, so every replica gives
// the same one.
func checkGuards(b *entrystore.Batch, c command) (refusal error, err error) {
	meta := b.Meta()
	if c.since+1 < meta.First {
		return logerr.New(logerr.ErrInvalidArgument, map[string]string{"first_index": fmt.Sprint(meta.First)},
			"guard index %d is below the retained log (first index %d); resolve again at a newer index", c.since, meta.First), nil
	}
	if c.since > meta.Last {
		return logerr.PastEnd(c.since, meta.Last), nil
	}
	for _, k := range c.keys {
		claimed, err := b.ClaimedAt(k)
		if err != nil {
			return nil, err
		}
		if claimed > c.since {
			return logerr.New(logerr.ErrGuardConflict, map[string]string{"conflict_index": fmt.Sprint(claimed)},
				"guard key %q was claimed at index %d, after %d", k, claimed, c.since), nil
		}
	}
	return nil, nil
}

func notArchived(before, archived uint64) error {
	return logerr.New(logerr.ErrNotArchived, map[string]string{"archived_through": fmt.Sprint(archived)},
		"cannot discard entries below %d: only entries through %d are archived", before, archived)
}

// Snapshot captures the store. A halted replica refuses, so that Raft keeps
// the entries it has not applied.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.haltErr(); err != nil {
		return nil, fmt.Errorf("no snapshot while stopped: %w", err)
	}
	return &fsmSnapshot{snap: f.store.Snapshot()}, nil
}

// Restore replaces the store with a snapshot from the leader.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	err := f.store.Restore(rc, func(m entrystore.Meta) error {
		if m.LogVersion > f.supported {
			return logerr.Unsupported(m.LogVersion, f.supported)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, logerr.ErrUnsupportedVersion) {
			f.halt(err)
		}
		return fmt.Errorf("restore log snapshot: %w", err)
	}
	return nil
}

type fsmSnapshot struct {
	snap *entrystore.Snapshot
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.snap.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("write log snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { s.snap.Close() }
