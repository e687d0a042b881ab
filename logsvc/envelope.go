package logsvc

import (
	"fmt"

	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/entrypb"
)

// envelopeHead is what the log itself needs from an entry: its version and,
// for a version change, the target version.
type envelopeHead struct {
	version       uint32
	versionChange bool
	toVersion     uint32
}

// Field numbers of entrypb.Envelope and entrypb.VersionChange.
const (
	fieldVersion       = 1
	fieldVersionChange = 4
	fieldToVersion     = 1
)

// peekEnvelope reads the head of an encoded envelope without decoding the
// command, so that applying a batch stays cheap.
func peekEnvelope(b []byte) (envelopeHead, error) {
	var h envelopeHead
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return h, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == fieldVersion && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return h, protowire.ParseError(n)
			}
			h.version = uint32(v)
			b = b[n:]
		case num == fieldVersionChange && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return h, protowire.ParseError(n)
			}
			// A second version change merges into the first, as protobuf
			// merges a repeated message field; after another command it
			// starts afresh.
			if !h.versionChange {
				h.toVersion = 0
			}
			h.versionChange = true
			for len(v) > 0 {
				fnum, ftyp, fn := protowire.ConsumeTag(v)
				if fn < 0 {
					return h, protowire.ParseError(fn)
				}
				v = v[fn:]
				if fnum == fieldToVersion && ftyp == protowire.VarintType {
					x, xn := protowire.ConsumeVarint(v)
					if xn < 0 {
						return h, protowire.ParseError(xn)
					}
					h.toVersion = uint32(x)
					v = v[xn:]
					continue
				}
				fn = protowire.ConsumeFieldValue(fnum, ftyp, v)
				if fn < 0 {
					return h, protowire.ParseError(fn)
				}
				v = v[fn:]
			}
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return h, protowire.ParseError(n)
			}
			b = b[n:]
			if isCommand(num, typ) {
				// The last command of the oneof wins, as in protobuf: a
				// version change followed by a transaction is a
				// transaction to every view, so it is one to the log.
				h.versionChange, h.toVersion = false, 0
			}
		}
	}
	return h, nil
}

// isCommand reports whether a field of the given number and wire type sets
// the envelope's command (every command is a message).
func isCommand(num protowire.Number, typ protowire.Type) bool {
	fd := envelopeDesc.Fields().ByNumber(num)
	return typ == protowire.BytesType && fd != nil && fd.ContainingOneof() != nil
}

// validateEnvelope fully checks one entry from a client and, unless
// supported is 0, its version against the log's current version and this
// replica's support.
func validateEnvelope(i int, b []byte, logVersion, supported uint32) (envelopeHead, error) {
	hasCommand, err := checkWire(b, envelopeDesc, 0)
	if err != nil {
		return envelopeHead{}, logerr.New(logerr.ErrInvalidEntry, nil, "entry %d: not an envelope: %v", i, err)
	}
	if !hasCommand {
		return envelopeHead{}, logerr.New(logerr.ErrInvalidEntry, nil, "entry %d: envelope has no command", i)
	}
	h, err := peekEnvelope(b)
	if err != nil {
		return h, logerr.New(logerr.ErrInvalidEntry, nil, "entry %d: %v", i, err)
	}
	switch {
	case h.version == 0:
		return h, logerr.New(logerr.ErrInvalidEntry, nil, "entry %d: envelope version is 0; versions start at 1", i)
	case supported == 0:
		return h, nil
	case h.version > supported:
		return h, logerr.Unsupported(h.version, supported)
	case h.version > logVersion:
		return h, logerr.New(logerr.ErrInvalidEntry, map[string]string{"log_version": fmt.Sprint(logVersion)},
			"entry %d: envelope version %d is above the log version %d; append a version change first", i, h.version, logVersion)
	}
	if h.versionChange {
		switch {
		case h.toVersion > supported:
			return h, logerr.Unsupported(h.toVersion, supported)
		case h.toVersion <= logVersion:
			return h, logerr.New(logerr.ErrInvalidEntry, nil,
				"entry %d: version change to %d does not raise the log version %d", i, h.toVersion, logVersion)
		}
	}
	return h, nil
}

var envelopeDesc = (&entrypb.Envelope{}).ProtoReflect().Descriptor()

// maxNesting bounds recursion on hostile input.
const maxNesting = 32

// checkWire validates b as an encoding of md without building messages:
// every known field has the wire type its kind needs, strings are UTF-8, and
// nested messages are valid, as proto.Unmarshal would require. Unknown
// fields are allowed (newer writers). It reports whether a field of a oneof
// was present, which for an envelope is its command.
func checkWire(b []byte, md protoreflect.MessageDescriptor, depth int) (oneofSet bool, err error) {
	if depth > maxNesting {
		return false, fmt.Errorf("nested deeper than %d", maxNesting)
	}
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false, protowire.ParseError(n)
		}
		b = b[n:]
		fd := fields.ByNumber(num)
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return false, fmt.Errorf("field %d: %v", num, protowire.ParseError(n))
		}
		val := b[:n]
		b = b[n:]
		if fd == nil {
			continue
		}
		known, err := checkField(fd, typ, val, depth)
		if err != nil {
			return false, fmt.Errorf("%s: %w", fd.Name(), err)
		}
		oneofSet = oneofSet || (known && fd.ContainingOneof() != nil)
	}
	return oneofSet, nil
}

// checkField validates one field's value. known is false when the wire
// type does not fit the field, which proto.Unmarshal keeps as unknown.
func checkField(fd protoreflect.FieldDescriptor, typ protowire.Type, val []byte, depth int) (known bool, err error) {
	want := protowire.BytesType
	switch fd.Kind() {
	case protoreflect.BoolKind, protoreflect.EnumKind, protoreflect.Int32Kind, protoreflect.Int64Kind,
		protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Sint32Kind, protoreflect.Sint64Kind:
		want = protowire.VarintType
	case protoreflect.DoubleKind, protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		want = protowire.Fixed64Type
	case protoreflect.FloatKind, protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		want = protowire.Fixed32Type
	}
	if typ != want {
		// Packed repeated scalars are length-checked already; any other
		// mismatch is an unknown field.
		return fd.IsList() && typ == protowire.BytesType, nil
	}
	if typ != protowire.BytesType {
		return true, nil
	}
	v, _ := protowire.ConsumeBytes(val)
	switch fd.Kind() {
	case protoreflect.StringKind:
		if !utf8.Valid(v) {
			return true, fmt.Errorf("invalid UTF-8")
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		_, err := checkWire(v, fd.Message(), depth+1)
		return true, err
	}
	return true, nil
}
