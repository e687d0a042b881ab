package snapshot_test

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/akutan/akutan/snapshot"
)

// The registry starts empty, keeps concurrent updates, refuses to drop a
// critical cluster, and a corrupt registry is an error, never empty.
func TestClusterRegistry(t *testing.T) {
	ctx := t.Context()
	s, err := snapshot.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, etag, err := snapshot.LoadClusterRegistry(ctx, s)
	if err != nil || etag != "" || len(r.Clusters) != 0 {
		t.Fatalf("absent registry: %+v %q %v", r, etag, err)
	}
	var wg sync.WaitGroup
	for _, name := range []string{"dc1", "dc2", "dc3", "dc4"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := snapshot.UpdateClusterRegistry(ctx, s, func(r *snapshot.ClusterRegistry) error { return r.Set(name, name != "dc4") }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	r, _, err = snapshot.LoadClusterRegistry(ctx, s)
	if err != nil || !slices.Equal(r.Critical(), []string{"dc1", "dc2", "dc3"}) || len(r.Clusters) != 4 {
		t.Fatalf("after concurrent adds: %+v %v", r, err)
	}
	if _, err := snapshot.UpdateClusterRegistry(ctx, s, func(r *snapshot.ClusterRegistry) error { return r.Remove("dc1") }); err == nil {
		t.Fatal("removed a critical cluster")
	}
	if _, err := snapshot.UpdateClusterRegistry(ctx, s, func(r *snapshot.ClusterRegistry) error { return r.Remove("dc4") }); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.UpdateClusterRegistry(ctx, s, func(r *snapshot.ClusterRegistry) error { return r.Set("a/b", true) }); err == nil {
		t.Fatal("accepted a cluster name with a slash")
	}
	data, _, err := snapshot.ReadAll(ctx, s, snapshot.ClusterRegistryKey)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("dc2"), []byte("dc9"), 1)
	if _, err := s.Put(ctx, snapshot.ClusterRegistryKey, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := snapshot.LoadClusterRegistry(ctx, s); !errors.Is(err, snapshot.ErrCorrupt) {
		t.Fatalf("corrupt registry: %v", err)
	}
}
