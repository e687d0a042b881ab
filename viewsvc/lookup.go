package viewsvc

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/akutan/akutan/model"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
	"github.com/akutan/akutan/viewsvc/internal/keys"
)

// LookupKind says what a Lookup finds.
type LookupKind uint8

// The lookups. LookupS, LookupSP and LookupSPO need a HashSP view; LookupPO
// and LookupPOCmp a HashPO view.
const (
	LookupS LookupKind = iota + 1
	LookupSP
	LookupSPO
	LookupPO
	LookupPOCmp
)

func (k LookupKind) String() string {
	switch k {
	case LookupS:
		return "LookupS"
	case LookupSP:
		return "LookupSP"
	case LookupSPO:
		return "LookupSPO"
	case LookupPO:
		return "LookupPO"
	case LookupPOCmp:
		return "LookupPOCmp"
	}
	return fmt.Sprintf("LookupKind(%d)", uint8(k))
}

func (k LookupKind) space() Space {
	if k == LookupPO || k == LookupPOCmp {
		return SpacePO
	}
	return SpaceSP
}

// Lookup is one lookup of a batch. Kind says which fields count: Subject
// (S, SP, SPO), Predicate (SP, SPO, PO, POCmp), Object (SPO, PO, POCmp), Op
// and Upper (POCmp; Upper only for BETWEEN). Node objects name nodes by id.
type Lookup struct {
	Kind      LookupKind
	Subject   uint64
	Predicate uint64
	Object    *entrypb.Object
	Op        viewpb.CmpOp
	Upper     *entrypb.Object
}

// Fact is one fact as visible at the lookup's index.
type Fact struct {
	ID        uint64
	Subject   uint64
	Predicate uint64
	Object    *entrypb.Object
	// Index is the log index at which the fact became visible.
	Index uint64
}

// Cursor is where a lookup answer resumes: with the facts of lookup Lookup
// that come after After in its key order (all of them if After is nil),
// then the later lookups. The zero Cursor is the whole answer.
type Cursor struct {
	Lookup int
	After  *FactKey
}

// FactKey places a fact in its lookup's key order: its triple.
type FactKey struct {
	Subject, Predicate uint64
	Object             *entrypb.Object
}

// scan is a lookup compiled to a key range of one table.
type scan struct {
	lo, hi []byte // hi is exclusive; nil means no upper bound
	exact  bool   // lo is a complete MVCC prefix and hi is unused
	skip   bool   // before the request's cursor: nothing to read
}

// Lookup answers lookups at index: it waits until the view has applied
// index (or ctx is done), then calls fn with every visible fact, in the order
// of the lookups and, within one, in key order (see view.proto). A request
// is validated as a whole before anything is read.
func (v *View) Lookup(ctx context.Context, index uint64, lookups []Lookup, fn func(lookup int, f Fact) error) error {
	return v.LookupFrom(ctx, index, lookups, Cursor{}, fn)
}

// LookupFrom is Lookup resumed at a cursor: it skips the facts before from.
func (v *View) LookupFrom(ctx context.Context, index uint64, lookups []Lookup, from Cursor, fn func(lookup int, f Fact) error) error {
	scans, err := v.plan(lookups)
	if err != nil {
		return err
	}
	if err := v.resume(lookups, scans, from); err != nil {
		return err
	}
	if err := v.waitReadable(ctx, index); err != nil {
		return err
	}
	if err := v.acquire(); err != nil {
		return err
	}
	defer v.readers.Done()
	it, err := v.db.NewIter(nil)
	if err != nil {
		return err
	}
	defer closeQuietly(it)
	var buf []byte
	points, err := v.seekPoints(ctx, it, scans, index, &buf)
	if err != nil {
		return err
	}
	for i := from.Lookup; i < len(scans); i++ {
		if scans[i].skip {
			continue
		}
		if scans[i].exact {
			if f := &points[i]; f.ID != 0 {
				if err := fn(i, *f); err != nil {
					return err
				}
			}
			continue
		}
		err := v.scan(ctx, it, &scans[i], index, &buf, func(f Fact) error { return fn(i, f) })
		if err != nil {
			return err
		}
	}
	return nil
}

// seekPoints answers the batch's exact lookups (at most one fact each) in
// key order rather than request order: ascending seeks let Pebble move
// forward from where the last one ended instead of seeking every level from
// the top, and neighbouring keys share blocks. The facts come back indexed
// by lookup, ID 0 for none (ids are never 0).
func (v *View) seekPoints(ctx context.Context, it *pebble.Iterator, scans []scan, index uint64, buf *[]byte) ([]Fact, error) {
	var order []int
	for i := range scans {
		if scans[i].exact && !scans[i].skip {
			order = append(order, i)
		}
	}
	if len(order) == 0 {
		return nil, nil
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(scans[a].lo, scans[b].lo) })
	points := make([]Fact, len(scans))
	for n, i := range order {
		if n%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		var emitErr error
		err := v.scanRaw(ctx, it, &scans[i], index, buf, func(id, s, p uint64, objEnc []byte, ver uint64) {
			obj, err := model.DecodeObject(objEnc)
			if err != nil {
				emitErr = fmt.Errorf("fact %d: %w", id, err)
				return
			}
			points[i] = Fact{ID: id, Subject: s, Predicate: p, Object: obj, Index: ver}
		})
		if err != nil {
			return nil, err
		}
		if emitErr != nil {
			return nil, emitErr
		}
	}
	return points, nil
}

// plan validates a batch and compiles every lookup.
func (v *View) plan(lookups []Lookup) ([]scan, error) {
	switch {
	case len(lookups) == 0:
		return nil, fmt.Errorf("%w: a request needs at least one lookup", ErrEmptyBatch)
	case len(lookups) > v.cfg.MaxLookups:
		return nil, fmt.Errorf("%w: %d lookups, the limit is %d", ErrBatchTooLarge, len(lookups), v.cfg.MaxLookups)
	}
	scans := make([]scan, len(lookups))
	for i := range lookups {
		sc, err := v.compile(&lookups[i])
		if err != nil {
			return nil, fmt.Errorf("lookup %d: %w", i, err)
		}
		scans[i] = sc
	}
	return scans, nil
}

// resume applies a cursor to a planned batch: the lookups before it are
// skipped, and its own lookup starts after the cursor's fact. Scans start
// at the next MVCC prefix after that fact's, in the table the lookup reads.
func (v *View) resume(lookups []Lookup, scans []scan, from Cursor) error {
	if from.Lookup < 0 || from.Lookup >= len(lookups) {
		if from.Lookup == 0 && from.After == nil {
			return nil
		}
		return fmt.Errorf("%w: cursor at lookup %d of %d", ErrInvalidLookup, from.Lookup, len(lookups))
	}
	for i := range from.Lookup {
		scans[i].skip = true
	}
	if from.After == nil {
		return nil
	}
	sc := &scans[from.Lookup]
	if sc.exact {
		sc.skip = true // its one fact was the cursor's
		return nil
	}
	obj, err := model.AppendObject(nil, from.After.Object, model.IDOnly)
	if err != nil {
		return fmt.Errorf("%w: cursor object: %v", ErrInvalidLookup, err)
	}
	space := v.cfg.Space
	body := keys.AppendBody(nil, space, from.After.Subject, from.After.Predicate, obj)
	var prefix []byte
	if k := lookups[from.Lookup].Kind; k == LookupS || k == LookupPOCmp {
		prefix = keys.AppendOrderedPrefix(nil, space, body)
	} else {
		prefix = keys.AppendFactPrefix(nil, space, keys.BodyHash(space, body), body)
	}
	if next := keys.PrefixEnd(prefix); bytes.Compare(next, sc.lo) > 0 {
		sc.lo = next
	}
	return nil
}

func (v *View) compile(l *Lookup) (scan, error) {
	space := v.cfg.Space
	if l.Kind < LookupS || l.Kind > LookupPOCmp {
		return scan{}, fmt.Errorf("%w: unknown kind %v", ErrInvalidLookup, l.Kind)
	}
	if l.Kind.space() != space {
		return scan{}, fmt.Errorf("%w: %v needs a %v view; this view is %v", ErrWrongSpace, l.Kind, l.Kind.space(), space)
	}
	var obj []byte
	if l.Kind == LookupSPO || l.Kind == LookupPO || l.Kind == LookupPOCmp {
		var err error
		obj, err = model.AppendObject(nil, l.Object, model.IDOnly)
		if err != nil {
			return scan{}, fmt.Errorf("%w: object: %v", ErrInvalidLookup, err)
		}
	}
	inRange := func(h uint64) error {
		if !v.cfg.Range.Contains(h) {
			return fmt.Errorf("%w: hash %#016x is not in %v", ErrOutOfRange, h, v.cfg.Range)
		}
		return nil
	}
	// Sized for the longest key below, so that building it allocates once.
	b := make([]byte, 0, 1+3*8+len(obj))
	switch l.Kind {
	case LookupS:
		b = append(b, keys.TableSPBySubject)
		b = binary.BigEndian.AppendUint64(b, l.Subject)
		return prefixScan(b), nil
	case LookupSP, LookupSPO:
		h := keys.HashSP(l.Subject, l.Predicate)
		if err := inRange(h); err != nil {
			return scan{}, err
		}
		b = append(b, keys.TableSPFacts)
		b = binary.BigEndian.AppendUint64(b, h)
		b = binary.BigEndian.AppendUint64(b, l.Subject)
		b = binary.BigEndian.AppendUint64(b, l.Predicate)
		if l.Kind == LookupSP {
			return prefixScan(b), nil
		}
		return scan{lo: append(b, obj...), exact: true}, nil
	case LookupPO:
		h := keys.HashPO(l.Predicate, obj)
		if err := inRange(h); err != nil {
			return scan{}, err
		}
		b = append(b, keys.TablePOFacts)
		b = binary.BigEndian.AppendUint64(b, h)
		b = binary.BigEndian.AppendUint64(b, l.Predicate)
		return prefixScan(append(b, obj...)), nil
	}
	return compileCmp(l, obj)
}

func prefixScan(prefix []byte) scan {
	return scan{lo: prefix, hi: keys.PrefixEnd(prefix)}
}

// compileCmp turns a comparison into a range of the by-predicate table:
// base = 'd' ‖ predicate, and the object's type bounds the range.
func compileCmp(l *Lookup, obj []byte) (scan, error) {
	base := append([]byte{keys.TablePOByPredicate}, binary.BigEndian.AppendUint64(nil, l.Predicate)...)
	cat := func(parts ...[]byte) []byte {
		out := bytes.Clone(base)
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	typeLo := cat(obj[:1])
	typeHi := keys.PrefixEnd(typeLo)
	at := cat(obj)
	after := keys.PrefixEnd(at)
	if l.Op != viewpb.CmpOp_BETWEEN && l.Upper != nil {
		return scan{}, fmt.Errorf("%w: upper is only for BETWEEN", ErrInvalidLookup)
	}
	switch l.Op {
	case viewpb.CmpOp_EQ:
		return scan{lo: at, hi: after}, nil
	case viewpb.CmpOp_LT:
		return scan{lo: typeLo, hi: at}, nil
	case viewpb.CmpOp_LE:
		return scan{lo: typeLo, hi: after}, nil
	case viewpb.CmpOp_GT:
		return scan{lo: after, hi: typeHi}, nil
	case viewpb.CmpOp_GE:
		return scan{lo: at, hi: typeHi}, nil
	case viewpb.CmpOp_BETWEEN:
		upper, err := model.AppendObject(nil, l.Upper, model.IDOnly)
		if err != nil {
			return scan{}, fmt.Errorf("%w: upper: %v", ErrInvalidLookup, err)
		}
		if upper[0] != obj[0] {
			return scan{}, fmt.Errorf("%w: BETWEEN bounds have different types", ErrInvalidLookup)
		}
		if bytes.Compare(obj, upper) > 0 {
			return scan{}, fmt.Errorf("%w: BETWEEN lower bound is above the upper bound", ErrInvalidLookup)
		}
		return scan{lo: at, hi: keys.PrefixEnd(cat(upper))}, nil
	case viewpb.CmpOp_PREFIX:
		s, ok := l.Object.GetValue().(*entrypb.Object_String_)
		if !ok || s.String_.GetLang() != "" {
			return scan{}, fmt.Errorf("%w: PREFIX needs a string with no language", ErrInvalidLookup)
		}
		lo := cat(model.AppendStringPrefix(nil, s.String_.GetText()))
		return scan{lo: lo, hi: keys.PrefixEnd(lo)}, nil
	}
	return scan{}, fmt.Errorf("%w: unknown comparison %v", ErrInvalidLookup, l.Op)
}

// scan emits the facts of one compiled lookup visible at index.
func (v *View) scan(ctx context.Context, it *pebble.Iterator, sc *scan, index uint64, buf *[]byte, emit func(Fact) error) error {
	var emitErr error
	err := v.scanRaw(ctx, it, sc, index, buf, func(id, s, p uint64, objEnc []byte, ver uint64) {
		if emitErr != nil {
			return
		}
		obj, err := model.DecodeObject(objEnc)
		if err != nil {
			emitErr = fmt.Errorf("fact %d: %w", id, err)
			return
		}
		emitErr = emit(Fact{ID: id, Subject: s, Predicate: p, Object: obj, Index: ver})
	})
	if emitErr != nil {
		return emitErr
	}
	return err
}

// scanRaw calls fn for every fact of a compiled lookup visible at index:
// for each MVCC prefix in range, its newest version at or below index, if
// live. objEnc is only valid during the call.
func (v *View) scanRaw(ctx context.Context, it *pebble.Iterator, sc *scan, index uint64, buf *[]byte,
	fn func(id, s, p uint64, objEnc []byte, ver uint64)) error {
	if sc.exact {
		*buf = keys.AppendVersion(append((*buf)[:0], sc.lo...), index)
		if it.SeekPrefixGE(*buf) {
			if err := v.current(it, len(sc.lo), fn); err != nil {
				return err
			}
		}
		return it.Error()
	}
	valid := it.SeekGE(sc.lo)
	for n := 0; valid; n++ {
		if n%4096 == 4095 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		k := it.Key()
		if k[0] != sc.lo[0] || (sc.hi != nil && bytes.Compare(k, sc.hi) >= 0) {
			break // past the range, or out of the table
		}
		pl := keys.Split(k)
		if pl == len(k) {
			return fmt.Errorf("unversioned key %x in a fact table", k)
		}
		if keys.Version(k[pl:]) > index {
			// Skip the versions newer than index.
			*buf = keys.AppendVersion(append((*buf)[:0], k[:pl]...), index)
			valid = it.SeekGE(*buf)
			continue
		}
		if err := v.current(it, pl, fn); err != nil {
			return err
		}
		valid = it.NextPrefix()
	}
	return it.Error()
}

// current passes the iterator's fact version to fn if it is live.
func (v *View) current(it *pebble.Iterator, prefixLen int, fn func(id, s, p uint64, objEnc []byte, ver uint64)) error {
	k := it.Key()
	val, err := it.ValueAndErr()
	if err != nil {
		return err
	}
	live, id, err := keys.ParseValue(val)
	if err != nil {
		return fmt.Errorf("fact %x: %w", k, err)
	}
	if live {
		s, p, objEnc := keys.ParseBody(v.cfg.Space, keys.BodyOf(k, prefixLen))
		fn(id, s, p, objEnc, keys.Version(k[prefixLen:]))
	}
	return nil
}
