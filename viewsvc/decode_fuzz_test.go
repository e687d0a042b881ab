package viewsvc

import (
	"testing"
)

// FuzzDecodeEntry: decoding any entry at any index never panics, and its
// verdict does not depend on the view's range or space: every view of the
// log applies, holds, refuses or stops at the same entries.
func FuzzDecodeEntry(f *testing.F) {
	for i, s := range rawTxSeeds() {
		f.Add(s, uint64(1000+i), uint32(1))
	}
	f.Add(versionEntry(1, 2), uint64(5), uint32(1))
	f.Add(decisionEntry(4, false), uint64(5), uint32(2))
	f.Add([]byte{}, uint64(1), uint32(1))
	f.Add(pingEntry(1), uint64(1)<<44, uint32(1))
	f.Fuzz(func(t *testing.T, data []byte, index uint64, version uint32) {
		if index == 0 {
			return
		}
		var kinds [4]itemKind
		var errs [4]bool
		for i, d := range []*decoder{
			{space: SpaceSP, rng: FullRange},
			{space: SpaceSP, rng: HashRange{Start: 1 << 63}},
			{space: SpacePO, rng: HashRange{Start: 5, End: 1 << 40}},
			{space: SpacePO, rng: FullRange},
		} {
			d.maxVersion, d.version = 3, max(1, version%4)
			it := d.decode(LogEntry{Index: index, Data: data})
			kinds[i], errs[i] = it.kind, it.err != nil
			if it.index != index {
				t.Fatalf("item of index %d for entry %d", it.index, index)
			}
		}
		for i := range kinds {
			if kinds[i] != kinds[0] || errs[i] != errs[0] {
				t.Fatalf("entry %x at %d: view %d decodes kind %d (error %v), view 0 kind %d (error %v)",
					data, index, i, kinds[i], errs[i], kinds[0], errs[0])
			}
		}
	})
}
