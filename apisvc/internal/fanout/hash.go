package fanout

import (
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/viewsvc"
)

// The hash functions of the two spaces. They are the views' own (see
// viewsvc/doc.go); this is the only non-test file that imports viewsvc, so
// moving the hashes to a leaf package changes only its import.

func hashSP(subject, predicate uint64) uint64 { return viewsvc.HashSP(subject, predicate) }

func hashPO(predicate uint64, object *entrypb.Object) (uint64, error) {
	return viewsvc.HashPO(predicate, object)
}
