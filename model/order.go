package model

import (
	"bytes"

	"github.com/akutan/akutan/proto/entrypb"
)

// CompareObjects orders objects by their encoding (see the package doc),
// the order the views store them in; an object that cannot be encoded
// (unset, or a node not named by id) sorts after every other. Node objects
// must be named by id.
func CompareObjects(a, b *entrypb.Object) int {
	var ba, bb [48]byte
	ea, erra := AppendObject(ba[:0], a, IDOnly)
	eb, errb := AppendObject(bb[:0], b, IDOnly)
	switch {
	case erra != nil && errb != nil:
		return 0
	case erra != nil:
		return 1
	case errb != nil:
		return -1
	}
	return bytes.Compare(ea, eb)
}
