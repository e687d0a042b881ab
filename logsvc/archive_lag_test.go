package logsvc

import (
	"testing"
	"time"

	"github.com/akutan/akutan/snapshot/miniotest"
)

// Under steady single-entry appends to a 3-replica log with the default
// archive settings, an acknowledged entry is in the bucket (and the
// replicated watermark) within 1 s at p99: the bucket-only RPO. On MinIO
// when it is available, else a local directory.
func TestArchiveLagUnderSteadyWrites(t *testing.T) {
	store := newDirStore(t)
	if minioAvailable(t) {
		store = miniotest.Start(t).Store(t, "lag")
	}
	r := measureArchiveLag(t, store, 8*time.Second, 50)
	t.Log(r)
	if r.appends < 100 {
		t.Fatalf("only %d appends acknowledged", r.appends)
	}
	if r.p99 >= time.Second {
		t.Fatalf("archive lag p99 %v, want below 1 s", r.p99)
	}
}
