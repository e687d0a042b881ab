package fanout

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
)

// TestFailover checks that a stopped replica costs no errors, is avoided,
// and is used again once it answers pings.
func TestFailover(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(7)
	a := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	b := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, ds)
	f := open(t, testConfig(a, b, po))
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(11, 12))
	ref := reference(t, viewpb.Space_HASH_SP, ds)
	check := func(n int) {
		t.Helper()
		for range n {
			lookups := spLookups(r, ds, 1+r.IntN(10))
			got, err := f.LookupSP(ctx, datasetMaxIdx, lookups)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref.answerSP(datasetMaxIdx, lookups)
			sameFacts(t, "LookupSP", got, want)
			subjects := []uint64{uint64(1 + r.IntN(numSubjects))}
			gotS, err := f.LookupS(ctx, datasetMaxIdx, subjects)
			if err != nil {
				t.Fatal(err)
			}
			wantS, _ := ref.answerS(datasetMaxIdx, subjects)
			sameFacts(t, "LookupS", gotS, wantS)
		}
	}
	check(20)
	if a.rpcs.Load() == 0 || b.rpcs.Load() == 0 {
		t.Fatalf("replicas got %d and %d RPCs", a.rpcs.Load(), b.rpcs.Load())
	}

	a.stop()
	check(50)
	if v := viewOf(f, a.addr); v.Healthy || v.Err == nil {
		t.Errorf("stopped view: %+v", v)
	}
	if got, err := f.Digest(ctx, viewpb.Space_HASH_SP, 2); err != nil || got.Facts != fakeDigest(ds, 2).Facts {
		t.Errorf("digest with a replica down: %v %v", got, err)
	}

	a.restart()
	waitFor(t, "the restarted view to be healthy", func() bool { return viewOf(f, a.addr).Healthy })
	before := a.rpcs.Load()
	check(30)
	if a.rpcs.Load() == before {
		t.Error("the restarted view is not used")
	}
}

// TestViewErrors checks which view errors are retried elsewhere and which
// are returned.
func TestViewErrors(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(8)
	a := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	b := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, ds)
	f := open(t, testConfig(a, b, po))
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(13, 14))

	// A failing replica is routed around and marked unhealthy.
	a.setLookupErr(status.Error(codes.Internal, "disk on fire"))
	for range 20 {
		if _, err := f.LookupSP(ctx, 1, spLookups(r, ds, 5)); err != nil {
			t.Fatal(err)
		}
	}
	if a.rpcs.Load() == 0 {
		t.Fatal("the failing replica was never tried")
	}
	// A good ping (every 50 ms here) brings it back before a loaded
	// machine may look, so keep sending lookups: each that tries it marks
	// it again.
	waitFor(t, "the failing view marked unhealthy", func() bool {
		if _, err := f.LookupSP(ctx, 1, spLookups(r, ds, 5)); err != nil {
			t.Fatal(err)
		}
		v := viewOf(f, a.addr)
		return !v.Healthy && v.Err != nil && strings.Contains(v.Err.Error(), "disk on fire")
	})
	// Its next ping brings it back.
	a.setLookupErr(nil)
	waitFor(t, "the view healthy again", func() bool { return viewOf(f, a.addr).Healthy })

	// When every replica fails, the error names the range and the cause.
	a.setLookupErr(status.Error(codes.Unavailable, "going away"))
	b.setLookupErr(status.Error(codes.Unavailable, "going away"))
	_, err := f.LookupSP(ctx, 1, spLookups(r, ds, 3))
	if !errors.Is(err, ErrUncovered) || !strings.Contains(err.Error(), "going away") ||
		!strings.Contains(err.Error(), "[0x0000000000000000, 0x10000000000000000) of HashSP at index 1") {
		t.Errorf("all replicas failing: %v", err)
	}
	a.setLookupErr(nil)
	b.setLookupErr(nil)
	waitFor(t, "both views healthy", func() bool { return viewOf(f, a.addr).Healthy && viewOf(f, b.addr).Healthy })

	// An invalid lookup is the caller's error: one RPC, nobody marked.
	before := a.rpcs.Load() + b.rpcs.Load()
	_, err = f.LookupPOCmp(ctx, 1, []*viewpb.POCmpLookup{{Predicate: firstPred}})
	if !errors.Is(err, ErrWrongInput) {
		t.Errorf("invalid lookup: %v", err)
	}
	if n := po.rpcs.Load(); n != 1 {
		t.Errorf("invalid lookup sent %d RPCs", n)
	}
	if !viewOf(f, po.addr).Healthy || a.rpcs.Load()+b.rpcs.Load() != before {
		t.Errorf("invalid lookup: views %+v", f.Views())
	}
}

// TestUncovered checks ErrUncovered for points and segments no view serves.
func TestUncovered(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(9)
	low := startFake(t, viewpb.Space_HASH_SP, 0, half, ds)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, ds)
	f, err := New(testConfig(low, po))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	waitFor(t, "views healthy", func() bool { return viewOf(f, low.addr).Healthy && viewOf(f, po.addr).Healthy })
	ctx := ctxT(t)
	var lowL, highL *viewpb.SPLookup
	for _, fact := range ds {
		l := &viewpb.SPLookup{Subject: fact.Subject, Predicate: fact.Predicate}
		if hashSP(l.Subject, l.Predicate) < half {
			lowL = l
		} else {
			highL = l
		}
	}
	if got, err := f.LookupSP(ctx, 3, []*viewpb.SPLookup{lowL}); err != nil || len(got[0]) == 0 {
		t.Errorf("covered point: %v %v", got, err)
	}
	const want = "no healthy view covers [0x8000000000000000, 0x10000000000000000) of HashSP at index 3"
	for what, call := range map[string]func() error{
		"LookupSP": func() error { _, err := f.LookupSP(ctx, 3, []*viewpb.SPLookup{lowL, highL}); return err },
		"LookupS":  func() error { _, err := f.LookupS(ctx, 3, []uint64{1}); return err },
		"Digest":   func() error { _, err := f.Digest(ctx, viewpb.Space_HASH_SP, 3); return err },
	} {
		if err := call(); !errors.Is(err, ErrUncovered) || err.Error() != want {
			t.Errorf("%s: %v", what, err)
		}
	}
	ctx2, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := f.WaitReady(ctx2); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "[0x8000000000000000, 0x10000000000000000) of HashSP") {
		t.Errorf("WaitReady: %v", err)
	}
	if got := f.RecentIndex(viewpb.Space_HASH_SP); got != 0 {
		t.Errorf("recent index of an uncovered space: %d", got)
	}
}

// TestPreferences checks that SERVING views are preferred, and that a
// stopped view serves only indexes it applied.
func TestPreferences(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(10)
	serving := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	catching := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	stopped := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, ds)
	catching.setStatus(viewpb.State_CATCHING_UP, 3, "")
	stopped.setStatus(viewpb.State_STOPPED, 3, "apply log index 4: unsupported log version 2 (supports up to 1)")
	cfg := testConfig(serving, catching, stopped, po)
	cfg.HedgeFloor = time.Minute
	f := open(t, cfg)
	ctx := ctxT(t)
	r := rand.New(rand.NewPCG(15, 16))
	calls := func(index uint64, n int) error {
		for range n {
			if _, err := f.LookupSP(ctx, index, spLookups(r, ds, 3)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := calls(3, 20); err != nil {
		t.Fatal(err)
	}
	if n := serving.rpcs.Load(); n != 20 || catching.rpcs.Load() != 0 || stopped.rpcs.Load() != 0 {
		t.Errorf("RPCs: serving %d, catching up %d, stopped %d", n, catching.rpcs.Load(), stopped.rpcs.Load())
	}
	serving.stop()
	waitFor(t, "serving view unhealthy", func() bool { return !viewOf(f, serving.addr).Healthy })
	if err := calls(5, 10); err != nil {
		t.Fatal(err)
	}
	if n := catching.rpcs.Load(); n != 10 || stopped.rpcs.Load() != 0 {
		t.Errorf("RPCs: catching up %d, stopped %d", n, stopped.rpcs.Load())
	}
	catching.stop()
	waitFor(t, "catching-up view unhealthy", func() bool { return !viewOf(f, catching.addr).Healthy })
	if err := calls(3, 10); err != nil {
		t.Fatal(err)
	}
	if n := stopped.rpcs.Load(); n != 10 {
		t.Errorf("stopped view got %d RPCs", n)
	}
	before := stopped.rpcs.Load()
	if err := calls(4, 1); !errors.Is(err, ErrUncovered) || !strings.Contains(err.Error(), "at index 4") {
		t.Errorf("past the stopped view: %v", err)
	}
	if stopped.rpcs.Load() != before {
		t.Error("a stopped view was asked for an index it will never apply")
	}
}

// TestDeadline checks that the caller's deadline and cancellation end a
// lookup at once with the context's error.
func TestDeadline(t *testing.T) {
	checkLeaks(t)
	ds := makeFacts(11)
	a := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	b := startFake(t, viewpb.Space_HASH_SP, 0, 0, ds)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, ds)
	f := open(t, testConfig(a, b, po))
	a.setDelay(10 * time.Second)
	b.setDelay(10 * time.Second)
	lookups := []*viewpb.SPLookup{{Subject: 1, Predicate: firstPred}}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.LookupSP(ctx, 1, lookups)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("deadline: %v after %v", err, time.Since(start))
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := f.LookupS(ctx, 1, []uint64{1}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: %v", err)
	}
	// Nobody was blamed for the caller's deadline.
	for _, v := range f.Views() {
		if !v.Healthy {
			t.Errorf("view %s unhealthy: %v", v.Addr, v.Err)
		}
	}
	waitFor(t, "the views to see the cancellations", func() bool {
		return a.cancelled.Load()+b.cancelled.Load() == a.rpcs.Load()+b.rpcs.Load()
	})
}

// TestWrongInput checks requests refused before any RPC.
func TestWrongInput(t *testing.T) {
	checkLeaks(t)
	sp := startFake(t, viewpb.Space_HASH_SP, 0, 0, nil)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, nil)
	f := open(t, testConfig(sp, po))
	ctx := ctxT(t)
	bad := strObj("\xff", "")
	for what, call := range map[string]func() error{
		"nil SP":    func() error { _, err := f.LookupSP(ctx, 1, []*viewpb.SPLookup{nil}); return err },
		"nil SPO":   func() error { _, err := f.LookupSPO(ctx, 1, []*viewpb.SPOLookup{{}, nil}); return err },
		"nil PO":    func() error { _, err := f.LookupPO(ctx, 1, []*viewpb.POLookup{nil}); return err },
		"nil POCmp": func() error { _, err := f.LookupPOCmp(ctx, 1, []*viewpb.POCmpLookup{nil}); return err },
		"PO no obj": func() error { _, err := f.LookupPO(ctx, 1, []*viewpb.POLookup{{Predicate: 1}}); return err },
		"PO new node": func() error {
			_, err := f.LookupPO(ctx, 1, []*viewpb.POLookup{{Predicate: 1, Object: newNodeObj()}})
			return err
		},
		"SPO utf8": func() error { _, err := f.LookupSPO(ctx, 1, []*viewpb.SPOLookup{{Object: bad}}); return err },
		"PO utf8":  func() error { _, err := f.LookupPO(ctx, 1, []*viewpb.POLookup{{Object: bad}}); return err },
		"POCmp utf8": func() error {
			_, err := f.LookupPOCmp(ctx, 1, []*viewpb.POCmpLookup{{Op: viewpb.CmpOp_BETWEEN, Object: strObj("a", ""), Upper: bad}})
			return err
		},
	} {
		if err := call(); !errors.Is(err, ErrWrongInput) {
			t.Errorf("%s: %v", what, err)
		}
	}
	if n := sp.rpcs.Load() + po.rpcs.Load(); n != 0 {
		t.Errorf("%d RPCs sent", n)
	}
}

func newNodeObj() *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_Node{Node: &entrypb.NodeRef{Ref: &entrypb.NodeRef_NewNode{NewNode: 1}}}}
}

// TestClose checks that a closed Fanout refuses requests.
func TestClose(t *testing.T) {
	checkLeaks(t)
	sp := startFake(t, viewpb.Space_HASH_SP, 0, 0, nil)
	po := startFake(t, viewpb.Space_HASH_PO, 0, 0, nil)
	f := open(t, testConfig(sp, po))
	ctx := ctxT(t)
	po.stop()
	waitFor(t, "po unhealthy", func() bool { return !viewOf(f, po.addr).Healthy })
	done := make(chan error, 1)
	go func() { done <- f.WaitReady(ctx) }() // waits for HashPO coverage
	time.Sleep(200 * time.Millisecond)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("WaitReady: %v", err)
	}
	if _, err := f.LookupSP(ctx, 1, []*viewpb.SPLookup{{}}); !errors.Is(err, ErrClosed) {
		t.Errorf("LookupSP: %v", err)
	}
	if len(f.Views()) != 0 {
		t.Errorf("views after close: %v", f.Views())
	}
	if err := f.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err == nil || !strings.Contains(err.Error(), "no views") {
		t.Errorf("default config: %v", err)
	}
	cfg := Config{Static: []string{""}, DNS: []string{"nope", ":80"}, HedgePercentile: 1.5, HedgeFloor: -1}
	err := cfg.Validate()
	for _, want := range []string{"static address 0", `"nope"`, `":80"`, "resolve interval", "ping interval", "ping timeout",
		"hedge floor", "hedge percentile", "max lookups"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not say %q", err, want)
		}
	}
	cfg = DefaultConfig()
	cfg.DNS = []string{"views.default.svc:9000"}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New with an empty config")
	}
}
