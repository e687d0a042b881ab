package apisvc

import (
	"context"
	"fmt"

	"github.com/akutan/akutan/apisvc/internal/fanout"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// maxLookups bounds one lookup request.
const maxLookups = 10000

// readIndex picks the index a lookup reads at.
func (s *Server) readIndex(ctx context.Context, c *apipb.IndexConstraint) (uint64, error) {
	switch k := c.GetKind().(type) {
	case *apipb.IndexConstraint_Exact:
		return k.Exact, nil
	case *apipb.IndexConstraint_AtLeast:
		r, err := s.recentReadIndex(ctx)
		return max(k.AtLeast, r), err
	case *apipb.IndexConstraint_Recent:
		return s.recentReadIndex(ctx)
	}
	// Latest: the leader confirms the committed end (linearizable).
	info, err := s.logInfo(ctx, true, true)
	if err != nil {
		return 0, err
	}
	return info.LastIndex, nil
}

// recentReadIndex is the index a recent read uses. Index 0 holds nothing,
// so while no index is known — a fresh server whose views are not all
// reachable yet — it is the log's committed end, which the views then wait
// for, rather than an empty database.
func (s *Server) recentReadIndex(ctx context.Context) (uint64, error) {
	if r := s.recentIndex(); r > 0 {
		return r, nil
	}
	info, err := s.logInfo(ctx, false, true)
	if err != nil {
		return 0, err
	}
	return s.recent.raise(info.LastIndex), nil
}

// recentIndex is an index every point of both spaces has applied, or the
// highest index this server has already served if that is higher: it never
// decreases (see recentFloor).
func (s *Server) recentIndex() uint64 {
	return s.recent.raise(min(s.views.RecentIndex(viewpb.Space_HASH_SP), s.views.RecentIndex(viewpb.Space_HASH_PO)))
}

// lookupCall is one public lookup request: the request itself (for its
// page token's fingerprint), its index constraint and paging, the names it
// uses, and how to read one page of it from the views.
type lookupCall struct {
	req   proto.Message
	index *apipb.IndexConstraint
	limit uint32
	token string
	n     int // lookups
	names nameSet
	query func(ctx context.Context, index uint64, ids map[string]uint64, pg fanout.Page) (*fanout.PageResult, error)
}

// lookup answers one page of a lookup request: pick the index (or take
// the page token's), resolve names, read the page from the views, name
// its nodes, and stream it.
func (s *Server) lookup(stream grpc.ServerStreamingServer[apipb.LookupResponse], c lookupCall) error {
	ctx, cancel := s.withTimeout(stream.Context())
	defer cancel()
	if c.n == 0 {
		return fmt.Errorf("%w: no lookups", ErrInvalid)
	}
	if c.n > maxLookups {
		return fmt.Errorf("%w: %d lookups; the limit is %d", ErrInvalid, c.n, maxLookups)
	}
	fp := fingerprint(c.req)
	pg := fanout.Page{Limit: s.cfg.PageLimit, MaxBytes: s.cfg.MaxPageBytes}
	if c.limit > 0 {
		pg.Limit = min(int(c.limit), s.cfg.MaxPageLimit)
	}
	var index uint64
	if c.token != "" {
		t, err := decodePageToken(c.token)
		if err != nil {
			return err
		}
		if t.fingerprint != fp {
			return fmt.Errorf("%w: the page token belongs to a different request", ErrInvalid)
		}
		if int(t.from.GetLookup()) >= c.n {
			return fmt.Errorf("%w: %w: lookup %d of %d", ErrInvalid, errBadToken, t.from.GetLookup(), c.n)
		}
		index, pg.From = t.index, t.from
	} else {
		var err error
		if index, err = s.readIndex(ctx, c.index); err != nil {
			return err
		}
	}
	ids, err := s.resolve(ctx, index, c.names.list())
	if err != nil {
		return err
	}
	for name := range c.names {
		if _, ok := ids[name]; !ok {
			return fmt.Errorf("%w: <%s> names no node at index %d", ErrUnknownName, name, index)
		}
	}
	res, err := c.query(ctx, index, ids, pg)
	if err != nil {
		return err
	}
	defer res.Release()
	facts, err := s.nameResults(ctx, index, res.Facts)
	if err != nil {
		return err
	}
	next := ""
	if res.Next != nil {
		if next, err = (pageToken{index: index, fingerprint: fp, from: res.Next}).encode(); err != nil {
			return err
		}
	}
	if err := sendPage(stream, index, facts, next); err != nil {
		return err
	}
	s.recent.raise(index)
	return nil
}

// maxMessageBytes bounds the facts of one response message (a larger fact
// goes alone), as the views bound theirs.
const maxMessageBytes = 1 << 20

// sendPage streams a page's facts in messages of about maxMessageBytes;
// the last carries the next page's token. There is always at least one
// message, so the client learns the index.
func sendPage(stream grpc.ServerStreamingServer[apipb.LookupResponse], index uint64, facts []*apipb.ResultFact, next string) error {
	msg, size := &apipb.LookupResponse{Index: index}, 0
	for _, f := range facts {
		n := proto.Size(f)
		if size > 0 && size+n > maxMessageBytes {
			if err := stream.Send(msg); err != nil {
				return err
			}
			msg, size = &apipb.LookupResponse{Index: index}, 0
		}
		msg.Facts = append(msg.Facts, f)
		size += n
	}
	msg.NextPageToken = next
	return stream.Send(msg)
}

// nameResults converts view facts to API facts, with the names of every
// node they mention.
func (s *Server) nameResults(ctx context.Context, index uint64, facts []*viewpb.LookupFact) ([]*apipb.ResultFact, error) {
	seen := map[uint64]bool{}
	var ids []uint64
	add := func(id uint64) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, f := range facts {
		add(f.Subject)
		add(f.Predicate)
		if id := f.Object.GetNode().GetId(); id != 0 {
			add(id)
		}
	}
	names, err := s.names(ctx, index, ids)
	if err != nil {
		return nil, err
	}
	named := func(id uint64) *apipb.NamedNode { return &apipb.NamedNode{Id: id, Name: names[id]} }
	out := make([]*apipb.ResultFact, len(facts))
	for i, f := range facts {
		out[i] = &apipb.ResultFact{
			Lookup:    f.Lookup,
			Id:        f.Id,
			Subject:   named(f.Subject),
			Predicate: named(f.Predicate),
			Object:    resultObject(f.Object, named),
			Index:     f.Index,
		}
	}
	return out, nil
}

func resultObject(o *entrypb.Object, named func(uint64) *apipb.NamedNode) *apipb.ResultObject {
	switch v := o.GetValue().(type) {
	case *entrypb.Object_Node:
		return &apipb.ResultObject{Value: &apipb.ResultObject_Node{Node: named(v.Node.GetId())}}
	case *entrypb.Object_String_:
		return &apipb.ResultObject{Value: &apipb.ResultObject_String_{String_: v.String_}}
	case *entrypb.Object_Int64:
		return &apipb.ResultObject{Value: &apipb.ResultObject_Int64{Int64: v.Int64}}
	case *entrypb.Object_Float64:
		return &apipb.ResultObject{Value: &apipb.ResultObject_Float64{Float64: v.Float64}}
	case *entrypb.Object_Bool:
		return &apipb.ResultObject{Value: &apipb.ResultObject_Bool{Bool: v.Bool}}
	case *entrypb.Object_Timestamp:
		return &apipb.ResultObject{Value: &apipb.ResultObject_Timestamp{Timestamp: v.Timestamp}}
	}
	return &apipb.ResultObject{}
}

// LookupS finds the facts with the given subjects.
func (s *Server) LookupS(req *apipb.LookupSRequest, stream grpc.ServerStreamingServer[apipb.LookupResponse]) error {
	names := nameSet{}
	for i, n := range req.Subjects {
		if err := names.node(n, fmt.Sprintf("lookup %d subject", i)); err != nil {
			return toStatus(err)
		}
	}
	err := s.lookup(stream, lookupCall{req: req, index: req.Index, limit: req.Limit, token: req.PageToken, n: len(req.Subjects), names: names,
		query: func(ctx context.Context, index uint64, ids map[string]uint64, pg fanout.Page) (*fanout.PageResult, error) {
			subjects := make([]uint64, len(req.Subjects))
			for i, n := range req.Subjects {
				subjects[i], _ = nodeID(n, ids)
			}
			return s.views.LookupSPage(ctx, index, subjects, pg)
		}})
	return toStatus(err)
}

// LookupSP finds the facts with the given subjects and predicates.
func (s *Server) LookupSP(req *apipb.LookupSPRequest, stream grpc.ServerStreamingServer[apipb.LookupResponse]) error {
	names := nameSet{}
	for i, l := range req.Lookups {
		if err := names.node(l.GetSubject(), fmt.Sprintf("lookup %d subject", i)); err != nil {
			return toStatus(err)
		}
		if err := names.node(l.GetPredicate(), fmt.Sprintf("lookup %d predicate", i)); err != nil {
			return toStatus(err)
		}
	}
	err := s.lookup(stream, lookupCall{req: req, index: req.Index, limit: req.Limit, token: req.PageToken, n: len(req.Lookups), names: names,
		query: func(ctx context.Context, index uint64, ids map[string]uint64, pg fanout.Page) (*fanout.PageResult, error) {
			ls := make([]*viewpb.SPLookup, len(req.Lookups))
			for i, l := range req.Lookups {
				sub, _ := nodeID(l.Subject, ids)
				pred, _ := nodeID(l.Predicate, ids)
				ls[i] = &viewpb.SPLookup{Subject: sub, Predicate: pred}
			}
			return s.views.LookupSPPage(ctx, index, ls, pg)
		}})
	return toStatus(err)
}

// LookupSPO finds the given facts, if live.
func (s *Server) LookupSPO(req *apipb.LookupSPORequest, stream grpc.ServerStreamingServer[apipb.LookupResponse]) error {
	names := nameSet{}
	for i, f := range req.Lookups {
		if err := checkFact(names, f, "lookup", i); err != nil {
			return toStatus(err)
		}
	}
	err := s.lookup(stream, lookupCall{req: req, index: req.Index, limit: req.Limit, token: req.PageToken, n: len(req.Lookups), names: names,
		query: func(ctx context.Context, index uint64, ids map[string]uint64, pg fanout.Page) (*fanout.PageResult, error) {
			ls := make([]*viewpb.SPOLookup, len(req.Lookups))
			for i, f := range req.Lookups {
				sub, _ := nodeID(f.Subject, ids)
				pred, _ := nodeID(f.Predicate, ids)
				obj, err := viewObject(f.Object, ids)
				if err != nil {
					return nil, err
				}
				ls[i] = &viewpb.SPOLookup{Subject: sub, Predicate: pred, Object: obj}
			}
			return s.views.LookupSPOPage(ctx, index, ls, pg)
		}})
	return toStatus(err)
}

// LookupPO finds the facts with the given predicates and objects.
func (s *Server) LookupPO(req *apipb.LookupPORequest, stream grpc.ServerStreamingServer[apipb.LookupResponse]) error {
	names := nameSet{}
	for i, l := range req.Lookups {
		if err := names.node(l.GetPredicate(), fmt.Sprintf("lookup %d predicate", i)); err != nil {
			return toStatus(err)
		}
		if err := names.object(l.GetObject(), fmt.Sprintf("lookup %d object", i)); err != nil {
			return toStatus(err)
		}
	}
	err := s.lookup(stream, lookupCall{req: req, index: req.Index, limit: req.Limit, token: req.PageToken, n: len(req.Lookups), names: names,
		query: func(ctx context.Context, index uint64, ids map[string]uint64, pg fanout.Page) (*fanout.PageResult, error) {
			ls := make([]*viewpb.POLookup, len(req.Lookups))
			for i, l := range req.Lookups {
				pred, _ := nodeID(l.Predicate, ids)
				obj, err := viewObject(l.Object, ids)
				if err != nil {
					return nil, err
				}
				ls[i] = &viewpb.POLookup{Predicate: pred, Object: obj}
			}
			return s.views.LookupPOPage(ctx, index, ls, pg)
		}})
	return toStatus(err)
}

// LookupPOCmp finds the facts with a predicate whose object compares to an
// operand.
func (s *Server) LookupPOCmp(req *apipb.LookupPOCmpRequest, stream grpc.ServerStreamingServer[apipb.LookupResponse]) error {
	names := nameSet{}
	for i, l := range req.Lookups {
		what := fmt.Sprintf("lookup %d", i)
		if err := names.node(l.GetPredicate(), what+" predicate"); err != nil {
			return toStatus(err)
		}
		if err := names.object(l.GetObject(), what+" operand"); err != nil {
			return toStatus(err)
		}
		if l.Op == apipb.CmpOp_BETWEEN {
			if err := names.object(l.GetUpper(), what+" upper bound"); err != nil {
				return toStatus(err)
			}
		}
		if l.Op == apipb.CmpOp_CMP_UNSPECIFIED {
			return toStatus(fmt.Errorf("%w: %s: no comparison operator", ErrInvalid, what))
		}
	}
	err := s.lookup(stream, lookupCall{req: req, index: req.Index, limit: req.Limit, token: req.PageToken, n: len(req.Lookups), names: names,
		query: func(ctx context.Context, index uint64, ids map[string]uint64, pg fanout.Page) (*fanout.PageResult, error) {
			ls := make([]*viewpb.POCmpLookup, len(req.Lookups))
			for i, l := range req.Lookups {
				pred, _ := nodeID(l.Predicate, ids)
				obj, err := viewObject(l.Object, ids)
				if err != nil {
					return nil, err
				}
				ls[i] = &viewpb.POCmpLookup{Predicate: pred, Op: viewpb.CmpOp(l.Op), Object: obj}
				if l.Op == apipb.CmpOp_BETWEEN {
					if ls[i].Upper, err = viewObject(l.Upper, ids); err != nil {
						return nil, err
					}
				}
			}
			return s.views.LookupPOCmpPage(ctx, index, ls, pg)
		}})
	return toStatus(err)
}
