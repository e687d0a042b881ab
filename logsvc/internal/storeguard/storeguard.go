// Package storeguard watches the writes of Raft's log store. hashicorp/raft
// does not stop on a failed StoreLogs: a leader answers the pending applies
// with the error and steps down, a follower fails the AppendEntries call and
// the leader retries it. Some stores cannot take a retried write after a
// failed one (raft-wal keeps the failed frames' offsets in memory and then
// refuses every append as non-monotonic until it is reopened), so the
// replica must stop and be restarted. Wrap reports each failed write to a
// callback that makes the replica stop with that error.
package storeguard

import (
	"github.com/hashicorp/raft"
)

// LogStore is a raft.LogStore whose failed writes are reported.
type LogStore struct {
	raft.LogStore
	// OnError is called with every error of StoreLog, StoreLogs and
	// DeleteRange, on Raft's goroutine; it must not block.
	OnError func(error)
}

var (
	_ raft.LogStore          = (*LogStore)(nil)
	_ raft.MonotonicLogStore = (*LogStore)(nil)
)

// Wrap returns s reporting its failed writes to onError.
func Wrap(s raft.LogStore, onError func(error)) *LogStore {
	return &LogStore{LogStore: s, OnError: onError}
}

func (s *LogStore) report(err error) error {
	if err != nil && s.OnError != nil {
		s.OnError(err)
	}
	return err
}

// StoreLog implements raft.LogStore.
func (s *LogStore) StoreLog(l *raft.Log) error { return s.report(s.LogStore.StoreLog(l)) }

// StoreLogs implements raft.LogStore.
func (s *LogStore) StoreLogs(ls []*raft.Log) error { return s.report(s.LogStore.StoreLogs(ls)) }

// DeleteRange implements raft.LogStore.
func (s *LogStore) DeleteRange(min, max uint64) error {
	return s.report(s.LogStore.DeleteRange(min, max))
}

// IsMonotonic forwards the wrapped store's answer: Raft treats a monotonic
// store differently after a snapshot restore, and the wrapper must not
// hide it.
func (s *LogStore) IsMonotonic() bool {
	m, ok := s.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}
