// Package raftpebble is a Raft log store and stable store on Pebble, one of
// the three stores logsvc measured (see logsvc/DESIGN.md).
//
// Contract: StoreLogs is durable when it returns (one fsynced Pebble batch);
// FirstIndex and LastIndex are cached in memory and match the stored logs;
// a missing stable key yields the error "not found", as Raft expects.
package raftpebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/akutan/akutan/internal/pebblelog"
	"github.com/hashicorp/raft"
)

// ErrKeyNotFound is returned for a missing stable key. Raft compares the
// message, so it must read "not found".
var ErrKeyNotFound = errors.New("not found")

// ErrCorrupt means a stored log record cannot be decoded.
var ErrCorrupt = errors.New("raft log record corrupt")

var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

// Store keeps Raft's log under prefix 'l' and stable keys under 's'.
type Store struct {
	db *pebble.DB

	mu          sync.RWMutex
	first, last uint64
}

func logKey(i uint64) []byte {
	k := make([]byte, 9)
	k[0] = 'l'
	binary.BigEndian.PutUint64(k[1:], i)
	return k
}

func stableKey(k []byte) []byte { return append([]byte{'s'}, k...) }

// Open opens or creates the store in dir.
func Open(dir string) (*Store, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebblelog.Quiet{Name: "raft log"}})
	if err != nil {
		return nil, fmt.Errorf("open raft log store %s: %w", dir, err)
	}
	s := &Store{db: db}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'l'}, UpperBound: []byte{'m'}})
	if err != nil {
		db.Close()
		return nil, err
	}
	if it.First() {
		s.first = binary.BigEndian.Uint64(it.Key()[1:])
	}
	if it.Last() {
		s.last = binary.BigEndian.Uint64(it.Key()[1:])
	}
	if err := it.Close(); err != nil {
		db.Close()
		return nil, fmt.Errorf("scan raft log: %w", err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// FirstIndex returns the first stored index, 0 when empty.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.first, nil
}

// LastIndex returns the last stored index, 0 when empty.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.last, nil
}

// GetLog reads one log.
func (s *Store) GetLog(index uint64, l *raft.Log) error {
	v, closer, err := s.db.Get(logKey(index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if err := decodeLog(v, l); err != nil {
		return fmt.Errorf("raft log %d: %w", index, err)
	}
	return nil
}

// StoreLog stores one log.
func (s *Store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores logs in one durable batch.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	var buf []byte
	for _, l := range logs {
		buf = encodeLog(buf[:0], l)
		if err := b.Set(logKey(l.Index), buf, nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store raft logs %d-%d: %w", logs[0].Index, logs[len(logs)-1].Index, err)
	}
	s.mu.Lock()
	if s.first == 0 {
		s.first = logs[0].Index
	}
	if last := logs[len(logs)-1].Index; last > s.last {
		s.last = last
	}
	s.mu.Unlock()
	return nil
}

// DeleteRange deletes logs in [min, max].
func (s *Store) DeleteRange(min, max uint64) error {
	if err := s.db.DeleteRange(logKey(min), logKey(max+1), pebble.Sync); err != nil {
		return fmt.Errorf("delete raft logs %d-%d: %w", min, max, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if min <= s.first {
		s.first = max + 1
	}
	if max >= s.last {
		s.last = min - 1
	}
	if s.first > s.last {
		s.first, s.last = 0, 0
	}
	return nil
}

// Set stores a stable key.
func (s *Store) Set(k, v []byte) error { return s.db.Set(stableKey(k), v, pebble.Sync) }

// Get reads a stable key.
func (s *Store) Get(k []byte) ([]byte, error) {
	v, closer, err := s.db.Get(stableKey(k))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrKeyNotFound
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// SetUint64 stores a stable number.
func (s *Store) SetUint64(k []byte, v uint64) error {
	return s.Set(k, binary.BigEndian.AppendUint64(nil, v))
}

// GetUint64 reads a stable number.
func (s *Store) GetUint64(k []byte) (uint64, error) {
	v, err := s.Get(k)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: stable key %q has %d bytes", ErrCorrupt, k, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Record: uvarint index, uvarint term, type byte, uvarint len + data,
// uvarint len + extensions, varint appended-at unix nanoseconds.
func encodeLog(b []byte, l *raft.Log) []byte {
	b = binary.AppendUvarint(b, l.Index)
	b = binary.AppendUvarint(b, l.Term)
	b = append(b, byte(l.Type))
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	b = append(b, l.Extensions...)
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	return binary.AppendVarint(b, at)
}

func decodeLog(b []byte, l *raft.Log) error {
	var ok = true
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			ok = false
			return 0
		}
		b = b[n:]
		return v
	}
	bs := func() []byte {
		n := uv()
		if !ok || n > uint64(len(b)) {
			ok = false
			return nil
		}
		v := append([]byte(nil), b[:n]...)
		b = b[n:]
		return v
	}
	l.Index = uv()
	l.Term = uv()
	if !ok || len(b) == 0 {
		return ErrCorrupt
	}
	l.Type = raft.LogType(b[0])
	b = b[1:]
	l.Data = bs()
	l.Extensions = bs()
	at, n := binary.Varint(b)
	if !ok || n <= 0 || n != len(b) {
		return ErrCorrupt
	}
	l.AppendedAt = time.Time{}
	if at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	return nil
}
