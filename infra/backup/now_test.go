package backup

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

type fakeArchiver struct {
	through uint64
	err     error
	calls   atomic.Int32
}

func (f *fakeArchiver) ArchiveNow(context.Context) (uint64, error) {
	f.calls.Add(1)
	return f.through, f.err
}

func TestNow(t *testing.T) {
	views := []View{
		{Address: "v3", Space: "po", Reachable: true},
		{Address: "v1", Space: "sp", End: 1 << 63, Reachable: true},
		{Address: "v2", Space: "sp", Start: 1 << 63, Reachable: false},
	}
	var inFlight, most atomic.Int32
	checkpoint := func(_ context.Context, addr string) (uint64, int64, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if addr == "v3" {
			return 0, 0, errors.New("disk full")
		}
		return 42, 1000, nil
	}
	var progress []int64
	log := &fakeArchiver{through: 50}
	rep, err := Now(context.Background(), NowOptions{Views: views, Log: log, Checkpoint: checkpoint, Parallel: 1,
		Progress: func(done, total int64) { progress = append(progress, done) }})
	if !errors.Is(err, ErrViewsFailed) {
		t.Fatalf("err %v, want ErrViewsFailed", err)
	}
	if rep.Failed != 2 || rep.ArchivedThrough != 50 || log.calls.Load() != 1 || most.Load() != 1 {
		t.Fatalf("report %+v, archive calls %d, most in flight %d", rep, log.calls.Load(), most.Load())
	}
	if rep.Views[0].Address != "v1" || rep.Views[0].Index != 42 || rep.Views[0].Err != nil ||
		rep.Views[1].Address != "v2" || rep.Views[1].Err == nil || rep.Views[2].Address != "v3" || rep.Views[2].Err == nil {
		t.Fatalf("views %+v", rep.Views)
	}
	if len(progress) != 2 || progress[1] != 2 {
		t.Fatalf("progress %v", progress)
	}

	log = &fakeArchiver{through: 7}
	rep, err = Now(context.Background(), NowOptions{Views: views[1:2], Log: log, Checkpoint: checkpoint})
	if err != nil || rep.Failed != 0 || rep.ArchivedThrough != 7 {
		t.Fatalf("all ok: %+v %v", rep, err)
	}
	log.err = errors.New("no leader")
	if _, err := Now(context.Background(), NowOptions{Views: views[1:2], Log: log, Checkpoint: checkpoint}); err == nil || errors.Is(err, ErrViewsFailed) {
		t.Fatalf("failed flush: %v", err)
	}
}
