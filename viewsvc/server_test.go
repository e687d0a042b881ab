package viewsvc

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
)

// serve starts a gRPC server for v on loopback and returns a client.
func serve(t testing.TB, v *View) viewpb.ViewClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	viewpb.RegisterViewServer(srv, NewServer(v))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return viewpb.NewViewClient(conn)
}

// recvAll drains a lookup stream.
func recvAll(stream grpc.ServerStreamingClient[viewpb.LookupResponse], err error) ([]*viewpb.LookupResponse, error) {
	if err != nil {
		return nil, err
	}
	var out []*viewpb.LookupResponse
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, resp)
	}
}

func wantCode(t *testing.T, err error, code codes.Code, reason, text string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("error %v: want code %v", err, code)
	}
	if text != "" && !strings.Contains(st.Message(), text) {
		t.Errorf("message %q does not say %q", st.Message(), text)
	}
	if reason != "" {
		var got string
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == ErrorDomain {
				got = info.Reason
			}
		}
		if got != reason {
			t.Errorf("reason %q, want %q (error %v)", got, reason, err)
		}
	}
}

// TestGRPCLookups runs every lookup over gRPC and checks chunking, order and
// offsets.
func TestGRPCLookups(t *testing.T) {
	ctx := t.Context()
	log := NewMemLog()
	// Index 1: node 10 has many facts.
	b := newTx(0)
	for i := range 7 {
		b.insert(idRef(10), idRef(100), intObj(int64(i)))
	}
	b.insert(idRef(10), idRef(101), strObj("hello", "en"))
	b.insert(idRef(11), idRef(100), intObj(3))
	log.Append(b.bytes())
	// Index 2: delete one, add one.
	log.Append(newTx(0).deleteSPO(10, 100, intObj(0)).insert(idRef(12), idRef(101), strObj("help", "")).bytes())

	sp := testConfig(t, SpaceSP, FullRange)
	sp.MaxFactsPerChunk = 3
	spView := openView(t, sp)
	start(t, spView, log)
	po := testConfig(t, SpacePO, FullRange)
	poView := openView(t, po)
	start(t, poView, log)
	spc, poc := serve(t, spView), serve(t, poView)

	resps, err := recvAll(spc.LookupS(ctx, &viewpb.LookupSRequest{Index: 2, Subjects: []uint64{99, 10, 11}}))
	if err != nil {
		t.Fatal(err)
	}
	var facts []*viewpb.LookupFact
	for _, r := range resps {
		if r.Index != 2 || len(r.Facts) > 3 || r.ViewError != "" {
			t.Errorf("bad chunk %v", r)
		}
		facts = append(facts, r.Facts...)
	}
	if len(resps) != 3 || len(facts) != 8 {
		t.Fatalf("%d chunks, %d facts: %v", len(resps), len(facts), facts)
	}
	// Lookup 1 (subject 10): ints 1..6 under predicate 100, then the string.
	for i, f := range facts[:7] {
		if f.Lookup != 1 || f.Subject != 10 {
			t.Errorf("fact %d: %v", i, f)
		}
		if i < 6 && (f.Predicate != 100 || f.Object.GetInt64() != int64(i+1) || f.Index != 1) {
			t.Errorf("fact %d: %v", i, f)
		}
	}
	if f := facts[6]; f.Predicate != 101 || f.Object.GetString_().GetText() != "hello" || f.Object.GetString_().GetLang() != "en" {
		t.Errorf("string fact %v", f)
	}
	if f := facts[7]; f.Lookup != 2 || f.Subject != 11 || f.Id != 1<<20|9 {
		t.Errorf("fact 7: %v", f)
	}

	// At index 1 the deleted fact is still there.
	resps, err = recvAll(spc.LookupSPO(ctx, &viewpb.LookupSPORequest{Index: 1, Lookups: []*viewpb.SPOLookup{
		{Subject: 10, Predicate: 100, Object: intObj(0)}, {Subject: 10, Predicate: 100, Object: intObj(42)},
	}}))
	if err != nil || len(resps) != 1 || len(resps[0].Facts) != 1 || resps[0].Facts[0].Id != 1<<20|1 {
		t.Fatalf("LookupSPO at 1: %v %v", resps, err)
	}
	resps, err = recvAll(spc.LookupSPO(ctx, &viewpb.LookupSPORequest{Index: 2, Lookups: []*viewpb.SPOLookup{
		{Subject: 10, Predicate: 100, Object: intObj(0)},
	}}))
	if err != nil || len(resps) != 1 || len(resps[0].Facts) != 0 {
		t.Fatalf("LookupSPO at 2: %v %v", resps, err)
	}
	resps, err = recvAll(spc.LookupSP(ctx, &viewpb.LookupSPRequest{Index: 2, Lookups: []*viewpb.SPLookup{
		{Subject: 10, Predicate: 101}, {Subject: 10, Predicate: 100},
	}}))
	if err != nil {
		t.Fatal(err)
	}
	facts = nil
	for _, r := range resps {
		facts = append(facts, r.Facts...)
	}
	if len(facts) != 7 || facts[0].Lookup != 0 || facts[1].Lookup != 1 {
		t.Fatalf("LookupSP: %v", facts)
	}

	resps, err = recvAll(poc.LookupPO(ctx, &viewpb.LookupPORequest{Index: 2, Lookups: []*viewpb.POLookup{
		{Predicate: 100, Object: intObj(3)},
	}}))
	if err != nil || len(resps) != 1 || len(resps[0].Facts) != 2 ||
		resps[0].Facts[0].Subject != 10 || resps[0].Facts[1].Subject != 11 {
		t.Fatalf("LookupPO: %v %v", resps, err)
	}
	resps, err = recvAll(poc.LookupPOCmp(ctx, &viewpb.LookupPOCmpRequest{Index: 2, Lookups: []*viewpb.POCmpLookup{
		{Predicate: 100, Op: viewpb.CmpOp_BETWEEN, Object: intObj(2), Upper: intObj(4)},
		{Predicate: 101, Op: viewpb.CmpOp_PREFIX, Object: strObj("hel", "")},
		{Predicate: 100, Op: viewpb.CmpOp_LT, Object: strObj("zzz", "")},
	}}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range resps[0].Facts {
		got = append(got, strings.TrimSpace(strings.ReplaceAll(f.Object.String(), "  ", " ")))
	}
	if len(resps[0].Facts) != 6 {
		t.Fatalf("LookupPOCmp: %v", got)
	}
	// BETWEEN 2 and 4: 2, 3 (subject 10), 3 (subject 11), 4; then "hello", "help".
	wantInts := []int64{2, 3, 3, 4}
	for i, w := range wantInts {
		if f := resps[0].Facts[i]; f.Lookup != 0 || f.Object.GetInt64() != w {
			t.Errorf("fact %d: %v", i, f)
		}
	}
	if resps[0].Facts[2].Subject != 11 || resps[0].Facts[4].Object.GetString_().GetText() != "hello" ||
		resps[0].Facts[5].Object.GetString_().GetText() != "help" {
		t.Errorf("LookupPOCmp order: %v", resps[0].Facts)
	}

	st, err := spc.Status(ctx, &viewpb.StatusRequest{})
	if err != nil || st.Space != viewpb.Space_HASH_SP || st.LastApplied != 2 || st.MaxSupportedVersion != 1 ||
		st.LogVersion != 1 || st.Error != "" || st.Range.GetStart() != 0 || st.Range.GetEnd() != 0 {
		t.Errorf("status %v %v", st, err)
	}
	d1, err := spc.Digest(ctx, &viewpb.DigestRequest{Index: 2})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := poc.Digest(ctx, &viewpb.DigestRequest{Index: 2})
	if err != nil || d1.Facts != 9 || d1.Sum1 != d2.Sum1 || d1.Sum2 != d2.Sum2 || d1.Facts != d2.Facts {
		t.Errorf("digests %v and %v, %v", d1, d2, err)
	}
}

// TestLookupWaits: a lookup at an index not yet applied waits for it, and
// fails clearly past its deadline.
func TestLookupWaits(t *testing.T) {
	log := NewMemLog()
	log.Append(newTx(1).insert(newRef(1), idRef(100), intObj(1)).bytes())
	v := openView(t, testConfig(t, SpaceSP, FullRange))
	start(t, v, log)
	waitApplied(t, v, 1)
	client := serve(t, v)

	type result struct {
		resps []*viewpb.LookupResponse
		err   error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := recvAll(client.LookupSP(ctx, &viewpb.LookupSPRequest{Index: 3, Lookups: []*viewpb.SPLookup{{Subject: 7, Predicate: 100}}}))
		done <- result{r, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("lookup at an unapplied index returned early: %v", r)
	case <-time.After(100 * time.Millisecond):
	}
	log.Append(newTx(0).insert(idRef(7), idRef(100), intObj(2)).bytes(),
		newTx(0).insert(idRef(7), idRef(100), intObj(3)).bytes())
	r := <-done
	if r.err != nil || len(r.resps) != 1 || len(r.resps[0].Facts) != 2 || r.resps[0].Index != 3 {
		t.Fatalf("lookup after the index arrived: %v %v", r.resps, r.err)
	}

	// Past the deadline: the Go API says what it waited for.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := v.Lookup(ctx, 10, []Lookup{{Kind: LookupS, Subject: 7}}, func(int, Fact) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "index 10 not applied in time (applied through 3)") {
		t.Errorf("deadline error: %v", err)
	}
	// And over gRPC it is DEADLINE_EXCEEDED.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	_, err = recvAll(client.LookupS(ctx2, &viewpb.LookupSRequest{Index: 10, Subjects: []uint64{7}}))
	wantCode(t, err, codes.DeadlineExceeded, "", "")
	if _, err := client.Digest(ctx2, &viewpb.DigestRequest{Index: 10}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("digest past the deadline: %v", err)
	}
	// The view is still fine.
	if _, err := lookupRows(t, v, 3, []Lookup{{Kind: LookupS, Subject: 7}}); err != nil {
		t.Error(err)
	}
}

// TestBadLookups: requests the view cannot serve fail with clear errors, and
// the view keeps serving.
func TestBadLookups(t *testing.T) {
	ctx := t.Context()
	log := NewMemLog()
	log.Append(newTx(0).insert(idRef(1), idRef(2), intObj(3)).bytes())
	cfg := testConfig(t, SpaceSP, HashRange{Start: 1 << 62, End: halfRange})
	cfg.MaxLookups = 100
	v := openView(t, cfg)
	start(t, v, log)
	waitApplied(t, v, 1)
	client := serve(t, v)
	// Find an (s, p) inside and one outside the range.
	var in, out [2]uint64
	for s := uint64(1); in[0] == 0 || out[0] == 0; s++ {
		if cfg.Range.Contains(HashSP(s, 2)) {
			in = [2]uint64{s, 2}
		} else {
			out = [2]uint64{s, 2}
		}
	}
	good := func() {
		t.Helper()
		if _, err := recvAll(client.LookupSP(ctx, &viewpb.LookupSPRequest{Index: 1, Lookups: []*viewpb.SPLookup{{Subject: in[0], Predicate: in[1]}}})); err != nil {
			t.Fatalf("good lookup failed: %v", err)
		}
	}
	good()

	_, err := recvAll(client.LookupPO(ctx, &viewpb.LookupPORequest{Index: 1, Lookups: []*viewpb.POLookup{{Predicate: 2, Object: intObj(3)}}}))
	wantCode(t, err, codes.FailedPrecondition, "WRONG_SPACE", "LookupPO needs a HashPO view; this view is HashSP")
	good()
	_, err = recvAll(client.LookupSP(ctx, &viewpb.LookupSPRequest{Index: 1, Lookups: []*viewpb.SPLookup{
		{Subject: in[0], Predicate: in[1]}, {Subject: out[0], Predicate: out[1]}}}))
	wantCode(t, err, codes.OutOfRange, "OUT_OF_RANGE", "lookup 1: outside the view's hash range")
	good()
	_, err = recvAll(client.LookupSP(ctx, &viewpb.LookupSPRequest{Index: 1}))
	wantCode(t, err, codes.InvalidArgument, "EMPTY_BATCH", "at least one lookup")
	big := make([]uint64, 101)
	_, err = recvAll(client.LookupS(ctx, &viewpb.LookupSRequest{Index: 1, Subjects: big}))
	wantCode(t, err, codes.InvalidArgument, "BATCH_TOO_LARGE", "101 lookups, the limit is 100")
	good()
	for _, l := range []*viewpb.SPOLookup{
		{Subject: in[0], Predicate: in[1]},                                   // no object
		{Subject: in[0], Predicate: in[1], Object: &entrypb.Object{}},        // empty object
		{Subject: in[0], Predicate: in[1], Object: newNodeObj(1)},            // not an id
		{Subject: in[0], Predicate: in[1], Object: tsObj(0, 2e9, 0)},         // bad nanos
		{Subject: in[0], Predicate: in[1], Object: tsObj(0, 0, 42)},          // bad precision
		{Subject: in[0], Predicate: in[1], Object: nodeObj(5)},               // fine
		{Subject: in[0], Predicate: in[1], Object: strObj("x\x00y", "\x00")}, // fine
	} {
		_, err := recvAll(client.LookupSPO(ctx, &viewpb.LookupSPORequest{Index: 1, Lookups: []*viewpb.SPOLookup{l}}))
		if l.Object.GetNode().GetId() == 5 || l.Object.GetString_() != nil {
			if err != nil {
				t.Errorf("lookup %v: %v", l, err)
			}
			continue
		}
		wantCode(t, err, codes.InvalidArgument, "INVALID_LOOKUP", "lookup 0: invalid lookup: object")
	}
	good()

	po := openView(t, testConfig(t, SpacePO, FullRange))
	start(t, po, log)
	poc := serve(t, po)
	for _, l := range []*viewpb.POCmpLookup{
		{Predicate: 2, Op: viewpb.CmpOp_BETWEEN, Object: intObj(3), Upper: strObj("a", "")},
		{Predicate: 2, Op: viewpb.CmpOp_BETWEEN, Object: intObj(3), Upper: intObj(2)},
		{Predicate: 2, Op: viewpb.CmpOp_BETWEEN, Object: intObj(3)},
		{Predicate: 2, Op: viewpb.CmpOp_PREFIX, Object: strObj("a", "en")},
		{Predicate: 2, Op: viewpb.CmpOp_PREFIX, Object: intObj(1)},
		{Predicate: 2, Op: viewpb.CmpOp_LT, Object: intObj(1), Upper: intObj(2)},
		{Predicate: 2, Op: viewpb.CmpOp_CMP_UNSPECIFIED, Object: intObj(1)},
		{Predicate: 2, Op: viewpb.CmpOp(99), Object: intObj(1)},
	} {
		_, err := recvAll(poc.LookupPOCmp(ctx, &viewpb.LookupPOCmpRequest{Index: 1, Lookups: []*viewpb.POCmpLookup{l}}))
		wantCode(t, err, codes.InvalidArgument, "INVALID_LOOKUP", "invalid lookup")
	}
	resps, err := recvAll(poc.LookupPOCmp(ctx, &viewpb.LookupPOCmpRequest{Index: 1, Lookups: []*viewpb.POCmpLookup{
		{Predicate: 2, Op: viewpb.CmpOp_GE, Object: intObj(3)}}}))
	if err != nil || len(resps) != 1 || len(resps[0].Facts) != 1 {
		t.Errorf("good comparison: %v %v", resps, err)
	}
}
