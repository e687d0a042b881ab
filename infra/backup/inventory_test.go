package backup

import (
	"reflect"
	"testing"

	"github.com/akutan/akutan/snapshot"
)

func TestRestorable(t *testing.T) {
	half := uint64(1) << 63
	seg := func(first, last uint64) snapshot.SegmentRef { return snapshot.SegmentRef{First: first, Last: last} }
	ckpt := func(space string, start, end, index uint64) snapshot.CheckpointRef {
		return snapshot.CheckpointRef{Space: space, Start: start, End: end, Index: index,
			Manifest: space + string(rune('a'+start>>62)) + string(rune('0'+index))}
	}
	tests := []struct {
		name  string
		segs  []snapshot.SegmentRef
		ckpts []snapshot.CheckpointRef
		want  []Interval
	}{
		{"empty", nil, nil, nil},
		{"archive from 1, no checkpoints", []snapshot.SegmentRef{seg(1, 5), seg(6, 9)}, nil, []Interval{{1, 9}}},
		{"truncated archive needs checkpoints", []snapshot.SegmentRef{seg(4, 9)}, []snapshot.CheckpointRef{
			ckpt("sp", 0, half, 3), ckpt("sp", half, 0, 5), ckpt("po", 0, 0, 4),
		}, []Interval{{5, 9}}},
		{"a half-covered space is not restorable", []snapshot.SegmentRef{seg(4, 9)}, []snapshot.CheckpointRef{
			ckpt("sp", 0, half, 3), ckpt("po", 0, 0, 4),
		}, nil},
		{"checkpoint older than the archive", []snapshot.SegmentRef{seg(4, 9)}, []snapshot.CheckpointRef{
			ckpt("sp", 0, 0, 2), ckpt("po", 0, 0, 3), ckpt("sp", 0, 0, 6),
		}, []Interval{{6, 9}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := &snapshot.LogCatalog{Segments: tt.segs}
			cc := &snapshot.CheckpointCatalog{}
			for _, c := range tt.ckpts {
				cc.Add(c)
			}
			if got := restorable(lc, cc); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("restorable = %v, want %v", got, tt.want)
			}
		})
	}
}
