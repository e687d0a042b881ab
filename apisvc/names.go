package apisvc

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
)

// HasExternalID is the reserved node whose facts name nodes.
const HasExternalID uint64 = 1

// builtins are the reserved nodes' names.
var builtins = map[string]uint64{"HasExternalID": HasExternalID}

func builtinName(id uint64) (string, bool) {
	for n, b := range builtins {
		if b == id {
			return n, true
		}
	}
	return "", false
}

// maxNameBytes bounds an external ID.
const maxNameBytes = 1024

func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalid)
	case len(name) > maxNameBytes:
		return fmt.Errorf("%w: name of %d bytes; the limit is %d", ErrInvalid, len(name), maxNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: name is not UTF-8", ErrInvalid)
	}
	return nil
}

// nameSet collects the names a request uses.
type nameSet map[string]bool

func (s nameSet) node(n *apipb.Node, what string) error {
	switch r := n.GetRef().(type) {
	case *apipb.Node_Name:
		if err := checkName(r.Name); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if _, ok := builtins[r.Name]; !ok {
			s[r.Name] = true
		}
		return nil
	case *apipb.Node_Id:
		if r.Id == 0 {
			return fmt.Errorf("%w: %s: node id 0", ErrInvalid, what)
		}
		return nil
	}
	return fmt.Errorf("%w: %s: no node", ErrInvalid, what)
}

func (s nameSet) object(o *apipb.Object, what string) error {
	switch v := o.GetValue().(type) {
	case nil:
		return fmt.Errorf("%w: %s: no object", ErrInvalid, what)
	case *apipb.Object_Node:
		return s.node(v.Node, what)
	case *apipb.Object_String_:
		if v.String_ == nil || !utf8.ValidString(v.String_.Text) || !utf8.ValidString(v.String_.Lang) {
			return fmt.Errorf("%w: %s: string is missing or not UTF-8", ErrInvalid, what)
		}
	case *apipb.Object_Timestamp:
		ts := v.Timestamp
		switch {
		case ts == nil:
			return fmt.Errorf("%w: %s: empty timestamp", ErrInvalid, what)
		case ts.Nanos < 0 || ts.Nanos >= 1e9:
			return fmt.Errorf("%w: %s: timestamp nanos %d outside [0, 1e9)", ErrInvalid, what, ts.Nanos)
		case ts.Precision < entrypb.Timestamp_PRECISION_UNSPECIFIED || ts.Precision > entrypb.Timestamp_NANOSECOND:
			return fmt.Errorf("%w: %s: unknown timestamp precision %d", ErrInvalid, what, ts.Precision)
		}
	}
	return nil
}

func (s nameSet) list() []string {
	out := make([]string, 0, len(s))
	for n := range s {
		out = append(out, n)
	}
	return out
}

// resolve finds the node of each name at index; names without a node are
// absent from the result.
func (s *Server) resolve(ctx context.Context, index uint64, names []string) (map[string]uint64, error) {
	ids := map[string]uint64{}
	if len(names) == 0 {
		return ids, nil
	}
	lookups := make([]*viewpb.POLookup, len(names))
	for i, n := range names {
		lookups[i] = &viewpb.POLookup{Predicate: HasExternalID, Object: nameObject(n)}
	}
	res, err := s.views.LookupPO(ctx, index, lookups)
	if err != nil {
		return nil, fmt.Errorf("resolve names at index %d: %w", index, err)
	}
	for i, facts := range res {
		for _, f := range facts {
			// Exactly one node per name is the protocol's invariant; should
			// it ever be broken, pick the oldest node deterministically.
			if cur, ok := ids[names[i]]; !ok || f.Subject < cur {
				ids[names[i]] = f.Subject
			}
		}
	}
	return ids, nil
}

func nameObject(name string) *entrypb.Object {
	return &entrypb.Object{Value: &entrypb.Object_String_{String_: &entrypb.LangString{Text: name}}}
}

// names finds the names of node IDs at index; IDs without a name are
// absent from the result.
func (s *Server) names(ctx context.Context, index uint64, ids []uint64) (map[uint64]string, error) {
	out := map[uint64]string{}
	var lookups []*viewpb.SPLookup
	for _, id := range ids {
		if n, ok := builtinName(id); ok {
			out[id] = n
			continue
		}
		lookups = append(lookups, &viewpb.SPLookup{Subject: id, Predicate: HasExternalID})
	}
	if len(lookups) == 0 {
		return out, nil
	}
	res, err := s.views.LookupSP(ctx, index, lookups)
	if err != nil {
		return nil, fmt.Errorf("name nodes at index %d: %w", index, err)
	}
	for i, facts := range res {
		for _, f := range facts {
			if str := f.Object.GetString_(); str != nil {
				if cur, ok := out[lookups[i].Subject]; !ok || str.Text < cur {
					out[lookups[i].Subject] = str.Text
				}
			}
		}
	}
	return out, nil
}

// nodeID returns the ID a node reference names, given resolved names.
func nodeID(n *apipb.Node, ids map[string]uint64) (uint64, error) {
	switch r := n.GetRef().(type) {
	case *apipb.Node_Id:
		return r.Id, nil
	case *apipb.Node_Name:
		if b, ok := builtins[r.Name]; ok {
			return b, nil
		}
		if id, ok := ids[r.Name]; ok {
			return id, nil
		}
		return 0, fmt.Errorf("%w: <%s>", ErrUnknownName, r.Name)
	}
	return 0, fmt.Errorf("%w: no node", ErrInvalid)
}

// viewObject converts an API object for a view, with names resolved.
func viewObject(o *apipb.Object, ids map[string]uint64) (*entrypb.Object, error) {
	switch v := o.GetValue().(type) {
	case *apipb.Object_Node:
		id, err := nodeID(v.Node, ids)
		if err != nil {
			return nil, err
		}
		return &entrypb.Object{Value: &entrypb.Object_Node{Node: &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: id}}}}, nil
	case *apipb.Object_String_:
		return &entrypb.Object{Value: &entrypb.Object_String_{String_: v.String_}}, nil
	case *apipb.Object_Int64:
		return &entrypb.Object{Value: &entrypb.Object_Int64{Int64: v.Int64}}, nil
	case *apipb.Object_Float64:
		return &entrypb.Object{Value: &entrypb.Object_Float64{Float64: v.Float64}}, nil
	case *apipb.Object_Bool:
		return &entrypb.Object{Value: &entrypb.Object_Bool{Bool: v.Bool}}, nil
	case *apipb.Object_Timestamp:
		return &entrypb.Object{Value: &entrypb.Object_Timestamp{Timestamp: v.Timestamp}}, nil
	}
	return nil, fmt.Errorf("%w: no object", ErrInvalid)
}
