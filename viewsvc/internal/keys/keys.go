package keys

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/akutan/akutan/model"
)

// Space is a way of hashing facts into ranges (see package model).
type Space = model.Space

// The two spaces.
const (
	SpaceSP = model.SpaceSP
	SpacePO = model.SpacePO
)

// Table bytes.
const (
	TableSPFacts       byte = 'a'
	TableSPBySubject   byte = 'b'
	TablePOFacts       byte = 'c'
	TablePOByPredicate byte = 'd'
	TableTxRecord      byte = 'i'
	TableMeta          byte = 'm'
	TablePending       byte = 'x'
)

// Lengths of the fixed parts.
const (
	idLen      = 8
	hashLen    = 8
	VersionLen = 8
)

// Values of versioned keys.
const (
	valueTombstone byte = 0x00
	valueLive      byte = 0x01
)

// HashSP is the HashSP hash of a subject and predicate.
func HashSP(s, p uint64) uint64 { return model.HashSP(s, p) }

// HashPO is the HashPO hash of a predicate and an encoded object.
func HashPO(p uint64, obj []byte) uint64 { return model.HashPO(p, obj) }

// AppendBody appends a fact's body in the space's order.
func AppendBody(dst []byte, space Space, s, p uint64, obj []byte) []byte {
	if space == SpaceSP {
		dst = binary.BigEndian.AppendUint64(dst, s)
		dst = binary.BigEndian.AppendUint64(dst, p)
		return append(dst, obj...)
	}
	dst = binary.BigEndian.AppendUint64(dst, p)
	dst = append(dst, obj...)
	return binary.BigEndian.AppendUint64(dst, s)
}

// ParseBody splits a well-formed body into its triple. obj aliases body.
func ParseBody(space Space, body []byte) (s, p uint64, obj []byte) {
	if space == SpaceSP {
		return binary.BigEndian.Uint64(body), binary.BigEndian.Uint64(body[8:]), body[16:]
	}
	n := len(body) - idLen
	return binary.BigEndian.Uint64(body[n:]), binary.BigEndian.Uint64(body), body[8:n]
}

// BodyHash is the space's hash of a fact body. For HashSP it is
// xxhash64(body[:16]) and for HashPO xxhash64(body[:len-8]); both equal
// HashSP and HashPO of the triple.
func BodyHash(space Space, body []byte) uint64 {
	if space == SpaceSP {
		return xxhash.Sum64(body[:16])
	}
	return xxhash.Sum64(body[:len(body)-idLen])
}

// FactsTable is the hash-first table of a space.
func FactsTable(space Space) byte {
	if space == SpaceSP {
		return TableSPFacts
	}
	return TablePOFacts
}

// OrderedTable is the derived body-first table of a space.
func OrderedTable(space Space) byte {
	if space == SpaceSP {
		return TableSPBySubject
	}
	return TablePOByPredicate
}

// AppendFactPrefix appends the MVCC prefix of a fact in the hash-first table:
// table ‖ hash ‖ body.
func AppendFactPrefix(dst []byte, space Space, hash uint64, body []byte) []byte {
	dst = append(dst, FactsTable(space))
	dst = binary.BigEndian.AppendUint64(dst, hash)
	return append(dst, body...)
}

// AppendOrderedPrefix appends the MVCC prefix of a fact in the ordered table:
// table ‖ body.
func AppendOrderedPrefix(dst []byte, space Space, body []byte) []byte {
	dst = append(dst, OrderedTable(space))
	return append(dst, body...)
}

// AppendVersion appends the version suffix for a log index.
func AppendVersion(dst []byte, index uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, ^index)
}

// Version decodes a version suffix.
func Version(suffix []byte) uint64 {
	return ^binary.BigEndian.Uint64(suffix)
}

// BodyOf returns the body of a versioned key in one of the fact tables, given
// its prefix length from Split.
func BodyOf(key []byte, prefixLen int) []byte {
	switch key[0] {
	case TableSPFacts, TablePOFacts:
		return key[1+hashLen : prefixLen]
	}
	return key[1:prefixLen]
}

// LiveValue appends the value of a live fact version.
func LiveValue(dst []byte, id uint64) []byte {
	dst = append(dst, valueLive)
	return binary.BigEndian.AppendUint64(dst, id)
}

// TombstoneValue is the value of a deleted fact version.
var TombstoneValue = []byte{valueTombstone}

// ParseValue decodes the value of a versioned key.
func ParseValue(v []byte) (live bool, id uint64, err error) {
	switch {
	case len(v) == 1 && v[0] == valueTombstone:
		return false, 0, nil
	case len(v) == 1+idLen && v[0] == valueLive:
		return true, binary.BigEndian.Uint64(v[1:]), nil
	}
	return false, 0, fmt.Errorf("bad fact value %x", v)
}

// PendingKey appends the key of a pending transaction.
func PendingKey(dst []byte, index uint64) []byte {
	dst = append(dst, TablePending)
	return binary.BigEndian.AppendUint64(dst, index)
}

// MetaKey is the key of a metadata record.
func MetaKey(name string) []byte {
	return append([]byte{TableMeta}, name...)
}

// PrefixEnd returns the smallest key greater than every key that starts with
// prefix, or nil if there is none.
func PrefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Split returns the length of key's MVCC prefix: for a complete versioned
// key of a fact table, the key without its 8-byte version; for any other key
// (metadata, ids, pending, and partial keys used as bounds) the whole key.
func Split(key []byte) int {
	n := prefixLen(key)
	if n > 0 && len(key) == n+VersionLen {
		return n
	}
	return len(key)
}

// prefixLen parses the MVCC prefix at the start of a fact-table key and
// returns its length, or -1 if key does not start with a complete prefix.
func prefixLen(key []byte) int {
	if len(key) == 0 {
		return -1
	}
	off := 1
	switch key[0] {
	case TableSPFacts:
		off += hashLen
		fallthrough
	case TableSPBySubject:
		off += 2 * idLen
		if len(key) <= off {
			return -1
		}
		n := model.ObjectLen(key[off:])
		if n < 0 {
			return -1
		}
		return off + n
	case TablePOFacts:
		off += hashLen
		fallthrough
	case TablePOByPredicate:
		off += idLen
		if len(key) <= off {
			return -1
		}
		n := model.ObjectLen(key[off:])
		if n < 0 {
			return -1
		}
		off += n + idLen
		if len(key) < off {
			return -1
		}
		return off
	}
	return -1
}

// Comparer orders keys bytewise and splits versioned keys for prefix bloom
// filters and NextPrefix. Separator and Successor never shorten a key inside
// its version, so every key Pebble derives is either a complete key or a
// truncation of a prefix, which Split treats as unversioned.
var Comparer = &pebble.Comparer{
	Compare:              bytes.Compare,
	Equal:                bytes.Equal,
	AbbreviatedKey:       pebble.DefaultComparer.AbbreviatedKey,
	FormatKey:            pebble.DefaultComparer.FormatKey,
	Split:                Split,
	ComparePointSuffixes: bytes.Compare,
	CompareRangeSuffixes: bytes.Compare,
	Separator: func(dst, a, b []byte) []byte {
		ap, bp := Split(a), Split(b)
		if bytes.Equal(a[:ap], b[:bp]) {
			return append(dst, a...)
		}
		sep := pebble.DefaultComparer.Separator(nil, a[:ap], b[:bp])
		if bytes.Compare(sep, a) < 0 {
			return append(dst, a...)
		}
		return append(dst, sep...)
	},
	Successor: func(dst, a []byte) []byte {
		succ := pebble.DefaultComparer.Successor(nil, a[:Split(a)])
		if bytes.Compare(succ, a) < 0 {
			return append(dst, a...)
		}
		return append(dst, succ...)
	},
	ImmediateSuccessor: func(dst, a []byte) []byte {
		// NextPrefix seeks to the immediate successor of the current key's
		// prefix, so for an MVCC prefix it must sort after every version
		// of it. a ‖ FF×8 ‖ 00 does, sorts before the next prefix (prefixes
		// are prefix-free), and Split treats it as unversioned.
		if prefixLen(a) == len(a) {
			dst = append(dst, a...)
			dst = append(dst, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
			return append(dst, 0x00)
		}
		return append(append(dst, a...), 0x00)
	},
	Name: "akutan.view.v1",
}

// TxRecordKey appends the key of a transaction's record: the facts it
// created in this view, found by fact id for deletes by id.
func TxRecordKey(dst []byte, index uint64) []byte {
	dst = append(dst, TableTxRecord)
	return binary.BigEndian.AppendUint64(dst, index)
}

// AppendTxRecord appends one fact to a transaction record: its id's
// position (the low 20 bits), then its body, each length-prefixed.
func AppendTxRecord(dst []byte, id uint64, body []byte) []byte {
	dst = binary.AppendUvarint(dst, id&(1<<20-1))
	dst = binary.AppendUvarint(dst, uint64(len(body)))
	return append(dst, body...)
}

// FindInTxRecord returns the body of the fact with id in a record, or nil.
func FindInTxRecord(rec []byte, id uint64) ([]byte, error) {
	want := id & (1<<20 - 1)
	for len(rec) > 0 {
		pos, n := binary.Uvarint(rec)
		if n <= 0 {
			return nil, fmt.Errorf("bad transaction record")
		}
		rec = rec[n:]
		l, n := binary.Uvarint(rec)
		if n <= 0 || uint64(len(rec)-n) < l {
			return nil, fmt.Errorf("bad transaction record")
		}
		body := rec[n : n+int(l)]
		rec = rec[n+int(l):]
		if pos == want {
			return body, nil
		}
	}
	return nil, nil
}
