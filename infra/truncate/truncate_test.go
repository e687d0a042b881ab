package truncate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/akutan/akutan/snapshot"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

const half = uint64(1) << 63

func cp(cluster, space string, start, end, index uint64, age time.Duration) snapshot.CheckpointRef {
	return snapshot.CheckpointRef{Cluster: cluster, Space: space, Start: start, End: end, Index: index,
		Manifest: fmt.Sprintf("checkpoints/%s/%s/%016x-%016x/%020d/manifest.json", cluster, space, start, end, index),
		Created:  t0.Add(-age)}
}

func logCat(t *testing.T, last uint64) *snapshot.LogCatalog {
	c := &snapshot.LogCatalog{Format: snapshot.CatalogFormat}
	if last > 0 {
		if err := c.Add(snapshot.SegmentRef{First: 1, Last: last, Key: snapshot.SegmentKey(1, last)}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestCompute(t *testing.T) {
	old := 10 * time.Minute
	full := func(cluster string, sp, po uint64) []snapshot.CheckpointRef {
		return []snapshot.CheckpointRef{cp(cluster, "sp", 0, 0, sp, old), cp(cluster, "po", 0, 0, po, old)}
	}
	cfg := Config{Clusters: []string{"dc1", "dc2"}, Delay: 3 * time.Minute}
	log := LogInfo{First: 1, Last: 1000, ArchivedThrough: 900}
	tests := []struct {
		name    string
		cps     []snapshot.CheckpointRef
		log     LogInfo
		archive uint64
		discard uint64
		reason  string
	}{
		{"no checkpoints", nil, log, 900, 0, "sp [0x0000000000000000, 2^64) has no checkpoint"},
		{"one cluster missing", full("dc1", 500, 600), log, 900, 0, "cluster dc2"},
		{"min over clusters and spaces", append(full("dc1", 500, 600), full("dc2", 700, 400)...), log, 900, 401,
			"cluster dc2: po [0x0000000000000000, 2^64) is covered only by a checkpoint at index 400"},
		{"archive bound", append(full("dc1", 950, 960), full("dc2", 970, 980)...), log, 900, 901, "the archive holds entries only through 900"},
		{"catalog behind watermark", append(full("dc1", 950, 960), full("dc2", 970, 980)...), log, 800, 801, "catalog end 800"},
		{"log end bound", append(full("dc1", 950, 960), full("dc2", 970, 980)...), LogInfo{First: 1, Last: 940, ArchivedThrough: 1000}, 1000, 941, "the log ends at 940"},
		{"too new ignored", append(append(full("dc1", 500, 600), full("dc2", 700, 700)...),
			cp("dc1", "sp", 0, 0, 800, time.Minute), cp("dc1", "po", 0, 0, 800, time.Minute)), log, 900, 501, "cluster dc1: sp"},
		{"split partitions, newest per point", append([]snapshot.CheckpointRef{
			// dc1 sp: halves at 300 and 500, an older whole at 200 and a
			// newer left half at 800: the right half limits at 500.
			cp("dc1", "sp", 0, half, 300, old), cp("dc1", "sp", half, 0, 500, old),
			cp("dc1", "sp", 0, 0, 200, old), cp("dc1", "sp", 0, half, 800, old),
			cp("dc1", "po", 0, 0, 900, old),
		}, full("dc2", 900, 900)...), log, 900, 501, "cluster dc1: sp [0x8000000000000000, 2^64) is covered only by a checkpoint at index 500"},
		{"uncovered gap in a partitioning", append([]snapshot.CheckpointRef{
			cp("dc1", "sp", 0, 100, 800, old), cp("dc1", "sp", 200, 0, 800, old), cp("dc1", "po", 0, 0, 800, old),
		}, full("dc2", 900, 900)...), log, 900, 0, "sp [0x0000000000000064, 0x00000000000000c8) has no checkpoint"},
		{"other clusters ignored", append(full("dc1", 800, 800), append(full("dc2", 800, 800), full("dc9", 1, 1)...)...), log, 900, 801, "index 800"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Compute(cfg, t0, &snapshot.CheckpointCatalog{Checkpoints: tc.cps}, logCat(t, tc.archive), tc.log)
			if p.Discard != tc.discard || !strings.Contains(p.Reason, tc.reason) {
				t.Fatalf("discard %d (%s), want %d (%s)\n%s", p.Discard, p.Reason, tc.discard, tc.reason, p)
			}
			if p.Act() != (tc.discard > tc.log.First) {
				t.Fatalf("act %v", p.Act())
			}
			t.Logf("\n%s", p)
		})
	}
}

type fakeLog struct {
	info      LogInfo
	discarded uint64
}

func (f *fakeLog) Info(context.Context) (LogInfo, error) { return f.info, nil }
func (f *fakeLog) DiscardPrefix(_ context.Context, before uint64) (uint64, error) {
	if before-1 > f.info.ArchivedThrough {
		return 0, errors.New("not archived")
	}
	f.discarded, f.info.First = before, before
	return before, nil
}

func TestCoordinatorOnce(t *testing.T) {
	ctx := context.Background()
	store, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []snapshot.CheckpointRef{cp("dc1", "sp", 0, 0, 300, time.Hour), cp("dc1", "po", 0, 0, 400, time.Hour)} {
		if _, err := snapshot.UpdateCheckpointCatalog(ctx, store, func(cat *snapshot.CheckpointCatalog) error { cat.Add(c); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := snapshot.UpdateLogCatalog(ctx, store, func(cat *snapshot.LogCatalog) error {
		return cat.Add(snapshot.SegmentRef{First: 1, Last: 500, Key: snapshot.SegmentKey(1, 500)})
	}); err != nil {
		t.Fatal(err)
	}
	log := &fakeLog{info: LogInfo{First: 1, Last: 600, ArchivedThrough: 500}}
	c := &Coordinator{Config: Config{Clusters: []string{"dc1"}, Delay: time.Minute}, Store: store, Log: log, Now: func() time.Time { return t0 }}
	p, err := c.Once(ctx, true)
	if err != nil || p.Discard != 301 || p.Done || log.discarded != 0 {
		t.Fatalf("dry run: %v %v", p, err)
	}
	p, err = c.Once(ctx, false)
	if err != nil || !p.Done || p.FirstAfter != 301 || log.discarded != 301 {
		t.Fatalf("run: %v %v", p, err)
	}
	p, err = c.Once(ctx, false)
	if err != nil || p.Act() || p.Done {
		t.Fatalf("second run: %v %v", p, err)
	}
	if !strings.Contains(p.String(), "nothing to discard") {
		t.Fatalf("plan: %s", p)
	}
}
