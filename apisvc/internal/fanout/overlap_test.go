package fanout

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/viewpb"
)

// overlapping starts, in each space, views [0, 2^63), [2^63, 2^64) and the
// view [2^62, 3·2^62) of a split in progress.
func overlapping(t testing.TB, ds []*viewpb.LookupFact) (sp, po []*fakeView) {
	for _, space := range []viewpb.Space{viewpb.Space_HASH_SP, viewpb.Space_HASH_PO} {
		vs := []*fakeView{
			startFake(t, space, 0, half, ds),
			startFake(t, space, half, 0, ds),
			startFake(t, space, quarter, 3*quarter, ds),
		}
		if space == viewpb.Space_HASH_SP {
			sp = vs
		} else {
			po = vs
		}
	}
	return sp, po
}

// TestOverlap checks that whole-space lookups over overlapping views are
// complete, free of duplicates and in the view order, whichever views serve.
func TestOverlap(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(3)
	sp, po := overlapping(t, ds)
	cfg := testConfig(append(sp, po...)...)
	f := open(t, cfg)
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(5, 6))
	refSP, refPO := reference(t, viewpb.Space_HASH_SP, ds), reference(t, viewpb.Space_HASH_PO, ds)

	for i := range 60 {
		subjects := make([]uint64, 1+r.IntN(8))
		for j := range subjects {
			subjects[j] = uint64(1 + r.IntN(numSubjects+5))
		}
		index := uint64(1 + i%datasetMaxIdx)
		got, err := f.LookupS(ctx, index, subjects)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := refSP.answerS(index, subjects)
		sameFacts(t, "LookupS", got, want)

		lookups := poCmpLookups(r, 1+r.IntN(6))
		gotCmp, err := f.LookupPOCmp(ctx, index, lookups)
		if err != nil {
			t.Fatal(err)
		}
		wantCmp, _ := refPO.answerPOCmp(index, lookups)
		sameFacts(t, "LookupPOCmp", gotCmp, wantCmp)
	}
	// The split view served its share: with random preferences it beats
	// one of the others for its segments half the time.
	for _, vs := range [][]*fakeView{sp, po} {
		for i, v := range vs {
			if v.rpcs.Load() < 10 {
				t.Errorf("%v view %d served %d of 60 lookups", v.space, i, v.rpcs.Load())
			}
		}
	}

	// Digests come from the views that tile the space, never the split view.
	for _, space := range []viewpb.Space{viewpb.Space_HASH_SP, viewpb.Space_HASH_PO} {
		got, err := f.Digest(ctx, space, 3)
		if err != nil {
			t.Fatal(err)
		}
		if want := fakeDigest(ds, 3); !proto.Equal(got, want) {
			t.Errorf("digest %v: %v, want %v", space, got, want)
		}
	}
	if n := sp[2].digests.Load() + po[2].digests.Load(); n != 0 {
		t.Errorf("the split views were asked for %d digests", n)
	}

	// Point lookups in the overlap go to either view.
	lookups := spLookups(r, ds, 100)
	got, err := f.LookupSP(ctx, datasetMaxIdx, lookups)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := refSP.answerSP(datasetMaxIdx, lookups)
	sameFacts(t, "LookupSP", got, want)
}

// TestDigestNoTiling checks the digest over ranges that cover the space but
// cannot tile it.
func TestDigestNoTiling(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(4)
	sp := []*fakeView{
		startFake(t, viewpb.Space_HASH_SP, 0, half, ds),
		startFake(t, viewpb.Space_HASH_SP, quarter, 0, ds),
	}
	po := []*fakeView{startFake(t, viewpb.Space_HASH_PO, 0, 0, ds)}
	f := open(t, testConfig(append(sp, po...)...))
	ctx := ctxT(t)
	_, err := f.Digest(ctx, viewpb.Space_HASH_SP, 1)
	if !errors.Is(err, ErrNoTiling) || !strings.Contains(err.Error(), "[0x0000000000000000, 0x8000000000000000) [0x4000000000000000, 0x10000000000000000)") {
		t.Errorf("digest: %v", err)
	}
	got, err := f.Digest(ctx, viewpb.Space_HASH_PO, 1)
	if err != nil || !proto.Equal(got, fakeDigest(ds, 1)) {
		t.Errorf("digest of one view: %v, %v", got, err)
	}
	if _, err := f.Digest(ctx, viewpb.Space_SPACE_UNSPECIFIED, 1); !errors.Is(err, ErrWrongInput) {
		t.Errorf("digest of no space: %v", err)
	}
}

// TestRecentIndex checks the minimum over segments of the largest
// last_applied covering each.
func TestRecentIndex(t *testing.T) {
	checkLeaks(t)
	sp, po := overlapping(t, nil)
	sp[0].setStatus(viewpb.State_SERVING, 10, "")
	sp[1].setStatus(viewpb.State_SERVING, 7, "")
	sp[2].setStatus(viewpb.State_CATCHING_UP, 12, "")
	// Segments: [0,q) 10; [q,2q) max(10,12); [2q,3q) max(7,12); [3q,4q) 7.
	for _, v := range po {
		v.setStatus(viewpb.State_SERVING, 20, "")
	}
	f := open(t, testConfig(append(sp, po...)...))
	waitFor(t, "recent index", func() bool {
		return f.RecentIndex(viewpb.Space_HASH_SP) == 7 && f.RecentIndex(viewpb.Space_HASH_PO) == 20
	})
	sp[1].setStatus(viewpb.State_SERVING, 11, "")
	waitFor(t, "recent index 10", func() bool { return f.RecentIndex(viewpb.Space_HASH_SP) == 10 })
	sp[0].stop()
	waitFor(t, "recent index 0 when uncovered", func() bool { return f.RecentIndex(viewpb.Space_HASH_SP) == 0 })
	if f.RecentIndex(viewpb.Space_SPACE_UNSPECIFIED) != 0 {
		t.Error("recent index of no space")
	}
	ctx := ctxT(t)
	ctx2, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := f.WaitReady(ctx2); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "[0x0000000000000000, 0x4000000000000000) of HashSP") {
		t.Errorf("WaitReady: %v", err)
	}
}
