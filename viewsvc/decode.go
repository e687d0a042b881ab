package viewsvc

import (
	"cmp"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/model"
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
	itemRejected                 // an invalid entry: applied as a no-op, recorded with its reason
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
	err     error  // itemError, itemRejected
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
	// fresh: the fact names a node this transaction creates, so it cannot
	// exist before the transaction (see resolve).
	fresh bool
}

// decoder turns log entries into items. It runs ahead of the applier and
// tracks the log version on its own, since version changes decide how the
// entries after them are read.
type decoder struct {
	space      Space
	rng        HashRange
	maxVersion uint32
	version    uint32 // log version in force
	buf        []byte // scratch for object encodings
	tx         rawTx  // scratch for the transaction being decoded
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
	fail := func(err error) item { return failed(it, err) }
	// Transactions, nearly every entry, skip the generic decoder.
	tx := &d.tx
	if v, ok := parseRawTx(e.Data, tx); ok {
		if err := d.checkVersion(v); err != nil {
			return fail(err)
		}
		return d.decodeTx(it, e.Data, tx)
	}
	var env entrypb.Envelope
	if err := proto.Unmarshal(e.Data, &env); err != nil {
		return fail(entryErr(e.Index, ErrMalformedEntry, "not an envelope: %v", err))
	}
	if err := d.checkVersion(env.GetVersion()); err != nil {
		return fail(err)
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
		tx := rawFromProto(c.Transaction)
		return d.decodeTx(it, e.Data, &tx)
	case nil:
		return fail(entryErr(e.Index, ErrUnknownCommand, "envelope has no command this view knows (version %d)", env.GetVersion()))
	default:
		return fail(entryErr(e.Index, ErrUnknownCommand, "command %T", c))
	}
	return it
}

// failed marks it as an entry the view cannot apply. The log accepted it,
// so it must not stop the view: only a version this view does not support
// does, since applying past it would be a guess. Anything else invalid is a
// no-op with a recorded reason. Every check is a function of the entry and
// the log before it, so every view rejects the same entries.
func failed(it item, err error) item {
	it.kind, it.err = itemRejected, err
	var unsupported *UnsupportedVersionError
	if errors.As(err, &unsupported) {
		it.kind = itemError
	}
	return it
}

func (d *decoder) checkVersion(v uint32) error {
	switch {
	case v > d.maxVersion:
		return &UnsupportedVersionError{Version: v, Supported: d.maxVersion}
	case v == 0:
		return fmt.Errorf("%w: envelope version is 0; versions start at 1", ErrMalformedEntry)
	case v > d.version:
		return fmt.Errorf("%w: envelope version %d is above the log version %d", ErrMalformedEntry, v, d.version)
	}
	return nil
}

func (d *decoder) decodeTx(it item, data []byte, tx *rawTx) item {
	if tx.needsDecision {
		// Check it now so a bad transaction stops the view at its own
		// index; resolve it again when it is decided.
		if _, err := d.resolve(tx, it.index, false); err != nil {
			return failed(it, err)
		}
		it.kind, it.raw = itemPending, data
		return it
	}
	ops, err := d.resolve(tx, it.index, true)
	if err != nil {
		return failed(it, err)
	}
	it.kind, it.ops = itemTx, ops
	return it
}

// pendingTx decodes the transaction of a held entry.
func pendingTx(data []byte) (rawTx, error) {
	var tx rawTx
	if _, ok := parseRawTx(data, &tx); ok {
		return tx, nil
	}
	var env entrypb.Envelope
	if err := proto.Unmarshal(data, &env); err != nil {
		return tx, fmt.Errorf("%w: not an envelope: %v", ErrMalformedEntry, err)
	}
	return rawFromProto(env.GetTransaction()), nil
}

// resolve checks a transaction written at index and computes its operations
// for this view: node and fact IDs from index and position, bodies, hashes,
// and the range filter.
//
// Every id a transaction names must come from an earlier index (id>>20 <
// index): nothing can exist yet with an id from its own index or later. So
// when the transaction applies at its own index, a fact that names one of
// its new nodes cannot be live already except by an earlier insert of the
// same transaction; applyFresh marks such inserts, and the applier skips
// the storage lookup for them. A held transaction applies later, when other
// entries may have named its new nodes, so it never marks them.
func (d *decoder) resolve(tx *rawTx, index uint64, applyFresh bool) (txOps, error) {
	var ops txOps
	if index >= maxIDIndex {
		return ops, entryErr(index, ErrMalformedEntry, "index too large for 44-bit ID indexes")
	}
	r := resolver{d: d, index: index, base: index << positionBits, newNodes: uint64(tx.newNodes)}
	if r.newNodes+uint64(len(tx.inserts)) >= 1<<positionBits {
		return ops, entryErr(index, ErrMalformedEntry, "%d new nodes and %d inserts exceed 2^20 positions",
			r.newNodes, len(tx.inserts))
	}
	// Bodies of one transaction share one allocation.
	r.arena = make([]byte, 0, 40*(len(tx.inserts)+len(tx.deletes)))
	if len(tx.deletes) > 0 {
		ops.deletes = make([]deleteOp, 0, len(tx.deletes))
	}
	for i := range tx.deletes {
		del := &tx.deletes[i]
		switch del.kind {
		case deleteFactID:
			if err := r.checkID(del.factID); err != nil {
				return ops, entryErr(index, ErrMalformedEntry, "delete %d: fact %v", i, err)
			}
			ops.deletes = append(ops.deletes, deleteOp{factID: del.factID})
		case deleteTriple:
			if err := cmp.Or(r.checkID(del.s), r.checkID(del.p)); err != nil {
				return ops, entryErr(index, ErrMalformedEntry, "delete %d: node %v", i, err)
			}
			b, ok, err := r.body(del.s, del.p, &del.o)
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
	if len(tx.inserts) > 0 {
		ops.inserts = make([]insertOp, 0, len(tx.inserts))
	}
	for i := range tx.inserts {
		ins := &tx.inserts[i]
		r.fresh = false
		s, err := r.node(ins.s)
		if err != nil {
			return ops, entryErr(index, ErrMalformedEntry, "insert %d: subject: %v", i, err)
		}
		p, err := r.node(ins.p)
		if err != nil {
			return ops, entryErr(index, ErrMalformedEntry, "insert %d: predicate: %v", i, err)
		}
		b, ok, err := r.body(s, p, &ins.o)
		if err != nil {
			return ops, entryErr(index, ErrMalformedEntry, "insert %d: %v", i, err)
		}
		if ok {
			id := r.base | (r.newNodes + 1 + uint64(i))
			ops.inserts = append(ops.inserts, insertOp{id: id, body: b, fresh: applyFresh && r.fresh})
		}
	}
	return ops, nil
}

// resolver resolves the node references and bodies of one transaction.
type resolver struct {
	d        *decoder
	index    uint64
	base     uint64 // index << 20
	fresh    bool   // a new node was resolved
	newNodes uint64
	arena    []byte
}

func (r *resolver) node(ref rawRef) (uint64, error) {
	switch ref.kind {
	case refID:
		if err := r.checkID(ref.v); err != nil {
			return 0, fmt.Errorf("node %w", err)
		}
		return ref.v, nil
	case refNew:
		if ref.v == 0 || ref.v > r.newNodes {
			return 0, fmt.Errorf("new node %d of %d", ref.v, r.newNodes)
		}
		r.fresh = true
		return r.base | ref.v, nil
	}
	return 0, fmt.Errorf("node reference is empty")
}

// checkID refuses 0 and ids from this index or later.
func (r *resolver) checkID(id uint64) error {
	switch {
	case id == 0:
		return errors.New("id 0")
	case id>>positionBits >= r.index:
		return fmt.Errorf("id %d is from index %d, not before this entry", id, id>>positionBits)
	}
	return nil
}

// appendObject appends the encoding of o, resolving a node object.
func (r *resolver) appendObject(dst []byte, o *rawObject) ([]byte, error) {
	switch o.kind {
	case objNode:
		id, err := r.node(o.ref)
		if err != nil {
			return dst, err
		}
		return model.AppendNodeObject(dst, id), nil
	case objString:
		return model.AppendStringObject(dst, o.text, o.lang), nil
	case objInt64:
		return model.AppendInt64Object(dst, o.i), nil
	case objFloat64:
		return model.AppendFloat64Object(dst, o.f), nil
	case objBool:
		return model.AppendBoolObject(dst, o.b), nil
	case objTimestamp:
		return model.AppendTimestampObject(dst, o.i, o.nanos, o.prec)
	case objEmpty:
		return dst, model.ErrEmptyObject
	}
	return dst, model.ErrMissingObject
}

// body encodes a fact's body and reports whether its hash is in range. An
// out-of-range body is not kept.
func (r *resolver) body(s, p uint64, obj *rawObject) ([]byte, bool, error) {
	var err error
	r.d.buf, err = r.appendObject(r.d.buf[:0], obj)
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
