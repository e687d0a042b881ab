package viewsvc

import (
	"context"
	"fmt"
	"sync"
)

// LogEntry is one log entry: its index and an encoded entrypb.Envelope.
type LogEntry struct {
	Index uint64
	Data  []byte
}

// LogReader streams the log. Stream calls fn with consecutive entries
// starting at from, in order, with no gap and no duplicate, and keeps
// following the log until ctx is done or fn returns an error, which Stream
// then returns. fn may keep the entries after it returns. Failing over
// between log replicas is the reader's job.
type LogReader interface {
	Stream(ctx context.Context, from uint64, fn func(entries []LogEntry) error) error
}

// MemLog is an in-memory LogReader for tests and benchmarks.
type MemLog struct {
	// MaxBatch caps the entries per fn call; 0 means 256.
	MaxBatch int

	mu      sync.Mutex
	entries [][]byte
	grew    chan struct{}
}

var (
	_ LogReader = (*MemLog)(nil)
	_ LogTail   = (*MemLog)(nil)
)

// NewMemLog returns an empty log.
func NewMemLog() *MemLog {
	return &MemLog{grew: make(chan struct{})}
}

// Append adds entries and returns the index of the first.
func (m *MemLog) Append(data ...[]byte) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	first := uint64(len(m.entries)) + 1
	m.entries = append(m.entries, data...)
	close(m.grew)
	m.grew = make(chan struct{})
	return first
}

// LastIndex is the index of the last entry, 0 if empty. It makes MemLog a
// LogTail.
func (m *MemLog) LastIndex(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.entries)), nil
}

// Entry returns the data at index.
func (m *MemLog) Entry(index uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entries[index-1]
}

// Stream implements LogReader.
func (m *MemLog) Stream(ctx context.Context, from uint64, fn func([]LogEntry) error) error {
	if from < 1 {
		return fmt.Errorf("stream from index %d: indexes start at 1", from)
	}
	max := m.MaxBatch
	if max <= 0 {
		max = 256
	}
	next := from
	for {
		m.mu.Lock()
		last := uint64(len(m.entries))
		grew := m.grew
		var batch []LogEntry
		if next > last+1 {
			m.mu.Unlock()
			return fmt.Errorf("stream from index %d: past the end of the log (last %d)", next, last)
		}
		for i := next; i <= last && len(batch) < max; i++ {
			batch = append(batch, LogEntry{Index: i, Data: m.entries[i-1]})
		}
		m.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-grew:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := fn(batch); err != nil {
			return err
		}
		next += uint64(len(batch))
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}
