package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/akutan/akutan/proto/entrypb"
)

// Object type tags, in sort order.
const (
	TagNode      byte = 0x01
	TagString    byte = 0x02
	TagInt64     byte = 0x03
	TagFloat64   byte = 0x04
	TagBool      byte = 0x05
	TagTimestamp byte = 0x06
)

// ErrInvalidObject means an object cannot be encoded or decoded.
var ErrInvalidObject = errors.New("invalid object")

const (
	signBit     = uint64(1) << 63
	canonNaNKey = 0xFFF8000000000000 // ordered bits of the canonical NaN
	maxNanos    = 1_000_000_000
	maxPrec     = int32(entrypb.Timestamp_NANOSECOND)
)

// NodeResolver turns a node reference into a node id.
type NodeResolver func(*entrypb.NodeRef) (uint64, error)

// IDOnly resolves references that name an existing id and refuses the rest.
func IDOnly(r *entrypb.NodeRef) (uint64, error) {
	x, ok := r.GetRef().(*entrypb.NodeRef_Id)
	if !ok {
		return 0, fmt.Errorf("%w: node must be named by id", ErrInvalidObject)
	}
	return x.Id, nil
}

// AppendObject appends the order-preserving encoding of o to dst. Node
// objects are resolved with resolve.
func AppendObject(dst []byte, o *entrypb.Object, resolve NodeResolver) ([]byte, error) {
	switch v := o.GetValue().(type) {
	case *entrypb.Object_Node:
		id, err := resolve(v.Node)
		if err != nil {
			return dst, err
		}
		return AppendNodeObject(dst, id), nil
	case *entrypb.Object_String_:
		return AppendStringObject(dst, v.String_.GetText(), v.String_.GetLang()), nil
	case *entrypb.Object_Int64:
		return AppendInt64Object(dst, v.Int64), nil
	case *entrypb.Object_Float64:
		return AppendFloat64Object(dst, v.Float64), nil
	case *entrypb.Object_Bool:
		return AppendBoolObject(dst, v.Bool), nil
	case *entrypb.Object_Timestamp:
		ts := v.Timestamp
		return AppendTimestampObject(dst, ts.GetUnixSeconds(), ts.GetNanos(), int32(ts.GetPrecision()))
	case nil:
		if o == nil {
			return dst, ErrMissingObject
		}
		return dst, ErrEmptyObject
	default:
		return dst, fmt.Errorf("%w: unknown object type %T", ErrInvalidObject, v)
	}
}

// Errors for absent objects, as AppendObject reports them.
var (
	ErrMissingObject = fmt.Errorf("%w: missing object", ErrInvalidObject)
	ErrEmptyObject   = fmt.Errorf("%w: object has no value", ErrInvalidObject)
)

// AppendNodeObject appends the encoding of the node object id.
func AppendNodeObject(dst []byte, id uint64) []byte {
	dst = append(dst, TagNode)
	return binary.BigEndian.AppendUint64(dst, id)
}

// AppendStringObject appends the encoding of a string with a language tag.
func AppendStringObject[T ~string | ~[]byte](dst []byte, text, lang T) []byte {
	dst = append(dst, TagString)
	dst = appendEscaped(dst, text)
	dst = append(dst, 0x00, 0x01)
	dst = appendEscaped(dst, lang)
	return append(dst, 0x00, 0x01)
}

// AppendInt64Object appends the encoding of an int64.
func AppendInt64Object(dst []byte, v int64) []byte {
	dst = append(dst, TagInt64)
	return binary.BigEndian.AppendUint64(dst, uint64(v)^signBit)
}

// AppendFloat64Object appends the encoding of a float64.
func AppendFloat64Object(dst []byte, f float64) []byte {
	dst = append(dst, TagFloat64)
	return binary.BigEndian.AppendUint64(dst, floatKey(f))
}

// AppendBoolObject appends the encoding of a bool.
func AppendBoolObject(dst []byte, v bool) []byte {
	b := byte(0)
	if v {
		b = 1
	}
	return append(dst, TagBool, b)
}

// AppendTimestampObject appends the encoding of a timestamp, which needs
// nanos in [0, 1e9) and a known precision.
func AppendTimestampObject(dst []byte, seconds int64, nanos, precision int32) ([]byte, error) {
	if nanos < 0 || nanos >= maxNanos {
		return dst, fmt.Errorf("%w: timestamp nanos %d outside [0, 1e9)", ErrInvalidObject, nanos)
	}
	if precision < 0 || precision > maxPrec {
		return dst, fmt.Errorf("%w: unknown timestamp precision %d", ErrInvalidObject, precision)
	}
	dst = append(dst, TagTimestamp)
	dst = binary.BigEndian.AppendUint64(dst, uint64(seconds)^signBit)
	dst = binary.BigEndian.AppendUint32(dst, uint32(nanos))
	return append(dst, byte(precision)), nil
}

// AppendStringPrefix appends the encoding of a string object's tag and
// escaped text without its terminator: every string whose text starts with
// text has an encoding that starts with these bytes, and no other does.
func AppendStringPrefix(dst []byte, text string) []byte {
	dst = append(dst, TagString)
	return appendEscaped(dst, text)
}

func appendEscaped[T ~string | ~[]byte](dst []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			dst = append(dst, 0x00, 0xFF)
		} else {
			dst = append(dst, s[i])
		}
	}
	return dst
}

func floatKey(f float64) uint64 {
	if f != f {
		return canonNaNKey
	}
	if f == 0 {
		f = 0 // -0 becomes +0
	}
	b := math.Float64bits(f)
	if b&signBit != 0 {
		return ^b
	}
	return b | signBit
}

func floatFromKey(k uint64) float64 {
	if k&signBit != 0 {
		return math.Float64frombits(k &^ signBit)
	}
	return math.Float64frombits(^k)
}

// ObjectLen returns the length of the object encoding at the start of b, or
// -1 if b does not start with a complete encoding.
func ObjectLen(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	n := -1
	switch b[0] {
	case TagNode, TagInt64, TagFloat64:
		n = 9
	case TagBool:
		n = 2
	case TagTimestamp:
		n = 14
	case TagString:
		i := 1
		for part := 0; part < 2; part++ {
			j := escapedLen(b[i:])
			if j < 0 {
				return -1
			}
			i += j + 2
		}
		return i
	}
	if len(b) < n {
		return -1
	}
	return n
}

// escapedLen returns the length of the escaped text at the start of b, up to
// and excluding its 0x00 0x01 terminator, or -1 if there is no terminator.
func escapedLen(b []byte) int {
	i := 0
	for {
		j := bytes.IndexByte(b[i:], 0x00)
		if j < 0 {
			return -1
		}
		i += j
		if i+1 >= len(b) {
			return -1
		}
		switch b[i+1] {
		case 0x01:
			return i
		case 0xFF:
			i += 2
		default:
			return -1
		}
	}
}

func unescape(b []byte) string {
	if bytes.IndexByte(b, 0x00) < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		out = append(out, b[i])
		if b[i] == 0x00 {
			i++ // skip the 0xFF escape
		}
	}
	return string(out)
}

// DecodeObject decodes one complete object encoding.
func DecodeObject(b []byte) (*entrypb.Object, error) {
	if n := ObjectLen(b); n != len(b) {
		return nil, fmt.Errorf("%w: bad encoding %x", ErrInvalidObject, b)
	}
	switch b[0] {
	case TagNode:
		id := binary.BigEndian.Uint64(b[1:])
		return &entrypb.Object{Value: &entrypb.Object_Node{Node: &entrypb.NodeRef{Ref: &entrypb.NodeRef_Id{Id: id}}}}, nil
	case TagString:
		t := escapedLen(b[1:])
		text := unescape(b[1 : 1+t])
		rest := b[1+t+2:]
		l := escapedLen(rest)
		lang := unescape(rest[:l])
		return &entrypb.Object{Value: &entrypb.Object_String_{String_: &entrypb.LangString{Text: text, Lang: lang}}}, nil
	case TagInt64:
		return &entrypb.Object{Value: &entrypb.Object_Int64{Int64: int64(binary.BigEndian.Uint64(b[1:]) ^ signBit)}}, nil
	case TagFloat64:
		return &entrypb.Object{Value: &entrypb.Object_Float64{Float64: floatFromKey(binary.BigEndian.Uint64(b[1:]))}}, nil
	case TagBool:
		if b[1] > 1 {
			return nil, fmt.Errorf("%w: bad bool %x", ErrInvalidObject, b)
		}
		return &entrypb.Object{Value: &entrypb.Object_Bool{Bool: b[1] == 1}}, nil
	case TagTimestamp:
		return &entrypb.Object{Value: &entrypb.Object_Timestamp{Timestamp: &entrypb.Timestamp{
			UnixSeconds: int64(binary.BigEndian.Uint64(b[1:]) ^ signBit),
			Nanos:       int32(binary.BigEndian.Uint32(b[9:])),
			Precision:   entrypb.Timestamp_Precision(b[13]),
		}}}, nil
	}
	return nil, fmt.Errorf("%w: unknown tag %#x", ErrInvalidObject, b[0])
}
