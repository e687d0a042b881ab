package snapshot

import (
	"bytes"
	"io"
)

// CheckSegmentBytes runs Verify's streaming segment check on obj.
func CheckSegmentBytes(obj []byte) error {
	_, _, err := checkSegment(io.MultiReader(bytes.NewReader(obj)), int64(len(obj)))
	return err
}
