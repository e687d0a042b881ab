package backup

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/akutan/akutan/snapshot"
)

// TestPruneReportsSkipped: a checkpoint missing a file is named in the
// report as unverified, with the reason, and is not retired.
func TestPruneReportsSkipped(t *testing.T) {
	ctx := context.Background()
	s, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.InitBucket(ctx, s, "test"); err != nil {
		t.Fatal(err)
	}
	var refs []snapshot.CheckpointRef
	var files []string
	for _, index := range []uint64{10, 20} {
		dir := snapshot.CheckpointDir("sp", snapshot.Range{}, index)
		data := []byte("facts")
		info, err := s.Put(ctx, dir+"facts.sst", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		m := &snapshot.Manifest{Cluster: "dc1", Space: "sp", Index: index, Created: time.Now(), Files: []snapshot.FileRef{{
			Key: dir + "facts.sst", Kind: "facts", Size: info.Size, CRC32C: snapshot.CRC32C(data), Entries: 1}}}
		if err := snapshot.PutManifest(ctx, s, dir+snapshot.ManifestName, m); err != nil {
			t.Fatal(err)
		}
		ref := snapshot.CheckpointRef{Cluster: "dc1", Space: "sp", Index: index, Manifest: dir + snapshot.ManifestName,
			Bytes: m.Bytes(), Created: m.Created}
		if _, err := snapshot.UpdateCheckpointCatalog(ctx, s, func(c *snapshot.CheckpointCatalog) error {
			c.Add(ref)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		refs, files = append(refs, ref), append(files, dir+"facts.sst")
	}
	if err := s.Delete(ctx, files[1]); err != nil {
		t.Fatal(err)
	}

	p := snapshot.DefaultRetentionPolicy()
	p.KeepCheckpoints, p.Spaces = 1, []string{"sp"}
	rep, err := Prune(ctx, s, p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.RetiredCheckpoints != 0 || len(rep.Skipped) != 1 {
		t.Fatalf("report %+v: want nothing retired, one checkpoint skipped", rep)
	}
	if sk := rep.Skipped[0]; sk.Kind != SkippedUnverified || sk.Key != refs[1].Manifest || sk.Reason == "" {
		t.Errorf("skipped %+v, want %s unverified with a reason", sk, refs[1].Manifest)
	}
}
