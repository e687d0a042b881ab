package fanout

import (
	"context"
	"math/rand/v2"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
)

// fakeView is a view server over in-memory facts, on a real gRPC server on
// loopback, with injectable latency and errors. It checks what a real view
// checks (space, range) and answers in the view's order, in small chunks.
type fakeView struct {
	viewpb.UnimplementedViewServer
	t          testing.TB
	space      viewpb.Space
	start, end uint64 // end 0 is 2^64
	facts      []*viewpb.LookupFact
	bySP       map[[2]uint64][]*viewpb.LookupFact // facts by (subject, predicate), by object

	mu        sync.Mutex
	delay     time.Duration // before every lookup answer
	jitter    time.Duration // plus up to this much, at random
	lookupErr error         // returned by every lookup
	state     viewpb.State
	applied   uint64
	statusErr string

	rpcs      atomic.Int64 // lookup RPCs received
	lookups   atomic.Int64 // lookups received
	cancelled atomic.Int64 // lookup RPCs whose context ended while delayed
	completed atomic.Int64 // lookup RPCs answered
	digests   atomic.Int64

	addr string
	srv  *grpc.Server
	done chan struct{}
}

const fakeChunk = 7

// newFake makes a fake view of [start, end) holding the facts of ds in it;
// it is not serving until serve.
func newFake(t testing.TB, space viewpb.Space, start, end uint64, ds []*viewpb.LookupFact) *fakeView {
	v := &fakeView{t: t, space: space, start: start, end: end, state: viewpb.State_SERVING, applied: 1 << 30,
		bySP: map[[2]uint64][]*viewpb.LookupFact{}}
	for _, f := range ds {
		if v.inRange(v.factHash(f)) {
			v.facts = append(v.facts, f)
			k := [2]uint64{f.Subject, f.Predicate}
			v.bySP[k] = append(v.bySP[k], f)
		}
	}
	for _, fs := range v.bySP {
		slices.SortFunc(fs, byObject)
	}
	return v
}

// startFake makes a fake view and serves it on 127.0.0.1.
func startFake(t testing.TB, space viewpb.Space, start, end uint64, ds []*viewpb.LookupFact) *fakeView {
	v := newFake(t, space, start, end, ds)
	v.serve("127.0.0.1:0")
	return v
}

func (v *fakeView) serve(addr string) {
	t := v.t
	t.Helper()
	var lis net.Listener
	var err error
	for range 50 { // a restarted view may find its port briefly busy
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	v.addr = lis.Addr().String()
	v.srv = grpc.NewServer()
	viewpb.RegisterViewServer(v.srv, v)
	v.done = make(chan struct{})
	srv, done := v.srv, v.done
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(v.stop)
}

// stop stops serving; restart serves again on the same address.
func (v *fakeView) stop() {
	if v.srv != nil {
		v.srv.Stop()
		<-v.done
		v.srv = nil
	}
}

func (v *fakeView) restart() { v.serve(v.addr) }

func (v *fakeView) setDelay(d time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.delay = d
}

func (v *fakeView) setJitter(d time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.jitter = d
}

func (v *fakeView) setLookupErr(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lookupErr = err
}

func (v *fakeView) setStatus(state viewpb.State, applied uint64, errText string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.state, v.applied, v.statusErr = state, applied, errText
}

func (v *fakeView) inRange(h uint64) bool { return h >= v.start && (v.end == 0 || h < v.end) }

func (v *fakeView) factHash(f *viewpb.LookupFact) uint64 {
	if v.space == viewpb.Space_HASH_SP {
		return hashSP(f.Subject, f.Predicate)
	}
	h, err := hashPO(f.Predicate, f.Object)
	if err != nil {
		v.t.Fatalf("hash %v: %v", f, err)
	}
	return h
}

// Status implements viewpb.ViewServer.
func (v *fakeView) Status(context.Context, *viewpb.StatusRequest) (*viewpb.StatusResponse, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return &viewpb.StatusResponse{Space: v.space, Range: &viewpb.HashRange{Start: v.start, End: v.end},
		LastApplied: v.applied, State: v.state, Error: v.statusErr, MaxSupportedVersion: 1, LogVersion: 1}, nil
}

// Digest implements viewpb.ViewServer: a count and two additive sums.
func (v *fakeView) Digest(ctx context.Context, req *viewpb.DigestRequest) (*viewpb.DigestResponse, error) {
	v.digests.Add(1)
	if err := v.wait(ctx); err != nil {
		return nil, err
	}
	return fakeDigest(v.facts, req.Index), nil
}

func fakeDigest(facts []*viewpb.LookupFact, index uint64) *viewpb.DigestResponse {
	d := &viewpb.DigestResponse{Index: index}
	for _, f := range facts {
		if f.Index <= index {
			d.Facts++
			d.Sum1 += f.Id * 0x9E3779B97F4A7C15
			d.Sum2 += (f.Subject ^ f.Predicate<<7) * 0xC2B2AE3D27D4EB4F
		}
	}
	return d
}

// wait applies the injected delay and error of a lookup.
func (v *fakeView) wait(ctx context.Context) error {
	v.mu.Lock()
	delay, lerr := v.delay, v.lookupErr
	if v.jitter > 0 {
		delay += rand.N(v.jitter)
	}
	v.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			v.cancelled.Add(1)
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	return lerr
}

// serveLookups runs answer after the checks and the injected delay, and
// streams its facts in chunks.
func (v *fakeView) serveLookups(stream grpc.ServerStreamingServer[viewpb.LookupResponse], space viewpb.Space, index uint64, n int,
	answer func() ([][]*viewpb.LookupFact, error)) error {
	v.rpcs.Add(1)
	v.lookups.Add(int64(n))
	if space != v.space {
		return status.Error(codes.FailedPrecondition, "wrong space")
	}
	if n == 0 {
		return status.Error(codes.InvalidArgument, "empty batch")
	}
	per, err := answer()
	if err != nil {
		return err
	}
	if err := v.wait(stream.Context()); err != nil {
		return err
	}
	chunk := &viewpb.LookupResponse{Index: index}
	for i, facts := range per {
		for _, f := range facts {
			chunk.Facts = append(chunk.Facts, &viewpb.LookupFact{Lookup: uint32(i), Id: f.Id, Subject: f.Subject,
				Predicate: f.Predicate, Object: f.Object, Index: f.Index})
			if len(chunk.Facts) == fakeChunk {
				if err := stream.Send(chunk); err != nil {
					return err
				}
				chunk = &viewpb.LookupResponse{Index: index}
			}
		}
	}
	if err := stream.Send(chunk); err != nil {
		return err
	}
	v.completed.Add(1)
	return nil
}

// The lookups, shared by the gRPC handlers and the reference.

func (v *fakeView) visible(index uint64, keep func(f *viewpb.LookupFact) bool, order func(a, b *viewpb.LookupFact) int) []*viewpb.LookupFact {
	var out []*viewpb.LookupFact
	for _, f := range v.facts {
		if f.Index <= index && keep(f) {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, order)
	return out
}

func (v *fakeView) checkPoint(h uint64) error {
	if !v.inRange(h) {
		return status.Errorf(codes.OutOfRange, "hash %#x outside [%#x, %#x)", h, v.start, v.end)
	}
	return nil
}

func bySubject(a, b *viewpb.LookupFact) int { return int(cmpU(a.Subject, b.Subject)) }
func byObject(a, b *viewpb.LookupFact) int  { return compareObjects(a.Object, b.Object) }

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (v *fakeView) answerSP(index uint64, lookups []*viewpb.SPLookup) ([][]*viewpb.LookupFact, error) {
	out := make([][]*viewpb.LookupFact, len(lookups))
	for i, l := range lookups {
		if err := v.checkPoint(hashSP(l.Subject, l.Predicate)); err != nil {
			return nil, err
		}
		for _, f := range v.bySP[[2]uint64{l.Subject, l.Predicate}] {
			if f.Index <= index {
				out[i] = append(out[i], f)
			}
		}
	}
	return out, nil
}

func (v *fakeView) answerSPO(index uint64, lookups []*viewpb.SPOLookup) ([][]*viewpb.LookupFact, error) {
	out := make([][]*viewpb.LookupFact, len(lookups))
	for i, l := range lookups {
		if err := v.checkPoint(hashSP(l.Subject, l.Predicate)); err != nil {
			return nil, err
		}
		out[i] = v.visible(index, func(f *viewpb.LookupFact) bool {
			return f.Subject == l.Subject && f.Predicate == l.Predicate && compareObjects(f.Object, l.Object) == 0
		}, byObject)
	}
	return out, nil
}

func (v *fakeView) answerPO(index uint64, lookups []*viewpb.POLookup) ([][]*viewpb.LookupFact, error) {
	out := make([][]*viewpb.LookupFact, len(lookups))
	for i, l := range lookups {
		h, err := hashPO(l.Predicate, l.Object)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if err := v.checkPoint(h); err != nil {
			return nil, err
		}
		out[i] = v.visible(index, func(f *viewpb.LookupFact) bool {
			return f.Predicate == l.Predicate && compareObjects(f.Object, l.Object) == 0
		}, bySubject)
	}
	return out, nil
}

func (v *fakeView) answerS(index uint64, subjects []uint64) ([][]*viewpb.LookupFact, error) {
	out := make([][]*viewpb.LookupFact, len(subjects))
	for i, s := range subjects {
		out[i] = v.visible(index, func(f *viewpb.LookupFact) bool { return f.Subject == s }, compareS)
	}
	return out, nil
}

func (v *fakeView) answerPOCmp(index uint64, lookups []*viewpb.POCmpLookup) ([][]*viewpb.LookupFact, error) {
	out := make([][]*viewpb.LookupFact, len(lookups))
	for i, l := range lookups {
		if l.Op == viewpb.CmpOp_CMP_UNSPECIFIED || l.Object == nil {
			return nil, status.Error(codes.InvalidArgument, "invalid lookup")
		}
		out[i] = v.visible(index, func(f *viewpb.LookupFact) bool { return f.Predicate == l.Predicate && cmpMatch(l, f.Object) }, comparePOCmp)
	}
	return out, nil
}

func cmpMatch(l *viewpb.POCmpLookup, o *entrypb.Object) bool {
	if reflect.TypeOf(o.GetValue()) != reflect.TypeOf(l.Object.GetValue()) {
		return false
	}
	c := compareObjects(o, l.Object)
	switch l.Op {
	case viewpb.CmpOp_EQ:
		return c == 0
	case viewpb.CmpOp_LT:
		return c < 0
	case viewpb.CmpOp_LE:
		return c <= 0
	case viewpb.CmpOp_GT:
		return c > 0
	case viewpb.CmpOp_GE:
		return c >= 0
	case viewpb.CmpOp_BETWEEN:
		return c >= 0 && compareObjects(o, l.Upper) <= 0
	case viewpb.CmpOp_PREFIX:
		return strings.HasPrefix(o.GetString_().GetText(), l.Object.GetString_().GetText())
	}
	return false
}

// The gRPC handlers.

func (v *fakeView) LookupS(req *viewpb.LookupSRequest, stream grpc.ServerStreamingServer[viewpb.LookupResponse]) error {
	return v.serveLookups(stream, viewpb.Space_HASH_SP, req.Index, len(req.Subjects), func() ([][]*viewpb.LookupFact, error) {
		return v.answerS(req.Index, req.Subjects)
	})
}

func (v *fakeView) LookupSP(req *viewpb.LookupSPRequest, stream grpc.ServerStreamingServer[viewpb.LookupResponse]) error {
	return v.serveLookups(stream, viewpb.Space_HASH_SP, req.Index, len(req.Lookups), func() ([][]*viewpb.LookupFact, error) {
		return v.answerSP(req.Index, req.Lookups)
	})
}

func (v *fakeView) LookupSPO(req *viewpb.LookupSPORequest, stream grpc.ServerStreamingServer[viewpb.LookupResponse]) error {
	return v.serveLookups(stream, viewpb.Space_HASH_SP, req.Index, len(req.Lookups), func() ([][]*viewpb.LookupFact, error) {
		return v.answerSPO(req.Index, req.Lookups)
	})
}

func (v *fakeView) LookupPO(req *viewpb.LookupPORequest, stream grpc.ServerStreamingServer[viewpb.LookupResponse]) error {
	return v.serveLookups(stream, viewpb.Space_HASH_PO, req.Index, len(req.Lookups), func() ([][]*viewpb.LookupFact, error) {
		return v.answerPO(req.Index, req.Lookups)
	})
}

func (v *fakeView) LookupPOCmp(req *viewpb.LookupPOCmpRequest, stream grpc.ServerStreamingServer[viewpb.LookupResponse]) error {
	return v.serveLookups(stream, viewpb.Space_HASH_PO, req.Index, len(req.Lookups), func() ([][]*viewpb.LookupFact, error) {
		return v.answerPOCmp(req.Index, req.Lookups)
	})
}

// Datasets.

func nodeObj(id uint64) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_Node{Node: &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: id}}}}
}
func strObj(text, lang string) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_String_{String_: &entrypb.LangString{Text: text, Lang: lang}}}
}
func intObj(v int64) *entrypb.Object { return &entrypb.Object{Value: &entrypb.Object_Int64{Int64: v}} }
func floatObj(v float64) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_Float64{Float64: v}}
}
func boolObj(v bool) *entrypb.Object { return &entrypb.Object{Value: &entrypb.Object_Bool{Bool: v}} }
func tsObj(sec int64, nanos int32) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_Timestamp{Timestamp: &entrypb.Timestamp{
		UnixSeconds: sec, Nanos: nanos, Precision: entrypb.Timestamp_NANOSECOND}}}
}

var words = []string{"a", "ab", "abc", "b", "ba", "bar", "baz", "foo", "food", "fool", "zed", "\x00x", "é"}

const (
	numSubjects   = 300
	firstPred     = 1000
	numPreds      = 8
	factsPerSubj  = 12
	datasetMaxIdx = 5
)

// randObject draws an object of any type, from small value sets so that
// objects repeat across facts.
func randObject(r *rand.Rand) *entrypb.Object {
	switch r.IntN(6) {
	case 0:
		return nodeObj(uint64(1 + r.IntN(numSubjects)))
	case 1:
		lang := ""
		if r.IntN(3) == 0 {
			lang = "en"
		}
		return strObj(words[r.IntN(len(words))], lang)
	case 2:
		return intObj(int64(r.IntN(41) - 20))
	case 3:
		return floatObj(float64(r.IntN(21)-10) / 4)
	case 4:
		return boolObj(r.IntN(2) == 0)
	}
	return tsObj(int64(r.IntN(10)*1000), int32(r.IntN(3)))
}

// makeFacts returns a dataset: facts with distinct (s, p, o) and ids,
// visible from indexes 1 to datasetMaxIdx.
func makeFacts(seed uint64) []*viewpb.LookupFact {
	r := rand.New(rand.NewPCG(seed, 7))
	var out []*viewpb.LookupFact
	id := uint64(1 << 20)
	for s := uint64(1); s <= numSubjects; s++ {
		var mine []*viewpb.LookupFact
	facts:
		for range factsPerSubj {
			p := uint64(firstPred + r.IntN(numPreds))
			o := randObject(r)
			for _, f := range mine {
				if f.Predicate == p && compareObjects(f.Object, o) == 0 {
					continue facts
				}
			}
			id++
			mine = append(mine, &viewpb.LookupFact{Id: id, Subject: s, Predicate: p, Object: o, Index: uint64(1 + r.IntN(datasetMaxIdx))})
		}
		out = append(out, mine...)
	}
	return out
}
