package apisvc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/internal/backoff"
	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
)

// maxPosition bounds new nodes plus inserts in one transaction: IDs are
// index<<20 | position.
const maxPosition = 1<<20 - 1

// Write appends one transaction; see the package doc for the protocol.
func (s *Server) Write(ctx context.Context, req *apipb.WriteRequest) (*apipb.WriteResponse, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	resp, err := s.write(ctx, req)
	s.met.observeWrite(start, err)
	return resp, toStatus(err)
}

func (s *Server) write(ctx context.Context, req *apipb.WriteRequest) (*apipb.WriteResponse, error) {
	if len(req.Inserts)+len(req.Deletes)+len(req.DeleteIds) == 0 {
		return nil, fmt.Errorf("%w: empty transaction", ErrInvalid)
	}
	names := nameSet{}
	// claimed are names given to nodes by explicit HasExternalID inserts.
	claimed := map[string]*apipb.Fact{}
	for i, f := range req.Inserts {
		if err := checkFact(names, f, "insert", i); err != nil {
			return nil, err
		}
		if isNaming(f) {
			name := f.Object.GetString_().GetText()
			if err := checkName(name); err != nil {
				return nil, fmt.Errorf("insert %d: %w", i, err)
			}
			claimed[name] = f
		}
	}
	for i, f := range req.Deletes {
		if err := checkFact(names, f, "delete", i); err != nil {
			return nil, err
		}
	}
	for i, id := range req.DeleteIds {
		if id == 0 {
			return nil, fmt.Errorf("%w: delete id %d: fact id 0", ErrInvalid, i)
		}
	}
	lookup := names.list()
	for n := range claimed {
		if !names[n] {
			lookup = append(lookup, n)
		}
	}

	var since uint64
	fresh := false // whether since is the log's end, read after the request came
	delay := backoff.New(time.Millisecond, 50*time.Millisecond)
	for attempt := 0; attempt < s.cfg.WriteAttempts; attempt++ {
		r := max(s.recentIndex(), since)
		ids, err := s.resolve(ctx, r, lookup)
		if err != nil {
			return nil, err
		}
		tx, newNames, err := buildTx(req, names, claimed, ids, r)
		if err == nil {
			err = checkIDs(req, r)
		}
		if (errors.Is(err, ErrUnknownName) || errors.Is(err, errFutureID)) && !fresh {
			// r may predate the write that created the name or node: look
			// again at the log's committed end before refusing.
			info, lerr := s.logInfo(ctx, true, true)
			if lerr != nil {
				return nil, lerr
			}
			since, fresh = max(since, info.LastIndex), true
			attempt--
			continue
		}
		if err != nil {
			return nil, err
		}
		version, err := s.writeVersion(ctx)
		if err != nil {
			return nil, err
		}
		data, err := proto.Marshal(&entrypb.Envelope{Version: version, Command: &entrypb.Envelope_Transaction{Transaction: tx}})
		if err != nil {
			return nil, err
		}
		if len(data) > s.cfg.MaxTxBytes {
			return nil, fmt.Errorf("%w: the transaction is %d bytes; the limit is %d", ErrTooLarge, len(data), s.cfg.MaxTxBytes)
		}
		keys := make([][]byte, 0, len(newNames)+len(claimed))
		for _, n := range newNames {
			keys = append(keys, guardKey(n))
		}
		for n := range claimed {
			if !contains(newNames, n) {
				keys = append(keys, guardKey(n))
			}
		}
		var index uint64
		appendStart := time.Now()
		if len(keys) == 0 {
			// Coalesced with concurrent writes into one log append.
			index, err = s.app.Append(ctx, data)
		} else {
			index, err = s.app.AppendGuarded(ctx, [][]byte{data}, r, keys)
		}
		s.met.observeAppend(len(keys) > 0, appendStart, err)
		var le *logerr.Error
		switch {
		case err == nil:
			s.recent.raise(index)
			resp := &apipb.WriteResponse{Index: index, Created: map[string]uint64{}}
			for k, n := range newNames {
				resp.Created[n] = index<<20 | uint64(k+1)
			}
			return resp, nil
		case errors.As(err, &le) && errors.Is(err, logerr.ErrGuardConflict):
			// Another write claimed one of our names after r: resolve
			// again where it did, and the name will exist.
			since = le.Uint("conflict_index")
		case errors.As(err, &le) && le.Uint("first_index") > 0:
			since = le.Uint("first_index") - 1
		case s.versionRefused(err):
			// The leader is at an older version than this server had
			// learned (it has yet to apply the change): write at its.
		default:
			return nil, err
		}
		if err := delay.Wait(ctx); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: gave up after %d attempts", ErrContention, s.cfg.WriteAttempts)
}

// errFutureID marks a node or fact ID from an index the log has not
// reached. Views refuse a transaction that names one, so it must never be
// appended.
var errFutureID = fmt.Errorf("%w: id from an index the log has not reached", ErrInvalid)

// checkIDs checks that every numeric ID in the request comes from index r
// or earlier. The transaction will be appended after r, so its IDs then
// all come from earlier indexes, as views require.
func checkIDs(req *apipb.WriteRequest, r uint64) error {
	// The description is formatted only for an error: per fact, it cost
	// more than the check.
	check := func(id uint64, what string, i int) error {
		if id>>20 > r {
			return fmt.Errorf("%w: %s %d: id %d is from index %d (log at %d)", errFutureID, what, i, id, id>>20, r)
		}
		return nil
	}
	for i, f := range append(append([]*apipb.Fact{}, req.Inserts...), req.Deletes...) {
		for _, n := range []*apipb.Node{f.Subject, f.Predicate, f.Object.GetNode()} {
			if err := check(n.GetId(), "fact", i); err != nil {
				return err
			}
		}
	}
	for i, id := range req.DeleteIds {
		if err := check(id, "delete id", i); err != nil {
			return err
		}
	}
	return nil
}

func guardKey(name string) []byte { return append([]byte("name\x00"), name...) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// isNaming reports whether an insert gives a node a name.
func isNaming(f *apipb.Fact) bool {
	p := f.Predicate
	named := p.GetId() == HasExternalID || p.GetName() == "HasExternalID"
	return named && f.Object.GetString_() != nil
}

// checkFact checks the i-th fact of a kind ("insert", "delete") and adds
// its names to names.
func checkFact(names nameSet, f *apipb.Fact, kind string, i int) error {
	if f == nil {
		return fmt.Errorf("%w: %s %d: empty fact", ErrInvalid, kind, i)
	}
	if names.node(f.Subject, "") == nil && names.node(f.Predicate, "") == nil && names.object(f.Object, "") == nil {
		return nil
	}
	// Checked again to name the fact in the error: formatting the names of
	// every fact up front took a fifth of a large write's CPU. Checking
	// adds names to the set and nothing else, so twice is harmless.
	what := fmt.Sprintf("%s %d", kind, i)
	if err := names.node(f.Subject, what+" subject"); err != nil {
		return err
	}
	if err := names.node(f.Predicate, what+" predicate"); err != nil {
		return err
	}
	return names.object(f.Object, what+" object")
}

// buildTx turns a request into a transaction, given the names resolved at
// index r. Inserted names that do not exist become new nodes, in sorted
// order so that retries build the same transaction.
func buildTx(req *apipb.WriteRequest, names nameSet, claimed map[string]*apipb.Fact, ids map[string]uint64, r uint64) (*entrypb.Transaction, []string, error) {
	for name, f := range claimed {
		if id, ok := ids[name]; ok {
			owner, err := nodeID(f.Subject, ids)
			if err != nil || owner != id {
				return nil, nil, fmt.Errorf("%w: <%s> already names node %d (at index %d)", ErrNameTaken, name, id, r)
			}
		}
	}
	for i, f := range req.Deletes {
		for _, n := range []*apipb.Node{f.Subject, f.Predicate, f.Object.GetNode()} {
			if n != nil {
				if _, err := nodeID(n, ids); err != nil {
					return nil, nil, fmt.Errorf("delete %d: %w (at index %d)", i, err, r)
				}
			}
		}
	}
	newIndex := map[string]uint32{}
	var newNames []string
	for _, f := range req.Inserts {
		for _, n := range []*apipb.Node{f.Subject, f.Predicate, f.Object.GetNode()} {
			name := n.GetName()
			if name == "" || !names[name] {
				continue
			}
			if _, ok := ids[name]; !ok {
				if _, seen := newIndex[name]; !seen {
					newIndex[name] = 0
					newNames = append(newNames, name)
				}
			}
		}
	}
	sort.Strings(newNames)
	for k, n := range newNames {
		newIndex[n] = uint32(k + 1)
	}
	if len(newNames)*2+len(req.Inserts) > maxPosition {
		return nil, nil, fmt.Errorf("%w: %d new nodes and %d inserts; a transaction holds at most %d", ErrTooLarge, len(newNames), len(req.Inserts), maxPosition)
	}
	ref := func(n *apipb.Node) *entrypb.NodeRef {
		if k, ok := newIndex[n.GetName()]; ok && k > 0 {
			return &entrypb.NodeRef{Ref: &entrypb.NodeRef_NewNode{NewNode: k}}
		}
		id, _ := nodeID(n, ids)
		return &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: id}}
	}
	tx := &entrypb.Transaction{NewNodes: uint32(len(newNames))}
	for _, n := range newNames {
		tx.Inserts = append(tx.Inserts, &entrypb.Insert{
			Subject:   &entrypb.NodeRef{Ref: &entrypb.NodeRef_NewNode{NewNode: newIndex[n]}},
			Predicate: &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: HasExternalID}},
			Object:    nameObject(n),
		})
	}
	for _, f := range req.Inserts {
		obj, err := txObject(f.Object, ref, ids)
		if err != nil {
			return nil, nil, err
		}
		tx.Inserts = append(tx.Inserts, &entrypb.Insert{Subject: ref(f.Subject), Predicate: ref(f.Predicate), Object: obj})
	}
	for _, f := range req.Deletes {
		s, _ := nodeID(f.Subject, ids)
		p, _ := nodeID(f.Predicate, ids)
		obj, err := viewObject(f.Object, ids)
		if err != nil {
			return nil, nil, err
		}
		tx.Deletes = append(tx.Deletes, &entrypb.Delete{Target: &entrypb.Delete_Triple{Triple: &entrypb.Triple{Subject: s, Predicate: p, Object: obj}}})
	}
	for _, id := range req.DeleteIds {
		tx.Deletes = append(tx.Deletes, &entrypb.Delete{Target: &entrypb.Delete_FactId{FactId: id}})
	}
	return tx, newNames, nil
}

// txObject converts an inserted object, naming new nodes by position.
func txObject(o *apipb.Object, ref func(*apipb.Node) *entrypb.NodeRef, ids map[string]uint64) (*entrypb.Object, error) {
	if n := o.GetNode(); n != nil {
		return &entrypb.Object{Value: &entrypb.Object_Node{Node: ref(n)}}, nil
	}
	return viewObject(o, ids)
}

// MaxSupportedVersion is the highest log entry version this build writes
// and reads; Config.MaxSupportedVersion defaults to it (tests and staged
// upgrades raise it).
const MaxSupportedVersion uint32 = 1
