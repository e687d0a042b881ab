package viewsvc

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
	"github.com/akutan/akutan/viewsvc/internal/keys"
)

// Space is how facts are hashed into ranges: SpaceSP or SpacePO.
type Space = keys.Space

// The two spaces.
const (
	SpaceSP = keys.SpaceSP
	SpacePO = keys.SpacePO
)

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

func spaceToProto(s Space) viewpb.Space {
	switch s {
	case SpaceSP:
		return viewpb.Space_HASH_SP
	case SpacePO:
		return viewpb.Space_HASH_PO
	}
	return viewpb.Space_SPACE_UNSPECIFIED
}

// HashSP is the HashSP hash: xxhash64 of the subject and the predicate, each
// as 8 bytes big-endian.
func HashSP(subject, predicate uint64) uint64 { return keys.HashSP(subject, predicate) }

// HashPO is the HashPO hash: xxhash64 of the predicate as 8 bytes big-endian
// followed by the object's order-preserving encoding (see internal/keys). A
// node object must name its node by id.
func HashPO(predicate uint64, object *entrypb.Object) (uint64, error) {
	enc, err := keys.AppendObject(nil, object, keys.IDOnly)
	if err != nil {
		return 0, err
	}
	return keys.HashPO(predicate, enc), nil
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
