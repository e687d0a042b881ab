package storeguard

import (
	"errors"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
)

// failing is a log store whose writes fail with err.
type failing struct {
	raft.LogStore
	err error
}

func (f failing) StoreLogs([]*raft.Log) error { return f.err }

func TestReportsFailedWrites(t *testing.T) {
	var got []error
	s := Wrap(raft.NewInmemStore(), func(err error) { got = append(got, err) })
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1}}); err != nil || len(got) != 0 {
		t.Fatalf("a good write: %v, reported %v", err, got)
	}
	if s.IsMonotonic() {
		t.Error("the in-memory store is not monotonic, the wrapper says it is")
	}
	full := &failing{LogStore: raft.NewInmemStore(), err: syscall.ENOSPC}
	s = Wrap(full, func(err error) { got = append(got, err) })
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1}}); !errors.Is(err, syscall.ENOSPC) || len(got) != 1 {
		t.Fatalf("a failed write returned %v, reported %v", err, got)
	}
	m := Wrap(&raft.MockMonotonicLogStore{}, nil)
	if !m.IsMonotonic() {
		t.Error("the wrapper hides that the store is monotonic")
	}
}
