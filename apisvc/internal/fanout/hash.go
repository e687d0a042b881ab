package fanout

import (
	"github.com/akutan/akutan/model"
	"github.com/akutan/akutan/proto/entrypb"
)

// The hash functions of the two spaces, from the shared model: the API
// server routes with the views' own hashes without linking the views.

func hashSP(subject, predicate uint64) uint64 { return model.HashSP(subject, predicate) }

func hashPO(predicate uint64, object *entrypb.Object) (uint64, error) {
	return model.HashPOObject(predicate, object)
}
