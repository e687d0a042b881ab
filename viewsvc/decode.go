package viewsvc

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/viewsvc/internal/keys"
)

// ID layout from entry.proto: id = index<<20 | position.
const (
	positionBits = 20
	maxIDIndex   = uint64(1) << (64 - positionBits) // first index whose IDs overflow
)

type itemKind uint8

const (
	itemNoop     itemKind = iota // ping
	itemTx                       // transaction applied at its own index
	itemPending                  // transaction held for a decision
	itemDecision                 // decision on a pending transaction
	itemVersion                  // version change
	itemError                    // the view must stop before this entry
)

// item is one decoded log entry, ready for the applier.
type item struct {
	index   uint64
	kind    itemKind
	ops     txOps  // itemTx
	raw     []byte // itemPending: the envelope
	txIndex uint64 // itemDecision
	commit  bool   // itemDecision
	version uint32 // itemVersion
	err     error  // itemError
}

// txOps is a transaction resolved for one view: every delete (a delete by
// id may concern any range) and the inserts whose hash is in the view's range,
// in log order.
type txOps struct {
	deletes []deleteOp
	inserts []insertOp
}

type deleteOp struct {
	factID uint64 // delete by id when body is nil
	body   []byte // delete by triple
}

type insertOp struct {
	id   uint64
	body []byte
}

func (o *txOps) size() int { return len(o.deletes) + len(o.inserts) }

// decoder turns log entries into items. It runs ahead of the applier and
// tracks the log version on its own, since version changes decide how the
// entries after them are read.
type decoder struct {
	space      Space
	rng        HashRange
	maxVersion uint32
	version    uint32 // log version in force
	buf        []byte // scratch for object encodings
}

// entryErr is a decoding error; the applier adds the index.
func entryErr(_ uint64, kind error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))
}

// decode interprets one entry. Every check that can fail is a function of
// the entry and the log before it, never of the view's range, so that every
// view stops at the same entry.
func (d *decoder) decode(e LogEntry) item {
	it := item{index: e.Index}
	fail := func(err error) item {
		it.kind, it.err = itemError, err
		return it
	}
	var env entrypb.Envelope
	if err := proto.Unmarshal(e.Data, &env); err != nil {
		return fail(entryErr(e.Index, ErrMalformedEntry, "not an envelope: %v", err))
	}
	switch v := env.GetVersion(); {
	case v > d.maxVersion:
		return fail(&UnsupportedVersionError{Version: v, Supported: d.maxVersion})
	case v == 0:
		return fail(entryErr(e.Index, ErrMalformedEntry, "envelope version is 0; versions start at 1"))
	case v > d.version:
		return fail(entryErr(e.Index, ErrMalformedEntry, "envelope version %d is above the log version %d", v, d.version))
	}
	switch c := env.GetCommand().(type) {
	case *entrypb.Envelope_Ping:
		it.kind = itemNoop
	case *entrypb.Envelope_VersionChange:
		to := c.VersionChange.GetToVersion()
		if to > d.maxVersion {
			return fail(&UnsupportedVersionError{Version: to, Supported: d.maxVersion})
		}
		if to <= d.version {
			return fail(entryErr(e.Index, ErrMalformedEntry, "version change to %d does not raise the log version %d", to, d.version))
		}
		d.version = to
		it.kind, it.version = itemVersion, to
	case *entrypb.Envelope_Decision:
		tx := c.Decision.GetTxIndex()
		if tx == 0 || tx >= e.Index {
			return fail(entryErr(e.Index, ErrMalformedEntry, "decision for index %d, which is not before it", tx))
		}
		it.kind, it.txIndex, it.commit = itemDecision, tx, c.Decision.GetCommit()
	case *entrypb.Envelope_Transaction:
		tx := c.Transaction
		if tx == nil {
			tx = &entrypb.Transaction{}
		}
		if tx.GetNeedsDecision() {
			// Validate now so a bad transaction stops the view at its own
			// index; resolve it again when it is decided.
			if _, err := d.resolve(tx, e.Index); err != nil {
				return fail(err)
			}
			it.kind, it.raw = itemPending, e.Data
			return it
		}
		ops, err := d.resolve(tx, e.Index)
		if err != nil {
			return fail(err)
		}
		it.kind, it.ops = itemTx, ops
	case nil:
		return fail(entryErr(e.Index, ErrUnknownCommand, "envelope has no command this view knows (version %d)", env.GetVersion()))
	default:
		return fail(entryErr(e.Index, ErrUnknownCommand, "command %T", c))
	}
	return it
}

// resolve checks a transaction written at index and computes its operations
// for this view: node and fact IDs from index and position, bodies, hashes,
// and the range filter.
func (d *decoder) resolve(tx *entrypb.Transaction, index uint64) (txOps, error) {
	var ops txOps
	if index >= maxIDIndex {
		return ops, entryErr(index, ErrMalformedEntry, "index too large for 44-bit ID indexes")
	}
	r := resolver{d: d, base: index << positionBits, newNodes: uint64(tx.GetNewNodes())}
	inserts, deletes := tx.GetInserts(), tx.GetDeletes()
	if r.newNodes+uint64(len(inserts)) >= 1<<positionBits {
		return ops, entryErr(index, ErrMalformedEntry, "%d new nodes and %d inserts exceed 2^20 positions",
			r.newNodes, len(inserts))
	}
	// Bodies of one transaction share one allocation.
	r.arena = make([]byte, 0, 40*(len(inserts)+len(deletes)))
	if len(deletes) > 0 {
		ops.deletes = make([]deleteOp, 0, len(deletes))
	}
	for i, del := range deletes {
		switch t := del.GetTarget().(type) {
		case *entrypb.Delete_FactId:
			if t.FactId == 0 {
				return ops, entryErr(index, ErrMalformedEntry, "delete %d: fact id 0", i)
			}
			ops.deletes = append(ops.deletes, deleteOp{factID: t.FactId})
		case *entrypb.Delete_Triple:
			tr := t.Triple
			if tr.GetSubject() == 0 || tr.GetPredicate() == 0 {
				return ops, entryErr(index, ErrMalformedEntry, "delete %d: node id 0", i)
			}
			b, ok, err := r.body(tr.GetSubject(), tr.GetPredicate(), tr.GetObject())
			if err != nil {
				return ops, entryErr(index, ErrMalformedEntry, "delete %d: %v", i, err)
			}
			if ok {
				ops.deletes = append(ops.deletes, deleteOp{body: b})
			}
		default:
			return ops, entryErr(index, ErrMalformedEntry, "delete %d names no fact", i)
		}
	}
	if len(inserts) > 0 {
		ops.inserts = make([]insertOp, 0, len(inserts))
	}
	for i, ins := range inserts {
		s, err := r.node(ins.GetSubject())
		if err != nil {
			return ops, entryErr(index, ErrMalformedEntry, "insert %d: subject: %v", i, err)
		}
		p, err := r.node(ins.GetPredicate())
		if err != nil {
			return ops, entryErr(index, ErrMalformedEntry, "insert %d: predicate: %v", i, err)
		}
		b, ok, err := r.body(s, p, ins.GetObject())
		if err != nil {
			return ops, entryErr(index, ErrMalformedEntry, "insert %d: %v", i, err)
		}
		if ok {
			id := r.base | (r.newNodes + 1 + uint64(i))
			ops.inserts = append(ops.inserts, insertOp{id: id, body: b})
		}
	}
	return ops, nil
}

// resolver resolves the node references and bodies of one transaction.
type resolver struct {
	d        *decoder
	base     uint64 // index << 20
	newNodes uint64
	arena    []byte
}

func (r *resolver) node(ref *entrypb.NodeRef) (uint64, error) {
	switch x := ref.GetRef().(type) {
	case *entrypb.NodeRef_Id:
		if x.Id == 0 {
			return 0, fmt.Errorf("node id 0")
		}
		return x.Id, nil
	case *entrypb.NodeRef_NewNode:
		if x.NewNode == 0 || uint64(x.NewNode) > r.newNodes {
			return 0, fmt.Errorf("new node %d of %d", x.NewNode, r.newNodes)
		}
		return r.base | uint64(x.NewNode), nil
	}
	return 0, fmt.Errorf("node reference is empty")
}

// body encodes a fact's body and reports whether its hash is in range. An
// out-of-range body is not kept.
func (r *resolver) body(s, p uint64, obj *entrypb.Object) ([]byte, bool, error) {
	var err error
	r.d.buf, err = keys.AppendObject(r.d.buf[:0], obj, r.node)
	if err != nil {
		return nil, false, err
	}
	start := len(r.arena)
	r.arena = keys.AppendBody(r.arena, r.d.space, s, p, r.d.buf)
	b := r.arena[start:len(r.arena):len(r.arena)]
	if !r.d.rng.Contains(keys.BodyHash(r.d.space, b)) {
		r.arena = r.arena[:start]
		return nil, false, nil
	}
	return b, true, nil
}
