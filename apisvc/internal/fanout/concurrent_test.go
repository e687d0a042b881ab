package fanout

import (
	"sync"
	"testing"
	"time"

	"github.com/akutan/akutan/proto/viewpb"
)

// TestConcurrentFlapping runs lookups from many goroutines while one replica
// of each partition stops and restarts over and over: no lookup may fail or
// come back wrong.
func TestConcurrentFlapping(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(40)
	sp, po := partitioned(t, ds, 2, 2)
	cfg := testConfig(flat(sp, po)...)
	cfg.HedgeFloor = 5 * time.Millisecond // hedge a lot, too
	f := open(t, cfg)
	ctx := ctxT(t)
	refSP, refPO := reference(t, viewpb.Space_HASH_SP, ds), reference(t, viewpb.Space_HASH_PO, ds)

	stop := make(chan struct{})
	var flapper sync.WaitGroup
	flapper.Add(1)
	go func() {
		defer flapper.Done()
		flappy := []*fakeView{sp[0][0], sp[1][1], po[0][1], po[1][0]}
		for i := 0; ; i++ {
			v := flappy[i%len(flappy)]
			v.stop()
			select {
			case <-stop:
				v.restart()
				return
			case <-time.After(30 * time.Millisecond):
			}
			v.restart()
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRand(uint64(100 + g))
			for range 25 {
				sp := spLookups(r, ds, 1+r.IntN(30))
				got, err := f.LookupSP(ctx, datasetMaxIdx, sp)
				if err != nil {
					errs <- err
					return
				}
				want, _ := refSP.answerSP(datasetMaxIdx, sp)
				if err := diffFacts("LookupSP", got, want); err != nil {
					errs <- err
					return
				}
				cmp := poCmpLookups(r, 2)
				gotCmp, err := f.LookupPOCmp(ctx, datasetMaxIdx, cmp)
				if err != nil {
					errs <- err
					return
				}
				wantCmp, _ := refPO.answerPOCmp(datasetMaxIdx, cmp)
				if err := diffFacts("LookupPOCmp", gotCmp, wantCmp); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	flapper.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
