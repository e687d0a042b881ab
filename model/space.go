package model

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/akutan/akutan/proto/entrypb"
)

// Space is a way of hashing facts into ranges.
type Space uint8

// The two spaces.
const (
	SpaceSP Space = 1
	SpacePO Space = 2
)

func (s Space) String() string {
	switch s {
	case SpaceSP:
		return "HashSP"
	case SpacePO:
		return "HashPO"
	}
	return fmt.Sprintf("Space(%d)", uint8(s))
}

// ParseSpace parses "sp", "hashsp", "po" or "hashpo" (any case).
func ParseSpace(s string) (Space, error) {
	switch strings.ToLower(s) {
	case "sp", "hashsp", "hash_sp":
		return SpaceSP, nil
	case "po", "hashpo", "hash_po":
		return SpacePO, nil
	}
	return 0, fmt.Errorf("unknown space %q (want sp or po)", s)
}

// HashSP is the HashSP hash of a subject and predicate.
func HashSP(s, p uint64) uint64 {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], s)
	binary.BigEndian.PutUint64(b[8:], p)
	return xxhash.Sum64(b[:])
}

// HashPO is the HashPO hash of a predicate and an encoded object.
func HashPO(p uint64, obj []byte) uint64 {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], p)
	d := xxhash.New()
	_, _ = d.Write(b[:])
	_, _ = d.Write(obj)
	return d.Sum64()
}

// HashPOObject is the HashPO hash of a predicate and an object, whose node,
// if any, must be named by id.
func HashPOObject(p uint64, o *entrypb.Object) (uint64, error) {
	enc, err := AppendObject(nil, o, IDOnly)
	if err != nil {
		return 0, err
	}
	return HashPO(p, enc), nil
}

// HashRange is the half-open range [Start, End) of 64-bit hashes. End == 0
// stands for 2^64, so HashRange{} is the whole space and a range that ends
// at 2^64 is HashRange{Start: s}. An empty range cannot be expressed.
type HashRange struct {
	Start uint64
	End   uint64
}

// FullRange is the whole hash space.
var FullRange = HashRange{}

// Contains reports whether h is in the range.
func (r HashRange) Contains(h uint64) bool {
	return h >= r.Start && (r.End == 0 || h < r.End)
}

// Last is the range's last hash, inclusive.
func (r HashRange) Last() uint64 { return r.End - 1 } // End 0 wraps to 2^64-1

// Validate reports whether the range is non-empty.
func (r HashRange) Validate() error {
	if r.End != 0 && r.End <= r.Start {
		return fmt.Errorf("hash range %v is empty (end 0 stands for 2^64)", r)
	}
	return nil
}

func (r HashRange) String() string {
	end := "2^64"
	if r.End != 0 {
		end = fmt.Sprintf("%#016x", r.End)
	}
	return fmt.Sprintf("[%#016x, %s)", r.Start, end)
}

// ParseHashBound parses a range bound: a decimal or 0x-prefixed hex uint64,
// or "max", "2^64" or 18446744073709551616 for 2^64, which it returns as 0
// with max set.
func ParseHashBound(s string) (v uint64, max bool, err error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "max", "2^64", "18446744073709551616", "0x10000000000000000":
		return 0, true, nil
	}
	v, err = strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, false, fmt.Errorf("bad hash bound %q: want a uint64 (decimal or 0x hex) or max", s)
	}
	return v, false, nil
}

// ID layout: id = index<<PositionBits | position.
const (
	PositionBits = 20
	// MaxPosition is the largest position in one transaction.
	MaxPosition = 1<<PositionBits - 1
	// MaxIDIndex is the first log index whose IDs would overflow 64 bits.
	MaxIDIndex = uint64(1) << (64 - PositionBits)
)

// ID is the node or fact ID at position pos of the transaction at index.
func ID(index uint64, pos uint64) uint64 { return index<<PositionBits | pos }

// IDIndex is the log index that created id.
func IDIndex(id uint64) uint64 { return id >> PositionBits }
