package viewsvc

import (
	"github.com/akutan/akutan/model"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/viewpb"
)

// Space is how facts are hashed into ranges: SpaceSP or SpacePO.
type Space = model.Space

// The two spaces.
const (
	SpaceSP = model.SpaceSP
	SpacePO = model.SpacePO
)

// ParseSpace parses "sp", "hashsp", "po" or "hashpo" (any case).
func ParseSpace(s string) (Space, error) { return model.ParseSpace(s) }

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
func HashSP(subject, predicate uint64) uint64 { return model.HashSP(subject, predicate) }

// HashPO is the HashPO hash: xxhash64 of the predicate as 8 bytes big-endian
// followed by the object's order-preserving encoding (see package model). A
// node object must name its node by id.
func HashPO(predicate uint64, object *entrypb.Object) (uint64, error) {
	return model.HashPOObject(predicate, object)
}

// HashRange is the half-open range [Start, End) of 64-bit hashes, End == 0
// standing for 2^64 (see package model).
type HashRange = model.HashRange

// FullRange is the whole hash space.
var FullRange = model.FullRange

// ParseHashBound parses a range bound (see model.ParseHashBound).
func ParseHashBound(s string) (v uint64, max bool, err error) { return model.ParseHashBound(s) }
