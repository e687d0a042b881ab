package viewsvc

import (
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/akutan/akutan/proto/entrypb"
)

// rawTx is a transaction in a flat form that needs no allocation per fact.
// decode fills it straight from the wire for the common case (parseRawTx)
// and from a decoded entrypb.Transaction otherwise (rawFromProto); resolve
// reads only this form, so both ways behave the same.
type rawTx struct {
	newNodes      uint32
	needsDecision bool
	inserts       []rawInsert
	deletes       []rawDelete
}

type refKind uint8

const (
	refNone refKind = iota // no reference, or one with neither id nor new_node
	refID
	refNew
)

type rawRef struct {
	kind refKind
	v    uint64
}

type objKind uint8

const (
	objMissing objKind = iota // no object message
	objEmpty                  // an object message with no value
	objNode
	objString
	objInt64
	objFloat64
	objBool
	objTimestamp
)

type rawObject struct {
	kind       objKind
	ref        rawRef  // objNode
	text, lang []byte  // objString
	i          int64   // objInt64; objTimestamp: unix seconds
	f          float64 // objFloat64
	b          bool    // objBool
	nanos      int32   // objTimestamp
	prec       int32   // objTimestamp
}

type rawInsert struct {
	s, p rawRef
	o    rawObject
}

type deleteKind uint8

const (
	deleteNone deleteKind = iota
	deleteFactID
	deleteTriple
)

type rawDelete struct {
	kind   deleteKind
	factID uint64
	s, p   uint64
	o      rawObject
}

func refFromProto(r *entrypb.NodeRef) rawRef {
	switch x := r.GetRef().(type) {
	case *entrypb.NodeRef_Id:
		return rawRef{kind: refID, v: x.Id}
	case *entrypb.NodeRef_NewNode:
		return rawRef{kind: refNew, v: uint64(x.NewNode)}
	}
	return rawRef{}
}

func objectFromProto(o *entrypb.Object) rawObject {
	if o == nil {
		return rawObject{kind: objMissing}
	}
	switch v := o.GetValue().(type) {
	case *entrypb.Object_Node:
		return rawObject{kind: objNode, ref: refFromProto(v.Node)}
	case *entrypb.Object_String_:
		return rawObject{kind: objString, text: []byte(v.String_.GetText()), lang: []byte(v.String_.GetLang())}
	case *entrypb.Object_Int64:
		return rawObject{kind: objInt64, i: v.Int64}
	case *entrypb.Object_Float64:
		return rawObject{kind: objFloat64, f: v.Float64}
	case *entrypb.Object_Bool:
		return rawObject{kind: objBool, b: v.Bool}
	case *entrypb.Object_Timestamp:
		ts := v.Timestamp
		return rawObject{kind: objTimestamp, i: ts.GetUnixSeconds(), nanos: ts.GetNanos(), prec: int32(ts.GetPrecision())}
	}
	return rawObject{kind: objEmpty}
}

// rawFromProto flattens a decoded transaction.
func rawFromProto(tx *entrypb.Transaction) rawTx {
	r := rawTx{newNodes: tx.GetNewNodes(), needsDecision: tx.GetNeedsDecision()}
	r.inserts = make([]rawInsert, len(tx.GetInserts()))
	for i, ins := range tx.GetInserts() {
		r.inserts[i] = rawInsert{s: refFromProto(ins.GetSubject()), p: refFromProto(ins.GetPredicate()), o: objectFromProto(ins.GetObject())}
	}
	r.deletes = make([]rawDelete, len(tx.GetDeletes()))
	for i, d := range tx.GetDeletes() {
		switch t := d.GetTarget().(type) {
		case *entrypb.Delete_FactId:
			r.deletes[i] = rawDelete{kind: deleteFactID, factID: t.FactId}
		case *entrypb.Delete_Triple:
			r.deletes[i] = rawDelete{kind: deleteTriple, s: t.Triple.GetSubject(), p: t.Triple.GetPredicate(), o: objectFromProto(t.Triple.GetObject())}
		}
	}
	return r
}

// Field numbers from entry.proto.
const (
	fEnvVersion     = 1
	fEnvTransaction = 2

	fTxNewNodes      = 1
	fTxInserts       = 2
	fTxDeletes       = 3
	fTxNeedsDecision = 4

	fInsSubject   = 1
	fInsPredicate = 2
	fInsObject    = 3

	fRefID      = 1
	fRefNewNode = 2

	fObjNode      = 1
	fObjString    = 2
	fObjInt64     = 3
	fObjFloat64   = 4
	fObjBool      = 5
	fObjTimestamp = 6

	fLangText = 1
	fLangLang = 2

	fTsSeconds   = 1
	fTsNanos     = 2
	fTsPrecision = 3

	fDelFactID = 1
	fDelTriple = 2

	fTriSubject   = 1
	fTriPredicate = 2
	fTriObject    = 3
)

// parseRawTx reads an envelope holding a transaction straight from the wire.
// It accepts only the plain encoding proto.Marshal writes: every known field
// with its own wire type, singular fields and oneofs at most once, no unknown
// fields, 32-bit fields in range and strings in UTF-8. For anything else it
// returns ok == false and decode falls back to proto.Unmarshal, so that odd
// but valid encodings (repeated fields merging, unknown fields, ...) keep the
// exact protobuf meaning. Within what it accepts, it means what
// proto.Unmarshal means.
func parseRawTx(b []byte, tx *rawTx) (version uint32, ok bool) {
	*tx = rawTx{inserts: tx.inserts[:0], deletes: tx.deletes[:0]} // reuse the slices
	var seen uint8
	var body []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
		switch {
		case num == fEnvVersion && typ == protowire.VarintType && seen&1 == 0:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 || v > math.MaxUint32 {
				return 0, false
			}
			version, b, seen = uint32(v), b[n:], seen|1
		case num == fEnvTransaction && typ == protowire.BytesType && seen&2 == 0:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, false
			}
			body, b, seen = v, b[n:], seen|2
		default:
			return 0, false
		}
	}
	if seen&2 == 0 || !parseTxBody(body, tx) {
		return 0, false
	}
	return version, true
}

func parseTxBody(b []byte, tx *rawTx) bool {
	var seen uint8
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case num == fTxNewNodes && typ == protowire.VarintType && seen&1 == 0:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 || v > math.MaxUint32 {
				return false
			}
			tx.newNodes, b, seen = uint32(v), b[n:], seen|1
		case num == fTxNeedsDecision && typ == protowire.VarintType && seen&2 == 0:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 || v > 1 {
				return false
			}
			tx.needsDecision, b, seen = v == 1, b[n:], seen|2
		case num == fTxInserts && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			var ins rawInsert
			if !parseInsert(v, &ins) {
				return false
			}
			tx.inserts = append(tx.inserts, ins)
		case num == fTxDeletes && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			var d rawDelete
			if !parseDelete(v, &d) {
				return false
			}
			tx.deletes = append(tx.deletes, d)
		default:
			return false
		}
	}
	return true
}

func parseInsert(b []byte, ins *rawInsert) bool {
	var seen uint8
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType || num < fInsSubject || num > fInsObject || seen&(1<<num) != 0 {
			return false
		}
		seen |= 1 << num
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return false
		}
		b = b[n+m:]
		var ok bool
		switch num {
		case fInsSubject:
			ok = parseRef(v, &ins.s)
		case fInsPredicate:
			ok = parseRef(v, &ins.p)
		default:
			ok = parseObject(v, &ins.o)
		}
		if !ok {
			return false
		}
	}
	return true
}

// parseRef reads a NodeRef; an empty one has kind refNone.
func parseRef(b []byte, r *rawRef) bool {
	if len(b) == 0 {
		return true
	}
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || typ != protowire.VarintType {
		return false
	}
	v, m := protowire.ConsumeVarint(b[n:])
	if m < 0 || n+m != len(b) {
		return false // a second field (oneof last-wins): leave it to protobuf
	}
	switch num {
	case fRefID:
		*r = rawRef{kind: refID, v: v}
	case fRefNewNode:
		if v > math.MaxUint32 {
			return false
		}
		*r = rawRef{kind: refNew, v: v}
	default:
		return false
	}
	return true
}

// parseObject reads an Object; an empty one has kind objEmpty.
func parseObject(b []byte, o *rawObject) bool {
	*o = rawObject{kind: objEmpty}
	if len(b) == 0 {
		return true
	}
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return false
	}
	b = b[n:]
	var m int
	switch {
	case num == fObjNode && typ == protowire.BytesType:
		var v []byte
		if v, m = protowire.ConsumeBytes(b); m < 0 || !parseRef(v, &o.ref) {
			return false
		}
		o.kind = objNode
	case num == fObjString && typ == protowire.BytesType:
		var v []byte
		if v, m = protowire.ConsumeBytes(b); m < 0 || !parseLangString(v, o) {
			return false
		}
		o.kind = objString
	case num == fObjInt64 && typ == protowire.VarintType:
		var v uint64
		if v, m = protowire.ConsumeVarint(b); m < 0 {
			return false
		}
		o.kind, o.i = objInt64, int64(v)
	case num == fObjFloat64 && typ == protowire.Fixed64Type:
		var v uint64
		if v, m = protowire.ConsumeFixed64(b); m < 0 {
			return false
		}
		o.kind, o.f = objFloat64, math.Float64frombits(v)
	case num == fObjBool && typ == protowire.VarintType:
		var v uint64
		if v, m = protowire.ConsumeVarint(b); m < 0 || v > 1 {
			return false
		}
		o.kind, o.b = objBool, v == 1
	case num == fObjTimestamp && typ == protowire.BytesType:
		var v []byte
		if v, m = protowire.ConsumeBytes(b); m < 0 || !parseTimestamp(v, o) {
			return false
		}
		o.kind = objTimestamp
	default:
		return false
	}
	return m == len(b) // exactly one field
}

func parseLangString(b []byte, o *rawObject) bool {
	var seen uint8
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType || num < fLangText || num > fLangLang || seen&(1<<num) != 0 {
			return false
		}
		seen |= 1 << num
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 || !utf8.Valid(v) {
			return false
		}
		b = b[n+m:]
		if num == fLangText {
			o.text = v
		} else {
			o.lang = v
		}
	}
	return true
}

func parseTimestamp(b []byte, o *rawObject) bool {
	var seen uint8
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.VarintType || num < fTsSeconds || num > fTsPrecision || seen&(1<<num) != 0 {
			return false
		}
		seen |= 1 << num
		v, m := protowire.ConsumeVarint(b[n:])
		if m < 0 {
			return false
		}
		b = b[n+m:]
		switch num {
		case fTsSeconds:
			o.i = int64(v)
		default:
			// int32 and enum fields: protobuf keeps the low 32 bits; accept
			// only values that are already int32.
			x := int64(v)
			if x < math.MinInt32 || x > math.MaxInt32 {
				return false
			}
			if num == fTsNanos {
				o.nanos = int32(x)
			} else {
				o.prec = int32(x)
			}
		}
	}
	return true
}

func parseDelete(b []byte, d *rawDelete) bool {
	if len(b) == 0 {
		return true // deleteNone
	}
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return false
	}
	b = b[n:]
	var m int
	switch {
	case num == fDelFactID && typ == protowire.VarintType:
		var v uint64
		if v, m = protowire.ConsumeVarint(b); m < 0 {
			return false
		}
		d.kind, d.factID = deleteFactID, v
	case num == fDelTriple && typ == protowire.BytesType:
		var v []byte
		if v, m = protowire.ConsumeBytes(b); m < 0 || !parseTriple(v, d) {
			return false
		}
		d.kind = deleteTriple
	default:
		return false
	}
	return m == len(b)
}

func parseTriple(b []byte, d *rawDelete) bool {
	d.o = rawObject{kind: objMissing}
	var seen uint8
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num < fTriSubject || num > fTriObject || seen&(1<<num) != 0 {
			return false
		}
		seen |= 1 << num
		b = b[n:]
		if num == fTriObject {
			if typ != protowire.BytesType {
				return false
			}
			v, m := protowire.ConsumeBytes(b)
			if m < 0 || !parseObject(v, &d.o) {
				return false
			}
			b = b[m:]
			continue
		}
		if typ != protowire.VarintType {
			return false
		}
		v, m := protowire.ConsumeVarint(b)
		if m < 0 {
			return false
		}
		b = b[m:]
		if num == fTriSubject {
			d.s = v
		} else {
			d.p = v
		}
	}
	return true
}
