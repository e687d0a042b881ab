package localstack

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The bucket-only recovery point: every server is SIGKILLed 1 s after a
// write was acknowledged, with no "backup now", and every data dir is lost;
// a cluster restored from the bucket alone (restore.sh latest) holds the
// write. The log archives small segments every few hundred milliseconds
// (SegmentAge 250 ms, compacted in levels), so 1 s is enough.
func TestBucketOnlyRPO(t *testing.T) {
	s := newStack(t)
	s.mustRun("up.sh")
	s.mustCLI(people("r", 50), "insert", "--api", s.api(1))
	// A steady trickle, then the write that must survive.
	for i := range 10 {
		s.mustCLI(fmt.Sprintf("<t%d> <age> %d\n", i, i), "insert", "--api", s.api(1+i%3))
		time.Sleep(50 * time.Millisecond)
	}
	out := s.mustCLI("<survivor> <age> 4242\n", "insert", "--api", s.api(2))
	n := indexOf(t, out)
	acked := time.Now()
	time.Sleep(time.Second - time.Since(acked))

	// The disaster: SIGKILL every process of the stack but the bucket's,
	// log replicas first, then lose every data dir.
	pids, err := os.ReadDir(filepath.Join(s.dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range pids {
		name := strings.TrimSuffix(e.Name(), ".pid")
		if strings.HasPrefix(name, "log-") {
			names = append([]string{name}, names...)
		} else if name != "minio" {
			names = append(names, name)
		}
	}
	for _, name := range names {
		syscall.Kill(s.pid(name), syscall.SIGKILL)
	}
	t.Logf("SIGKILLed %v %v after write %d was acknowledged", names, time.Since(acked).Round(time.Millisecond), n)
	s.mustRun("down.sh")
	for _, p := range []string{"dc1", "dc2", "dc3", "store.url", "restored"} {
		os.RemoveAll(filepath.Join(s.dir, p))
	}

	out = s.mustRun("restore.sh", "latest")
	t.Logf("restore:\n%s", out)
	s.mustRun("up.sh")
	for dc := 1; dc <= 3; dc++ {
		got := s.lookupAll(dc, []string{"<survivor>", "<t9>", "<r49>"}, "--latest")
		if !slices.Contains(got["<survivor>"], "<survivor> <age> 4242") || !slices.Contains(got["<t9>"], "<t9> <age> 9") || !slices.Contains(got["<r49>"], "<r49> <age> 49") {
			t.Fatalf("dc%d after restoring from the bucket alone: %q; want the write acknowledged at %d, 1 s before every server was killed\nrestore said:\n%s",
				dc, got, n, out)
		}
	}
}
