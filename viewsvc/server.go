package viewsvc

import (
	"context"
	"errors"

	"google.golang.org/grpc"

	"github.com/akutan/akutan/internal/buildinfo"
	"github.com/akutan/akutan/proto/viewpb"
)

// Server serves one View over gRPC.
type Server struct {
	viewpb.UnimplementedViewServer
	v *View
}

var _ viewpb.ViewServer = (*Server)(nil)

// NewServer returns the gRPC service of v.
func NewServer(v *View) *Server { return &Server{v: v} }

// LookupS implements viewpb.ViewServer.
func (s *Server) LookupS(req *viewpb.LookupSRequest, stream grpc.ServerStreamingServer[viewpb.LookupResponse]) error {
	lookups := make([]Lookup, len(req.GetSubjects()))
	for i, subject := range req.GetSubjects() {
		lookups[i] = Lookup{Kind: LookupS, Subject: subject}
	}
	return s.serve(stream, req, lookups)
}

// LookupSP implements viewpb.ViewServer.
func (s *Server) LookupSP(req *viewpb.LookupSPRequest, stream grpc.ServerStreamingServer[viewpb.LookupResponse]) error {
	lookups := make([]Lookup, len(req.GetLookups()))
	for i, l := range req.GetLookups() {
		lookups[i] = Lookup{Kind: LookupSP, Subject: l.GetSubject(), Predicate: l.GetPredicate()}
	}
	return s.serve(stream, req, lookups)
}

// LookupSPO implements viewpb.ViewServer.
func (s *Server) LookupSPO(req *viewpb.LookupSPORequest, stream grpc.ServerStreamingServer[viewpb.LookupResponse]) error {
	lookups := make([]Lookup, len(req.GetLookups()))
	for i, l := range req.GetLookups() {
		lookups[i] = Lookup{Kind: LookupSPO, Subject: l.GetSubject(), Predicate: l.GetPredicate(), Object: l.GetObject()}
	}
	return s.serve(stream, req, lookups)
}

// LookupPO implements viewpb.ViewServer.
func (s *Server) LookupPO(req *viewpb.LookupPORequest, stream grpc.ServerStreamingServer[viewpb.LookupResponse]) error {
	lookups := make([]Lookup, len(req.GetLookups()))
	for i, l := range req.GetLookups() {
		lookups[i] = Lookup{Kind: LookupPO, Predicate: l.GetPredicate(), Object: l.GetObject()}
	}
	return s.serve(stream, req, lookups)
}

// LookupPOCmp implements viewpb.ViewServer.
func (s *Server) LookupPOCmp(req *viewpb.LookupPOCmpRequest, stream grpc.ServerStreamingServer[viewpb.LookupResponse]) error {
	lookups := make([]Lookup, len(req.GetLookups()))
	for i, l := range req.GetLookups() {
		lookups[i] = Lookup{Kind: LookupPOCmp, Predicate: l.GetPredicate(), Object: l.GetObject(), Op: l.GetOp(), Upper: l.GetUpper()}
	}
	return s.serve(stream, req, lookups)
}

// serve runs a batch and streams its facts in chunks of at most
// Config.MaxFactsPerChunk facts and about Config.MaxChunkBytes bytes (a
// single larger fact goes alone), so no message nears the gRPC limit
// whatever the facts hold.
//
// The request's cursor and limit page through the answer: the stream starts
// after the cursor and ends after limit facts.
func (s *Server) serve(stream grpc.ServerStreamingServer[viewpb.LookupResponse], req pagedRequest, lookups []Lookup) error {
	index, limit := req.GetIndex(), int(req.GetLimit())
	from := Cursor{Lookup: int(req.GetFrom().GetLookup())}
	if a := req.GetFrom().GetAfter(); a != nil {
		from.After = &FactKey{Subject: a.GetSubject(), Predicate: a.GetPredicate(), Object: a.GetObject()}
	}
	max, maxBytes := s.v.cfg.MaxFactsPerChunk, s.v.cfg.MaxChunkBytes
	var chunk *viewpb.LookupResponse
	chunkBytes := 0
	// Facts are allocated a slab at a time rather than one by one; with the
	// one-allocation keys in compile, a 250-lookup RPC went from 21 to 17
	// allocations per lookup (client and server together).
	var slab []viewpb.LookupFact
	newChunk := func() {
		chunk, chunkBytes = &viewpb.LookupResponse{Index: index}, 0
		if err := s.v.stopError(); err != nil {
			chunk.ViewError = err.Error()
		}
	}
	newChunk()
	sent, n := false, 0
	err := s.v.LookupFrom(stream.Context(), index, lookups, from, func(i int, f Fact) error {
		if limit > 0 && n == limit {
			return errLimitReached
		}
		n++
		if len(slab) == 0 {
			slab = make([]viewpb.LookupFact, min(max, 256))
		}
		lf := &slab[0]
		slab = slab[1:]
		lf.Lookup, lf.Id, lf.Subject, lf.Predicate, lf.Object, lf.Index = uint32(i), f.ID, f.Subject, f.Predicate, f.Object, f.Index
		chunk.Facts = append(chunk.Facts, lf)
		chunkBytes += factWireBytes(f)
		if len(chunk.Facts) >= max || chunkBytes >= maxBytes {
			if err := stream.Send(chunk); err != nil {
				return err
			}
			sent = true
			newChunk()
		}
		return nil
	})
	if err != nil && !errors.Is(err, errLimitReached) {
		return ToStatus(err)
	}
	if len(chunk.Facts) > 0 || !sent {
		// Always send at least one message, so the client learns the index
		// and any view error even when nothing matched.
		if err := stream.Send(chunk); err != nil {
			return ToStatus(err)
		}
	}
	return nil
}

// pagedRequest is what every lookup request has besides its lookups.
type pagedRequest interface {
	GetIndex() uint64
	GetFrom() *viewpb.Cursor
	GetLimit() uint32
}

// errLimitReached ends a lookup once it has sent its limit of facts.
var errLimitReached = errors.New("lookup limit reached")

// Status implements viewpb.ViewServer.
func (s *Server) Status(context.Context, *viewpb.StatusRequest) (*viewpb.StatusResponse, error) {
	st := s.v.Status()
	resp := &viewpb.StatusResponse{
		Space:               spaceToProto(st.Space),
		Range:               &viewpb.HashRange{Start: st.Range.Start, End: st.Range.End},
		LastApplied:         st.LastApplied,
		State:               st.State,
		MaxSupportedVersion: st.MaxSupportedVersion,
		LogVersion:          st.LogVersion,
	}
	if st.Err != nil {
		resp.Error = st.Err.Error()
	}
	resp.CheckpointIndex = st.CheckpointIndex
	resp.BootBytesDone, resp.BootBytesTotal = st.BootBytesDone, st.BootBytesTotal
	if st.CheckpointErr != nil {
		resp.CheckpointError = st.CheckpointErr.Error()
	}
	resp.RejectedEntries, resp.LastRejectedIndex, resp.LastRejectedReason = st.Rejected.Count, st.Rejected.LastIndex, st.Rejected.LastReason
	resp.Cluster, resp.Build = s.v.cfg.Cluster, buildinfo.Get().String()
	return resp, nil
}

// Checkpoint implements viewpb.ViewServer.
func (s *Server) Checkpoint(ctx context.Context, _ *viewpb.CheckpointRequest) (*viewpb.CheckpointResponse, error) {
	ref, err := s.v.CheckpointNow(ctx)
	if err != nil {
		return nil, ToStatus(err)
	}
	return &viewpb.CheckpointResponse{Index: ref.Index, Manifest: ref.Manifest, Bytes: ref.Bytes}, nil
}

// Digest implements viewpb.ViewServer.
func (s *Server) Digest(ctx context.Context, req *viewpb.DigestRequest) (*viewpb.DigestResponse, error) {
	d, err := s.v.Digest(ctx, req.GetIndex())
	if err != nil {
		return nil, ToStatus(err)
	}
	resp := &viewpb.DigestResponse{Index: d.Index, Facts: d.Facts, Sum1: d.Sum1, Sum2: d.Sum2}
	if err := s.v.stopError(); err != nil {
		resp.ViewError = err.Error()
	}
	return resp, nil
}

// factWireBytes estimates a fact's size in a LookupResponse: its ids and
// index, and the text of a string object, which is what can be large.
func factWireBytes(f Fact) int {
	n := 48
	if str := f.Object.GetString_(); str != nil {
		n += len(str.GetText()) + len(str.GetLang())
	}
	return n
}
