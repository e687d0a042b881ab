package apisvc

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/akutan/akutan/apisvc/internal/fanout"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/viewpb"
)

// fakeViews reports a recent index the test sets; it answers no lookups.
type fakeViews struct {
	viewReader
	sp, po atomic.Uint64
}

func (f *fakeViews) RecentIndex(space viewpb.Space) uint64 {
	if space == viewpb.Space_HASH_SP {
		return f.sp.Load()
	}
	return f.po.Load()
}

func (f *fakeViews) Views() []fanout.View { return nil }

var recent = &apipb.IndexConstraint{Kind: &apipb.IndexConstraint_Recent{Recent: true}}

// The recent index never falls: a view that restarts, or a range left with
// no healthy view, lowers what the views report but not what the server
// serves. It rises with what the views report and with the indexes the
// server has acknowledged.
func TestRecentIndexNeverFalls(t *testing.T) {
	v := &fakeViews{}
	s := &Server{views: v}
	ctx := context.Background()
	at := func(want uint64) {
		t.Helper()
		got, err := s.readIndex(ctx, recent)
		if err != nil || got != want {
			t.Fatalf("recent index %d, %v; want %d", got, err, want)
		}
	}
	v.sp.Store(10)
	v.po.Store(12)
	at(10)
	v.sp.Store(3) // a view restarted and reports an older applied index
	at(10)
	v.sp.Store(0) // a range has no healthy view
	at(10)
	v.sp.Store(20)
	v.po.Store(15)
	at(15)
	s.recent.raise(40) // a write acknowledged at 40
	at(40)
	got, err := s.readIndex(ctx, &apipb.IndexConstraint{Kind: &apipb.IndexConstraint_AtLeast{AtLeast: 7}})
	if err != nil || got != 40 {
		t.Fatalf("at least 7: %d, %v; want 40", got, err)
	}
}

// Concurrent raises leave the highest value.
func TestRecentFloorConcurrent(t *testing.T) {
	var f recentFloor
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := uint64(0); i < 1000; i++ {
				if got := f.raise(i*8 + uint64(g)); got < i*8+uint64(g) {
					t.Errorf("raise(%d) returned %d", i*8+uint64(g), got)
				}
			}
		}(g)
	}
	wg.Wait()
	if got := f.v.Load(); got != 7999 {
		t.Fatalf("floor %d, want 7999", got)
	}
}
