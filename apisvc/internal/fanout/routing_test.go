package fanout

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/akutan/akutan/proto/viewpb"
)

func spLookups(r *rand.Rand, ds []*viewpb.LookupFact, n int) []*viewpb.SPLookup {
	out := make([]*viewpb.SPLookup, n)
	for i := range out {
		if r.IntN(4) == 0 {
			out[i] = &viewpb.SPLookup{Subject: uint64(1 + r.IntN(numSubjects+10)), Predicate: uint64(firstPred + r.IntN(numPreds))}
		} else {
			f := ds[r.IntN(len(ds))]
			out[i] = &viewpb.SPLookup{Subject: f.Subject, Predicate: f.Predicate}
		}
	}
	return out
}

func spoLookups(r *rand.Rand, ds []*viewpb.LookupFact, n int) []*viewpb.SPOLookup {
	out := make([]*viewpb.SPOLookup, n)
	for i := range out {
		f := ds[r.IntN(len(ds))]
		out[i] = &viewpb.SPOLookup{Subject: f.Subject, Predicate: f.Predicate, Object: f.Object}
		if r.IntN(3) == 0 {
			out[i].Object = randObject(r)
		}
	}
	return out
}

func poLookups(r *rand.Rand, ds []*viewpb.LookupFact, n int) []*viewpb.POLookup {
	out := make([]*viewpb.POLookup, n)
	for i := range out {
		if r.IntN(4) == 0 {
			out[i] = &viewpb.POLookup{Predicate: uint64(firstPred + r.IntN(numPreds)), Object: randObject(r)}
		} else {
			f := ds[r.IntN(len(ds))]
			out[i] = &viewpb.POLookup{Predicate: f.Predicate, Object: f.Object}
		}
	}
	return out
}

func poCmpLookups(r *rand.Rand, n int) []*viewpb.POCmpLookup {
	out := make([]*viewpb.POCmpLookup, n)
	for i := range out {
		p := uint64(firstPred + r.IntN(numPreds))
		switch r.IntN(5) {
		case 0:
			out[i] = &viewpb.POCmpLookup{Predicate: p, Op: viewpb.CmpOp_PREFIX, Object: strObj(string([]rune(words[r.IntN(len(words))])[:1]), "")}
		case 1:
			lo := int64(r.IntN(30) - 20)
			out[i] = &viewpb.POCmpLookup{Predicate: p, Op: viewpb.CmpOp_BETWEEN, Object: intObj(lo), Upper: intObj(lo + int64(r.IntN(10)))}
		default:
			ops := []viewpb.CmpOp{viewpb.CmpOp_EQ, viewpb.CmpOp_LT, viewpb.CmpOp_LE, viewpb.CmpOp_GT, viewpb.CmpOp_GE}
			out[i] = &viewpb.POCmpLookup{Predicate: p, Op: ops[r.IntN(len(ops))], Object: randObject(r)}
		}
	}
	return out
}

// TestRouting checks that point lookups reach only the partition holding
// them, in one RPC per view, and that replicas share the load.
func TestRouting(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(1)
	sp, po := partitioned(t, ds, 2, 2)
	cfg := testConfig(flat(sp, po)...)
	cfg.HedgeFloor = time.Minute // count RPCs without hedges
	f := open(t, cfg)
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(1, 2))
	refSP, refPO := reference(t, viewpb.Space_HASH_SP, ds), reference(t, viewpb.Space_HASH_PO, ds)

	// One call of 200 lookups: one RPC per partition, to one of its replicas,
	// carrying exactly that partition's lookups.
	lookups := spLookups(r, ds, 200)
	got, err := f.LookupSP(ctx, 3, lookups)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := refSP.answerSP(3, lookups)
	sameFacts(t, "LookupSP", got, want)
	if countFacts(got) == 0 {
		t.Fatal("no facts found")
	}
	for i, part := range sp {
		var inPart int64
		for _, l := range lookups {
			if part[0].inRange(hashSP(l.Subject, l.Predicate)) {
				inPart++
			}
		}
		if n := sum(part, rpcs); n != 1 {
			t.Errorf("partition %d got %d RPCs, want 1", i, n)
		}
		if n := sum(part, func(v *fakeView) int64 { return v.lookups.Load() }); n != inPart {
			t.Errorf("partition %d got %d lookups, want %d", i, n, inPart)
		}
	}
	if n := sum(flat(po), rpcs); n != 0 {
		t.Errorf("HashPO views got %d RPCs", n)
	}

	// Many calls: every replica gets a fair share.
	for range 200 {
		lookups := spLookups(r, ds, 1+r.IntN(20))
		got, err := f.LookupSP(ctx, datasetMaxIdx, lookups)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := refSP.answerSP(datasetMaxIdx, lookups)
		sameFacts(t, "LookupSP", got, want)
	}
	for i, part := range sp {
		total := sum(part, rpcs)
		for j, v := range part {
			if n := v.rpcs.Load(); n < total/4 {
				t.Errorf("partition %d replica %d got %d of %d RPCs", i, j, n, total)
			}
		}
	}

	// The other point lookups.
	spo := spoLookups(r, ds, 150)
	gotSPO, err := f.LookupSPO(ctx, 2, spo)
	if err != nil {
		t.Fatal(err)
	}
	wantSPO, _ := refSP.answerSPO(2, spo)
	sameFacts(t, "LookupSPO", gotSPO, wantSPO)
	if countFacts(gotSPO) == 0 {
		t.Error("LookupSPO found nothing")
	}
	before := sum(flat(po), rpcs)
	pol := poLookups(r, ds, 150)
	gotPO, err := f.LookupPO(ctx, 4, pol)
	if err != nil {
		t.Fatal(err)
	}
	wantPO, _ := refPO.answerPO(4, pol)
	sameFacts(t, "LookupPO", gotPO, wantPO)
	if countFacts(gotPO) == 0 {
		t.Error("LookupPO found nothing")
	}
	if n := sum(flat(po), rpcs) - before; n != 2 {
		t.Errorf("LookupPO took %d RPCs, want 2", n)
	}

	// No lookups, no RPCs.
	before = sum(flat(sp, po), rpcs)
	if got, err := f.LookupSP(ctx, 1, nil); err != nil || len(got) != 0 {
		t.Errorf("empty LookupSP: %v %v", got, err)
	}
	if got, err := f.LookupS(ctx, 1, nil); err != nil || len(got) != 0 {
		t.Errorf("empty LookupS: %v %v", got, err)
	}
	if n := sum(flat(sp, po), rpcs) - before; n != 0 {
		t.Errorf("empty lookups sent %d RPCs", n)
	}
}

// TestSplitRPCs checks that lookups for one view are split above
// MaxLookupsPerRPC, and that whole-space lookups are too.
func TestSplitRPCs(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(2)
	sp, po := partitioned(t, ds, 2, 1)
	cfg := testConfig(flat(sp, po)...)
	cfg.MaxLookupsPerRPC = 30
	cfg.HedgeFloor = time.Minute
	f := open(t, cfg)
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(3, 4))
	refSP := reference(t, viewpb.Space_HASH_SP, ds)

	lookups := spLookups(r, ds, 200)
	got, err := f.LookupSP(ctx, datasetMaxIdx, lookups)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := refSP.answerSP(datasetMaxIdx, lookups)
	sameFacts(t, "LookupSP", got, want)
	for i, part := range sp {
		n := int64(0)
		for _, l := range lookups {
			if part[0].inRange(hashSP(l.Subject, l.Predicate)) {
				n++
			}
		}
		if got := part[0].rpcs.Load(); got != (n+29)/30 {
			t.Errorf("partition %d: %d RPCs for %d lookups, want %d", i, got, n, (n+29)/30)
		}
	}

	subjects := make([]uint64, 70)
	for i := range subjects {
		subjects[i] = uint64(1 + r.IntN(numSubjects))
	}
	before := sum(flat(sp), rpcs)
	gotS, err := f.LookupS(ctx, datasetMaxIdx, subjects)
	if err != nil {
		t.Fatal(err)
	}
	wantS, _ := refSP.answerS(datasetMaxIdx, subjects)
	sameFacts(t, "LookupS", gotS, wantS)
	if n := sum(flat(sp), rpcs) - before; n != 2*3 {
		t.Errorf("LookupS of 70 subjects took %d RPCs, want 3 per view", n)
	}
}
