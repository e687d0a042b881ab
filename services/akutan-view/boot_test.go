package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/akutan/akutan/proto/viewpb"
	"github.com/akutan/akutan/snapshot/miniotest"
)

// TestBootFromBucket writes a million facts to a real log, has a view
// process apply them and checkpoint into a real MinIO, then starts a second
// view process on an empty data dir. It boots from the bucket and the log
// alone (it is given no other view's address: views never talk to views),
// and its digest equals the first view's at the checkpoint's index; then
// it follows the log past it.
func TestBootFromBucket(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries, a million facts")
	}
	bin := filepath.Join(t.TempDir(), "akutan-view")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	minio := miniotest.Start(t)
	for _, kv := range minio.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	entries := crashLog(1_000_000)
	logAddr := startLog(t, entries)
	last := uint64(len(entries))
	k := last * 2 / 3
	store := minio.URL("boot-test")
	// Only the Checkpoint RPC below writes checkpoints.
	common := []string{"--space", "sp", "--log", logAddr, "--store", store, "--checkpoint-interval", "0", "--log-level", "info"}

	live := startView(t, bin, append([]string{"--data-dir", t.TempDir(), "--stop-at", itoa(k), "--cluster", "dc1"}, common...))
	waitStatus(t, live, func(st *viewpb.StatusResponse) bool { return st.LastApplied == k })
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	t0 := time.Now()
	ckpt, err := live.client.Checkpoint(ctx, &viewpb.CheckpointRequest{})
	if err != nil {
		t.Fatalf("checkpoint: %v\n%s", err, live.stderr())
	}
	t.Logf("checkpoint at %d: %d bytes in %v", ckpt.Index, ckpt.Bytes, time.Since(t0))
	if ckpt.Index != k {
		t.Fatalf("checkpoint at %d, want %d", ckpt.Index, k)
	}

	t0 = time.Now()
	booted := startView(t, bin, append([]string{"--data-dir", filepath.Join(t.TempDir(), "fresh"), "--cluster", "dc2"}, common...))
	waitStatus(t, booted, func(st *viewpb.StatusResponse) bool { return st.LastApplied >= k })
	st := booted.status(t)
	t.Logf("booted and reached %d in %v: %+v", k, time.Since(t0), st)
	if st.CheckpointIndex != k || st.BootBytesTotal != ckpt.Bytes || st.BootBytesDone != ckpt.Bytes {
		t.Errorf("booted view's status %v: want checkpoint %d with %d bytes downloaded", st, k, ckpt.Bytes)
	}
	want, err := live.client.Digest(ctx, &viewpb.DigestRequest{Index: k})
	if err != nil {
		t.Fatal(err)
	}
	got, err := booted.client.Digest(ctx, &viewpb.DigestRequest{Index: k})
	if err != nil {
		t.Fatal(err)
	}
	if want.Facts < 500_000 || got.Facts != want.Facts || got.Sum1 != want.Sum1 || got.Sum2 != want.Sum2 {
		t.Fatalf("at %d: booted %v, live %v", k, got, want)
	}
	waitStatus(t, booted, func(st *viewpb.StatusResponse) bool { return st.LastApplied == last })
	end, err := booted.client.Digest(ctx, &viewpb.DigestRequest{Index: last})
	if err != nil || end.Facts == want.Facts {
		t.Fatalf("after following the log to %d: %v %v", last, end, err)
	}
}

func waitStatus(t *testing.T, p *viewProc, ok func(*viewpb.StatusResponse) bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st := p.status(t)
		if ok(st) {
			return
		}
		if st.Error != "" || time.Now().After(deadline) {
			t.Fatalf("view stuck: %v\n%s", st, p.stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
