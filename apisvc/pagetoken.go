package apisvc

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/akutan/akutan/model"
	"github.com/akutan/akutan/proto/viewpb"
)

// A page token says where the next page of a lookup starts: the index the
// first page read at (every page reads there, so the pages are one
// snapshot), a fingerprint of the request (a token is only good for the
// request that made it), and the position in the answer (a lookup offset
// and the last fact's triple). It is opaque to clients:
//
//	version (1 byte) ‖ index ‖ fingerprint (8 bytes) ‖ lookup ‖ flag (1 byte)
//	[‖ subject ‖ predicate ‖ object encoding]
//
// with the integers as uvarints except the fingerprint, base64url-encoded.
// It is not secret and not signed: a forged token can only ask for facts
// the caller could look up anyway.

const tokenVersion = 1

// pageToken is a decoded page token.
type pageToken struct {
	index       uint64
	fingerprint uint64
	from        *viewpb.Cursor
}

func (t pageToken) encode() (string, error) {
	b := []byte{tokenVersion}
	b = binary.AppendUvarint(b, t.index)
	b = binary.BigEndian.AppendUint64(b, t.fingerprint)
	b = binary.AppendUvarint(b, uint64(t.from.GetLookup()))
	after := t.from.GetAfter()
	if after == nil {
		b = append(b, 0)
		return base64.RawURLEncoding.EncodeToString(b), nil
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, after.GetSubject())
	b = binary.AppendUvarint(b, after.GetPredicate())
	b, err := model.AppendObject(b, after.GetObject(), model.IDOnly)
	if err != nil {
		return "", fmt.Errorf("page token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

var errBadToken = errors.New("malformed page token")

func decodePageToken(s string) (pageToken, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 || b[0] != tokenVersion {
		return pageToken{}, fmt.Errorf("%w: %w", ErrInvalid, errBadToken)
	}
	b = b[1:]
	var t pageToken
	uvarint := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			err = errBadToken
			return 0
		}
		b = b[n:]
		return v
	}
	t.index = uvarint()
	if err != nil || len(b) < 8 {
		return pageToken{}, fmt.Errorf("%w: %w", ErrInvalid, errBadToken)
	}
	t.fingerprint, b = binary.BigEndian.Uint64(b), b[8:]
	lookup := uvarint()
	if err != nil || lookup >= maxLookups || len(b) < 1 {
		return pageToken{}, fmt.Errorf("%w: %w", ErrInvalid, errBadToken)
	}
	t.from = &viewpb.Cursor{Lookup: uint32(lookup)}
	flag := b[0]
	b = b[1:]
	switch {
	case flag == 0 && len(b) == 0:
		return t, nil
	case flag != 1:
		return pageToken{}, fmt.Errorf("%w: %w", ErrInvalid, errBadToken)
	}
	after := &viewpb.FactKey{Subject: uvarint(), Predicate: uvarint()}
	if err != nil {
		return pageToken{}, fmt.Errorf("%w: %w", ErrInvalid, errBadToken)
	}
	if after.Object, err = model.DecodeObject(b); err != nil {
		return pageToken{}, fmt.Errorf("%w: %w: %v", ErrInvalid, errBadToken, err)
	}
	t.from.After = after
	return t, nil
}

// fingerprint identifies a lookup request apart from its index
// constraint, limit and page token.
func fingerprint(req proto.Message) uint64 {
	m := proto.Clone(req).ProtoReflect()
	fields := m.Descriptor().Fields()
	for _, name := range []protoreflect.Name{"index", "limit", "page_token"} {
		if fd := fields.ByName(name); fd != nil {
			m.Clear(fd)
		}
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m.Interface())
	return xxhash.Sum64(b)
}
