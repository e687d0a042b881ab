package apisvc

import (
	"context"
	"fmt"

	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
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

// lookup runs one lookup request: pick the index, resolve names, query
// the views, name the results.
func (s *Server) lookup(ctx context.Context, c *apipb.IndexConstraint, n int, names nameSet,
	query func(ctx context.Context, index uint64, ids map[string]uint64) ([][]*viewpb.LookupFact, error)) (*apipb.LookupResponse, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if n == 0 {
		return nil, fmt.Errorf("%w: no lookups", ErrInvalid)
	}
	if n > maxLookups {
		return nil, fmt.Errorf("%w: %d lookups; the limit is %d", ErrInvalid, n, maxLookups)
	}
	index, err := s.readIndex(ctx, c)
	if err != nil {
		return nil, err
	}
	ids, err := s.resolve(ctx, index, names.list())
	if err != nil {
		return nil, err
	}
	for name := range names {
		if _, ok := ids[name]; !ok {
			return nil, fmt.Errorf("%w: <%s> names no node at index %d", ErrUnknownName, name, index)
		}
	}
	res, err := query(ctx, index, ids)
	if err != nil {
		return nil, err
	}
	resp, err := s.nameResults(ctx, index, res)
	if err == nil {
		s.recent.raise(index)
	}
	return resp, err
}

// nameResults converts view facts to API facts, with the names of every
// node they mention.
func (s *Server) nameResults(ctx context.Context, index uint64, res [][]*viewpb.LookupFact) (*apipb.LookupResponse, error) {
	seen := map[uint64]bool{}
	var ids []uint64
	add := func(id uint64) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, facts := range res {
		for _, f := range facts {
			add(f.Subject)
			add(f.Predicate)
			if id := f.Object.GetNode().GetId(); id != 0 {
				add(id)
			}
		}
	}
	names, err := s.names(ctx, index, ids)
	if err != nil {
		return nil, err
	}
	named := func(id uint64) *apipb.NamedNode { return &apipb.NamedNode{Id: id, Name: names[id]} }
	resp := &apipb.LookupResponse{Index: index}
	for i, facts := range res {
		for _, f := range facts {
			resp.Facts = append(resp.Facts, &apipb.ResultFact{
				Lookup:    uint32(i),
				Id:        f.Id,
				Subject:   named(f.Subject),
				Predicate: named(f.Predicate),
				Object:    resultObject(f.Object, named),
				Index:     f.Index,
			})
		}
	}
	return resp, nil
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
func (s *Server) LookupS(ctx context.Context, req *apipb.LookupSRequest) (*apipb.LookupResponse, error) {
	names := nameSet{}
	for i, n := range req.Subjects {
		if err := names.node(n, fmt.Sprintf("lookup %d subject", i)); err != nil {
			return nil, toStatus(err)
		}
	}
	resp, err := s.lookup(ctx, req.Index, len(req.Subjects), names, func(ctx context.Context, index uint64, ids map[string]uint64) ([][]*viewpb.LookupFact, error) {
		subjects := make([]uint64, len(req.Subjects))
		for i, n := range req.Subjects {
			subjects[i], _ = nodeID(n, ids)
		}
		return s.views.LookupS(ctx, index, subjects)
	})
	return resp, toStatus(err)
}

// LookupSP finds the facts with the given subjects and predicates.
func (s *Server) LookupSP(ctx context.Context, req *apipb.LookupSPRequest) (*apipb.LookupResponse, error) {
	names := nameSet{}
	for i, l := range req.Lookups {
		if err := names.node(l.GetSubject(), fmt.Sprintf("lookup %d subject", i)); err != nil {
			return nil, toStatus(err)
		}
		if err := names.node(l.GetPredicate(), fmt.Sprintf("lookup %d predicate", i)); err != nil {
			return nil, toStatus(err)
		}
	}
	resp, err := s.lookup(ctx, req.Index, len(req.Lookups), names, func(ctx context.Context, index uint64, ids map[string]uint64) ([][]*viewpb.LookupFact, error) {
		ls := make([]*viewpb.SPLookup, len(req.Lookups))
		for i, l := range req.Lookups {
			sub, _ := nodeID(l.Subject, ids)
			pred, _ := nodeID(l.Predicate, ids)
			ls[i] = &viewpb.SPLookup{Subject: sub, Predicate: pred}
		}
		return s.views.LookupSP(ctx, index, ls)
	})
	return resp, toStatus(err)
}

// LookupSPO finds the given facts, if live.
func (s *Server) LookupSPO(ctx context.Context, req *apipb.LookupSPORequest) (*apipb.LookupResponse, error) {
	names := nameSet{}
	for i, f := range req.Lookups {
		if err := checkFact(names, f, "lookup", i); err != nil {
			return nil, toStatus(err)
		}
	}
	resp, err := s.lookup(ctx, req.Index, len(req.Lookups), names, func(ctx context.Context, index uint64, ids map[string]uint64) ([][]*viewpb.LookupFact, error) {
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
		return s.views.LookupSPO(ctx, index, ls)
	})
	return resp, toStatus(err)
}

// LookupPO finds the facts with the given predicates and objects.
func (s *Server) LookupPO(ctx context.Context, req *apipb.LookupPORequest) (*apipb.LookupResponse, error) {
	names := nameSet{}
	for i, l := range req.Lookups {
		if err := names.node(l.GetPredicate(), fmt.Sprintf("lookup %d predicate", i)); err != nil {
			return nil, toStatus(err)
		}
		if err := names.object(l.GetObject(), fmt.Sprintf("lookup %d object", i)); err != nil {
			return nil, toStatus(err)
		}
	}
	resp, err := s.lookup(ctx, req.Index, len(req.Lookups), names, func(ctx context.Context, index uint64, ids map[string]uint64) ([][]*viewpb.LookupFact, error) {
		ls := make([]*viewpb.POLookup, len(req.Lookups))
		for i, l := range req.Lookups {
			pred, _ := nodeID(l.Predicate, ids)
			obj, err := viewObject(l.Object, ids)
			if err != nil {
				return nil, err
			}
			ls[i] = &viewpb.POLookup{Predicate: pred, Object: obj}
		}
		return s.views.LookupPO(ctx, index, ls)
	})
	return resp, toStatus(err)
}

// LookupPOCmp finds the facts with a predicate whose object compares to an
// operand.
func (s *Server) LookupPOCmp(ctx context.Context, req *apipb.LookupPOCmpRequest) (*apipb.LookupResponse, error) {
	names := nameSet{}
	for i, l := range req.Lookups {
		what := fmt.Sprintf("lookup %d", i)
		if err := names.node(l.GetPredicate(), what+" predicate"); err != nil {
			return nil, toStatus(err)
		}
		if err := names.object(l.GetObject(), what+" operand"); err != nil {
			return nil, toStatus(err)
		}
		if l.Op == apipb.CmpOp_BETWEEN {
			if err := names.object(l.GetUpper(), what+" upper bound"); err != nil {
				return nil, toStatus(err)
			}
		}
		if l.Op == apipb.CmpOp_CMP_UNSPECIFIED {
			return nil, toStatus(fmt.Errorf("%w: %s: no comparison operator", ErrInvalid, what))
		}
	}
	resp, err := s.lookup(ctx, req.Index, len(req.Lookups), names, func(ctx context.Context, index uint64, ids map[string]uint64) ([][]*viewpb.LookupFact, error) {
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
		return s.views.LookupPOCmp(ctx, index, ls)
	})
	return resp, toStatus(err)
}
