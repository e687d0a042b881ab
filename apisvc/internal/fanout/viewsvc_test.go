package fanout

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
	"github.com/akutan/akutan/viewsvc"
)

// The one test against real views (Pebble, the real apply path and gRPC
// server). It is the check that the fakes and the merge order match the
// views.

const realTxs = 5

// writeLog writes ds as realTxs transactions and returns the facts as the
// views will report them: with the ids and indexes the log gives them.
func writeLog(t testing.TB, ds []*viewpb.LookupFact) (*viewsvc.MemLog, []*viewpb.LookupFact) {
	log := viewsvc.NewMemLog()
	var model []*viewpb.LookupFact
	ref := func(id uint64) *entrypb.NodeRef { return &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: id}} }
	for k := range realTxs {
		index := uint64(k + 1)
		part := ds[k*len(ds)/realTxs : (k+1)*len(ds)/realTxs]
		tx := &entrypb.Transaction{}
		for i, f := range part {
			tx.Inserts = append(tx.Inserts, &entrypb.Insert{Subject: ref(f.Subject), Predicate: ref(f.Predicate), Object: f.Object})
			model = append(model, &viewpb.LookupFact{Id: index<<20 | uint64(1+i), Subject: f.Subject, Predicate: f.Predicate, Object: f.Object, Index: index})
		}
		b, err := proto.Marshal(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Transaction{Transaction: tx}})
		if err != nil {
			t.Fatal(err)
		}
		if got := log.Append(b); got != index {
			t.Fatalf("appended at %d", got)
		}
	}
	return log, model
}

// realView opens a view of [start, end) in space, applies log through its
// end and, if serve, serves it on loopback.
func realView(t testing.TB, log *viewsvc.MemLog, space viewsvc.Space, start, end uint64, serve bool, opts ...func(*viewsvc.Config)) (*viewsvc.View, string) {
	t.Helper()
	cfg := viewsvc.DefaultConfig()
	cfg.Space, cfg.Range, cfg.Dir = space, viewsvc.HashRange{Start: start, End: end}, t.TempDir()
	cfg.CacheSize, cfg.MemTableSize = 4<<20, 4<<20
	cfg.CaughtUpIdle = 20 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, o := range opts {
		o(&cfg)
	}
	v, err := viewsvc.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_ = v.Run(ctx, log)
	}()
	t.Cleanup(func() {
		cancel()
		<-ran
		_ = v.Close()
	})
	last, _ := log.LastIndex(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := v.WaitApplied(wctx, last); err != nil {
		t.Fatal(err)
	}
	if !serve {
		return v, ""
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	viewpb.RegisterViewServer(srv, viewsvc.NewServer(v))
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return v, lis.Addr().String()
}

// TestRealViews runs every lookup and the digest over real views partitioned
// like a split in progress and checks them against what was written.
func TestRealViews(t *testing.T) {
	checkLeaks(t)
	log, model := writeLog(t, makeFacts(20))
	cfg := testConfig()
	var fullSP *viewsvc.View
	for _, space := range []viewsvc.Space{viewsvc.SpaceSP, viewsvc.SpacePO} {
		for _, rng := range [][2]uint64{{0, half}, {half, 0}, {quarter, 3 * quarter}} {
			_, addr := realView(t, log, space, rng[0], rng[1], true)
			cfg.Static = append(cfg.Static, addr)
		}
	}
	fullSP, _ = realView(t, log, viewsvc.SpaceSP, 0, 0, false)
	f := open(t, cfg)
	ctx := ctxT(t)
	r := newRand(21)
	refSP, refPO := reference(t, viewpb.Space_HASH_SP, model), reference(t, viewpb.Space_HASH_PO, model)

	if got := f.RecentIndex(viewpb.Space_HASH_SP); got != realTxs {
		t.Errorf("recent index %d, want %d", got, realTxs)
	}
	for _, index := range []uint64{0, 2, realTxs} {
		sp := spLookups(r, model, 200)
		got, err := f.LookupSP(ctx, index, sp)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := refSP.answerSP(index, sp)
		sameFacts(t, "LookupSP", got, want)

		spo := spoLookups(r, model, 200)
		got, err = f.LookupSPO(ctx, index, spo)
		if err != nil {
			t.Fatal(err)
		}
		want, _ = refSP.answerSPO(index, spo)
		sameFacts(t, "LookupSPO", got, want)

		po := poLookups(r, model, 200)
		got, err = f.LookupPO(ctx, index, po)
		if err != nil {
			t.Fatal(err)
		}
		want, _ = refPO.answerPO(index, po)
		sameFacts(t, "LookupPO", got, want)

		subjects := make([]uint64, numSubjects+2)
		for i := range subjects {
			subjects[i] = uint64(i + 1)
		}
		got, err = f.LookupS(ctx, index, subjects)
		if err != nil {
			t.Fatal(err)
		}
		want, _ = refSP.answerS(index, subjects)
		sameFacts(t, "LookupS", got, want)
		if index == realTxs && countFacts(got) != len(model) {
			t.Errorf("LookupS of every subject found %d facts, wrote %d", countFacts(got), len(model))
		}

		cmp := poCmpLookups(r, 60)
		got, err = f.LookupPOCmp(ctx, index, cmp)
		if err != nil {
			t.Fatal(err)
		}
		want, _ = refPO.answerPOCmp(index, cmp)
		sameFacts(t, "LookupPOCmp", got, want)

		d, err := f.Digest(ctx, viewpb.Space_HASH_SP, index)
		if err != nil {
			t.Fatal(err)
		}
		full, err := fullSP.Digest(ctx, index)
		if err != nil {
			t.Fatal(err)
		}
		if d.Index != index || d.Facts != full.Facts || d.Sum1 != full.Sum1 || d.Sum2 != full.Sum2 {
			t.Errorf("digest at %d: %v, the whole-space view says %+v", index, d, full)
		}
		dpo, err := f.Digest(ctx, viewpb.Space_HASH_PO, index)
		if err != nil {
			t.Fatal(err)
		}
		if dpo.Facts != full.Facts || dpo.Sum1 != full.Sum1 || dpo.Sum2 != full.Sum2 {
			t.Errorf("HashPO digest at %d: %v, HashSP %+v", index, dpo, full)
		}
	}
}

// A lookup far past the log's end fails at once with ErrBeyondLog, and the
// views that said so stay healthy.
func TestBeyondLog(t *testing.T) {
	log, _ := writeLog(t, makeFacts(5))
	cfg := testConfig()
	for _, space := range []viewsvc.Space{viewsvc.SpaceSP, viewsvc.SpacePO} {
		_, addr := realView(t, log, space, 0, 0, true)
		cfg.Static = append(cfg.Static, addr)
	}
	f := open(t, cfg)
	ctx := ctxT(t)
	t0 := time.Now()
	_, err := f.LookupS(ctx, 1<<40, []uint64{1})
	if !errors.Is(err, ErrBeyondLog) || time.Since(t0) > 5*time.Second {
		t.Fatalf("lookup far past the log: %v after %v", err, time.Since(t0))
	}
	for _, v := range f.Views() {
		if !v.Healthy {
			t.Fatalf("view %s unhealthy after refusing: %v", v.Addr, v.Err)
		}
	}
}

// A result too large for one message fails that request alone: the view
// stays healthy and the next, unrelated lookup is answered. (Views stream
// under a byte budget; this view is configured without one, like a view
// of an older release.)
func TestHugeResultKeepsViewsHealthy(t *testing.T) {
	log := viewsvc.NewMemLog()
	ref := func(id uint64) *entrypb.NodeRef { return &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: id}} }
	tx := &entrypb.Transaction{}
	for i := range 3 {
		big := &entrypb.Object{Value: &entrypb.Object_String_{String_: &entrypb.LangString{Text: strings.Repeat(string(rune('a'+i)), 1<<20)}}}
		tx.Inserts = append(tx.Inserts, &entrypb.Insert{Subject: ref(7), Predicate: ref(8), Object: big})
	}
	tx.Inserts = append(tx.Inserts, &entrypb.Insert{Subject: ref(9), Predicate: ref(8), Object: &entrypb.Object{Value: &entrypb.Object_Int64{Int64: 1}}})
	b, err := proto.Marshal(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Transaction{Transaction: tx}})
	if err != nil {
		t.Fatal(err)
	}
	log.Append(b)
	cfg := testConfig()
	_, addr := realView(t, log, viewsvc.SpaceSP, 0, 0, true, func(c *viewsvc.Config) { c.MaxChunkBytes = 1 << 30 })
	cfg.Static = append(cfg.Static, addr)
	_, addr = realView(t, log, viewsvc.SpacePO, 0, 0, true)
	cfg.Static = append(cfg.Static, addr)
	cfg.MaxRecvBytes = 2 << 20
	// Only a failed request may mark a view unhealthy here, not a ping
	// slowed by the race detector on a loaded machine.
	cfg.PingTimeout = 20 * time.Second
	f := open(t, cfg)
	ctx := ctxT(t)
	if _, err := f.LookupS(ctx, 1, []uint64{7}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge lookup: %v", err)
	}
	got, err := f.LookupS(ctx, 1, []uint64{9})
	if err != nil || len(got) != 1 || len(got[0]) != 1 {
		t.Fatalf("next lookup: %v %v", got, err)
	}
	for _, v := range f.Views() {
		if !v.Healthy {
			t.Fatalf("view %s unhealthy after a huge result: %v", v.Addr, v.Err)
		}
	}
}
